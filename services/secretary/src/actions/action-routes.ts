import { Router, type RequestHandler } from 'express';
import type { Knex } from 'knex';
import { requireApiKey, validated, errors, type OpenApi } from '@workemon/service-kit';
import { buildActionCatalog, type ActionCatalogSource } from './action-catalog.js';
import {
  decideExecution,
  getExecution,
  listExecutionPage,
  retryExecution,
  toApi,
  type ExecutionFilter,
} from './execution-repository.js';

export type ActionRoutesDeps = {
  db: Knex;
  openapi: OpenApi;
  /** `API_KEYS`: every call needs `Authorization: Bearer <key>` when set. */
  apiKeys: readonly string[];
  /** Called after an approval so the worker runs the action now rather than at its next poll. */
  onApproved?: () => void;
  /** Called after a rejection so the worker tells the requester now. */
  onRejected?: () => void;
  /** Called after POST …/retry so the worker runs the action now. */
  onRetried?: () => void;
  /** What GET /actions reports (policy, Jira, channels); absent: default policy, nothing configured. */
  catalog?: ActionCatalogSource;
};

type LogQuery = Omit<ExecutionFilter, 'analysisId' | 'ruleId'> & { analysis_id?: number; rule_id?: number };

type IdParams = { params: { id: number } };
type DecisionBody = { body?: { by?: string; reason?: string } };

/**
 * The execution log and approvals: `GET /action-executions[/{id}]`, `POST /action-executions/{id}/approve|reject`,
 * `POST /action-executions/{id}/retry` (a failed action runs again) and the catalog `GET /actions`.
 * Mount with `app.use(createActionRoutes(deps))`. The communicator calls approve/reject for Telegram buttons,
 * with `by` naming the approver.
 */
export function createActionRoutes(deps: ActionRoutesDeps): Router {
  const { db, openapi } = deps;
  const auth: RequestHandler = requireApiKey(deps.apiKeys);
  const router = Router();

  router.get('/actions', auth, openapi.validate('listActions'), async (_req, res) => {
    res.json({ actions: await buildActionCatalog(deps.catalog) });
  });
  router.get('/action-executions', auth, openapi.validate('listActionExecutions'), async (_req, res) => {
    const { query } = validated<{ query: LogQuery }>(res);
    const { analysis_id, rule_id, ...filter } = query;
    if (filter.from && filter.to && new Date(filter.from) >= new Date(filter.to))
      throw errors.invalidParameter('to', "must be later than 'from'");
    res.json(await listExecutionPage(db, { ...filter, analysisId: analysis_id, ruleId: rule_id }));
  });
  router.post('/action-executions/:id/retry', auth, openapi.validate('retryActionExecution'), async (_req, res) => {
    const row = await retryExecution(db, validated<IdParams>(res).params.id);
    deps.onRetried?.();
    res.json(toApi(row));
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
