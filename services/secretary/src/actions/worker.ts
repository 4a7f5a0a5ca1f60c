import type { Knex } from 'knex';
import { backoffMs as exponentialBackoffMs, type Logger, type Metrics } from '@workemon/service-kit';
import type { WorkerSettings } from './action-policy.js';
import type { CommunicatorClient } from './communicator-client.js';
import {
  claimDueExecutions,
  laterThanNow,
  renewLeases,
  updateLeased,
  type ExecutionRow,
} from './execution-repository.js';
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

/** Exponential backoff with jitter (50–100 % of the step), at least what Retry-After asks for. */
export function backoffMs(settings: WorkerSettings, attempt: number, retryAfterMs?: number): number {
  const delay = exponentialBackoffMs(attempt - 1, {
    baseMs: settings.retryBaseMs,
    maxMs: settings.retryMaxMs,
    jitter: 0.5,
  });
  return Math.min(settings.retryMaxMs, Math.max(delay, retryAfterMs ?? 0));
}

/**
 * The outbox worker: claims due rows (`claimDueExecutions`), runs the action, tells the approver (buttons) and
 * the requester (the outcome) through the communicator, and records every step under the row's lease. Replicas
 * may run one each: a row is worked on by one lease holder at a time, and each write checks the lease.
 */
