import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import { isAction, type Action, type ActionDecisionInput, type Channel, type SecretaryApi } from '@workemon/contracts';
import { AppError, errors } from '@workemon/service-kit';
import type { WithheldReason } from '../sender-trust.js';
import { isExecutableAction, type ActionPolicy, type ExecutableAction } from './action-policy.js';
import {
  awaitingApprovalNotice,
  checkReadiness,
  withheldNotice,
  disabledNotice,
  pendingNotice,
  type DepartmentTarget,
  type ExecutionPayload,
  type ExecutionTarget,
  type ReplyTarget,
} from './executors.js';

export const TABLE = 'action_executions';

type ExecutionSchemas = SecretaryApi.components['schemas'];

/** The state of an execution: the contract's `ActionExecutionStatus`. */
export type ExecutionStatus = ExecutionSchemas['ActionExecutionStatus'];
export const EXECUTION_STATUSES = [
  'pending',
  'awaiting_approval',
  'succeeded',
  'failed',
  'skipped',
] as const satisfies readonly ExecutionStatus[];
/** The state of a message about an execution (to the requester, to the approver): `ActionSideEffect.status`. */
export type SideStatus = NonNullable<ExecutionSchemas['ActionSideEffect']['status']>;

export type ExecutionRow = {
  id: number;
  analysis_id: number | null;
  conversation_id: number | null;
  requester: string;
  channel: Channel;
  department: string | null;
  action: ExecutableAction;
  status: ExecutionStatus;
  attempts: number;
  /** Re-runs an operator asked for (migration 220_action_retries; 0 on databases without it is not possible). */
  retries?: number;
  next_attempt_at: Date;
  lease_token: string | null;
  lease_expires_at: Date | null;
  target: ExecutionTarget | null;
  payload: ExecutionPayload;
  result: Record<string, unknown> | null;
  error: string | null;
  decision: NonNullable<ExecutionSchemas['ActionExecution']['decision']> | null;
  decided_by: string | null;
  decided_at: Date | null;
  decision_reason: string | null;
  /** Why the action did not run on its own for this sender (absent before migration 200). */
  withheld_reason?: WithheldReason | null;
  matched_rule_ids: number[];
  notify_status: SideStatus | null;
  notification: Record<string, unknown> | null;
  approval_request_status: SideStatus | null;
  approval_request: Record<string, unknown> | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  updated_at: Date;
};

type SideEffectView = Record<string, unknown> & { status: SideStatus | null };

/** The API's view of a row (`ActionExecution` in the secretary's OpenAPI document; the compiler checks it). */
export function toApi(row: ExecutionRow) {
  const iso = (d: Date | null) => (d ? new Date(d).toISOString() : null);
  return {
    id: row.id,
    analysis_id: row.analysis_id,
    conversation_id: row.conversation_id,
    requester: row.requester,
    channel: row.channel,
    department: row.department,
    action: row.action,
    status: row.status,
    attempts: row.attempts,
    retries: row.retries ?? 0,
    next_attempt_at: row.status === 'pending' ? iso(row.next_attempt_at) : null,
    target: row.target,
    request: row.payload.request,
    context: row.payload.context,
    analysis: row.payload.analysis,
    result: row.result,
    error: row.error,
    decision: row.decision,
    decided_by: row.decided_by,
    decided_at: iso(row.decided_at),
    decision_reason: row.decision_reason,
    withheld_reason: row.withheld_reason ?? null,
    matched_rule_ids: row.matched_rule_ids.map(Number),
    notification: { ...(row.notification ?? {}), status: row.notify_status } as SideEffectView,
    approval_request: { ...(row.approval_request ?? {}), status: row.approval_request_status } as SideEffectView,
    created_at: iso(row.created_at)!,
    started_at: iso(row.started_at),
    finished_at: iso(row.finished_at),
  } satisfies ExecutionSchemas['ActionExecution'];
}
export type ActionExecution = ReturnType<typeof toApi>;

