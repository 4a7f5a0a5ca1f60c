import { Router, type RequestHandler } from 'express';
import type { Knex } from 'knex';
import { requireApiKey, validated, errors, type OpenApi } from '@workemon/service-kit';
import { decideExecution, getExecution, listExecutions, toApi, type ExecutionFilter } from './execution-repository.js';

export type ActionRoutesDeps = {
  db: Knex;
  openapi: OpenApi;
  /** `API_KEYS`: every call needs `Authorization: Bearer <key>` when set. */
  apiKeys: readonly string[];
  /** Called after an approval so the worker runs the action now rather than at its next poll. */
  onApproved?: () => void;
  /** Called after a rejection so the worker tells the requester now. */
  onRejected?: () => void;
};

type IdParams = { params: { id: number } };
type DecisionBody = { body?: { by?: string; reason?: string } };

/**
 * The execution log and approvals: `GET /action-executions[/{id}]`, `POST /action-executions/{id}/approve|reject`.
 * Mount with `app.use(createActionRoutes(deps))`. The communicator calls approve/reject for Telegram buttons,
 * with `by` naming the approver.
 */
export function createActionRoutes(deps: ActionRoutesDeps): Router {
  const { db, openapi } = deps;
  const auth: RequestHandler = requireApiKey(deps.apiKeys);
  const router = Router();

  router.get('/action-executions', auth, openapi.validate('listActionExecutions'), async (_req, res) => {
    const { query } = validated<{ query: ExecutionFilter & { analysis_id?: number } }>(res);
    const executions = await listExecutions(db, { ...query, analysisId: query.analysis_id });
    res.json({ executions });
  });
  router.get('/action-executions/:id', auth, openapi.validate('getActionExecution'), async (_req, res) => {
    const id = validated<IdParams>(res).params.id;
    const execution = await getExecution(db, id);
    if (!execution) throw errors.notFound(`Action execution ${id} not found`);
    res.json(execution);
  });
  for (const decision of ['approve', 'reject'] as const) {
    router.post(
      `/action-executions/:id/${decision}`,
      auth,
      openapi.validate(decision === 'approve' ? 'approveActionExecution' : 'rejectActionExecution'),
      async (_req, res) => {
        const { params, body } = validated<IdParams & DecisionBody>(res);
        const row = await decideExecution(db, params.id, {
          decision: decision === 'approve' ? 'approved' : 'rejected',
          by: body?.by?.trim() || 'api',
          reason: body?.reason?.trim() || null,
        });
        (decision === 'approve' ? deps.onApproved : deps.onRejected)?.();
        res.json(toApi(row));
      },
    );
  }
  return router;
}
