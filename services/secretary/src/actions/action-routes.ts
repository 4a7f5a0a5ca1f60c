import { Router } from 'express';
import type { ActionDecisionInput } from '@workemon/contracts';
import {
  principalOf,
  validated,
  errors,
  type Authenticator,
  type OpenApi,
  type Principal,
} from '@workemon/service-kit';
import { buildActionCatalog, type ActionCatalogSource } from './action-catalog.js';
import { toApi, type ExecutionFilter, type ExecutionRepository } from './execution-repository.js';

export type ActionRoutesDeps = {
  /** The execution log (`createExecutionRepository(db)`). */
  executions: ExecutionRepository;
  openapi: OpenApi;
  /** Checks keys: reading the log and deciding needs an admin key; the communicator decides with a service key. */
  auth: Authenticator;
  /** `APPROVER_TELEGRAM_USER_IDS`: whose button presses the communicator may pass on (`telegram:<user id>`). */
  approverTelegramUserIds: readonly string[];
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
type DecisionBody = { body?: ActionDecisionInput };

/**
 * The execution log and approvals: `GET /action-executions[/{id}]`, `POST /action-executions/{id}/approve|reject`,
 * `POST /action-executions/{id}/retry` (a failed action runs again) and the catalog `GET /actions`.
 * Mount with `app.use(createActionRoutes(deps))`. Who decided (`decided_by`) comes from the key: an admin key's
 * name; for a service key (the communicator passing on a Telegram button press) the body's `by`, which must be
 * `telegram:<user id>` of a listed approver. A body's `by` from an admin key is ignored.
 */
export function createActionRoutes(deps: ActionRoutesDeps): Router {
  const { openapi } = deps;
  const { executions } = deps;
  const admin = deps.auth.require(['admin']);
  const adminOrService = deps.auth.require(['admin', 'service']);
  const router = Router();

  router.get('/actions', admin, openapi.validate('listActions'), async (_req, res) => {
    res.json({ actions: await buildActionCatalog(deps.catalog) });
  });
  router.get('/action-executions', admin, openapi.validate('listActionExecutions'), async (_req, res) => {
    const { query } = validated<{ query: LogQuery }>(res);
    const { analysis_id, rule_id, ...filter } = query;
    if (filter.from && filter.to && new Date(filter.from) >= new Date(filter.to))
      throw errors.invalidParameter('to', "must be later than 'from'");
    res.json(await executions.listPage({ ...filter, analysisId: analysis_id, ruleId: rule_id }));
  });
  router.post('/action-executions/:id/retry', admin, openapi.validate('retryActionExecution'), async (_req, res) => {
    const row = await executions.retry(validated<IdParams>(res).params.id);
    deps.onRetried?.();
    res.json(toApi(row));
  });
  router.get('/action-executions/:id', admin, openapi.validate('getActionExecution'), async (_req, res) => {
    const id = validated<IdParams>(res).params.id;
    const execution = await executions.get(id);
    if (!execution) throw errors.notFound(`Action execution ${id} not found`);
    res.json(execution);
  });
  for (const decision of ['approve', 'reject'] as const) {
    router.post(
      `/action-executions/:id/${decision}`,
      adminOrService,
      openapi.validate(decision === 'approve' ? 'approveActionExecution' : 'rejectActionExecution'),
      async (_req, res) => {
        const { params, body } = validated<IdParams & DecisionBody>(res);
        const row = await executions.decide(params.id, {
          decision: decision === 'approve' ? 'approved' : 'rejected',
          by: decidedBy(principalOf(res)!, body?.by, deps.approverTelegramUserIds),
          reason: body?.reason?.trim() || null,
        });
        (decision === 'approve' ? deps.onApproved : deps.onRejected)?.();
        res.json(toApi(row));
      },
    );
  }
  return router;
}

const TELEGRAM_APPROVER = /^telegram:(\d{1,20})$/;

/**
 * The `decided_by` of an approval (issue 9: approvals are bound to a person): the admin key's name, or, for a
 * service key, the Telegram approver the communicator vouches for, which must be in APPROVER_TELEGRAM_USER_IDS.
 * Throws 403 for a service call naming anyone else.
 */
export function decidedBy(principal: Principal, claimed: string | undefined, approverIds: readonly string[]): string {
  if (principal.keyClass !== 'service') return principal.name;
  const match = TELEGRAM_APPROVER.exec(claimed?.trim() ?? '');
  if (!match || !approverIds.includes(match[1]!))
    throw errors.forbidden(
      "A service key decides an action only for a Telegram approver: 'by' must be telegram:<user id> listed in APPROVER_TELEGRAM_USER_IDS",
    );
  return `telegram:${match[1]}`;
}