export type EnqueueInput = {
  analysisId?: number | null;
  conversationId?: number | null;
  /** Directory username (or the sender's address / Telegram id when unknown). */
  requester: string;
  channel: Channel;
  /** direct: the name of the API key that vouched for `requester` (SenderTrust.vouchedBy: `portal`, never the key). */
  vouchedBy?: string;
  /** The final action (after routing rules). Reply and clarify need no execution: nothing is enqueued. */
  action: Action;
  request: string;
  context?: string;
  analysis?: string;
  /** The department the action goes to (the requester's, or the one a rule chose). */
  department?: DepartmentTarget | null;
  /** A routing rule's Jira project (wins over the department's). */
  jiraProject?: string | null;
  /** Where to tell the requester the outcome; default: `requester` on `channel`. */
  reply?: ReplyTarget;
  /** A routing rule asked for approval (ACTION_POLICY=approve does the same per action). */
  requireApproval?: boolean;
  matchedRuleIds?: readonly number[];
  policy: ActionPolicy;
  jira: { configured: boolean; defaultProjectKey?: string };
  /** The sender may not trigger this action on their own (sender-trust.ts): skipped, or held for approval. */
  withheld?: { reason: WithheldReason; detail: string };
};

export type Enqueued = {
  execution: ActionExecution;
  /** One sentence for the answer the requester gets now (what happens next, or why nothing will). */
  notice: string;
};

export type ExecutionPlan = {
  status: 'pending' | 'awaiting_approval' | 'skipped';
  /** Why it was skipped (operator-facing). */
  error: string | null;
  /** Set when the sender's trust held the action back (skipped, or awaiting approval). */
  withheldReason?: WithheldReason;
  target: ExecutionTarget | null;
  /** One sentence for the requester's answer now. */
  notice: string;
};

/** What enqueueing will do with an action: policy `off` → skipped, not configured → skipped, approval → held. */
function planExecution(
  input: Pick<EnqueueInput, 'channel' | 'policy' | 'jira' | 'requireApproval' | 'analysisId' | 'withheld'> & {
    action: ExecutableAction;
    payload: Pick<ExecutionPayload, 'department' | 'jira_project'>;
  },
): ExecutionPlan {
  const { action } = input;
  const mode = input.policy[action];
  if (mode === 'off')
    return { status: 'skipped', error: 'disabled by policy', target: null, notice: disabledNotice(action) };
  const readiness = checkReadiness(input.jira, action, input.payload);
  const { withheld } = input;
  // An untrusted sender's action waits for a person when the policy asks for approval anyway; otherwise (and
  // always for mail from outside the company to a list or a colleague) it is not done: the answer is a reply.
  if (withheld && (withheld.reason === 'external_domain' || !(mode === 'approve' || input.requireApproval)))
    return {
      status: 'skipped',
      error: `${withheld.reason}: ${withheld.detail}`,
      withheldReason: withheld.reason,
      target: null,
      notice: withheldNotice(action, withheld.reason),
    };
  if (!readiness.ready)
    return { status: 'skipped', error: readiness.reason, target: null, notice: readiness.userMessage };
  if (mode === 'approve' || input.requireApproval)
    return {
      status: 'awaiting_approval',
      error: null,
      ...(withheld ? { withheldReason: withheld.reason } : {}),
      target: readiness.target,
      notice: awaitingApprovalNotice(action, input.channel, input.analysisId),
    };
  return {
    status: 'pending',
    error: null,
    target: readiness.target,
    notice: pendingNotice(action, input.channel, input.analysisId),
  };
}

/** What the worker will need to run the action later: the request and where it goes, frozen at decision time. */
function executionPayload(input: EnqueueInput): ExecutionPayload {
  return {
    request: input.request,
    context: input.context ?? '',
    analysis: input.analysis ?? '',
    department: input.department ?? null,
    jira_project: input.jiraProject ?? null,
    reply: input.reply ?? { to: input.requester },
    ...(input.vouchedBy && { vouched_by: input.vouchedBy }),
  };
}

/**
 * The columns that tell the requester and the approver: a skipped action is explained in the answer itself
 * (nothing to send later); a held one waits for its approval request.
 */
function sideEffectColumns(trx: Knex.Transaction | Knex, plan: ExecutionPlan) {
  const skipped = plan.status === 'skipped';
  return {
    notify_status: skipped ? 'not_needed' : null,
    notification: skipped ? JSON.stringify({ message: plan.notice, reason: 'told in the answer' }) : null,
    approval_request_status: plan.status === 'awaiting_approval' ? 'pending' : null,
    finished_at: skipped ? trx.fn.now() : null,
  };
}

