// Migration 350_hot_updates: a rate-limit draw rewrites its bucket in place (a heap-only-tuple update, no new
// index entry), so the few rows every request draws from (a client key's, a username's) stay one version each
// instead of piling up dead versions in the table and its primary key until vacuum (docs/operations.md,
// "PostgreSQL on the request path"). Counted by PostgreSQL's own transaction statistics
// (pg_stat_get_xact_tuples_updated / _hot_updated, "The Cumulative Statistics System").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase, type Database } from '../src/database.js';
import {
  DRAW_VERDICT_COLUMNS,
  budgetParams,
  createRateLimitStore,
  drawBudgetCtes,
  drawVerdict,
} from '../src/rate-limits/rate-limit-store.js';
import { createDatabaseOfKind, type TestDatabaseOfKind } from './database-kinds.js';

const DRAWS = 40;

describe('rate-limit draws on PostgreSQL (migration 350_hot_updates)', () => {
  let handle: TestDatabaseOfKind;
  let db: Database;

  beforeAll(async () => {
    handle = await createDatabaseOfKind('postgres', 'secretary_hot_updates');
    db = handle.open();
    await migrateDatabase(db);
  });
  afterAll(async () => {
    await db?.close();
    await handle?.remove();
  });

  it('rewrite the buckets in place: every update after the first draw is heap-only', async () => {
    const entries = [
      { key: 'analyze:key:hot', limit: 1_000, windowSeconds: 60 },
      { key: 'analyze:username:hot', limit: 1_000, windowSeconds: 3600 },
    ];
    const [keys, limits, windowsMs] = budgetParams(entries);
    // The statement shape of the request path (history-write-repository.ts puts these CTEs into its lookup).
    const draw = `with one as (select 1)${drawBudgetCtes('?', '?', '?')} select ${DRAW_VERDICT_COLUMNS}`;
    const counts = await db.knex.transaction(async (trx) => {
      for (let i = 0; i < DRAWS; i += 1) {
        const { rows } = (await trx.raw(draw, [keys, limits, windowsMs, keys])) as {
          rows: { rl_refused_key: string | null; rl_over_ms: number | null }[];
        };
        expect(drawVerdict(rows[0]!.rl_refused_key, rows[0]!.rl_over_ms)).toEqual({ allowed: true });
      }
      const { rows } = (await trx.raw(
        `select pg_stat_get_xact_tuples_inserted(c.oid)::int as inserted,
                pg_stat_get_xact_tuples_updated(c.oid)::int as updated,
                pg_stat_get_xact_tuples_hot_updated(c.oid)::int as hot_updated
           from pg_class c where c.relname = 'rate_limit_buckets'`,
      )) as { rows: { inserted: number; updated: number; hot_updated: number }[] };
      return rows[0]!;
    });
    // The first draw creates the two rows; each later one updates both.
    expect(counts.inserted).toBe(2);
    expect(counts.updated).toBe(2 * (DRAWS - 1));
    expect(counts.hot_updated).toBe(counts.updated);
  });

  it('still lets the cleanup find and delete the rows that hold no budget (no index on tat_ms)', async () => {
    const store = createRateLimitStore(db.knex);
    await db.knex('rate_limit_buckets').insert([
      { key: 'email:stale@corp.example', tat_ms: 1_000 },
      { key: 'email:fresh@corp.example', tat_ms: Date.now() + 3_600_000 },
    ]);
    const deleted = await store.cleanup();
    expect(deleted).toBeGreaterThanOrEqual(1);
    const left = (await db.knex('rate_limit_buckets').pluck('key')) as string[];
    expect(left).toContain('email:fresh@corp.example');
    expect(left).not.toContain('email:stale@corp.example');
  });
});