export function createActionWorker(deps: ActionWorkerDeps): ActionWorker {
  const { db, settings, logger } = deps;
  const batchSize = settings.batchSize ?? 10;
  const counter = deps.metrics?.counter(
    'workemon_action_executions_total',
    'Actions carried out by the secretary, by action and final status',
    ['action', 'status'],
  );
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopping = false;
  let again = false;

  type Step = ExecutionRow | undefined;

  async function requestApproval(row: ExecutionRow): Promise<Step> {
    if (row.status !== 'awaiting_approval') {
      return updateLeased(db, row, { approval_request_status: 'not_needed' });
    }
    if (!deps.approverChatId) {
      return updateLeased(db, row, {
        approval_request_status: 'not_needed',
        approval_request: JSON.stringify({ reason: 'APPROVER_TELEGRAM_CHAT_ID is not set: approve by API' }),
      });
    }
    const attempts = Number(row.approval_request?.['attempts'] ?? 0) + 1;
    const p = row.payload;
    const target =
      row.target?.system === 'jira'
        ? `проект ${row.target.project}`
        : row.target
          ? `${row.target.to} (${row.target.department})`
          : '';
    const text = [
      `Нужно согласование: ${describeAction(row.action)}${target ? ` — ${target}` : ''}.`,
      `Автор: ${row.requester} (${row.channel}). Действие №${row.id}.`,
      ...(row.withheld_reason ? [`Внимание: отправитель не подтверждён (${row.withheld_reason}).`] : []),
      '',
      summarize(p.request, 600),
    ].join('\n');
    try {
      await deps.communicator.send({
        channel: 'tg',
        to: deps.approverChatId,
        text,
        idempotency_key: `action-${row.id}-approval`,
        buttons: [
          { text: 'Одобрить', callback_data: `action:approve:${row.id}` },
          { text: 'Отклонить', callback_data: `action:reject:${row.id}` },
        ],
      });
      const sentRow = await updateLeased(db, row, {
        approval_request_status: 'sent',
        approval_request: JSON.stringify({ to: deps.approverChatId, attempts, sent_at: new Date().toISOString() }),
      });
      if (sentRow) await deps.audit?.approvalRequestFinished(sentRow, deps.approverChatId);
      return sentRow;
    } catch (err) {
      const failure = classifyFailure(err);
      const giveUp = !failure.transient || attempts >= settings.maxAttempts;
      logger?.warn('approval request not delivered', { action_execution: { id: row.id }, reason: failure.reason });
      await updateLeased(db, row, {
        approval_request_status: giveUp ? 'failed' : 'pending',
        approval_request: JSON.stringify({ to: deps.approverChatId, attempts, error: failure.reason }),
        ...(giveUp ? {} : { next_attempt_at: laterThanNow(db, backoffMs(settings, attempts, failure.retryAfterMs)) }),
      });
      if (giveUp) await deps.audit?.approvalRequestFinished(row, deps.approverChatId, { err, reason: failure.reason });
      return giveUp ? { ...row, approval_request_status: 'failed' } : undefined;
    }
  }

  function outcomeFields(row: ExecutionRow, message: string) {
    return row.channel === 'direct'
      ? {
          notify_status: 'not_needed',
          notification: JSON.stringify({ message, reason: 'direct channel: no outbound delivery; see the execution' }),
        }
      : { notify_status: 'pending', notification: JSON.stringify({ message, attempts: 0 }) };
  }

  async function runAction(row: ExecutionRow): Promise<Step> {
    const started = await updateLeased(db, row, {
      attempts: row.attempts + 1,
      started_at: row.started_at ?? db.fn.now(),
    });
    if (!started) return undefined;
    try {
      const outcome = await executeAction(deps.executors, {
        id: row.id,
        action: row.action,
        channel: row.channel,
        requester: row.requester,
        payload: row.payload,
        attempt: started.attempts,
      });
      counter?.inc({ action: row.action, status: outcome.status });
      const finished = await updateLeased(db, started, {
        status: outcome.status,
        ...(outcome.status === 'succeeded'
          ? { target: JSON.stringify(outcome.target), result: JSON.stringify(outcome.result), error: null }
          : { error: outcome.reason }),
        finished_at: db.fn.now(),
        ...outcomeFields(row, outcome.userMessage),
      });
      if (finished) await deps.audit?.executionFinished(finished);
      return finished;
    } catch (err) {
      const failure = classifyFailure(err);
      const attempts = started.attempts;
      if (failure.transient && attempts < settings.maxAttempts) {
        logger?.warn('action failed, will retry', {
          action_execution: { id: row.id, action: row.action, attempts },
          reason: failure.reason,
        });
        await updateLeased(db, started, {
          error: failure.reason,
          next_attempt_at: laterThanNow(db, backoffMs(settings, attempts, failure.retryAfterMs)),
        });
        return undefined;
      }
      const reason = failure.transient ? `gave up after ${attempts} attempts: ${failure.reason}` : failure.reason;
      logger?.error('action failed', { action_execution: { id: row.id, action: row.action, attempts }, reason });
      counter?.inc({ action: row.action, status: 'failed' });
      const failed = await updateLeased(db, started, {
        status: 'failed',
        error: reason,
        finished_at: db.fn.now(),
        ...outcomeFields(row, failedNotice(row.action, failure.reason, row.id)),
      });
      if (failed) await deps.audit?.executionFinished(failed, { err, reason });
      return failed;
    }
  }

  async function notifyRequester(row: ExecutionRow): Promise<Step> {
    const info = row.notification ?? {};
    const message =
      typeof info['message'] === 'string'
        ? info['message']
        : row.decision === 'rejected'
          ? rejectedNotice(row.action, row.decided_by ?? 'approver', row.decision_reason)
          : `Действие №${row.id}: ${row.status}.`;
    if (row.channel === 'direct') {
      return updateLeased(db, row, {
        notify_status: 'not_needed',
        notification: JSON.stringify({ message, reason: 'direct channel: no outbound delivery; see the execution' }),
      });
    }
    const attempts = Number(info['attempts'] ?? 0) + 1;
    const reply = row.payload.reply;
    try {
      const sent = await deps.communicator.send({
        channel: row.channel,
        to: reply.to,
        text: message,
        ...(row.channel === 'email'
          ? {
              subject: reply.subject
                ? `Re: ${reply.subject.replace(/^(re:\s*)+/i, '')}`
                : `Workemon: ${summarize(row.payload.request, 80)}`,
              ...(reply.in_reply_to ? { in_reply_to: reply.in_reply_to } : {}),
            }
          : {}),
        // A re-run (POST …/retry) has an outcome of its own: a key per run, or the communicator drops it as a repeat.
        idempotency_key: `action-${row.id}-outcome${row.retries ? `-retry${row.retries}` : ''}`,
      });
      const notified = await updateLeased(db, row, {
        notify_status: 'sent',
        notification: JSON.stringify({
          message,
          to: reply.to,
          attempts,
          sent_at: new Date().toISOString(),
          message_id: sent.message_id ?? null,
        }),
      });
      if (notified) await deps.audit?.noticeFinished(notified, reply.to);
      return notified;
    } catch (err) {
      const failure = classifyFailure(err);
      const giveUp = !failure.transient || attempts >= settings.maxAttempts;
      logger?.warn('outcome not delivered to the requester', {
        action_execution: { id: row.id },
        reason: failure.reason,
      });
      await updateLeased(db, row, {
        notify_status: giveUp ? 'failed' : 'pending',
        notification: JSON.stringify({ message, to: reply.to, attempts, error: failure.reason }),
        ...(giveUp ? {} : { next_attempt_at: laterThanNow(db, backoffMs(settings, attempts, failure.retryAfterMs)) }),
      });
      if (giveUp) await deps.audit?.noticeFinished(row, reply.to, { err, reason: failure.reason });
      return undefined;
    }
  }

  async function processRow(claimed: ExecutionRow): Promise<void> {
    let row: Step = claimed;
    if (row.approval_request_status === 'pending') row = await requestApproval(row);
    if (row?.status === 'pending') row = await runAction(row);
    if (row?.notify_status === 'pending' && TERMINAL.has(row.status)) row = await notifyRequester(row);
    // Release the lease (a step that scheduled a retry kept it only until now; the retry time is in the row).
    await db('action_executions')
      .where({ id: claimed.id, lease_token: claimed.lease_token })
      .update({ lease_token: null, lease_expires_at: null });
  }

  async function runOnce(): Promise<number> {
    const rows = await claimDueExecutions(db, { leaseMs: settings.leaseMs, limit: batchSize });
    if (rows.length === 0) return 0;
    // Heartbeat: the lease is short (ACTION_LEASE_MS) and renewed while the rows are in hand, so a worker that
    // died mid-action is replaced within a lease, and a live one keeps its rows however long Jira takes.
    const heartbeat = setInterval(
      () =>
        void renewLeases(db, rows, settings.leaseMs).catch((err: unknown) => {
          logger?.warn('action lease heartbeat failed', { err: err instanceof Error ? err : undefined });
        }),
      Math.max(100, Math.floor(settings.leaseMs / 3)),
    );
    await Promise.all(
      rows.map((row) =>
        processRow(row).catch((err: unknown) => {
          // The lease expires and another round picks the row up again.
          logger?.error('action worker could not record a step', {
            err: err instanceof Error ? err : undefined,
            action_execution: { id: row.id },
          });
        }),
      ),
    ).finally(() => clearInterval(heartbeat));
    return rows.length;
  }

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
    running = loop().finally(() => {
      running = undefined;
      schedule();
    });
  }

  function schedule(): void {
    if (stopping) return;
    clearTimeout(timer);
    timer = setTimeout(tick, settings.pollIntervalMs);
    timer.unref();
  }

  return {
    start() {
      stopping = false;
      tick();
    },
    async stop() {
      stopping = true;
      clearTimeout(timer);
      await running;
    },
    nudge: tick,
    runOnce,
  };
}
