// What a new user meets first: a copied .env.example starts the same stack as no file, a bad DATABASE_URL and a
// busy port stop a service with one line naming the key, through each service's real entry point (main.ts).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { parseEnv } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig as loadGuesserConfig } from '@workemon/guesser';
import { loadConfig as loadAnalystConfig } from '@workemon/system-analyst';
import { loadConfig as loadSecretaryConfig } from '@workemon/secretary';
import { loadConfig as loadCommunicatorConfig } from '@workemon/communicator';
import { createTestDatabase } from '@workemon/testkit';
import { repoPath } from './observability-files.js';
import { SERVICES, type ServiceName } from './stack.js';

const LOADERS: Record<ServiceName, (env: Record<string, string | undefined>) => unknown> = {
  secretary: loadSecretaryConfig,
  guesser: loadGuesserConfig,
  'system-analyst': loadAnalystConfig,
  communicator: loadCommunicatorConfig,
};

describe('.env.example', () => {
  it('copied to .env, gives every service the same configuration as no file at all', () => {
    const fromFile = parseEnv(readFileSync(repoPath('.env.example'), 'utf8'));
    // Keys that connect something are there, commented out with their placeholders.
    const text = readFileSync(repoPath('.env.example'), 'utf8');
    for (const key of ['TELEGRAM_BOT_TOKEN', 'IMAP_USER', 'JIRA_BASE_URL', 'LLM_API_KEY', 'DEEPSEEK_API_KEY'])
      expect(text).toMatch(new RegExp(`^# ${key}=\\S`, 'm'));
    const runtime = { INIT_CWD: '/srv/workemon' };
    for (const service of SERVICES) {
      const load = LOADERS[service];
      expect(load({ ...fromFile, ...runtime }), service).toEqual(load(runtime));
    }
  });
});

type Exit = { code: number | null; stderr: string; stdout: string };

function runMain(service: ServiceName, env: Record<string, string>): Promise<Exit> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@workemon/source', repoPath(`services/${service}/src/main.ts`)],
    { cwd: repoPath('.'), env: { PATH: process.env['PATH'], ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout });
    }),
  );
}

describe('a service that cannot start', () => {
  let blocker: Server;
  let busyPort: number;
  let databaseUrl: string;
  let dropDatabase: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    // Bound to every interface, as another program on the machine would be.
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, resolve));
    busyPort = (blocker.address() as { port: number }).port;
    const db = await createTestDatabase(inject('postgresUrl'), 'ops_first_run');
    databaseUrl = db.url;
    dropDatabase = db.drop;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => blocker?.close(() => resolve()));
    await dropDatabase?.();
  });

  it('on a busy port exits 1 with one line naming the port and its *_PORT key', { timeout: 90_000 }, async () => {
    const exits = await Promise.all(
      SERVICES.map(async (service) => ({
        service,
        exit: await runMain(service, {
          // As npm start runs them: on loopback, where a service starts without keys.
          HOST: '127.0.0.1',
          PORT: String(busyPort),
          DATABASE_URL: databaseUrl,
          LLM_BASE_URL: 'http://127.0.0.1:9',
          SECRETARY_URL: 'http://127.0.0.1:9',
        }),
      })),
    );
    for (const { service, exit } of exits) {
      const key = `${service.toUpperCase().replace('-', '_')}_PORT`;
      expect(exit.code, `${service}: ${exit.stderr}`).toBe(1);
      const lines = exit.stderr.trim().split('\n');
      expect(lines, service).toEqual([
        `${service}: port ${busyPort} is already in use; stop what listens there or choose another port with ${key} (npm start, docker compose) or PORT (this service alone)`,
      ]);
    }
  });

  it(
    'with a DATABASE_URL that is not postgres:// names the key, without a stack trace',
    { timeout: 60_000 },
    async () => {
      const exit = await runMain('secretary', { PORT: '0', DATABASE_URL: 'mysql://root:hunter2@db/workemon' });
      expect(exit.code).toBe(1);
      expect(exit.stderr).toContain('DATABASE_URL: must be a postgres:// or postgresql:// URL');
      expect(exit.stderr).not.toContain('hunter2');
      expect(exit.stderr).not.toMatch(/^\s+at /m);
      expect(exit.stdout).not.toContain('listening');
    },
  );
});

