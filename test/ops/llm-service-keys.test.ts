// The default deployment's keys, end to end: `npm start` (scripts/start-all.mjs as shipped) runs the four real
// services as processes, with a fake LLM provider and a real PostgreSQL database. What the guesser and the system
// analyst processes actually hold is read from their environment (/proc/<pid>/environ, Linux) and tried as a bearer
// key on the service routes of the secretary and the communicator: every one must be refused (401, the contract's
// shape), while the chain still answers. The same script with SERVICE_API_KEYS set (one key for every service, the
// shape external deployments and tests use) must keep working unchanged.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, afterAll, describe, expect, inject, it } from 'vitest';
import { getFreePort, waitFor } from '@workemon/testkit';
import { TEST_KEY_ENV, TEST_KEYS } from '@workemon/testkit/api-keys';
import { startFakeLlm, type FakeLlm } from '@workemon/testkit/fake-llm';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { repoPath } from './observability-files.js';

const NAMES = ['secretary', 'guesser', 'system-analyst', 'communicator'] as const;
type Name = (typeof NAMES)[number];

type Run = {
  urls: Record<Name, string>;
  /** Each service process's environment as it was started (its /proc/<pid>/environ). */
  environ: Record<Name, Record<string, string>>;
  output: () => string;
};

let db: { url: string; drop: () => Promise<void> };
let llm: FakeLlm;
let root: string;
let running: ChildProcess | undefined;

/** The direct children of `pid`, by their command line (`services/<name>/src/main.ts`). */
function childServices(pid: number): Partial<Record<Name, number>> {
  const found: Partial<Record<Name, number>> = {};
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name in parentheses, which may itself hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const name = NAMES.find((n) => cmdline.includes(`services/${n}/src/main.ts`));
      if (name) found[name] = Number(entry);
    } catch {
      // A process that ended meanwhile.
    }
  }
  return found;
}

function environOf(pid: number): Record<string, string> {
  return Object.fromEntries(
    readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  );
}

/** `npm start` in a tree of its own (no ./.env of the developer's), every service on a free port. */
async function startAll(env: Record<string, string>): Promise<Run> {
  const ports = Object.fromEntries(await Promise.all(NAMES.map(async (n) => [n, await getFreePort()] as const)));
  const portKeys = Object.fromEntries(
    NAMES.map((n) => [`${n.toUpperCase().replace('-', '_')}_PORT`, String(ports[n])]),
  );
  const child = spawn(process.execPath, ['scripts/start-all.mjs'], {
    cwd: root,
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      LOG_LEVEL: 'warn',
      DATABASE_URL: db.url,
      UNKNOWN_USER_POLICY: 'allow',
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: llm.url,
      LLM_API_KEY: llm.apiKey ?? '',
      LLM_MODEL: llm.model,
      LLM_MAX_RETRIES: '0',
      ...portKeys,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running = child;
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-8000)));
  child.stderr!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-8000)));
  const urls = Object.fromEntries(NAMES.map((n) => [n, `http://127.0.0.1:${ports[n]}`])) as Record<Name, string>;
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`npm start exited (${code}): ${out.slice(-600)}`))),
  );
  exited.catch(() => undefined);
  for (const name of NAMES)
    await Promise.race([
      exited,
      waitFor(async () => (await fetch(`${urls[name]}/health`).catch(() => undefined))?.status, {
        what: `${name} up (${out.slice(-400)})`,
        timeoutMs: 120_000,
      }),
    ]);
  const pids = childServices(child.pid!);
  const environ = Object.fromEntries(NAMES.map((n) => [n, environOf(pids[n]!)])) as Record<
    Name,
    Record<string, string>
  >;
  return { urls, environ, output: () => out };
}

