import type { Knex } from 'knex';

// Heap-only-tuple (HOT) updates on the request path (issue 14, docs/operations.md "PostgreSQL on the request
// path"). PostgreSQL updates a row in place — no new entry in any of the table's indexes — only when no indexed
// column changes and the row's page has room for the new version (PostgreSQL documentation, "Heap-Only Tuples").
// Two indexes stopped that for rows written on every request, and neither served a query:
// - `rate_limit_buckets (tat_ms)`: every draw moves `tat_ms`, so every draw was a non-HOT update of one of a few
//   hot rows (the communicator's client key is drawn from on each mail), and the table and its primary key grew
//   by a dead version per request until vacuum. Its only reader is the cleanup, which runs at most once a minute
//   per process (RATE_LIMIT_CLEANUP_INTERVAL_MS) over one row per active key: a sequential scan does it.
// - `analyses (category)`: the decision sets the category of the analysis claimed moments before. No query
//   filters or sorts by category (stats count by channel, action and outcome).
// Fill factors leave each page room for the next version of its rows: a bucket is rewritten on every draw, an
// analysis once, when it is decided (its answer makes the row several times longer).
export const hotUpdatesMigration = { name: '350_hot_updates', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists rate_limit_buckets_tat_ms_index');
  await knex.raw('alter table rate_limit_buckets set (fillfactor = 50)');
  await knex.raw('drop index if exists analyses_category_index');
  await knex.raw('alter table analyses set (fillfactor = 70)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table analyses reset (fillfactor)');
  await knex.raw('create index if not exists analyses_category_index on analyses (category)');
  await knex.raw('alter table rate_limit_buckets reset (fillfactor)');
  await knex.raw('create index if not exists rate_limit_buckets_tat_ms_index on rate_limit_buckets (tat_ms)');
}
