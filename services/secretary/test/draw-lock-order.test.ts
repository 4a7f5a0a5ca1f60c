// `workemon_draw_budget` takes its row locks in key order on both of its paths (migration 390_rate_limit_draw), so
// concurrent draws from several secretary replicas wait for each other and never deadlock. Reproduced on a
// PostgreSQL server with four sessions, each step started once the one before it is blocked on a lock or done
// (pg_stat_activity's wait_event_type, PostgreSQL documentation "The Statistics Collector", wait events):
// a session holds key B, so a draw of A and B that found only B waits; a draw of A alone creates A; a draw of A
// and B that finds both waits too; the holder lets go. A function that locked the row it found first and created
// the missing one after (B before A) would hold B while the third session holds A and wants B: PostgreSQL would
// break that deadlock by failing one draw (SQLSTATE 40P01) after `deadlock_timeout`.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { waitFor } from '@workemon/testkit';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { migrateDatabase, openDatabase, type Database } from '../src/database.js';
import { createRateLimitStore } from '../src/rate-limits/rate-limit-store.js';
import { DRAW_BUDGET_FUNCTION } from '../src/migrations/390_rate_limit_draw.js';

// Key order is text order: A sorts before B.
const A = 'analyze:key:lock-order-a';
const B = 'analyze:username:lock-order-b';

// A unit every 3.6 s (1,000 per hour): the units drawn are read back as whole units ahead of now.
const UNIT_MS = 3_600;

type Session = { client: pg.Client; pid: number };

describe(`${DRAW_BUDGET_FUNCTION}'s lock order on PostgreSQL`, () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Database;
  const sessions: Session[] = [];

  /** A new connection of its own, with its backend's process id (pg_stat_activity.pid). */
  async function session(): Promise<Session> {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
    const opened = { client, pid: rows[0]!.pid };
    sessions.push(opened);
    return opened;
  }

  /** One unit from each of `keys`, in the caller's order; resolves to the units drawn. */
  async function draw(on: Session, keys: string[]): Promise<number> {
    const { rows } = await on.client.query<{ drawn: number }>(
      `select drawn from ${DRAW_BUDGET_FUNCTION}(cast($1 as text[]), cast($2 as float8[]), cast($3 as float8[]), 1)`,
      [keys, keys.map(() => 1_000), keys.map(() => UNIT_MS * 1_000)],
    );
    return rows[0]!.drawn;
  }

  /** Settles when `running` has finished, or its backend waits for a lock another session holds. */
  async function blockedOrDone(on: Session, running: Promise<unknown>): Promise<void> {
    let done = false;
    void running.then(
      () => (done = true),
      () => (done = true),
    );
    const observer = sessions[0]!;
    await waitFor(
      async () => {
        if (done) return true;
        const { rows } = await observer.client.query<{ waiting: boolean }>(
          `select wait_event_type = 'Lock' as waiting from pg_stat_activity where pid = $1`,
          [on.pid],
        );
        return rows[0]?.waiting === true;
      },
      { timeoutMs: 10_000, intervalMs: 10, what: `session ${on.pid} to wait for a lock or finish` },
    );
  }

  beforeAll(async () => {
    database = await createTestDatabase(inject('postgresUrl'), 'secretary_draw_lock_order');
    db = openDatabase({ url: database.url });
    await migrateDatabase(db);
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.client.end().catch(() => undefined)));
    await db?.close();
    await database?.drop();
  });

  it('lets draws that found their rows and draws that create them wait for each other, without a deadlock', async () => {
    const observer = await session();
    const holder = await session();
    const [foundB, createsA, foundBoth] = [await session(), await session(), await session()];
    // B has a row (an earlier draw); A has none.
    expect(await draw(observer, [B])).toBe(1);

    await holder.client.query('begin');
    await holder.client.query('select 1 from rate_limit_buckets where key = $1 for update', [B]);

    const first = draw(foundB, [A, B]);
    await blockedOrDone(foundB, first);
    const second = draw(createsA, [A]);
    await blockedOrDone(createsA, second);
    const third = draw(foundBoth, [A, B]);
    await blockedOrDone(foundBoth, third);
    await holder.client.query('commit');

    const outcomes = await Promise.allSettled([first, second, third]);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : String(o.reason)))).toEqual([1, 1, 1]);
    // Every unit is in the buckets: A drawn three times, B three times (with the first one).
    const { rows } = await observer.client.query<{ key: string; units: number }>(
      `select key, ceil((tat_ms - extract(epoch from clock_timestamp()) * 1000) / $2)::int as units
         from rate_limit_buckets where key = any($1) order by key`,
      [[A, B], UNIT_MS],
    );
    expect(rows).toEqual([
      { key: A, units: 3 },
      { key: B, units: 3 },
    ]);
  });

  it('cleans up without waiting for a draw: rows a draw has locked are skipped, the others deleted', async () => {
    const observer = sessions[0] ?? (await session());
    const drawing = await session();
    const [held, free] = ['analyze:username:cleanup-held', 'analyze:username:cleanup-free'];
    // Two rows that hold no budget any more (tat in the past); a draw in progress has locked one of them.
    await observer.client.query('insert into rate_limit_buckets (key, tat_ms) values ($1, 0), ($2, 0)', [held, free]);
    await drawing.client.query('begin');
    await drawing.client.query('select 1 from rate_limit_buckets where key = $1 for update', [held]);
    try {
      let done = false;
      const cleaning = createRateLimitStore(db.knex)
        .cleanup()
        .finally(() => (done = true));
      // Settles when the clean-up has finished or its statement waits for the draw's lock.
      const waited = await waitFor(
        async () => {
          if (done) return 'no';
          const { rows } = await observer.client.query<{ n: number }>(
            `select count(*)::int as n from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock' and query ilike 'delete from%'`,
          );
          return rows[0]!.n > 0 ? 'yes' : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 10, what: 'the clean-up to finish or wait for a lock' },
      );
      expect(waited).toBe('no');
      expect(await cleaning).toBe(1);
      const { rows } = await observer.client.query<{ key: string }>(
        'select key from rate_limit_buckets where key = any($1)',
        [[held, free]],
      );
      expect(rows).toEqual([{ key: held }]);
    } finally {
      await drawing.client.query('commit');
    }
  });
});
