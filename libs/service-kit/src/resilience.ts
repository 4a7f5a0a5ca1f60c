import { EventEmitter } from 'node:events';
import { setTimeout as timerPromise } from 'node:timers/promises';
import { isAppError } from './errors.js';

/**
 * The one place the tree decides how long to wait, how long to keep trying, and when to stop calling something
 * that keeps failing. Every retry loop (HTTP client, LLM client, outbox worker, IMAP reconnect, Telegram polling,
 * the secretary retries of the channels, the Elasticsearch log transport) takes its delays, waits and deadlines
 * from here.
 *
 * Why not cockatiel (docs/DEVELOPING.md, "Upstream HTTP and retries"): most of our retries are not an in-process loop
 * around one call — the outbox stores its next attempt in a row, a mail keeps its attempts on the message, a
 * Telegram chat waits in its own queue — so what they share is the delay formula, the wait and the verdict
 * ("retryable"), not a policy object; and the LLM breaker needs a "neutral" outcome and a "blocked for" query
 * that cockatiel's breaker does not offer.
 */

export type BackoffOptions = {
  /** The first step in ms (retry 0); each further retry doubles it. */
  baseMs: number;
  /** The longest step in ms (the cap is applied before the jitter). Default: no cap. */
  maxMs?: number;
  /**
   * Fraction of the step that is random: the delay is `step × (1 − jitter + jitter × random())`. 1 is "full
   * jitter" (0 … step), 0.5 "equal jitter" (step/2 … step), 0 none. Default 1. (AWS Architecture Blog,
   * "Exponential Backoff And Jitter".)
   */
  jitter?: number;
  /** Injected for deterministic tests; default Math.random. */
  random?: () => number;
};

/**
 * Exponential backoff with jitter — the tree's one formula: `step = min(maxMs, baseMs × 2^retry)`, then
 * `step × (1 − jitter + jitter × random())`.
 *
 * @param retry 0 for the wait before the first retry, 1 before the second, …; exponents above 30 count as 30.
 * @returns the delay in ms (not rounded).
 */
export function backoffMs(retry: number, options: BackoffOptions): number {
  const exponent = Math.min(30, Math.max(0, retry));
  const step = Math.min(options.maxMs ?? Number.POSITIVE_INFINITY, options.baseMs * 2 ** exponent);
  const jitter = options.jitter ?? 1;
  return step * (1 - jitter + jitter * (options.random ?? Math.random)());
}

/**
 * A step of a fixed schedule (say 250 ms, 750 ms, 2 s …) spread by ±`spread` (0.2: 80–120 %), so that callers
 * that failed together do not retry together.
 */
export function spreadMs(ms: number, spread: number, random: () => number = Math.random): number {
  return ms * (1 - spread + 2 * spread * random());
}

/**
 * Waits `ms` on a `node:timers/promises` timer. Resolves `true` when the time passed and `false` when `signal`
 * aborted first (the timer is cleared then); never rejects. `unref: true` lets the process exit meanwhile
 * (background loops: reconnects, log shipping).
 */
export async function sleep(ms: number, options: { signal?: AbortSignal; unref?: boolean } = {}): Promise<boolean> {
  if (options.signal?.aborted) return false;
  try {
    await timerPromise(Math.max(0, ms), undefined, { signal: options.signal, ref: !options.unref });
    return true;
  } catch (err) {
    if (options.signal?.aborted) return false;
    throw err;
  }
}

/** A deadline for one operation: `signal` aborts when it passes; `clear()` must be called when the work ends. */
export type Deadline = {
  signal: AbortSignal;
  /** Whether the deadline passed (the signal aborted by the timer, not by `clear`). */
  expired(): boolean;
  /** Stops the timer; the operation is over. Idempotent. */
  clear(): void;
};

/**
 * Starts a deadline of `ms`. Not `AbortSignal.timeout()`: that signal, and whatever request it is attached to,
 * stays reachable until its timer fires, so at a few hundred calls a second with a 60 s deadline memory grew by
 * the whole minute's worth of requests; this timer is cleared as soon as the work ends.
 */
export function startDeadline(ms: number): Deadline {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort(new Error(`deadline of ${ms} ms passed`));
  }, ms);
  return {
    signal: controller.signal,
    expired: () => expired,
    clear: () => clearTimeout(timer),
  };
}

/**
 * The signal of `startEmitterDeadline`: an EventEmitter with `aborted` and `reason` that emits `abort` once, the
 * other shape (besides AbortSignal) undici's `signal` option accepts (`AbortSignal | EventEmitter`).
 */
export class DeadlineEmitter extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;
}

/** A deadline whose signal is a `DeadlineEmitter` (see `startEmitterDeadline`). */
export type EmitterDeadline = Omit<Deadline, 'signal'> & { signal: DeadlineEmitter };

/**
 * `startDeadline` for undici calls, with the same timer and `expired()`/`clear()`, but an EventEmitter as the
 * signal instead of an AbortController's AbortSignal: undici attaches and removes its abort listener on every
 * call, and an AbortController with a listener added and removed on its AbortSignal (an EventTarget) costs about
 * 6–7 µs of CPU against 0.6 µs for the same on an EventEmitter (docs/DEVELOPING.md, "Upstream HTTP and retries"). When `ms`
 * passes, `reason` is an Error naming the deadline and `abort` is emitted once. Only for APIs that accept an
 * EventEmitter signal (undici); anything that wants a real AbortSignal takes `startDeadline`.
 */