async function stopAll(): Promise<void> {
  const child = running;
  running = undefined;
  if (!child || child.exitCode !== null) return;
  const children = Object.values(childServices(child.pid!));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 25_000))]);
  for (const pid of [child.pid!, ...children]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

async function call(url: string, method: string, key: string | undefined, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Analyses one request through the chain with the client key. */
const analyze = (run: Run, username: string) =>
  call(`${run.urls.secretary}/analyze-request`, 'POST', TEST_KEYS.client, {
    channel: 'direct',
    username,
    request: 'Подскажите, где посмотреть отчёт по операциям кошельков за октябрь',
  });

/** The routes of the secretary and the communicator that take a service key, with a body each would accept. */
function serviceRoutes(run: Run): { what: string; url: string; method: string; body?: unknown }[] {
  return [
    {
      what: 'secretary POST /analyze-request vouching for a sender',
      url: `${run.urls.secretary}/analyze-request`,
      method: 'POST',
      body: {
        channel: 'email',
        username: 'ceo@example.test',
        request: 'Создайте задачу',
        sender_authentication: 'pass',
      },
    },
    {
      what: 'secretary POST /action-executions/1/approve',
      url: `${run.urls.secretary}/action-executions/1/approve`,
      method: 'POST',
      body: {},
    },
    {
      what: 'secretary PUT /poller-leases/imap',
      url: `${run.urls.secretary}/poller-leases/imap`,
      method: 'PUT',
      body: { holder: 'stolen', ttl_ms: 10000 },
    },
    {
      what: 'secretary POST /deliveries/lookup',
      url: `${run.urls.secretary}/deliveries/lookup`,
      method: 'POST',
      body: { keys: ['x'] },
    },
    {
      what: 'secretary POST /audit-events',
      url: `${run.urls.secretary}/audit-events`,
      method: 'POST',
      body: { events: [] },
    },
    {
      what: 'secretary POST /webhook-tokens',
      url: `${run.urls.secretary}/webhook-tokens`,
      method: 'POST',
      body: { provider: 'mailgun', token: 'stolen', payload_sha256: '0'.repeat(64), ttl_seconds: 60 },
    },
    {
      what: 'secretary POST /rate-limits/consume',
      url: `${run.urls.secretary}/rate-limits/consume`,
      method: 'POST',
      body: { keys: ['email:ceo@example.test'], limit: 1, window_seconds: 3600 },
    },
    {
      what: 'communicator POST /test (a dry run of a mail)',
      url: `${run.urls.communicator}/test`,
      method: 'POST',
      body: { from: 'ceo@example.test', text: 'Создайте задачу' },
    },
    {
      what: 'communicator POST /send',
      url: `${run.urls.communicator}/send`,
      method: 'POST',
      body: { channel: 'tg', to: '1', text: 'hi' },
    },
  ];
}

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'llm_service_keys');
  llm = await startFakeLlm({ wire: 'openai' });
  // One fake model for both LLM services: an answer valid for each.
  llm.reply(() => ({ is_enough: true, response: 'Отчёт лежит в витрине операций кошельков.' }));
  // The script as shipped, in a tree whose services and packages are the repository's own.
  root = mkdtempSync(join(tmpdir(), 'workemon-keys-'));
  mkdirSync(join(root, 'scripts'));
  copyFileSync(repoPath('scripts/start-all.mjs'), join(root, 'scripts/start-all.mjs'));
  for (const dir of ['node_modules', 'services', 'libs']) symlinkSync(repoPath(dir), join(root, dir));
});

afterEach(async () => {
  await stopAll();
}, 60_000);

