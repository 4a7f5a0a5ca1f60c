import { createHash } from 'node:crypto';
import { isAppError, type Logger, type Metrics } from '@workemon/service-kit';
import type { AuditEvent } from './secretary-client.js';

export type { AuditEvent } from './secretary-client.js';

/** The audit `channel` of the communicator's internal channel names (`tg` is `telegram` in the audit log). */
export type AuditChannel = AuditEvent['channel'];

/**
 * The agreed skip reasons of the audit log (docs/audit-and-limits.md). Channels map their finer reasons (the
 * `workemon_messages_skipped_total` labels) onto these and put the fine one in `detail`.
 */
export type AuditSkipReason =
  'automatic' | 'rate-limited' | 'untrusted' | 'poison' | 'duplicate' | 'unreadable' | 'no-reply' | 'not-addressed';

const EVENT_ID_MAX = 200;

/**
 * The deterministic event id of an inbound outcome (`<channel>:<message_id>:<outcome>`) or of the reply to a
 * message (`<channel>:<message_id>:reply`), so a retry after a crash reports the same id and the secretary keeps
 * one row. An id over 200 characters (a long Message-ID) uses the SHA-256 of the message id instead.
 */
export function auditEventId(channel: AuditChannel, messageId: string, suffix: string): string {
  const plain = `${channel}:${messageId}:${suffix}`;
  if (plain.length <= EVENT_ID_MAX) return plain;
  return `${channel}:sha256:${createHash('sha256').update(messageId).digest('hex')}:${suffix}`;
}

/** Cuts the free-text fields to the lengths the secretary takes (subject 300, detail 1000, ids 998). */
function fitted(event: AuditEvent): AuditEvent {
  const cut = (v: string | undefined, n: number) => (v === undefined ? undefined : v.slice(0, n));
  return Object.fromEntries(
    Object.entries({
      ...event,
      occurred_at: event.occurred_at ?? new Date().toISOString(),
      message_id: cut(event.message_id, 998),
      request_id: cut(event.request_id, 200),
      sender: cut(event.sender, 320),
      recipient: cut(event.recipient, 320),
      subject: cut(event.subject?.replace(/[\r\n]+/g, ' '), 300),
      detail: cut(event.detail, 1000),
    }).filter(([, v]) => v !== undefined),
  ) as AuditEvent;
}

export type AuditReporter = {
  /** Queues one event; never throws, never waits (sending happens in the background, in batches). */
  report: (event: AuditEvent) => void;
  /** Events queued and not yet accepted by the secretary. */
  pending: () => number;
  /** Sends what is queued, within `deadlineMs`; what is left then is dropped (counted, logged). */
  close: (deadlineMs: number) => Promise<void>;
};

/** Delays (ms) between tries of one batch while the secretary is away; after the last the batch is dropped. */
export const AUDIT_RETRY_DELAYS_MS = [500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 120_000];

/**
 * Reports audit events to the secretary (`POST /audit-events`) without ever holding up a message: `report`
 * only queues. Events go out in batches of up to 100 (after `batchDelayMs`); a failed batch is retried with
 * backoff (AUDIT_RETRY_DELAYS_MS, ≈ 4 min in all) while the secretary is unreachable or answers 5xx/429/408, and
 * dropped at once when it refuses the batch (another 4xx). The queue holds at most `maxBuffered` events (the
 * oldest are dropped first). Every dropped event is counted in `workemon_audit_events_dropped_total{reason}`
 * (`unavailable`, `rejected`, `overflow`, `shutdown`) and logged as a warning with its event ids only.
 * Repeats are harmless: the secretary ignores an `event_id` it has.
 */
export function createAuditReporter(deps: {
  send: (events: AuditEvent[]) => Promise<unknown>;
  logger: Logger;
  metrics: Metrics;
  maxBuffered?: number;
  batchSize?: number;
  batchDelayMs?: number;
  retryDelaysMs?: readonly number[];
}): AuditReporter {
  const maxBuffered = deps.maxBuffered ?? 10_000;
  const batchSize = Math.min(deps.batchSize ?? 100, 100);
  const batchDelayMs = deps.batchDelayMs ?? 200;
  const retryDelays = deps.retryDelaysMs ?? AUDIT_RETRY_DELAYS_MS;
  const dropped = deps.metrics.counter(
    'workemon_audit_events_dropped_total',
    'Audit events the communicator gave up reporting to the secretary, by reason (unavailable, rejected, overflow, shutdown)',
    ['reason'],
  );
  const queue: AuditEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  let sending: Promise<void> | undefined;
  let failures = 0;
  let closed = false;

  function drop(events: AuditEvent[], reason: string, why: string) {
    if (!events.length) return;
    dropped.inc({ reason }, events.length);
    deps.logger.warn(`audit events dropped (${reason}): ${why}`, {
      audit: { dropped: events.length, event_ids: events.slice(0, 5).map((e) => e.event_id) },
    });
  }

  function schedule(delayMs: number) {
    if (timer || sending || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      sending = sendBatch().finally(() => {
        sending = undefined;
        if (queue.length) schedule(failures ? retryDelayOf(failures) : 0);
      });
    }, delayMs);
    timer.unref();
  }

  const retryDelayOf = (n: number) =>
    retryDelays[Math.min(n - 1, retryDelays.length - 1)]! * (0.8 + Math.random() * 0.4);

  async function sendBatch(): Promise<void> {
    const batch = queue.slice(0, batchSize);
    if (!batch.length) return;
    try {
      await deps.send(batch);
      failures = 0;
      removeHead(batch);
    } catch (err) {
      const status = isAppError(err) ? err.status : 503;
      const message = isAppError(err) ? `${err.code} (${status})` : (err as Error).message;
      if (status >= 400 && status < 500 && status !== 429 && status !== 408) {
        // Refused (a 400, a missing route or key): repeating the same batch cannot help.
        failures = 0;
        removeHead(batch);
        drop(batch, 'rejected', `the secretary refused them: ${message}`);
        return;
      }
      failures += 1;
      if (failures > retryDelays.length) {
        failures = 0;
        removeHead(batch);
        drop(batch, 'unavailable', `the secretary stayed unavailable: ${message}`);
      }
    }
  }

  /** Removes the batch from the head of the queue (unless an overflow already pushed it out). */
  function removeHead(batch: AuditEvent[]) {
    const at = queue.indexOf(batch[0]!);
    if (at >= 0) queue.splice(at, batch.length);
  }

  return {
    report: (event) => {
      if (closed) {
        drop([event], 'shutdown', 'reported after shutdown');
        return;
      }
      queue.push(fitted(event));
      if (queue.length > maxBuffered) drop(queue.splice(0, queue.length - maxBuffered), 'overflow', 'queue full');
      schedule(queue.length >= batchSize ? 0 : batchDelayMs);
    },
    pending: () => queue.length,
    close: async (deadlineMs) => {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      const deadline = Date.now() + deadlineMs;
      await sending;
      while (queue.length && Date.now() < deadline) {
        const before = queue.length;
        await Promise.race([sendBatch(), new Promise((resolve) => setTimeout(resolve, deadline - Date.now()).unref())]);
        if (queue.length === before) {
          if (Date.now() >= deadline) break;
          await new Promise((resolve) => setTimeout(resolve, Math.min(500, Math.max(0, deadline - Date.now()))));
        }
      }
      drop(queue.splice(0), 'shutdown', 'the secretary did not take them before shutdown');
    },
  };
}
