import { backoffMs, isAppError, retryAfterMsOf } from '@workemon/service-kit';

/**
 * How soon to call the secretary again after a failed `/analyze-request` (both channels).
 *
 * - The secretary is restarting or its database is briefly away (connection refused/reset, 503 — including
 *   `duplicate_in_progress`, an earlier attempt still running): retry within seconds (0.5, 1, 2, 4, then every
 *   5 s), and do not count it against MAX_ATTEMPTS — nothing is wrong with the message, and the stored
 *   message_id makes a repeat return the stored answer without a second LLM call.
 * - 429: as Retry-After asks, not counted.
 * - Anything else (500, 502 nonsense from an LLM, 504 an LLM timeout): counted, with `baseDelayMs`
 *   (RETRY_BASE_DELAY) doubling, because the next attempt runs the analysis again.
 *
 * @param failures failures of this message so far, this one included (1 for the first).
 * @returns the delay in ms and whether this failure counts towards MAX_ATTEMPTS.
 */
export function secretaryRetry(
  err: unknown,
  failures: number,
  baseDelayMs: number,
): { delayMs: number; counts: boolean } {
  const status = isAppError(err) ? err.status : 503;
  if (status === 429) return { delayMs: retryAfterMsOf(err) ?? 1000, counts: false };
  if (status === 503) {
    return { delayMs: backoffMs(failures - 1, { baseMs: 500, maxMs: 5000, jitter: 0.25 }), counts: false };
  }
  return {
    delayMs: backoffMs(failures - 1, { baseMs: baseDelayMs, maxMs: baseDelayMs * 2 ** 10, jitter: 0.5 }),
    counts: true,
  };
}
