// Where a Workemon log entry's fields land (docs/DEVELOPING.md, "Logs"): ECS field sets in place, everything else
// under `workemon.*`, an error's details and cause once under `error.*`.
import Transport from 'winston-transport';
import { ecsStringify } from '../src/ecs-format.js';
import { describe, expect, it } from 'vitest';
import { AppError, createLogger } from '@workemon/service-kit';

class LineTransport extends Transport {
  lines: Record<string, unknown>[] = [];
  override log(info: Record<symbol, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(info[Symbol.for('message')] as string) as Record<string, unknown>);
    next();
  }
}

function logged(write: (logger: ReturnType<typeof createLogger>) => void): Record<string, unknown> {
  const sink = new LineTransport({ format: ecsStringify() });
  const logger = createLogger({ service: 'fields-test', stdout: sink });
  write(logger);
  expect(sink.lines).toHaveLength(1);
  return sink.lines[0]!;
}

describe('log fields', () => {
  it('moves fields outside ECS under workemon.* and keeps the ECS field sets where they are', () => {
    const line = logged((l) =>
      l.info('message fetched', {
        imap: { uid: 42, mailbox: 'INBOX' },
        reason: 'duplicate',
        url: { path: '/x' },
        event: { duration: 1_500_000 },
        workemon: { lease: 'mailbox' },
      }),
    );
    expect(line['workemon']).toEqual({ imap: { uid: 42, mailbox: 'INBOX' }, reason: 'duplicate', lease: 'mailbox' });
    expect(line['url']).toEqual({ path: '/x' });
    expect(line['event']).toEqual({ duration: 1_500_000 });
    expect(line).not.toHaveProperty('imap');
    expect(line).not.toHaveProperty('reason');
    expect(line['message']).toBe('message fetched');
    expect(line['log.level']).toBe('info');
  });

  it("logs an AppError's details and cause once, under error.*, beside the caller's error.code", () => {
    const cause = new Error('connect ECONNREFUSED');
    const err = new AppError('upstream_unavailable', 503, 'guesser is down', { cause, details: { target: 'g' } });
    const line = logged((l) => l.error('upstream failed', { err, error: { code: err.code } }));
    const error = line['error'] as Record<string, unknown>;
    expect(error).toMatchObject({
      code: 'upstream_unavailable',
      type: 'AppError',
      message: 'guesser is down',
      details: { target: 'g' },
    });
    expect(error['cause']).toEqual(expect.stringContaining('connect ECONNREFUSED'));
    expect(error['stack_trace']).toEqual(expect.stringContaining('guesser is down'));
    expect(line).not.toHaveProperty('details');
    expect(line).not.toHaveProperty('cause');
    expect(line).not.toHaveProperty('workemon');
  });

  it('puts details and cause given without an Error under error.*', () => {
    const line = logged((l) =>
      l.warn('upstream answered nonsense', { details: { status: 200 }, cause: 'invalid JSON', error: { code: 'x' } }),
    );
    expect(line['error']).toEqual({ code: 'x', details: { status: 200 }, cause: 'invalid JSON' });
    expect(line).not.toHaveProperty('details');
    expect(line).not.toHaveProperty('cause');
  });

  it('takes an Error passed as `error` like one passed as `err`', () => {
    const line = logged((l) => l.warn('retrying', { error: new TypeError('fetch failed'), attempt: 2 }));
    expect(line['error']).toMatchObject({ type: 'TypeError', message: 'fetch failed' });
    expect(line['workemon']).toEqual({ attempt: 2 });
  });
});