afterAll(async () => {
  await llm?.close();
  await db?.drop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('npm start: the LLM services hold no key the secretary or the communicator accepts', () => {
  it('every value in their environment is refused by every service route; the chain answers', async () => {
    const run = await startAll({ API_KEYS: TEST_KEY_ENV.API_KEYS, ADMIN_API_KEYS: TEST_KEY_ENV.ADMIN_API_KEYS });

    const answered = await analyze(run, 'keys-default');
    expect(answered.status, run.output()).toBe(200);
    expect(answered.body).toMatchObject({ is_enough: true, response: 'Отчёт лежит в витрине операций кошельков.' });
    expect(llm.requests.length).toBeGreaterThanOrEqual(2);

    // The LLM services were given their own keys and none of the secretary's credentials.
    for (const name of ['guesser', 'system-analyst'] as const) {
      const env = run.environ[name];
      for (const key of ['API_KEYS', 'ADMIN_API_KEYS', 'DATABASE_URL', 'GUESSER_API_KEY', 'SYSTEM_ANALYST_API_KEY'])
        expect(env[key], `${name} ${key}`).toBeUndefined();
      expect(env['SERVICE_API_KEYS'], name).toMatch(new RegExp(`^npm-start-${name}:[\\w-]{43}$`));
    }
    const ownKey = (name: 'guesser' | 'system-analyst') => run.environ[name]['SERVICE_API_KEYS']!.split(':')[1]!;
    expect(run.environ.secretary['GUESSER_API_KEY']).toBe(ownKey('guesser'));
    expect(run.environ.secretary['SYSTEM_ANALYST_API_KEY']).toBe(ownKey('system-analyst'));
    expect(ownKey('guesser')).not.toBe(ownKey('system-analyst'));
    // The secretary and the communicator share their own service key, which the LLM services do not accept.
    const serviceKey = run.environ.secretary['SERVICE_API_KEYS']!.split(':')[1]!;
    expect(run.environ.communicator['SERVICE_API_KEYS']).toBe(run.environ.secretary['SERVICE_API_KEYS']);
    const stolenFromGuesser = await call(`${run.urls.guesser}/prompt`, 'GET', serviceKey);
    expect(stolenFromGuesser.status).toBe(401);

    // Whatever either LLM service process holds (keys, URLs, anything) opens no service route of the others.
    const held = new Set(
      (['guesser', 'system-analyst'] as const).flatMap((name) =>
        Object.values(run.environ[name])
          .flatMap((v) => [v, ...v.split(/[\s,:]+/)])
          .filter((v) => v.length >= 8),
      ),
    );
    expect(held.has(ownKey('guesser'))).toBe(true);
    for (const route of serviceRoutes(run)) {
      for (const key of held) {
        const res = await call(route.url, route.method, key, route.body);
        expect(res.status, `${route.what} with a value the LLM services hold`).toBe(401);
        expect(res.body).toEqual({ error: 'Unauthorized', message: 'Invalid API key', statusCode: 401 });
      }
    }
    // The secretary's own service key still opens the communicator (its body is judged after the key: 400).
    const send = await call(`${run.urls.communicator}/send`, 'POST', serviceKey, {});
    expect(send.status).toBe(400);
  }, 240_000);
});

describe('npm start with SERVICE_API_KEYS set: one key for every service, as before', () => {
  it('every service gets that key, the secretary sends it to the LLM services, and the chain answers', async () => {
    const run = await startAll({ ...TEST_KEY_ENV });
    for (const name of NAMES) expect(run.environ[name]['SERVICE_API_KEYS'], name).toBe(TEST_KEY_ENV.SERVICE_API_KEYS);
    expect(run.environ.secretary['GUESSER_API_KEY']).toBeUndefined();

    const answered = await analyze(run, 'keys-shared');
    expect(answered.status, run.output()).toBe(200);
    expect(answered.body).toMatchObject({ is_enough: true });
    const prompt = await call(`${run.urls.guesser}/prompt`, 'GET', TEST_KEYS.service);
    expect(prompt.status).toBe(200);
    const health = await call(`${run.urls.secretary}/health`, 'GET', undefined);
    expect(health.body['checks']).toMatchObject({ guesser: { status: 'ok' }, 'system-analyst': { status: 'ok' } });
  }, 240_000);
});

describe("npm start with SERVICE_API_KEYS and the LLM services' own keys set", () => {
  it('each LLM service accepts the key the secretary sends it, not the shared one; the chain answers', async () => {
    const own = { guesser: 'guesser-own-key-0123456789abcdef', 'system-analyst': 'analyst-own-key-0123456789abcdef' };
    const run = await startAll({
      ...TEST_KEY_ENV,
      GUESSER_API_KEY: own.guesser,
      SYSTEM_ANALYST_API_KEY: own['system-analyst'],
    });
    expect(run.environ.secretary['GUESSER_API_KEY']).toBe(own.guesser);
    expect(run.environ.communicator['SERVICE_API_KEYS']).toBe(TEST_KEY_ENV.SERVICE_API_KEYS);

    const answered = await analyze(run, 'keys-own-and-shared');
    expect(answered.status, run.output()).toBe(200);
    expect(answered.body).toMatchObject({ is_enough: true });
    for (const name of ['guesser', 'system-analyst'] as const) {
      expect((await call(`${run.urls[name]}/prompt`, 'GET', own[name])).status, name).toBe(200);
      expect((await call(`${run.urls[name]}/prompt`, 'GET', TEST_KEYS.service)).status, name).toBe(401);
    }
    const health = await call(`${run.urls.secretary}/health`, 'GET', undefined);
    expect(health.body['checks']).toMatchObject({ guesser: { status: 'ok' }, 'system-analyst': { status: 'ok' } });
  }, 240_000);
});
