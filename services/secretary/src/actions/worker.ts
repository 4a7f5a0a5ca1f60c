import type { Knex } from 'knex';
import { approvalCallbackData } from '@workemon/contracts';
import { backoffMs, sleep, type Logger, type Metrics } from '@workemon/service-kit';
import type { WorkerSettings } from './action-policy.js';
import type { CommunicatorClient, OutboundMessage } from './communicator-client.js';
import { createExecutionRepository, type ExecutionRepository, type ExecutionRow } from './execution-repository.js';
import {
  classifyFailure,
  describeAction,
  executeAction,
  failedNotice,
  rejectedNotice,
  type ExecutorDeps,
} from './executors.js';
import { summarize } from './jira-client.js';
import type { ActionAudit } from '../audit/action-audit.js';

export type ActionWorkerDeps = {
  db: Knex;
  executors: ExecutorDeps;
  communicator: CommunicatorClient;
  settings: WorkerSettings;
  /** Telegram chat that gets Approve/Reject buttons for held actions; unset: approval by API only. */
  approverChatId?: string;
  logger?: Logger;
  metrics?: Metrics;
  /** Records each outbound delivery's outcome in the audit log (docs/audit.md); absent: not recorded. */
  audit?: ActionAudit;
  /** The outbox; default: `createExecutionRepository(db)`. */
  executions?: ExecutionRepository;
};

export type ActionWorker = {
  /** Polls every `pollIntervalMs` until `stop()`. */
  start(): void;
  /** Stops polling and waits for the rows in hand to be recorded (their leases are released). */
  stop(): Promise<void>;
  /** Looks for due work now (call after committing a decision that enqueued an action). */
  nudge(): void;
  /** One claim-and-process round; the number of rows processed. For tests and scripts. */
  runOnce(): Promise<number>;
};

const TERMINAL = new Set(['succeeded', 'failed', 'skipped']);

/**
 * The wait before the next attempt (ms): the resilience module's backoff with jitter (50–100 % of the step,
 * ACTION_RETRY_BASE_MS doubling up to ACTION_RETRY_MAX_MS), at least what Retry-After asks for, at most the cap.
 * `attempt` is the attempt that just failed (1 for the first).
 */
export function nextAttemptDelayMs(settings: WorkerSettings, attempt: number, retryAfterMs?: number): number {
  const delay = backoffMs(attempt - 1, {
    baseMs: settings.retryBaseMs,
    maxMs: settings.retryMaxMs,
    jitter: 0.5,
  });
  return Math.min(settings.retryMaxMs, Math.max(delay, retryAfterMs ?? 0));
}

/** What the worker's steps share: the outbox, the deps, and the action counter. */
type WorkerContext = {
  deps: ActionWorkerDeps;
  executions: ExecutionRepository;
  settings: WorkerSettings;
  logger?: Logger;
  counter?: ReturnType<Metrics['counter']>;
};

/** A step's result: the row as now stored (the next step reads it), or undefined when the row is done for now. */
type Step = ExecutionRow | undefined;

/** A delivery that failed: whether to stop trying, and the columns that schedule the next try otherwise. */
function deliveryRetry(ctx: WorkerContext, err: unknown, attempts: number) {
  const failure = classifyFailure(err);
  const giveUp = !failure.transient || attempts >= ctx.settings.maxAttempts;
  const delay = nextAttemptDelayMs(ctx.settings, attempts, failure.retryAfterMs);
  return {
    failure,
    giveUp,
    schedule: giveUp ? {} : { next_attempt_at: ctx.executions.laterThanNow(delay) },
  };
}

/** The approver's Telegram message about a held action: what, for whom, and the request (clipped). */
function approvalText(row: ExecutionRow): string {
  const target =
    row.target?.system === 'jira'
      ? `проект ${row.target.project}`
      : row.target
        ? `${row.target.to} (${row.target.department})`
        : '';
  return [
    `Нужно согласование: ${describeAction(row.action)}${target ? ` — ${target}` : ''}.`,
    `Автор: ${row.requester} (${row.channel}). Действие №${row.id}.`,
    ...(row.withheld_reason ? [`Внимание: отправитель не подтверждён (${row.withheld_reason}).`] : []),
    '',
    summarize(row.payload.request, 600),
  ].join('\n');
}