/** The row `enqueueActionExecution` inserts for an executable action and its plan. */
function executionColumns(
  trx: Knex.Transaction | Knex,
  input: EnqueueInput & { action: ExecutableAction },
  plan: ExecutionPlan,
  payload: ExecutionPayload,
) {
  return {
    analysis_id: input.analysisId ?? null,
    conversation_id: input.conversationId ?? null,
    requester: input.requester,
    channel: input.channel,
    department: input.department?.name ?? null,
    action: input.action,
    status: plan.status,
    target: plan.target ? JSON.stringify(plan.target) : null,
    payload: JSON.stringify(payload),
    error: plan.error,
    // Written only when set, so the feature's own tests run on migration 100 alone.
    ...(plan.withheldReason ? { withheld_reason: plan.withheldReason } : {}),
    matched_rule_ids: [...(input.matchedRuleIds ?? [])],
    ...sideEffectColumns(trx, plan),
  };
}

/**
 * Writes the action's row. Call it inside the transaction that stores the decision, so the decision and its
 * action commit together (the outbox): the worker picks `pending` rows up after the commit. Returns null for
 * actions without a side effect (reply, clarify); 400 `invalid_parameter` for an action the contract lacks.
 */
async function enqueueActionExecution(trx: Knex.Transaction | Knex, input: EnqueueInput): Promise<Enqueued | null> {
  if (!isAction(input.action)) throw errors.invalidParameter('action', 'is not a known action');
  if (!isExecutableAction(input.action)) return null;
  const executable = { ...input, action: input.action };
  const payload = executionPayload(input);
  const plan = planExecution({ ...executable, payload });
  const [row] = (await trx(TABLE)
    .insert(executionColumns(trx, executable, plan, payload))
    .returning('*')) as ExecutionRow[];
  return { execution: toApi(row!), notice: plan.notice };
}

/**
 * Filters of the execution log (GET /action-executions). All optional and combined with AND; times are
 * ISO 8601 instants on `created_at` (`from` inclusive, `to` exclusive; `since` is the older name of `from`).
 */
export type ExecutionFilter = {
  status?: ExecutionStatus;
  action?: Action;
  /** The requester, case-insensitive (`requester` in the API; `employee` is the older name). */
  employee?: string;
  requester?: string;
  since?: string;
  from?: string;
  to?: string;
  analysisId?: number;
  /** Executions whose matched rules include this rule (the same count as /rules/stats' `executions`). */
  ruleId?: number;
  /** Page size, default 50. */
  limit?: number;
  /** The previous page's `next_cursor`: the id below which this page starts (pages run newest to oldest). */
  cursor?: string;
};

function filtered(db: Knex, filter: ExecutionFilter) {
  const q = db<ExecutionRow>(TABLE).select('*').orderBy('id', 'desc');
  if (filter.status) q.where('status', filter.status);
  if (filter.action) q.where('action', filter.action);
  for (const who of [filter.employee, filter.requester]) {
    if (who) q.whereRaw('lower(requester) = lower(?)', [who]);
  }
  for (const from of [filter.since, filter.from]) {
    if (from) q.where('created_at', '>=', new Date(from));
  }
  if (filter.to) q.where('created_at', '<', new Date(filter.to));
  if (filter.analysisId) q.where('analysis_id', filter.analysisId);
  if (filter.ruleId) q.whereRaw('? = ANY(matched_rule_ids)', [filter.ruleId]);
  if (filter.cursor) q.where('id', '<', Number(filter.cursor));
  return q;
}

/** The log's first `limit` (default 50) rows matching `filter`, newest first, as the API shows them. */
async function listExecutions(db: Knex, filter: ExecutionFilter): Promise<ActionExecution[]> {
  return ((await filtered(db, filter).limit(filter.limit ?? 50)) as ExecutionRow[]).map(toApi);
}

/** One page of the log, newest first; `next_cursor` is null on the last page. */
async function listExecutionPage(
  db: Knex,
  filter: ExecutionFilter,
): Promise<{ executions: ActionExecution[]; next_cursor: string | null }> {
  const limit = filter.limit ?? 50;
  const rows = (await filtered(db, filter).limit(limit + 1)) as ExecutionRow[];
  const page = rows.slice(0, limit);
  return {
    executions: page.map(toApi),
    next_cursor: rows.length > limit ? String(page[page.length - 1]!.id) : null,
  };
}

