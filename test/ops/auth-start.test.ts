// The start rule of issue 9, on each service's real entry point (src/main.ts, as the image runs it): beyond
// loopback a service refuses to start while a key class it serves has no key, naming what to set; on loopback
// such a class is open and one warning says so; keys from *_API_KEYS_FILE count.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_KEYS } from '@workemon/testkit/api-keys';
import { repoPath } from './observability-files.js';
import { SERVICES, type ServiceName } from './stack.js';

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'auth-start-'));
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function startMain(service: ServiceName, env: Record<string, string>) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@workemon/source', repoPath(`services/${service}/src/main.ts`)],
    {
      cwd: repoPath('.'),
      env: {
        PATH: process.env['PATH'],
        PORT: '0',
        PGLITE_DIR: join(dir, `pglite-${service}`),
        // Upstreams that do not answer: a service that starts still starts (degraded).
        GUESSER_URL: 'http://127.0.0.1:9',
        SYSTEM_ANALYST_URL: 'http://127.0.0.1:9',
        COMMUNICATOR_URL: 'http://127.0.0.1:9',
        SECRETARY_URL: 'http://127.0.0.1:9',
        LLM_BASE_URL: 'http://127.0.0.1:9',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = async (pattern: RegExp, timeoutMs = 60_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(output)) {
      if (child.exitCode !== null) throw new Error(`${service} exited ${child.exitCode}: ${output.slice(-1500)}`);
      if (Date.now() > deadline) throw new Error(`${service}: no ${pattern} in: ${output.slice(-1500)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { child, exited, output: () => output, waitFor };
}

describe('starting beyond loopback without keys', () => {
  it('every service refuses (exit 1) and names the key variables it needs', { timeout: 120_000 }, async () => {
    const needs: Record<ServiceName, string[]> = {
      secretary: ['API_KEYS', 'ADMIN_API_KEYS', 'SERVICE_API_KEYS'],
      guesser: ['SERVICE_API_KEYS'],
      'system-analyst': ['SERVICE_API_KEYS'],
      communicator: ['SERVICE_API_KEYS'],
    };
    const runs = SERVICES.map((service) => ({ service, ...startMain(service, { HOST: '0.0.0.0' }) }));
    for (const run of runs) {
      expect(await run.exited, `${run.service}: ${run.output().slice(-800)}`).toBe(1);
      for (const variable of needs[run.service]) expect(run.output(), run.service).toContain(`${variable}: required`);
      expect(run.output()).not.toMatch(/listening on port/);
    }
  });
});

describe('starting with keys or on loopback', () => {
  it('on 127.0.0.1 a class without keys is open and the start log says so once', { timeout: 90_000 }, async () => {
    const run = startMain('guesser', { HOST: '127.0.0.1' });
    await run.waitFor(/listening on port (\d+)/);
    const port = /listening on port (\d+)/.exec(run.output())![1];
    const warnings = run.output().match(/SERVICE_API_KEYS not set: service routes are open/g) ?? [];
    expect(warnings).toHaveLength(1);
    const res = await fetch(`http://127.0.0.1:${port}/get-context`);
    expect(res.status).toBe(400); // open: no 401, the missing parameters are the only complaint
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });

  it('beyond loopback starts with keys from *_API_KEYS_FILE, and the keys work', { timeout: 90_000 }, async () => {
    const file = join(dir, 'service.keys');
    writeFileSync(file, `# generated\nsecretary:${TEST_KEYS.service}\n`);
    const run = startMain('system-analyst', { HOST: '0.0.0.0', SERVICE_API_KEYS_FILE: file });
    await run.waitFor(/listening on port (\d+)/);
    const port = /listening on port (\d+)/.exec(run.output())![1];
    expect(run.output()).not.toMatch(/routes are open/);
    const url = `http://127.0.0.1:${port}/prepare-analititcs`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { Authorization: `Bearer ${TEST_KEYS.service}` } })).status).toBe(400);
    expect(run.output()).not.toContain(TEST_KEYS.service);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });
});

describe('key length at start', () => {
  it(
    'a key under 16 characters starts the secretary and the guesser with one line naming it weak, never the key',
    {
      timeout: 120_000,
    },
    async () => {
      const short = 'short-key-12345';
      const runs = [
        startMain('secretary', { HOST: '127.0.0.1', API_KEYS: `app:${short}` }),
        startMain('guesser', { HOST: '127.0.0.1', SERVICE_API_KEYS: short }),
      ];
      for (const [i, variable] of ['API_KEYS: key 1 (app)', 'SERVICE_API_KEYS: key 1'].entries()) {
        const run = runs[i]!;
        await run.waitFor(/listening on port (\d+)/);
        const escaped = variable.replace(/[()]/g, '\\$&');
        expect(run.output().match(new RegExp(`${escaped} is weak: shorter than 16 characters`, 'g'))).toHaveLength(1);
        expect(run.output()).not.toContain(short);
        run.child.kill('SIGTERM');
        expect(await run.exited).toBe(0);
      }
    },
  );

  it('a key of 16 to 31 characters starts with one warning naming it, not the key', { timeout: 90_000 }, async () => {
    const medium = 'medium-key-0123456789';
    const run = startMain('guesser', { HOST: '127.0.0.1', SERVICE_API_KEYS: `svc:${medium}` });
    await run.waitFor(/listening on port (\d+)/);
    expect(run.output().match(/SERVICE_API_KEYS: key 1 \(svc\) is shorter than 32 characters/g)).toHaveLength(1);
    expect(run.output()).not.toContain(medium);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  });
});