/** Sends the approver the held action with Approve/Reject buttons, and records it sent. */
async function sendApprovalRequest(ctx: WorkerContext, row: ExecutionRow, to: string, attempts: number) {
  await ctx.deps.communicator.send({
    channel: 'tg',
    to,
    text: approvalText(row),
    idempotency_key: `action-${row.id}-approval`,
    buttons: [
      { text: 'Одобрить', callback_data: approvalCallbackData('approve', row.id) },
      { text: 'Отклонить', callback_data: approvalCallbackData('reject', row.id) },
    ],
  });
  const sentRow = await ctx.executions.updateLeased(row, {
    approval_request_status: 'sent',
    approval_request: JSON.stringify({ to, attempts, sent_at: new Date().toISOString() }),
  });
  if (sentRow) await ctx.deps.audit?.approvalRequestFinished(sentRow, to);
  return sentRow;
}

/**
 * Step 1 of a row: the approval request. A row no longer held needs none; without APPROVER_TELEGRAM_CHAT_ID
 * approval is by API only; otherwise the buttons go out, retried with backoff on a transient failure up to
 * ACTION_MAX_ATTEMPTS.
 */
async function requestApproval(ctx: WorkerContext, row: ExecutionRow): Promise<Step> {
  const to = ctx.deps.approverChatId;
  if (row.status !== 'awaiting_approval') {
    return ctx.executions.updateLeased(row, { approval_request_status: 'not_needed' });
  }
  if (!to) {
    return ctx.executions.updateLeased(row, {
      approval_request_status: 'not_needed',
      approval_request: JSON.stringify({ reason: 'APPROVER_TELEGRAM_CHAT_ID is not set: approve by API' }),
    });
  }
  const attempts = Number(row.approval_request?.['attempts'] ?? 0) + 1;
  try {
    return await sendApprovalRequest(ctx, row, to, attempts);
  } catch (err) {
    const { failure, giveUp, schedule } = deliveryRetry(ctx, err, attempts);
    ctx.logger?.warn('approval request not delivered', { action_execution: { id: row.id }, reason: failure.reason });
    await ctx.executions.updateLeased(row, {
      approval_request_status: giveUp ? 'failed' : 'pending',
      approval_request: JSON.stringify({ to, attempts, error: failure.reason }),
      ...schedule,
    });
    if (giveUp) await ctx.deps.audit?.approvalRequestFinished(row, to, { err, reason: failure.reason });
    return giveUp ? { ...row, approval_request_status: 'failed' } : undefined;
  }
}

/** The notification columns of a finished action: the requester is told later, or (REST) reads the log. */
function outcomeFields(row: ExecutionRow, message: string) {
  return row.channel === 'direct'
    ? {
        notify_status: 'not_needed',
        notification: JSON.stringify({ message, reason: 'direct channel: no outbound delivery; see the execution' }),
      }
    : { notify_status: 'pending', notification: JSON.stringify({ message, attempts: 0 }) };
}

/** Runs the action of a started row and records `succeeded` or `skipped` with what the requester is told. */
async function executeStarted(ctx: WorkerContext, row: ExecutionRow, started: ExecutionRow): Promise<Step> {
  const outcome = await executeAction(ctx.deps.executors, {
    id: row.id,
    action: row.action,
    channel: row.channel,
    requester: row.requester,
    payload: row.payload,
    attempt: started.attempts,
  });
  ctx.counter?.inc({ action: row.action, status: outcome.status });
  const finished = await ctx.executions.updateLeased(started, {
    status: outcome.status,
    ...(outcome.status === 'succeeded'
      ? { target: JSON.stringify(outcome.target), result: JSON.stringify(outcome.result), error: null }
      : { error: outcome.reason }),
    finished_at: ctx.deps.db.fn.now(),
    ...outcomeFields(row, outcome.userMessage),
  });
  if (finished) await ctx.deps.audit?.executionFinished(finished);
  return finished;
}

/**
 * An action that threw: a transient failure with attempts left is scheduled again (backoff, Retry-After);
 * anything else fails the row with the reason, and the requester is told.
 */