describe('the secretary with a PostgreSQL it cannot use', () => {
  let closedPort: number;
  beforeAll(async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    closedPort = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
  });

  const startWith = (databaseUrl: string) =>
    runMain('secretary', { HOST: '127.0.0.1', PORT: '0', DATABASE_URL: databaseUrl });

  function expectOneLine(exit: Exit, line: string) {
    expect(exit.code, exit.stderr).toBe(1);
    expect(exit.stderr.trim().split('\n')).toEqual([line]);
    expect(exit.stdout).not.toContain('"message":"listening on port');
  }

  it(
    'stopped (nothing on the port): one line naming the server, DATABASE_URL and what to do',
    { timeout: 60_000 },
    async () => {
      const exit = await startWith(`postgres://workemon:hunter2@127.0.0.1:${closedPort}/workemon`);
      expectOneLine(
        exit,
        `secretary: cannot reach PostgreSQL at 127.0.0.1:${closedPort}/workemon (DATABASE_URL): the connection was ` +
          'refused (is PostgreSQL running and listening on that port?). Start PostgreSQL or correct the host and ' +
          'port in DATABASE_URL, or unset DATABASE_URL to use the embedded database in PGLITE_DIR.',
      );
      expect(exit.stdout + exit.stderr).not.toContain('hunter2');
    },
  );

  it(
    'a role the server refuses, or a database it does not have: says which and what to do',
    { timeout: 60_000 },
    async () => {
      const server = new URL(inject('postgresUrl'));
      const where = `${server.hostname}:${server.port}`;
      const role = new URL(server);
      role.username = 'no_such_role';
      role.password = 'hunter2';
      role.pathname = '/postgres';
      const missing = new URL(server);
      missing.pathname = '/workemon_no_such_database';
      const [refused, absent] = await Promise.all([startWith(role.href), startWith(missing.href)]);
      expectOneLine(
        refused,
        `secretary: PostgreSQL at ${where}/postgres (DATABASE_URL) refused the login of user 'no_such_role': wrong ` +
          'password, or the role may not log in from here (pg_hba.conf). Correct the user and password in DATABASE_URL.',
      );
      expect(refused.stdout + refused.stderr).not.toContain('hunter2');
      expectOneLine(
        absent,
        `secretary: PostgreSQL at ${where}/workemon_no_such_database (DATABASE_URL) has no database ` +
          "'workemon_no_such_database': create it (createdb workemon_no_such_database) or name an existing one in " +
          'DATABASE_URL, or unset DATABASE_URL to use the embedded database in PGLITE_DIR.',
      );
    },
  );
});

describe('the secretary with a bad EMPLOYEES_FILE', () => {
  it('stops with one line naming the file and the row, no stack trace', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'workemon-employees-'));
    try {
      const file = join(dir, 'employees.yaml');
      writeFileSync(file, 'employees:\n  - full_name: Без логина\n    email: secret.person@example.com\n');
      const exit = await runMain('secretary', {
        HOST: '127.0.0.1',
        PORT: '0',
        PGLITE_DIR: join(dir, 'db'),
        EMPLOYEES_FILE: file,
      });
      expect(exit.code, exit.stderr).toBe(1);
      expect(exit.stderr.trim().split('\n')).toEqual([
        `secretary: EMPLOYEES_FILE ${file}: employee 1: 'username' is required`,
      ]);
      expect(exit.stdout + exit.stderr).not.toContain('secret.person');
      expect(exit.stdout).not.toContain('stack_trace');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the communicator with a Telegram bot token pasted wrong', () => {
  it('refuses to start, naming the key and the format, never the value', { timeout: 60_000 }, async () => {
    for (const token of ['bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw', '"123456789:AAHdq"', 'AAHdqTcvCH1vGW']) {
      const exit = await runMain('communicator', { HOST: '127.0.0.1', PORT: '0', TELEGRAM_BOT_TOKEN: token });
      expect(exit.code, exit.stderr).toBe(1);
      expect(exit.stderr).toContain(
        "TELEGRAM_BOT_TOKEN: must be the token @BotFather gave, <bot id>:<secret> (123456789:AAH…), with no 'bot' in front, quotes or spaces",
      );
      expect(exit.stdout + exit.stderr).not.toContain('AAHdq');
    }
  });
});

