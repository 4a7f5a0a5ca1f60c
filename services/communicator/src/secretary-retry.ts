import { isAppError } from '@workemon/service-kit';

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
  const jitter = 0.75 + Math.random() * 0.25;
  const status = isAppError(err) ? err.status : 503;
  if (status === 429) {
    const retryAfterS = Number(isAppError(err) ? err.headers?.['Retry-After'] : undefined);
    return { delayMs: (Number.isFinite(retryAfterS) && retryAfterS > 0 ? retryAfterS : 1) * 1000, counts: false };
  }
  if (status === 503) {
    return { delayMs: Math.min(5000, 500 * 2 ** Math.min(failures - 1, 4)) * jitter, counts: false };
  }
  return { delayMs: baseDelayMs * 2 ** Math.min(failures - 1, 10) * (0.5 + Math.random() * 0.5), counts: true };
}
