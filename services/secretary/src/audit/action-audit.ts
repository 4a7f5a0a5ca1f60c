import { isAppError, type Logger } from '@workemon/service-kit';
import {
  ACTION_JIRA,
  ACTION_MAILING_LIST,
  ACTION_TELEGRAM_EMPLOYEE,
  type ExecutableAction,
} from '../actions/action-policy.js';
import type { ExecutionRow } from '../actions/execution-repository.js';
import { auditChannelOf } from './audit-recorder.js';
import type { AuditEventInput, AuditRepository, AuditRetention } from './audit-repository.js';

/** Where an action's delivery went, for `recipient` (never a secret: project keys, chat ids, list addresses). */
function recipientOf(row: ExecutionRow): string | undefined {
  const target = row.target;
  if (target?.system === 'jira') return `jira:${target.project}`;
  if (target) return target.to;
  return undefined;
}

const SYSTEM_OF: Record<ExecutableAction, string> = {
  [ACTION_JIRA]: 'jira',
  [ACTION_TELEGRAM_EMPLOYEE]: 'telegram',
  [ACTION_MAILING_LIST]: 'smtp',
};

/**
 * A short machine reason for a failed delivery (docs/audit.md): `<system>-<kind>`, the kind from the error's
 * code: timeout, rejected (the upstream answered 4xx/5xx), unavailable (not reachable), bad-response, error.
 */
export function deliveryFailureReason(system: string, err: unknown): string {
  const code = isAppError(err) ? err.code : undefined;
  const kind =
    code === 'upstream_timeout'
      ? 'timeout'
      : code === 'upstream_rejected'
        ? 'rejected'
        : code === 'upstream_unavailable' || code === 'dependency_unavailable'
          ? 'unavailable'
          : code === 'upstream_bad_response'
            ? 'bad-response'
            : 'error';
  return `${system}-${kind}`;
}

const clip = (text: string, max = 1000) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/**
 * The outbound half of the audit log written by the action worker (worker.ts), at the points where it records an
 * action's final status, the outcome notice to the requester, and the approval request: `delivered`, `failed`
 * (with a machine reason and the worker's own reason as detail) or `skipped` (the action could not run: nothing
 * configured). Event ids are derived from the execution (and its operator re-run), so a step recorded twice
 * after a crash stores one row. The notice to the requester is the reply: its id ends in `:reply`.
 * A write that fails is logged, never thrown: the action's own record stays the source of truth.
 */
export function createActionAudit(deps: { repository: AuditRepository; retention?: AuditRetention; logger?: Logger }) {
  async function write(event: AuditEventInput): Promise<void> {
    try {
      await deps.repository.insert([event]);
      await deps.retention?.noteWrite();
    } catch (err) {
      deps.logger?.warn('could not write an action audit row', {
        err: err instanceof Error ? err : undefined,
        event: { id: event.event_id },
      });
    }
  }

  const run = (row: ExecutionRow) => `action:${row.id}${row.retries ? `-retry${row.retries}` : ''}`;
  const base = (row: ExecutionRow) => ({
    channel: auditChannelOf(row.channel),
    direction: 'outbound' as const,
    conversation_id: row.conversation_id ?? undefined,
  });

  return {
    /** The action ran to its final status (`succeeded`, `skipped`, or `failed` with the error that ended it). */
    async executionFinished(row: ExecutionRow, failure?: { err: unknown; reason: string }): Promise<void> {
      const system = SYSTEM_OF[row.action] ?? 'action';
      const outcome = row.status === 'succeeded' ? 'delivered' : row.status === 'skipped' ? 'skipped' : 'failed';
      await write({
        ...base(row),
        event_id: `${run(row)}:execution`,
        outcome,
        ...(outcome === 'failed'
          ? { reason: deliveryFailureReason(system, failure?.err) }
          : outcome === 'skipped'
            ? { reason: 'not-configured' }
            : {}),
        recipient: recipientOf(row),
        detail: clip(
          `${row.action} (execution ${row.id}, ${system})${
            failure ? `: ${failure.reason}` : row.error && outcome !== 'delivered' ? `: ${row.error}` : ''
          }`,
        ),
      });
    },

    /** The outcome notice to the requester was accepted by the communicator (`to`), or given up. */
    async noticeFinished(row: ExecutionRow, to: string, failure?: { err: unknown; reason: string }): Promise<void> {
      const system = row.channel === 'email' ? 'smtp' : 'telegram';
      await write({
        ...base(row),
        event_id: `${run(row)}:reply`,
        outcome: failure ? 'failed' : 'delivered',
        ...(failure ? { reason: deliveryFailureReason(system, failure.err) } : {}),
        recipient: to,
        detail: clip(`outcome of execution ${row.id} to the requester${failure ? `: ${failure.reason}` : ''}`),
      });
    },

    /** The Approve/Reject request reached the approvers' Telegram chat (`to`), or was given up. */
    async approvalRequestFinished(
      row: ExecutionRow,
      to: string,
      failure?: { err: unknown; reason: string },
    ): Promise<void> {
      await write({
        ...base(row),
        channel: 'telegram',
        event_id: `${run(row)}:approval-request`,
        outcome: failure ? 'failed' : 'delivered',
        ...(failure ? { reason: deliveryFailureReason('telegram', failure.err) } : {}),
        recipient: to,
        detail: clip(`approval request for execution ${row.id}${failure ? `: ${failure.reason}` : ''}`),
      });
    },
  };
}

export type ActionAudit = ReturnType<typeof createActionAudit>;