export function startEmitterDeadline(ms: number): EmitterDeadline {
  const signal = new DeadlineEmitter();
  const timer = setTimeout(() => {
    signal.reason = new Error(`deadline of ${ms} ms passed`);
    signal.aborted = true;
    signal.emit('abort');
  }, ms);
  return {
    signal,
    expired: () => signal.aborted,
    clear: () => clearTimeout(timer),
  };
}

/** Runs `work` under a deadline of `ms` (its signal passed in); the timer is cleared however `work` ends. */
export async function withDeadline<T>(ms: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const deadline = startDeadline(ms);
  try {
    return await work(deadline.signal);
  } finally {
    deadline.clear();
  }
}

/**
 * The typed notion of "worth trying again": `AppError.retryable`, set where the error is made (the HTTP client
 * from the upstream's status and its own `X-Workemon-Retryable` verdict, the LLM catalogue, …). Anything that
 * is not an AppError is a bug of ours: not retryable.
 */
export function isRetryable(err: unknown): boolean {
  return isAppError(err) && err.retryable;
}

/** What an AppError asks the caller to wait (its `Retry-After` header, seconds) in ms; undefined when absent. */
export function retryAfterMsOf(err: unknown): number | undefined {
  if (!isAppError(err)) return undefined;
  const seconds = Number(err.headers?.['Retry-After']);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}

export type RetryOptions = {
  /** Retries after the first attempt (0: one attempt only). */
  maxRetries: number;
  /** Whether `err` is worth another attempt now; default `isRetryable`. */
  shouldRetry?: (err: unknown, retry: number) => boolean;
  /** The wait in ms before retry `retry` (0-based) after `err`. */
  delayMs: (retry: number, err: unknown) => number;
  /** Called before each wait (for the log). */
  onRetry?: (err: unknown, retry: number, waitMs: number) => void;
  /** Stops retrying (the last error is thrown) when aborted. */
  signal?: AbortSignal;
};

/**
 * Runs `attempt` until it resolves, the error is not worth retrying, `maxRetries` retries are spent, or `signal`
 * aborts; throws the last error then. `attempt` gets the 0-based retry number (0 for the first try).
 */
export async function retry<T>(attempt: (retry: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const shouldRetry = options.shouldRetry ?? isRetryable;
  for (let n = 0; ; n += 1) {
    try {
      return await attempt(n);
    } catch (err) {
      if (n >= options.maxRetries || !shouldRetry(err, n) || options.signal?.aborted) throw err;
      const waitMs = options.delayMs(n, err);
      options.onRetry?.(err, n, waitMs);
      if (!(await sleep(waitMs, { signal: options.signal }))) throw err;
    }
  }
}

/**
 * A consecutive-failure circuit breaker: closed → (threshold consecutive failures) → open for resetMs →
 * half-open: one trial call decides. It needs no timers (nothing to close in tests and shutdown) and counts only
 * what the caller calls a failure.
 */
export type CircuitBreaker = {
  /** Milliseconds until calls are allowed again; 0 when closed or ready for a trial. */
  blockedForMs(): number;
  /** Whether a call may go through now (in half-open state only one trial at a time). */
  tryAcquire(): boolean;
  recordSuccess(): void;
  recordFailure(): void;
  /** Releases a trial slot without a verdict (the call failed for a reason that says nothing about the callee). */
  recordNeutral(): void;
  state(): 'closed' | 'open' | 'half-open';
};

export function createCircuitBreaker(options: {
  threshold: number;
  resetMs: number;
  now?: () => number;
  /** Called with `true` when the breaker closes and `false` when it opens (for a breaker gauge). */
  onChange?: (closed: boolean) => void;
}): CircuitBreaker {
  const now = options.now ?? Date.now;
  let failures = 0;
  let openedAt: number | undefined;
  let trialInFlight = false;

  const state = (): 'closed' | 'open' | 'half-open' => {
    if (openedAt === undefined) return 'closed';
    return now() - openedAt >= options.resetMs ? 'half-open' : 'open';
  };

  return {
    state,
    blockedForMs() {
      const s = state();
      if (s === 'closed') return 0;
      if (s === 'half-open') return trialInFlight ? 1000 : 0;
      return options.resetMs - (now() - openedAt!);
    },
    tryAcquire() {
      const s = state();
      if (s === 'closed') return true;
      if (s === 'open' || trialInFlight) return false;
      trialInFlight = true;
      return true;
    },
    recordSuccess() {
      const wasOpen = openedAt !== undefined;
      failures = 0;
      openedAt = undefined;
      trialInFlight = false;
      if (wasOpen) options.onChange?.(true);
    },
    recordFailure() {
      failures += 1;
      const wasClosed = openedAt === undefined;
      if (trialInFlight || failures >= options.threshold) openedAt = now();
      trialInFlight = false;
      if (wasClosed && openedAt !== undefined) options.onChange?.(false);
    },
    recordNeutral() {
      trialInFlight = false;
    },
  };
}

/**
 * Waits for `work` unless `signal` aborts first: resolves or rejects as `work` does, or rejects with
 * `signal.reason` when the signal aborts before (at once when it already has). The abort listener is removed when
 * `work` settles, and a later rejection of `work` is handled (no unhandled rejection). `work` itself is not
 * cancelled: pass the signal into it too where it can stop. The replacement of `Promise.race([work, timer])`:
 * with `startDeadline(ms).signal` it is a deadline whose timer the caller clears.
 *
 * @param reason what to reject with on abort instead of `signal.reason` (e.g. a typed `AppError` timeout).
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal, reason?: () => unknown): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason ? reason() : signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