describe('the communicator with a mailbox login that is not an address', () => {
  it('refuses to start and says to set MAIL_FROM (the From of every reply)', { timeout: 60_000 }, async () => {
    const base = { HOST: '127.0.0.1', PORT: '0', IMAP_PASSWORD: 'app-password-1' };
    const login = await runMain('communicator', { ...base, IMAP_USER: 'support' });
    expect(login.code, login.stderr).toBe(1);
    expect(login.stderr).toContain(
      "MAIL_FROM: replies need a From address, and IMAP_USER 'support' is a login, not an address: set MAIL_FROM " +
        '(e.g. support@yandex.ru), or give IMAP_USER with its domain',
    );
    const from = await runMain('communicator', { ...base, IMAP_USER: 'support', MAIL_FROM: 'Workemon' });
    expect(from.code, from.stderr).toBe(1);
    expect(from.stderr).toContain("MAIL_FROM: 'Workemon' is not an address (name@domain or Name <name@domain>)");
    expect(login.stderr + from.stderr).not.toContain('app-password-1');
  });
});

describe('npm start (scripts/start-all.mjs)', () => {
  it(
    'reads ./.env (the environment wins) and gives each service the port of its *_PORT key',
    { timeout: 60_000 },
    async () => {
      // The script as shipped, in a tree whose one "service" prints what it was given and exits.
      const root = mkdtempSync(join(tmpdir(), 'workemon-start-'));
      try {
        mkdirSync(join(root, 'scripts'));
        copyFileSync(repoPath('scripts/start-all.mjs'), join(root, 'scripts/start-all.mjs'));
        symlinkSync(repoPath('node_modules'), join(root, 'node_modules'));
        mkdirSync(join(root, 'services/guesser/src'), { recursive: true });
        writeFileSync(
          join(root, 'services/guesser/src/main.ts'),
          'const { PORT, LLM_PROVIDER, LOG_LEVEL } = process.env;\n' +
            'console.log(JSON.stringify({ PORT, LLM_PROVIDER, LOG_LEVEL }));\n',
        );
        writeFileSync(
          join(root, '.env'),
          'GUESSER_PORT=18555\nLLM_PROVIDER=deepseek\nLOG_LEVEL=debug\n# TELEGRAM_BOT_TOKEN=x\n',
        );
        const child = spawn(process.execPath, ['scripts/start-all.mjs'], {
          cwd: root,
          env: { PATH: process.env['PATH'], LOG_LEVEL: 'warn' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (out += c.toString()));
        const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
        expect(code, out).toBe(0);
        const printed = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as Record<string, string>;
        expect(printed).toEqual({ PORT: '18555', LLM_PROVIDER: 'deepseek', LOG_LEVEL: 'warn' });
        expect(out).toContain('[start] guesser:18555');
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  );
  it(
    'points each service at the others on their *_PORT keys, unless a *_URL key is set',
    { timeout: 60_000 },
    async () => {
      // One "service" (the secretary) that prints the upstream URLs it was given; the others are absent.
      const root = mkdtempSync(join(tmpdir(), 'workemon-start-'));
      try {
        mkdirSync(join(root, 'scripts'));
        copyFileSync(repoPath('scripts/start-all.mjs'), join(root, 'scripts/start-all.mjs'));
        symlinkSync(repoPath('node_modules'), join(root, 'node_modules'));
        mkdirSync(join(root, 'services/secretary/src'), { recursive: true });
        writeFileSync(
          join(root, 'services/secretary/src/main.ts'),
          'const { PORT, GUESSER_URL, SYSTEM_ANALYST_URL, COMMUNICATOR_URL, SECRETARY_URL } = process.env;\n' +
            'console.log(JSON.stringify({ PORT, GUESSER_URL, SYSTEM_ANALYST_URL, COMMUNICATOR_URL, SECRETARY_URL }));\n',
        );
        writeFileSync(join(root, '.env'), 'GUESSER_PORT=28501\nSYSTEM_ANALYST_PORT=28502\n');
        const child = spawn(process.execPath, ['scripts/start-all.mjs'], {
          cwd: root,
          env: {
            PATH: process.env['PATH'],
            SECRETARY_PORT: '28500',
            COMMUNICATOR_PORT: '28503',
            COMMUNICATOR_URL: 'http://comm.internal:9000',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr.on('data', (c: Buffer) => (out += c.toString()));
        const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
        expect(code, out).toBe(0);
        const printed = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as Record<string, string>;
        expect(printed).toEqual({
          PORT: '28500',
          GUESSER_URL: 'http://127.0.0.1:28501',
          SYSTEM_ANALYST_URL: 'http://127.0.0.1:28502',
          COMMUNICATOR_URL: 'http://comm.internal:9000',
          SECRETARY_URL: 'http://127.0.0.1:28500',
        });
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  );
});
