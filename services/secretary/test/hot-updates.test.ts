// Migration 350_hot_updates: a rate-limit draw rewrites its bucket in place (a heap-only-tuple update, no new
// index entry), so the few rows every request draws from (a client key's, a username's) stay one version each
// instead of piling up dead versions in the table and its primary key until vacuum; and the decision that fills an
// analysis (its category and answer) does the same (docs/operations.md, "PostgreSQL on the request path").
// Counted by PostgreSQL's own statistics of the test's transaction (pg_stat_get_xact_tuples_updated /
// _hot_updated, "The Cumulative Statistics System"), as differences: a pooled connection's counters may still hold
// an earlier transaction's counts that were not flushed yet.
import type { Knex } from 'knex';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase, type Database } from '../src/database.js';
import { budgetParams, createRateLimitStore } from '../src/rate-limits/rate-limit-store.js';
import { DRAW_BUDGET_FUNCTION } from '../src/migrations/390_rate_limit_draw.js';
import { createDatabaseOfKind, type TestDatabaseOfKind } from './database-kinds.js';

const DRAWS = 40;

type TableCounts = { inserted: number; updated: number; hot_updated: number };

/** The transaction's insert, update and heap-only update counts of `table` so far. */
async function countsOf(trx: Knex.Transaction, table: string): Promise<TableCounts> {
  const { rows } = (await trx.raw(
    `select pg_stat_get_xact_tuples_inserted(c.oid)::int as inserted,
            pg_stat_get_xact_tuples_updated(c.oid)::int as updated,
            pg_stat_get_xact_tuples_hot_updated(c.oid)::int as hot_updated
       from pg_class c where c.relname = ? and c.relkind = 'r'`,
    [table],
  )) as { rows: TableCounts[] };
  return rows[0]!;
}

const since = (before: TableCounts, after: TableCounts): TableCounts => ({
  inserted: after.inserted - before.inserted,
  updated: after.updated - before.updated,
  hot_updated: after.hot_updated - before.hot_updated,
});

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
    // The call of the request path (rate-limit-store.ts createBudgetDrawer), one unit each time.
    const draw = `select drawn, refused_key from ${DRAW_BUDGET_FUNCTION}(cast(? as text[]), cast(? as float8[]),
                  cast(? as float8[]), 1)`;
    const counts = await db.knex.transaction(async (trx) => {
      const drawOnce = async () => {
        const { rows } = (await trx.raw(draw, [keys, limits, windowsMs])) as {
          rows: { drawn: number; refused_key: string | null }[];
        };
        expect(rows).toEqual([{ drawn: 1, refused_key: null }]);
      };
      // The first draw creates the two rows (and writes their tat).
      const first = await countsOf(trx, 'rate_limit_buckets');
      await drawOnce();
      expect(since(first, await countsOf(trx, 'rate_limit_buckets')).inserted).toBe(2);
      const before = await countsOf(trx, 'rate_limit_buckets');
      for (let i = 1; i < DRAWS; i += 1) await drawOnce();
      return since(before, await countsOf(trx, 'rate_limit_buckets'));
    });
    // Each later draw locks both rows (no new version for that) and writes their tat: one update of each.
    expect(counts.inserted).toBe(0);
    expect(counts.updated).toBe(2 * (DRAWS - 1));
    expect(counts.hot_updated).toBe(counts.updated);
  });

  it('fill an analysis in place when it is decided: category set, answer written, on a page already full', async () => {
    const counts = await db.knex.transaction(async (trx) => {
      const before = await countsOf(trx, 'analyses');
      const [conversation] = (await trx('conversations')
        .insert({ channel: 'direct', sender: 'hot' })
        .returning('id')) as { id: number }[];
      const conversationId = conversation!.id;
      const [message] = (await trx('messages')
        .insert({ conversation_id: conversationId, channel: 'direct', role: 'user', text: 'hot' })
        .returning('id')) as { id: number }[];
      const messageId = message!.id;
      // Claimed analyses (no category yet), enough to fill the table's first page up to its fill factor.
      const ids = (await trx('analyses')
        .insert(
          Array.from({ length: 80 }, (_, i) => ({
            conversation_id: conversationId,
            message_id: messageId,
            channel: 'direct',
            request: `Нужна выгрузка авторизаций кошельков за октябрь, запрос ${i}`.padEnd(120, '.'),
          })),
        )
        .returning('id')) as { id: number }[];
      // The decision's columns (history-write-repository.ts RECORD_DECISION): the classifier's category and a
      // 1,200-byte answer, on the first analysis, whose page the later ones filled.
      await trx('analyses')
        .where({ id: ids[0]!.id })
        .update({
          outcome: 'succeeded',
          is_enough: true,
          action: 'reply',
          category: 'access',
          confidence: 0.9,
          response: 'Ответ. '.repeat(100),
          completed_at: trx.fn.now(),
        });
      return since(before, await countsOf(trx, 'analyses'));
    });
    expect(counts.inserted).toBe(80);
    expect(counts.updated).toBe(1);
    expect(counts.hot_updated).toBe(1);
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
