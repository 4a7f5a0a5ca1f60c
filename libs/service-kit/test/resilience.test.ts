import { describe, expect, it } from 'vitest';
import express from 'express';
import Transport from 'winston-transport';
import { Agent, request as undiciRequest } from 'undici';
import {
  AppError,
  backoffMs,
  createHttpClient,
  createLogger,
  createMetrics,
  createServiceApp,
  errors,
  isAppError,
  retry,
  retryAfterMsOf,
  sleep,
  spreadMs,
  startDeadline,
  startEmitterDeadline,
  untilAborted,
  withDeadline,
} from '@workemon/service-kit';
import { listen } from '@workemon/testkit/ports';

describe('backoffMs', () => {
  it('doubles from baseMs, caps at maxMs, and spreads by the jitter fraction', () => {
    const top = () => 1 - Number.EPSILON;
    const bottom = () => 0;
    expect(backoffMs(0, { baseMs: 100, jitter: 0 })).toBe(100);
    expect(backoffMs(3, { baseMs: 100, jitter: 0 })).toBe(800);
    expect(backoffMs(10, { baseMs: 100, maxMs: 1000, jitter: 0 })).toBe(1000);
    // Full jitter (the default): 0 … step.
    expect(backoffMs(2, { baseMs: 100, random: bottom })).toBe(0);
    expect(backoffMs(2, { baseMs: 100, random: top })).toBeCloseTo(400);
    // Equal jitter: step/2 … step.
    expect(backoffMs(2, { baseMs: 100, jitter: 0.5, random: bottom })).toBe(200);
    // A negative retry counts as the first; a huge one does not overflow.
    expect(backoffMs(-3, { baseMs: 100, jitter: 0 })).toBe(100);
    expect(Number.isFinite(backoffMs(5000, { baseMs: 100, jitter: 0 }))).toBe(true);
  });

  it('spreadMs keeps a fixed step within ±spread', () => {
    expect(spreadMs(1000, 0.2, () => 0)).toBe(800);
    expect(spreadMs(1000, 0.2, () => 0.5)).toBe(1000);
  });
});

describe('sleep and deadlines', () => {
  it('sleep resolves true after the time, false at once when aborted', async () => {
    expect(await sleep(5)).toBe(true);
    const controller = new AbortController();
    const started = performance.now();
    const pending = sleep(10_000, { signal: controller.signal });
    controller.abort();
    expect(await pending).toBe(false);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(await sleep(10_000, { signal: controller.signal })).toBe(false);
  });

  it('a deadline aborts its signal when it passes and never after clear()', async () => {
    const passing = startDeadline(10);
    await sleep(50);
    expect(passing.expired()).toBe(true);
    expect(passing.signal.aborted).toBe(true);
    const cleared = startDeadline(10);
    cleared.clear();
    await sleep(50);
    expect(cleared.expired()).toBe(false);
    expect(cleared.signal.aborted).toBe(false);
    await expect(withDeadline(10, (signal) => sleep(10_000, { signal }))).resolves.toBe(false);
  });

  it('an emitter deadline emits abort once with an Error reason when it passes, never after clear(), and stops undici', async () => {
    const passing = startEmitterDeadline(10);
    let aborts = 0;
    passing.signal.on('abort', () => (aborts += 1));
    await sleep(50);
    expect(passing.expired()).toBe(true);
    expect(passing.signal.aborted).toBe(true);
    expect(aborts).toBe(1);
    expect(String(passing.signal.reason)).toContain('deadline of 10 ms passed');
    const cleared = startEmitterDeadline(10);
    cleared.clear();
    await sleep(50);
    expect(cleared.expired()).toBe(false);
    expect(cleared.signal.aborted).toBe(false);
    // undici takes it as its `signal`: a server that never answers is given up on at the deadline.
    const silent = await listen(() => undefined);
    const pool = new Agent();
    const deadline = startEmitterDeadline(100);
    try {
      await expect(
        undiciRequest(silent.url, { method: 'GET', signal: deadline.signal, dispatcher: pool }),
      ).rejects.toThrow('deadline of 100 ms passed');
    } finally {
      deadline.clear();
      await pool.close();
      await silent.close();
    }
  });

  it('untilAborted settles as the work does, or rejects with the reason once the signal aborts', async () => {
    const open = new AbortController();
    await expect(untilAborted(Promise.resolve(7), open.signal)).resolves.toBe(7);
    await expect(untilAborted(Promise.reject(new Error('refused')), open.signal)).rejects.toThrow('refused');
    const never = new Promise<number>(() => undefined);
    await expect(withDeadline(10, (signal) => untilAborted(never, signal))).rejects.toThrow('deadline of 10 ms passed');
    const aborted = new AbortController();
    aborted.abort(new Error('stopped'));
    await expect(untilAborted(Promise.resolve(1), aborted.signal)).rejects.toThrow('stopped');
  });
});

