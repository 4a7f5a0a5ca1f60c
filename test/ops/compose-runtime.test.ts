// What the first real `docker-compose up` / `stop` of the stack (2026-11-30, docs/operations.md, "Trying the
// images without a registry") needed of docker-compose.yml, checked on the file as docker-compose resolves it (CI
// has no Docker daemon): each app service gets more time between SIGTERM and SIGKILL than its own shutdown
// deadline, so `docker compose stop` ends it gracefully rather than killing a busy one.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoPath } from './observability-files.js';
import { communicatorDeadlineMs, defaultShutdownDeadlineMs } from './shutdown-deadlines.js';

const run = promisify(execFile);

type Compose = { services: Record<string, { stop_grace_period?: string; environment?: Record<string, string> }> };

/** A compose duration (`1m30s`, `20s`, `500ms`; Compose specification, "Specifying durations") in ms. */
function durationMs(text: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  let total = 0;
  const rest = text.replace(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g, (_all, value: string, unit: string) => {
    total += Number(value) * units[unit]!;
    return '';
  });
  if (rest !== '' || text === '') throw new Error(`not a compose duration: ${text}`);
  return total;
}

async function resolved(): Promise<Compose> {
  const { stdout } = await run('docker-compose', ['-f', repoPath('docker-compose.yml'), 'config'], {
    cwd: repoPath('.'),
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  return parse(stdout) as Compose;
}

describe('docker-compose.yml: stopping', () => {
  it('gives the secretary, the guesser and the system analyst more than their 15 s shutdown deadline', async () => {
    const compose = await resolved();
    const deadline = await defaultShutdownDeadlineMs();
    expect(deadline).toBeGreaterThan(10_000); // Docker's default grace period would cut it short.
    for (const name of ['secretary', 'guesser', 'system-analyst']) {
      const grace = compose.services[name]?.stop_grace_period;
      expect(grace, `${name} sets stop_grace_period`).toBeDefined();
      expect(durationMs(grace!), name).toBeGreaterThan(deadline);
    }
  });

  it("gives the communicator more than SHUTDOWN_TIMEOUT + 15 s with compose's SHUTDOWN_TIMEOUT", async () => {
    const compose = await resolved();
    const communicator = compose.services['communicator']!;
    const deadline = await communicatorDeadlineMs(communicator.environment);
    expect(deadline).toBe(45_000);
    expect(durationMs(communicator.stop_grace_period ?? '')).toBeGreaterThan(deadline);
  });

  it('reads compose durations as the specification writes them', () => {
    expect(durationMs('1m30s')).toBe(90_000);
    expect(durationMs('20s')).toBe(20_000);
    expect(durationMs('500ms')).toBe(500);
    expect(() => durationMs('20 seconds')).toThrow(/not a compose duration/);
  });
});
