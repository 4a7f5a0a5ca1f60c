// runPrepared (database.ts): the request path's named statements on knex's pool. A connection a statement used is
// kept for the next statement a short while (HOT_CONNECTION_IDLE_MS) instead of a pool acquire per statement; these
// tests pin what that must never change: knex's own queries and shutdown are not held up, a lost connection is
// not used again, a transaction's statements stay on its connection. And pgArrayLiteral writes arrays as pg does.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createRequire } from 'node:module';
import pg from 'pg';
import { createLogger } from '@workemon/service-kit';
import { waitFor } from '@workemon/testkit';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import {
  migrateDatabase,
  openDatabase,
  runPrepared,
  withGenericPlan,
  type Database,
  type PreparedStatement,
} from '../src/database.js';
import { createHistoryWriteRepository } from '../src/history-write-repository.js';
import { pgArrayLiteral } from '../src/rate-limits/rate-limit-store.js';

// node-postgres' own parameter serialiser (pg/lib/utils.js): what a JS array parameter is written as.
const pgUtils = createRequire(import.meta.url)('pg/lib/utils.js') as { prepareValue: (value: unknown) => unknown };

const BACKEND_PID: PreparedStatement = { name: 'test_backend_pid', text: 'select pg_backend_pid() as pid' };
const ECHO_TEXT_ARRAY: PreparedStatement = { name: 'test_echo_text_array', text: 'select cast($1 as text[]) as a' };

// knex reports (as a warning) the connection the server closed; these tests cause that on purpose.
const quiet = createLogger({ service: 'secretary', level: 'error' });

let database: { url: string; drop: () => Promise<void> };
let db: Database;

const backendPid = async (on: Parameters<typeof runPrepared>[0] = db.knex) =>
  (await runPrepared<{ pid: number }>(on, BACKEND_PID, []))[0]!.pid;

beforeAll(async () => {
  database = await createTestDatabase(inject('postgresUrl'), 'secretary_prepared');
  db = openDatabase({ url: database.url, poolMax: 1, logger: quiet });
});

afterAll(async () => {
  await db?.close();
  await database?.drop();
});

describe('runPrepared on a PostgreSQL server', () => {
  it('runs consecutive statements on one connection, and knex queries still get it (pool of one)', async () => {
    const first = await backendPid();
    expect(await backendPid()).toBe(first);
    // The only pooled connection is held for the next statement: a knex query is served all the same.
    const row = (await db.knex.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] };
    expect(row.rows[0]!.pid).toBe(first);
    expect(await backendPid()).toBe(first);
  });

  it('hands a held connection to a knex acquire at once, not after the sweep (pool of one)', async () => {
    await backendPid();
    const pool = db.knex.client.pool as unknown as {
      numFree(): number;
      on(event: 'acquireRequest', listener: () => void): void;
      removeListener(event: 'acquireRequest', listener: () => void): void;
    };
    // tarn runs acquireRequest listeners in order, before the acquire waits: runPrepared's (registered by the first
    // statement) has already given the held connection back when this one looks.
    const freeAtRequest: number[] = [];
    const look = () => freeAtRequest.push(pool.numFree());
    pool.on('acquireRequest', look);
    try {
      await db.knex.raw('select 1');
    } finally {
      pool.removeListener('acquireRequest', look);
    }
    expect(freeAtRequest).toEqual([1]);
  });

  it('does not use a connection the server closed again: the next statement gets a new one', async () => {
    const lost = await backendPid();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query('select pg_terminate_backend($1)', [lost]);
    } finally {
      await admin.end();
    }
    // The server's goodbye reaches the client asynchronously; until then a statement may still fail on it.
    let next: number | undefined;
    await waitFor(
      async () => {
        next = await backendPid().catch(() => undefined);
        return next !== undefined;
      },
      { timeoutMs: 10_000, what: 'a statement after the connection was closed' },
    );
    expect(next).not.toBe(lost);
    expect(await backendPid()).toBe(next);
  });

  it("runs a transaction's statements on the transaction's connection", async () => {
    await db.knex.transaction(async (trx) => {
      const own = (await trx.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] };
      expect(await backendPid(trx)).toBe(own.rows[0]!.pid);
    });
    expect(await backendPid()).toBeGreaterThan(0);
  });

  it('lets the database close right after a statement (nothing is held past close)', async () => {
    const other = openDatabase({ url: database.url, poolMax: 2 });
    expect(await backendPid(other.knex)).toBeGreaterThan(0);
    await other.close();
    await expect(backendPid(other.knex)).rejects.toThrow();
  });
});

describe('pgArrayLiteral', () => {
  const values = ['plain', '', 'with "quotes"', 'back\\slash', 'a,b', '{braces}', 'NULL', 'пробел и юникод ✓', 'x\\"y'];

  it('writes what node-postgres writes for the same array', () => {
    expect(pgArrayLiteral(values)).toBe(pgUtils.prepareValue(values));
    expect(pgArrayLiteral([1, 3_600_000, 0.5])).toBe(pgUtils.prepareValue([1, 3_600_000, 0.5]));
    expect(pgArrayLiteral([])).toBe(pgUtils.prepareValue([]));
  });

  it('is read back by PostgreSQL as the same array', async () => {
    const [row] = await runPrepared<{ a: string[] }>(db.knex, ECHO_TEXT_ARRAY, [pgArrayLiteral(values)]);
    expect(row!.a).toEqual(values);
  });
});

describe('withGenericPlan', () => {
  it('turns every cast of a parameter into a scalar subquery and leaves other casts alone', () => {
    expect(
      withGenericPlan(
        'select x from t where a = cast($1 as text) and b = any(CAST($12 as float8[])) and c::text = cast(d as text)' +
          ' and broadcast($2 as text)',
      ),
    ).toBe(
      'select x from t where a = (select cast($1 as text)) and b = any((select cast($12 as float8[]))) ' +
        'and c::text = cast(d as text) and broadcast($2 as text)',
    );
  });

  it("keeps the request lookup on one generic plan, however null its values (the server's plan cache)", async () => {
    const lookupDatabase = await createTestDatabase(inject('postgresUrl'), 'secretary_generic_plan');
    const migrating = openDatabase({ url: lookupDatabase.url, poolMax: 4, logger: quiet });
    await migrateDatabase(migrating);
    await migrating.close();
    // A pool of one: every lookup and the catalogue query below share one connection, hence one plan cache.
    const single = openDatabase({ url: lookupDatabase.url, poolMax: 1, logger: quiet });
    try {
      const history = createHistoryWriteRepository(single.knex);
      for (let i = 0; i < 12; i += 1) {
        // As `npm run bench` and most direct requests send: no message_id, no thread, an unknown sender.
        const found = await history.lookupRequest({
          channel: 'direct',
          sender: `nobody-${i}`,
          messageId: undefined,
          threadKey: undefined,
          clarificationTtlMs: 60_000,
          leaseMs: 60_000,
          senderKeys: { email: null, username: `nobody-${i}`, telegramUsername: null, telegramId: null },
        });
        expect(found.prior).toEqual({});
      }
      const { rows } = (await single.knex.raw(
        `select generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements
          where name = 'workemon_lookup_request'`,
      )) as { rows: { generic: number; custom: number }[] };
      // The first five executions are planned for their values, as PostgreSQL always does; none after them.
      expect(rows).toEqual([{ generic: 7, custom: 5 }]);
    } finally {
      await single.close();
      await lookupDatabase.drop();
    }
  });
});