async function recordActionFailure(
  ctx: WorkerContext,
  row: ExecutionRow,
  started: ExecutionRow,
  err: unknown,
): Promise<Step> {
  const failure = classifyFailure(err);
  const attempts = started.attempts;
  const actionExecution = { id: row.id, action: row.action, attempts };
  if (failure.transient && attempts < ctx.settings.maxAttempts) {
    ctx.logger?.warn('action failed, will retry', { action_execution: actionExecution, reason: failure.reason });
    const delay = nextAttemptDelayMs(ctx.settings, attempts, failure.retryAfterMs);
    await ctx.executions.updateLeased(started, {
      error: failure.reason,
      next_attempt_at: ctx.executions.laterThanNow(delay),
    });
    return undefined;
  }
  const reason = failure.transient ? `gave up after ${attempts} attempts: ${failure.reason}` : failure.reason;
  ctx.logger?.error('action failed', { action_execution: actionExecution, reason });
  ctx.counter?.inc({ action: row.action, status: 'failed' });
  const failed = await ctx.executions.updateLeased(started, {
    status: 'failed',
    error: reason,
    finished_at: ctx.deps.db.fn.now(),
    ...outcomeFields(row, failedNotice(row.action, row.id)),
  });
  if (failed) await ctx.deps.audit?.executionFinished(failed, { err, reason });
  return failed;
}

/** Step 2 of a row: counts the attempt, runs the action, and records how it ended (or when to try again). */
async function runAction(ctx: WorkerContext, row: ExecutionRow): Promise<Step> {
  const started = await ctx.executions.updateLeased(row, {
    attempts: row.attempts + 1,
    started_at: row.started_at ?? ctx.deps.db.fn.now(),
  });
  if (!started) return undefined;
  try {
    return await executeStarted(ctx, row, started);
  } catch (err) {
    return recordActionFailure(ctx, row, started, err);
  }
}

/** What the requester is told: the stored outcome message, a rejection, or (never expected) the bare status. */
function outcomeMessage(row: ExecutionRow): string {
  const stored = row.notification?.['message'];
  if (typeof stored === 'string') return stored;
  if (row.decision === 'rejected') return rejectedNotice(row.action, row.decided_by ?? 'approver', row.decision_reason);
  return `Действие №${row.id}: ${row.status}.`;
}

/** The mail fields of an outcome notice: a reply in the request's thread, or a subject from the request. */
function replyMailFields(row: ExecutionRow) {
  const reply = row.payload.reply;
  return {
    subject: reply.subject
      ? `Re: ${reply.subject.replace(/^(re:\s*)+/i, '')}`
      : `Workemon: ${summarize(row.payload.request, 80)}`,
    ...(reply.in_reply_to ? { in_reply_to: reply.in_reply_to } : {}),
  };
}

/** Sends the requester the outcome on their channel and records it sent. */
async function sendOutcome(
  ctx: WorkerContext,
  row: ExecutionRow & { channel: OutboundMessage['channel'] },
  message: string,
  attempts: number,
): Promise<Step> {
  const reply = row.payload.reply;
  const sent = await ctx.deps.communicator.send({
    channel: row.channel,
    to: reply.to,
    text: message,
    ...(row.channel === 'email' ? replyMailFields(row) : {}),
    // A re-run (POST …/retry) has an outcome of its own: a key per run, or the communicator drops it as a repeat.
    idempotency_key: `action-${row.id}-outcome${row.retries ? `-retry${row.retries}` : ''}`,
  });
  const notified = await ctx.executions.updateLeased(row, {
    notify_status: 'sent',
    notification: JSON.stringify({
      message,
      to: reply.to,
      attempts,
      sent_at: new Date().toISOString(),
      message_id: sent.message_id ?? null,
    }),
  });
  if (notified) await ctx.deps.audit?.noticeFinished(notified, reply.to);
  return notified;
}

/**
 * Step 3 of a row: tells the requester how the action ended. REST requesters read the log instead; a failed
 * delivery is retried with backoff up to ACTION_MAX_ATTEMPTS.
 */
async function notifyRequester(ctx: WorkerContext, row: ExecutionRow): Promise<Step> {
  const message = outcomeMessage(row);
  if (row.channel === 'direct') {
    return ctx.executions.updateLeased(row, {
      notify_status: 'not_needed',
      notification: JSON.stringify({ message, reason: 'direct channel: no outbound delivery; see the execution' }),
    });
  }
  const attempts = Number(row.notification?.['attempts'] ?? 0) + 1;
  const to = row.payload.reply.to;
  try {
    return await sendOutcome(ctx, { ...row, channel: row.channel }, message, attempts);
  } catch (err) {
    const { failure, giveUp, schedule } = deliveryRetry(ctx, err, attempts);
    ctx.logger?.warn('outcome not delivered to the requester', {
      action_execution: { id: row.id },
      reason: failure.reason,
    });
    await ctx.executions.updateLeased(row, {
      notify_status: giveUp ? 'failed' : 'pending',
      notification: JSON.stringify({ message, to, attempts, error: failure.reason }),
      ...schedule,
    });
    if (giveUp) await ctx.deps.audit?.noticeFinished(row, to, { err, reason: failure.reason });
    return undefined;
  }
}

