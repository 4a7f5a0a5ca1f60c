import { describe, expect, it } from 'vitest';
import express from 'express';
import Transport from 'winston-transport';
import { createLogger, runHealthChecks, runService, startDeadline, untilAborted } from '@workemon/service-kit';

class MemoryTransport extends Transport {
  lines: Record<string, unknown>[] = [];
  override log(info: Record<string, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(JSON.stringify(info)));
    next();
  }
}

const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );

describe('untilAborted', () => {
  it('settles as the work does while the signal stays quiet', async () => {
    const controller = new AbortController();
    expect(await untilAborted(Promise.resolve(42), controller.signal)).toBe(42);
    const failed = await settle(untilAborted(Promise.reject(new Error('work broke')), controller.signal));
    expect((failed as { error: Error }).error.message).toBe('work broke');
  });

  it('rejects with the reason of an abort that comes first, and later work failures stay handled', async () => {
    const controller = new AbortController();
    let failWork: (err: Error) => void = () => undefined;
    const work = new Promise<number>((_, reject) => (failWork = reject));
    const waiting = settle(untilAborted(work, controller.signal));
    controller.abort(new Error('deadline passed'));
    expect(((await waiting) as { error: Error }).error.message).toBe('deadline passed');
    // vitest fails the run on an unhandled rejection: this one is handled by untilAborted.
    failWork(new Error('too late'));
    await new Promise((r) => setImmediate(r));
  });

  it('rejects at once on a signal that already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    const result = await settle(untilAborted(new Promise(() => undefined), controller.signal));
    expect((result as { error: Error }).error.message).toBe('gone');
  });

  it('with startDeadline: the deadline ends a hanging wait, and expired() tells it from a failure', async () => {
    const deadline = startDeadline(30);
    const result = await settle(untilAborted(new Promise(() => undefined), deadline.signal));
    deadline.clear();
    expect(deadline.expired()).toBe(true);
    expect((result as { error: Error }).error.message).toBe('deadline of 30 ms passed');
  });
});

describe('health check deadlines', () => {
  it('a throwing check is down with its message, a hanging one down at its deadline, a quick one keeps its status', async () => {
    const { report } = await runHealthChecks(
      [
        { name: 'broken', critical: false, run: () => Promise.reject(new Error('connection refused')) },
        { name: 'hanging', critical: false, timeoutMs: 40, run: () => new Promise(() => undefined) },
        { name: 'fine', critical: false, timeoutMs: 1000, run: async () => ({ status: 'ok', detail: 'up' }) },
      ],
      { service: 'kit-test', version: '1', startedAt: Date.now() },
    );
    expect(report.checks['broken']).toMatchObject({ status: 'down', detail: 'connection refused' });
    expect(report.checks['hanging']).toMatchObject({ status: 'down', detail: 'no answer within 40 ms' });
    expect(report.checks['hanging']!.latency_ms).toBeGreaterThanOrEqual(35);
    expect(report.checks['fine']).toMatchObject({ status: 'ok', detail: 'up' });
    expect(report.status).toBe('degraded');
  });
});

describe('runService shutdown timers', () => {
  it('cuts a connection still busy after most of the deadline, and reports a shutdown past its deadline', async () => {
    const sink = new MemoryTransport();
    const logger = createLogger({ service: 'shutdown-test', stdout: sink, level: 'debug' });
    const app = express();
    app.get('/hang', () => undefined);
    const closerRan: number[] = [];
    const running = await runService({
      app,
      port: 0,
      host: '127.0.0.1',
      logger,
      shutdownTimeoutMs: 1500,
      closers: [
        {
          name: 'slow',
          close: async () => {
            closerRan.push(Date.now());
            await new Promise((r) => setTimeout(r, 900));
          },
        },
      ],
    });
    const busy = fetch(`http://127.0.0.1:${running.port}/hang`).then(
      () => 'answered',
      () => 'cut',
    );
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await running.shutdown('test');
    expect(await busy).toBe('cut');
    // The busy connection was cut at 60 % of 1500 ms (900 ms), then the closer ran.
    expect(closerRan[0]! - started).toBeGreaterThanOrEqual(850);
    const messages = sink.lines.map((l) => l['message']);
    expect(messages).toContain('shutdown did not finish within 1500 ms; exiting');
    expect(messages.at(-1)).toBe('shutdown complete');
  });

  it('a shutdown that finishes in time cancels its hard stop', async () => {
    const sink = new MemoryTransport();
    const logger = createLogger({ service: 'shutdown-test', stdout: sink, level: 'debug' });
    const running = await runService({ app: express(), port: 0, host: '127.0.0.1', logger, shutdownTimeoutMs: 100 });
    await running.shutdown('test');
    await new Promise((r) => setTimeout(r, 250));
    const messages = sink.lines.map((l) => l['message']);
    expect(messages).toContain('shutdown complete');
    expect(messages.some((m) => String(m).includes('did not finish'))).toBe(false);
  });
});

describe('untilAborted with a reason', () => {
  it('passes the result through, and rejects with the reason once the signal aborts', async () => {
    const controller = new AbortController();
    await expect(untilAborted(Promise.resolve(5), controller.signal, () => new Error('cut'))).resolves.toBe(5);
    const never = new Promise<number>(() => undefined);
    const cut = untilAborted(never, controller.signal, () => new Error('cut'));
    controller.abort();
    await expect(cut).rejects.toThrow('cut');
    await expect(untilAborted(Promise.resolve(1), controller.signal, () => new Error('late'))).rejects.toThrow('late');
  });
});
