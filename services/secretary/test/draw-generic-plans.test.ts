// Migration 400_draw_generic_plans: the statements inside `workemon_draw_budget` run on generic plans from the
// first call, instead of being planned anew for every call's keys (docs/operations.md, "The rate-limit draw and the
// lookup's plan"). Observed through PostgreSQL's own auto_explain module, loaded into the test's session only: with
// `log_nested_statements` it reports the plan of every statement the function runs, and at `client_min_messages =
// log` it reports them to this client as notices. A generic plan names the function's array argument as a
// parameter (`$1`); a plan made for one call's values names the keys themselves.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { migrateDatabase, openDatabase, type Database } from '../src/database.js';
import { migrationSource } from '../src/migrations.js';
import { DRAW_BUDGET_FUNCTION } from '../src/migrations/390_rate_limit_draw.js';
import { drawGenericPlansMigration } from '../src/migrations/400_draw_generic_plans.js';

let probes = 0;
/** A key no draw has taken from yet. */
const newKey = () => `analyze:key:generic-plan-probe-${(probes += 1)}`;

/**
 * The plans auto_explain reports for the statements of two draws of one unit from `key` (a key without a row yet),
 * on a new session so the function's plan cache starts empty, as on a connection the pool has just opened.
 */
async function plansOfTwoDraws(url: string, key: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  const notices: string[] = [];
  client.on('notice', (notice) => notices.push(notice.message ?? ''));
  await client.connect();
  try {
    await client.query("load 'auto_explain'");
    await client.query('set auto_explain.log_min_duration = 0');
    await client.query('set auto_explain.log_nested_statements = on');
    await client.query('set client_min_messages = log');
    // Twice: the first draw of a new key creates its row (the insert path), the second locks it (the usual path).
    for (let i = 0; i < 2; i += 1) {
      const { rows } = await client.query(
        `select drawn from ${DRAW_BUDGET_FUNCTION}(cast($1 as text[]), cast($2 as float8[]), cast($3 as float8[]), 1)`,
        [[key], [1_000_000], [60_000]],
      );
      expect(rows).toEqual([{ drawn: 1 }]);
    }
    // The nested statements that read the buckets by key (the top-level call's own plan is the last notice).
    return notices.filter((plan) => /rate_limit_buckets/.test(plan) && /key = ANY/.test(plan));
  } finally {
    await client.end();
  }
}

describe(`${DRAW_BUDGET_FUNCTION} on PostgreSQL (migration 400_draw_generic_plans)`, () => {
  let database: { url: string; drop: () => Promise<void> };
  let db: Database;

  beforeAll(async () => {
    database = await createTestDatabase(inject('postgresUrl'), 'secretary_draw_generic_plans');
    db = openDatabase({ url: database.url });
    await migrateDatabase(db);
  });
  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });

  it('plans its statements once for any keys, from the first call on a new session', async () => {
    const key = newKey();
    const plans = await plansOfTwoDraws(database.url, key);
    // The reads of which keys exist (both draws) and the locking read (the second): each by the array parameter.
    expect(plans.length).toBeGreaterThanOrEqual(3);
    for (const plan of plans) {
      expect(plan).toMatch(/key = ANY \(\$\d+\)/);
      expect(plan).not.toContain(key);
    }
  });

  it('was planned for each call before it (down), and is again after up', async () => {
    const migrations = { migrationSource, tableName: 'knex_migrations' };
    await db.knex.migrate.down({ ...migrations, name: drawGenericPlansMigration.name });
    try {
      const key = newKey();
      const plans = await plansOfTwoDraws(database.url, key);
      expect(plans.length).toBeGreaterThanOrEqual(3);
      // Custom plans: the keys of each call, written into the plan.
      expect(plans.every((plan) => plan.includes(key))).toBe(true);
    } finally {
      const [, again] = (await db.knex.migrate.up(migrations)) as [number, string[]];
      expect(again).toEqual([drawGenericPlansMigration.name]);
    }
    const key = newKey();
    expect((await plansOfTwoDraws(database.url, key)).every((plan) => !plan.includes(key))).toBe(true);
  });
});
