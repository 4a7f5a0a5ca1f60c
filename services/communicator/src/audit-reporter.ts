import { createHash } from 'node:crypto';
import {
  isAppError,
  retry,
  sleep,
  spreadMs,
  untilAborted,
  withDeadline,
  type Logger,
  type Metrics,
} from '@workemon/service-kit';
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
  /** Aborted by close(): ends the wait of the background sender. */
  const stopping = new AbortController();
  let running: Promise<void> | undefined;
  let failures = 0;
  let closed = false;

  function drop(events: AuditEvent[], reason: string, why: string) {
    if (!events.length) return;
    dropped.inc({ reason }, events.length);
    deps.logger.warn(`audit events dropped (${reason}): ${why}`, {
      audit: { dropped: events.length, event_ids: events.slice(0, 5).map((e) => e.event_id) },
    });
  }

  /** Starts the background sender after `delayMs` unless it runs already (or the reporter is closed). */
  function schedule(delayMs: number) {
    if (running || closed) return;
    running = sendInBackground(delayMs).finally(() => {
      running = undefined;
    });
  }

  /** Waits, sends a batch, and goes on (at once, or after the retry delay of a failure) while events are queued. */
  async function sendInBackground(firstDelayMs: number): Promise<void> {
    let delayMs = firstDelayMs;
    while (await sleep(delayMs, { signal: stopping.signal, unref: true })) {
      await sendBatch();
      if (!queue.length || closed) return;
      delayMs = failures ? retryDelayOf(failures, retryDelays) : 0;
    }
  }

  async function sendBatch(): Promise<void> {
    const batch = queue.slice(0, batchSize);
    if (!batch.length) return;
    try {
      await deps.send(batch);
      failures = 0;
      removeHead(batch);
    } catch (err) {
      const { refused, message } = verdictOf(err);
      if (refused) {
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
      stopping.abort();
      await running;
      await flushWithin(deadlineMs, queue, sendBatch);
      drop(queue.splice(0), 'shutdown', 'the secretary did not take them before shutdown');
    },
  };
}

/** The wait before the next try of a batch after `failures` failed tries: its step of `delays`, spread ±20 %. */
function retryDelayOf(failures: number, delays: readonly number[]): number {
  return spreadMs(delays[Math.min(failures - 1, delays.length - 1)]!, 0.2);
}

/**
 * Whether the secretary refused a batch for good (a 4xx other than 429 and 408: repeating it cannot help) and
 * the text the drop is logged with (`code (status)` of an AppError, else the error's message).
 */
function verdictOf(err: unknown): { refused: boolean; message: string } {
  const status = isAppError(err) ? err.status : 503;
  const message = isAppError(err) ? `${err.code} (${status})` : (err as Error).message;
  return { refused: status >= 400 && status < 500 && status !== 429 && status !== 408, message };
}

/** Events are still queued after a batch went out (`progress`: the batch took some off the queue). */
class StillQueued extends Error {
  constructor(readonly progress: boolean) {
    super('audit events still queued');
  }
}

/**
 * close(): sends batches (`sendBatch`) until `queue` is empty or `deadlineMs` passes (a batch still in flight
 * then is not waited for). After a batch that took events off the queue the next goes at once; after one that
 * took none, 500 ms later (cut short by the deadline). Whatever is left at the deadline is the caller's to drop.
 */
async function flushWithin(deadlineMs: number, queue: readonly AuditEvent[], sendBatch: () => Promise<void>) {
  await withDeadline(deadlineMs, (signal) => {
    return retry(
      async () => {
        const before = queue.length;
        await untilAborted(sendBatch(), signal).catch((err: unknown) => {
          if (!signal.aborted) throw err; // past the deadline: a batch still in flight is not waited for
        });
        if (queue.length && !signal.aborted) throw new StillQueued(queue.length < before);
      },
      {
        maxRetries: Number.MAX_SAFE_INTEGER,
        shouldRetry: (err) => err instanceof StillQueued,
        delayMs: (_retry, err) => ((err as StillQueued).progress ? 0 : 500),
        signal,
      },
    ).catch(() => undefined);
  });
}
