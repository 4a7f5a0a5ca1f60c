import { describe, expect, it } from 'vitest';
import type { WorkerSettings } from '../../src/actions/action-policy.js';
import { nextAttemptDelayMs } from '../../src/actions/worker.js';

const settings: WorkerSettings = {
  maxAttempts: 5,
  retryBaseMs: 1000,
  retryMaxMs: 30_000,
  pollIntervalMs: 1000,
  leaseMs: 30_000,
};

describe('nextAttemptDelayMs (the outbox worker on the resilience backoff)', () => {
  it('doubles from ACTION_RETRY_BASE_MS with 50–100 % jitter', () => {
    for (let i = 0; i < 200; i++) {
      const first = nextAttemptDelayMs(settings, 1);
      expect(first).toBeGreaterThanOrEqual(500);
      expect(first).toBeLessThanOrEqual(1000);
      const third = nextAttemptDelayMs(settings, 3);
      expect(third).toBeGreaterThanOrEqual(2000);
      expect(third).toBeLessThanOrEqual(4000);
    }
  });

  it('waits at least what Retry-After asks for, and never beyond ACTION_RETRY_MAX_MS', () => {
    expect(nextAttemptDelayMs(settings, 1, 7000)).toBe(7000);
    expect(nextAttemptDelayMs(settings, 1, 120_000)).toBe(30_000);
    for (let i = 0; i < 50; i++) expect(nextAttemptDelayMs(settings, 20)).toBeLessThanOrEqual(30_000);
  });
});