/** The three steps of a claimed row, each on the row as the previous one left it; then the lease is released. */
async function processRow(ctx: WorkerContext, claimed: ExecutionRow): Promise<void> {
  let row: Step = claimed;
  if (row.approval_request_status === 'pending') row = await requestApproval(ctx, row);
  if (row?.status === 'pending') row = await runAction(ctx, row);
  if (row?.notify_status === 'pending' && TERMINAL.has(row.status)) row = await notifyRequester(ctx, row);
  // Release the lease (a step that scheduled a retry kept it only until now; the retry time is in the row).
  await ctx.executions.releaseLease(claimed);
}

/**
 * The heartbeat of a claimed batch: renews the rows' lease every third of ACTION_LEASE_MS (at least 100 ms)
 * until `signal` aborts, on the resilience module's `sleep` (unref'd). A failed renewal is logged; the next
 * one tries again.
 */
async function heartbeat(ctx: WorkerContext, rows: ExecutionRow[], signal: AbortSignal): Promise<void> {
  const everyMs = Math.max(100, Math.floor(ctx.settings.leaseMs / 3));
  while (await sleep(everyMs, { signal, unref: true })) {
    await ctx.executions.renewLeases(rows, ctx.settings.leaseMs).catch((err: unknown) => {
      ctx.logger?.warn('action lease heartbeat failed', { err: err instanceof Error ? err : undefined });
    });
  }
}

/** One claim-and-process round; the number of rows claimed. */
async function runRound(ctx: WorkerContext, batchSize: number): Promise<number> {
  const rows = await ctx.executions.claimDue({ leaseMs: ctx.settings.leaseMs, limit: batchSize });
  if (rows.length === 0) return 0;
  // Heartbeat: the lease is short (ACTION_LEASE_MS) and renewed while the rows are in hand, so a worker that
  // died mid-action is replaced within a lease, and a live one keeps its rows however long Jira takes.
  const done = new AbortController();
  const beating = heartbeat(ctx, rows, done.signal);
  await Promise.all(
    rows.map((row) =>
      processRow(ctx, row).catch((err: unknown) => {
        // The lease expires and another round picks the row up again.
        ctx.logger?.error('action worker could not record a step', {
          err: err instanceof Error ? err : undefined,
          action_execution: { id: row.id },
        });
      }),
    ),
  ).finally(() => done.abort());
  await beating;
  return rows.length;
}

/**
 * The outbox worker: claims due rows (`executions.claimDue`), runs the action, tells the approver (buttons) and
 * the requester (the outcome) through the communicator, and records every step under the row's lease. Replicas
 * may run one each: a row is worked on by one lease holder at a time, and each write checks the lease. Polls
 * every ACTION_POLL_INTERVAL_MS on the resilience module's `sleep` (unref'd, aborted by `stop`/`nudge`).
 */
export function createActionWorker(deps: ActionWorkerDeps): ActionWorker {
  const { settings, logger } = deps;
  const batchSize = settings.batchSize ?? 10;
  const ctx: WorkerContext = {
    deps,
    executions: deps.executions ?? createExecutionRepository(deps.db),
    settings,
    logger,
    counter: deps.metrics?.counter(
      'workemon_action_executions_total',
      'Actions carried out by the secretary, by action and final status',
      ['action', 'status'],
    ),
  };
  let pause: AbortController | undefined;
  let running: Promise<void> | undefined;
  let stopping = false;
  let again = false;

  const runOnce = () => runRound(ctx, batchSize);

  async function loop(): Promise<void> {
    do {
      again = false;
      try {
        while (!stopping && (await runOnce()) === batchSize);
      } catch (err) {
        logger?.warn('action worker round failed', { err: err instanceof Error ? err : undefined });
      }
    } while (again && !stopping);
  }

  function tick(): void {
    if (stopping) return;
    if (running) {
      again = true;
      return;
    }
    pause?.abort();
    running = loop().finally(() => {
      running = undefined;
      schedule();
    });
  }

  function schedule(): void {
    if (stopping) return;
    pause?.abort();
    const current = new AbortController();
    pause = current;
    void sleep(settings.pollIntervalMs, { signal: current.signal, unref: true }).then((elapsed) => {
      if (elapsed) tick();
    });
  }

  return {
    start() {
      stopping = false;
      tick();
    },
    async stop() {
      stopping = true;
      pause?.abort();
      await running;
    },
    nudge: tick,
    runOnce,
  };
}
