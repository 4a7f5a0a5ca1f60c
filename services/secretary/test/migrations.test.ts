import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startLlmServices } from './llm-services.js';
import { DatabaseInUseError, migrateDatabase, openDatabase } from '../src/database.js';
import { MIGRATION_NAMES } from '../src/migrations.js';
import { keyed, openapi, startSecretary } from './secretary-harness.js';

describe('migrations on embedded PGlite (DATABASE_URL unset)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secretary-pglite-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // PGlite's first start (initdb in WebAssembly) takes long on a busy machine.
  it('creates every table, persists on disk, and is a no-op the second time', { timeout: 120_000 }, async () => {
    const first = openDatabase({ pgliteDir: dir });
    expect(first.kind).toBe('pglite');
    expect(await migrateDatabase(first)).toEqual([...MIGRATION_NAMES]);
    const tables = await first.knex('information_schema.tables').where({ table_schema: 'public' }).pluck('table_name');
    expect(tables).toEqual(
      expect.arrayContaining(['employees', 'departments', 'conversations', 'messages', 'analyses', 'knex_migrations']),
    );
    await first.knex('departments').insert({ name: 'Платежи', mailing_list: 'pay@example.test' });
    await first.close();

    const second = openDatabase({ pgliteDir: dir });
    expect(await migrateDatabase(second)).toEqual([]);
    expect(await second.knex('departments').pluck('mailing_list')).toEqual(['pay@example.test']);
    await second.close();
  });
});

describe('the secretary on embedded PGlite (what `npm start` runs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secretary-pglite-app-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it(
    'clarifies, continues the conversation and replays a message_id on its single connection',
    { timeout: 120_000 },
    async () => {
      const llm = await startLlmServices();
      const secretary = await startSecretary({
        pgliteDir: dir,
        guesserUrl: llm.guesserUrl,
        analystUrl: llm.analystUrl,
      });
      try {
        const ask = async (text: string, message_id: string) => {
          const res = await keyed(secretary.url)
            .post('/analyze-request')
            .send({ channel: 'tg', username: '@pglite_user', request: text, message_id });
          expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
          return res;
        };
        const first = await ask('Нужна аналитика', 'u1');
        expect(first.body).toMatchObject({ is_enough: false, action: 'уточнить' });
        const second = await ask('Операции авторизации кошельков за прошлый месяц по всем клиентам', 'u2');
        expect(second.body).toMatchObject({ is_enough: true, action: 'ответить сообщением' });
        expect(second.body.request).toBe(
          `Нужна аналитика ${first.body.question} Операции авторизации кошельков за прошлый месяц по всем клиентам`,
        );
        const calls = llm.guesserLlm.requests.length;
        const replay = await Promise.all([ask('x', 'u2'), ask('x', 'u2')]);
        for (const r of replay) expect(r.body).toEqual(second.body);
        expect(llm.guesserLlm.requests.length).toBe(calls);
        expect(await secretary.db.knex('conversations')).toMatchObject([
          { status: 'answered', clarification_rounds: 1 },
        ]);
      } finally {
        await secretary.close();
        await llm.close();
      }
    },
  );
});

const repoRoot = resolve(import.meta.dirname, '../../..');

function run(command: string, args: string[], env: Record<string, string>): ChildProcess & { output: () => string } {
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { PATH: process.env['PATH'], HOME: process.env['HOME'], ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  return Object.assign(child, { output: () => output });
}

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((done) =>
    child.exitCode !== null || child.signalCode !== null
      ? done(child.exitCode)
      : child.once('exit', (code) => done(code)),
  );

describe('one process per embedded database', () => {
  const parent = mkdtempSync(join(tmpdir(), 'secretary-pglite-lock-'));
  const dir = join(parent, 'secretary');
  const lockFile = join(parent, 'secretary.lock');
  let secretary: (ChildProcess & { output: () => string }) | undefined;
  afterAll(async () => {
    if (secretary && secretary.exitCode === null && secretary.signalCode === null) {
      secretary.kill('SIGKILL');
      await exitOf(secretary);
    }
    rmSync(parent, { recursive: true, force: true });
  });

  it('a second open in this process is refused while the first holds it, and allowed after close', async () => {
    const first = openDatabase({ pgliteDir: dir });
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(process.pid));
    expect(() => openDatabase({ pgliteDir: dir })).toThrow(DatabaseInUseError);
    await first.close();
    expect(existsSync(lockFile)).toBe(false);
    const second = openDatabase({ pgliteDir: dir });
    await second.close();
  });

  it(
    '`npm run migrate` beside a running secretary refuses with one clear line; after it stopped, or died (a stale lock), it runs',
    {
      timeout: 300_000,
    },
    async () => {
      // A directory of its own: the one above was opened and closed in this process.
      const ownDir = join(parent, 'secretary-spawned');
      const ownLock = join(parent, 'secretary-spawned.lock');
      secretary = run(
        process.execPath,
        ['--import', 'tsx', '--conditions=@workemon/source', 'services/secretary/src/main.ts'],
        {
          // Loopback: no API keys are required (and nothing listens beyond this machine).
          HOST: '127.0.0.1',
          PORT: '0',
          PGLITE_DIR: ownDir,
          GUESSER_URL: 'http://127.0.0.1:9',
          SYSTEM_ANALYST_URL: 'http://127.0.0.1:9',
          COMMUNICATOR_URL: 'http://127.0.0.1:9',
        },
      );
      const started = Date.now();
      while (!/listening on port/.test(secretary.output())) {
        if (secretary.exitCode !== null || Date.now() - started > 150_000) throw new Error(secretary.output());
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(readFileSync(ownLock, 'utf8').trim()).toBe(String(secretary.pid));

      const refused = run('npm', ['run', '--silent', 'migrate'], { PGLITE_DIR: ownDir });
      expect(await exitOf(refused)).toBe(1);
      expect(refused.output().trim()).toBe(
        `npm run migrate: The embedded database in ${ownDir} is in use by process ${secretary.pid} (a running ` +
          'secretary?): PGlite allows one process at a time. Stop that process first (a running secretary migrates ' +
          'at start anyway), or set DATABASE_URL to use a PostgreSQL server.',
      );

      // Stopped, the secretary removes its lock; migrate then runs.
      secretary.kill('SIGTERM');
      await exitOf(secretary);
      expect(existsSync(ownLock)).toBe(false);
      // A lock left by a process that died without cleaning up (its pid is gone) is stale and taken over. (The
      // lock of a SIGKILLed secretary is the same file; a real SIGKILL is not used here because PGlite makes no
      // durability promise for one, and the database it leaves may not open at all.)
      const dead = run(process.execPath, ['-e', ''], {});
      await exitOf(dead);
      writeFileSync(ownLock, `${dead.pid}\n`);
      const migrated = run('npm', ['run', '--silent', 'migrate'], { PGLITE_DIR: ownDir });
      expect(await exitOf(migrated), migrated.output()).toBe(0);
      expect(migrated.output(), migrated.output()).toMatch(/migrations applied \(pglite\)/);
      expect(existsSync(ownLock)).toBe(false);
    },
  );
});