/**
 * Re-runs a failed execution (POST /action-executions/{id}/retry): the same row goes back to `pending`, due now,
 * with its error, outcome message and lease cleared and `retries` counted up. Its `attempts` stay, so the run is
 * a later attempt of the same execution: a Jira create first searches this execution's label and adopts an
 * issue an earlier try made, instead of creating a second one. Only `failed` rows: anything else is a 409 (a
 * double click cannot run an action twice).
 */
async function retryExecution(db: Knex, id: number): Promise<ExecutionRow> {
  const [row] = (await db(TABLE)
    .where({ id, status: 'failed' })
    .update({
      status: 'pending',
      next_attempt_at: db.fn.now(),
      error: null,
      finished_at: null,
      lease_token: null,
      lease_expires_at: null,
      notify_status: null,
      notification: null,
      retries: db.raw('retries + 1'),
      updated_at: db.fn.now(),
    })
    .returning('*')) as ExecutionRow[];
  return row ?? refuseTransition(db, id, (existing) => `is ${existing.status}: only a failed execution can be retried`);
}

/**
 * Throws why a conditional update (`WHERE id AND status`) touched no row: 404 `not_found` when the execution
 * does not exist, else 409 `conflict` with `why(existing)` (its status now).
 */
async function refuseTransition(db: Knex, id: number, why: (existing: ExecutionRow) => string): Promise<never> {
  const existing = (await db<ExecutionRow>(TABLE).where('id', id).first()) as ExecutionRow | undefined;
  if (!existing) throw errors.notFound(`Action execution ${id} not found`);
  throw new AppError('conflict', 409, `Action execution ${id} ${why(existing)}`);
}

/** One execution as the API shows it; undefined when no row has `id`. */
async function getExecution(db: Knex, id: number): Promise<ActionExecution | undefined> {
  const row = (await db<ExecutionRow>(TABLE).where('id', id).first()) as ExecutionRow | undefined;
  return row ? toApi(row) : undefined;
}

/** An approver's decision: the contract's ActionDecisionInput with `by` resolved (default `api`) and the verdict. */
export type Decision = {
  decision: NonNullable<ExecutionRow['decision']>;
  by: NonNullable<ActionDecisionInput['by']>;
  reason?: ActionDecisionInput['reason'] | null;
};

/**
 * Approves (→ pending, due now) or rejects (→ skipped, "rejected by …", the requester is told) a held action.
 * Only `awaiting_approval` rows can be decided: a second decision is a 409, so a double click on a Telegram
 * button cannot run an action twice.
 */
async function decideExecution(db: Knex, id: number, d: Decision): Promise<ExecutionRow> {
  const approve = d.decision === 'approved';
  const [row] = (await db(TABLE)
    .where({ id, status: 'awaiting_approval' })
    .update({
      decision: d.decision,
      decided_by: d.by,
      decided_at: db.fn.now(),
      decision_reason: d.reason ?? null,
      status: approve ? 'pending' : 'skipped',
      next_attempt_at: db.fn.now(),
      error: approve ? null : `rejected by ${d.by}${d.reason ? `: ${d.reason}` : ''}`,
      finished_at: approve ? null : db.fn.now(),
      notify_status: approve ? null : 'pending',
      // A button message still being retried is pointless once someone decided.
      approval_request_status: db.raw(
        `CASE WHEN approval_request_status = 'pending' THEN 'not_needed' ELSE approval_request_status END`,
      ),
      updated_at: db.fn.now(),
    })
    .returning('*')) as ExecutionRow[];
  return (
    row ??
    refuseTransition(
      db,
      id,
      (existing) =>
        `is not awaiting approval (status: ${existing.status}${existing.decided_by ? `, decided by ${existing.decided_by}` : ''})`,
    )
  );
}

/**
 * Claims up to `limit` rows with work due (an action to run, a requester or approver to tell) that no live
 * lease holds: `FOR UPDATE SKIP LOCKED` lets replicas claim side by side without waiting on or taking each
 * other's rows; the lease (token + expiry) outlives the statement, and an expired lease (a crashed worker)
 * makes the row claimable again.
 */
