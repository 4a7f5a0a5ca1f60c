/**
 * A consecutive-failure circuit breaker. Hand-rolled rather than opossum: it needs no timers (nothing to close
 * in tests and shutdown), counts only what we call provider failures, and its state is easy to reason about:
 * closed → (threshold consecutive failures) → open for resetMs → half-open: one trial call decides.
 */
export type CircuitBreaker = {
  /** Milliseconds until calls are allowed again; 0 when closed or ready for a trial. */
  blockedForMs(): number;
  /** Whether a call may go through now (in half-open state only one trial at a time). */
  tryAcquire(): boolean;
  recordSuccess(): void;
  recordFailure(): void;
  /** Releases a trial slot without a verdict (the call failed for a reason that says nothing about the provider). */
  recordNeutral(): void;
  state(): 'closed' | 'open' | 'half-open';
};

export function createCircuitBreaker(options: {
  threshold: number;
  resetMs: number;
  now?: () => number;
  /** Called with `true` when the breaker closes and `false` when it opens (for the breaker gauge). */
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