describe('retry', () => {
  it('retries what is retryable until it succeeds, with the delays asked for', async () => {
    const waits: number[] = [];
    let calls = 0;
    const result = await retry(
      async (n) => {
        calls += 1;
        if (n < 2) throw errors.upstreamUnavailable('up');
        return 'done';
      },
      { maxRetries: 3, delayMs: (n) => n + 1, onRetry: (_err, _n, waitMs) => waits.push(waitMs) },
    );
    expect(result).toBe('done');
    expect(calls).toBe(3);
    expect(waits).toEqual([1, 2]);
  });

  it('throws at once what is not retryable, and the last error when retries run out', async () => {
    let calls = 0;
    const permanent = errors.badRequest('no');
    await expect(
      retry(
        async () => {
          calls += 1;
          throw permanent;
        },
        { maxRetries: 5, delayMs: () => 1 },
      ),
    ).rejects.toBe(permanent);
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      retry(
        async () => {
          calls += 1;
          throw errors.upstreamUnavailable('up');
        },
        { maxRetries: 2, delayMs: () => 1 },
      ),
    ).rejects.toMatchObject({ code: 'upstream_unavailable' });
    expect(calls).toBe(3);
  });

  it('reads Retry-After off an AppError', () => {
    expect(retryAfterMsOf(errors.tooManyRequests(7))).toBe(7000);
    expect(retryAfterMsOf(errors.upstreamUnavailable('up'))).toBeUndefined();
    expect(retryAfterMsOf(new Error('x'))).toBeUndefined();
  });
});

class Quiet extends Transport {
  override log(_info: unknown, next: () => void): void {
    next();
  }
}

describe('the error code and retry verdict across HTTP', () => {
  it("keep the upstream's code in details.upstreamCode and its retryable verdict", async () => {
    // Logs of the upstream's 503s are not this test's subject: kept off the test output.
    const logger = createLogger({ service: 'up', version: '0', stdout: new Quiet(), level: 'error' });
    const app = createServiceApp({ service: 'up', version: '0', logger, metrics: createMetrics('up') }, (a) => {
      a.get('/not-configured', () => {
        throw errors.notConfigured('Jira is not configured');
      });
      a.get('/busy', () => {
        throw new AppError('duplicate_in_progress', 503, 'Still running', { headers: { 'Retry-After': '5' } });
      });
    });
    const upstream = await listen(app);
    try {
      const client = createHttpClient({ target: 'up', baseURL: upstream.url, timeoutMs: 2000, maxRetries: 0 });
      const failure = async (path: string) => {
        const err = await client.get(path).catch((e: unknown) => e);
        if (!isAppError(err)) throw new Error(`expected an AppError from ${path}`);
        return err;
      };
      const notConfigured = await failure('/not-configured');
      expect(notConfigured).toMatchObject({ status: 503, code: 'upstream_unavailable', retryable: false });
      expect(notConfigured.details?.['upstreamCode']).toBe('not_configured');
      const busy = await failure('/busy');
      expect(busy).toMatchObject({ status: 503, retryable: true });
      expect(busy.details?.['upstreamCode']).toBe('duplicate_in_progress');
    } finally {
      await upstream.close();
    }
  });
});

describe('the HTTP transport', () => {
  it("leaves Node's own fetch its own dispatcher (npm undici's Agent is not the global one)", async () => {
    const slot = Symbol.for('undici.globalDispatcher.1');
    expect((globalThis as unknown as Record<symbol, unknown>)[slot]).not.toBeInstanceOf(Agent);
    // Node's fetch still works and installs a dispatcher of its own.
    const upstream = await listen(express().get('/x', (_req, res) => res.json({ ok: true })));
    try {
      const res = await fetch(`${upstream.url}/x`);
      expect(await res.json()).toEqual({ ok: true });
      expect((globalThis as unknown as Record<symbol, unknown>)[slot]).not.toBeInstanceOf(Agent);
    } finally {
      await upstream.close();
    }
  });
});