async function claimDueExecutions(db: Knex, opts: { leaseMs: number; limit: number }): Promise<ExecutionRow[]> {
  const token = randomUUID();
  const result = await db.raw<{ rows: ExecutionRow[] }>(
    `UPDATE ${TABLE} SET lease_token = ?, lease_expires_at = now() + (? * interval '1 millisecond'), updated_at = now()
     WHERE id IN (
       SELECT id FROM ${TABLE}
       WHERE (status = 'pending' OR notify_status = 'pending' OR approval_request_status = 'pending')
         AND next_attempt_at <= now()
         AND (lease_expires_at IS NULL OR lease_expires_at < now())
       ORDER BY next_attempt_at, id
       LIMIT ?
       FOR UPDATE SKIP LOCKED)
     RETURNING *`,
    [token, opts.leaseMs, opts.limit],
  );
  return result.rows;
}

/**
 * The worker's heartbeat: extends the lease of the rows it still holds (same token) to `leaseMs` from now, so a
 * short lease survives a slow action while a dead worker's rows are free again within `leaseMs`.
 * Returns how many rows are still held.
 */
async function renewLeases(
  db: Knex,
  rows: Array<Pick<ExecutionRow, 'id' | 'lease_token'>>,
  leaseMs: number,
): Promise<number> {
  const token = rows[0]?.lease_token;
  if (!token) return 0;
  return db(TABLE)
    .whereIn(
      'id',
      rows.map((r) => r.id),
    )
    .where({ lease_token: token })
    .update({ lease_expires_at: laterThanNow(db, leaseMs) });
}

/** Updates a claimed row only while the lease is still ours; false when another worker has taken it over. */
async function updateLeased(
  db: Knex,
  row: Pick<ExecutionRow, 'id' | 'lease_token'>,
  changes: Record<string, unknown>,
): Promise<ExecutionRow | undefined> {
  const [updated] = (await db(TABLE)
    .where({ id: row.id, lease_token: row.lease_token })
    .update({ ...changes, updated_at: db.fn.now() })
    .returning('*')) as ExecutionRow[];
  return updated;
}

/** `now() + ms` on the database clock (ms rounded, never negative), for `next_attempt_at` and lease expiries. */
function laterThanNow(db: Knex, ms: number): Knex.Raw {
  return db.raw(`now() + (? * interval '1 millisecond')`, [Math.max(0, Math.round(ms))]);
}

/** Gives up the lease of a row the worker is done with (its next attempt time, if any, is in the row). */
async function releaseLease(db: Knex, row: Pick<ExecutionRow, 'id' | 'lease_token'>): Promise<void> {
  await db(TABLE)
    .where({ id: row.id, lease_token: row.lease_token })
    .update({ lease_token: null, lease_expires_at: null });
}

export type ExecutionRepository = ReturnType<typeof createExecutionRepository>;

/**
 * The outbox of actions (`action_executions`) over knex: enqueueing in the decision's transaction, the log and
 * its decisions for the routes, and the worker's leased claims. `db` may be a transaction. Errors: 400
 * `invalid_parameter` (unknown action), 404 `not_found`, 409 `conflict` (a retry or decision on a row in
 * another state).
 */
export function createExecutionRepository(db: Knex) {
  return {
    /** What enqueueing would do with an action (pure; see `planExecution`): the action hooks route with it. */
    planExecution,
    enqueue: (input: EnqueueInput) => enqueueActionExecution(db, input),
    list: (filter: ExecutionFilter) => listExecutions(db, filter),
    listPage: (filter: ExecutionFilter) => listExecutionPage(db, filter),
    get: (id: number) => getExecution(db, id),
    retry: (id: number) => retryExecution(db, id),
    decide: (id: number, d: Decision) => decideExecution(db, id, d),
    claimDue: (opts: { leaseMs: number; limit: number }) => claimDueExecutions(db, opts),
    renewLeases: (rows: Array<Pick<ExecutionRow, 'id' | 'lease_token'>>, leaseMs: number) =>
      renewLeases(db, rows, leaseMs),
    updateLeased: (row: Pick<ExecutionRow, 'id' | 'lease_token'>, changes: Record<string, unknown>) =>
      updateLeased(db, row, changes),
    releaseLease: (row: Pick<ExecutionRow, 'id' | 'lease_token'>) => releaseLease(db, row),
    /** `now() + ms` on the database clock, for `next_attempt_at`. */
    laterThanNow: (ms: number) => laterThanNow(db, ms),
  };
}
