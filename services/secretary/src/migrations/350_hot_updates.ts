import type { Knex } from 'knex';

// Heap-only-tuple (HOT) updates on the request path (issue 14, docs/operations.md "PostgreSQL on the request
// path"). PostgreSQL updates a row in place — no new entry in any of the table's indexes — only when no indexed
// column changes and the row's page has room for the new version (PostgreSQL documentation, "Heap-Only Tuples").
// Two indexes stopped that for rows written on every request, and neither served a query:
// - `rate_limit_buckets (tat_ms)`: every draw moves `tat_ms`, so every draw was a non-HOT update of one of a few
//   hot rows (a client key's `analyze:key:…` and a username's `analyze:username:…`, drawn from by every
//   /analyze-request of that key; service keys such as the communicator's are exempt), and the table and its
//   primary key grew by a dead version per request until vacuum. Its only reader is the cleanup, which runs at most once a minute
//   per process (RATE_LIMIT_CLEANUP_INTERVAL_MS) over one row per active key: a sequential scan does it.
// - `analyses (category)`: the decision sets the category (the classifier's, NULL before) of the analysis claimed
//   moments before. No query filters or sorts by category (stats count by channel, action and outcome).
// Fill factors leave each page room for the next version of its rows: a bucket is rewritten on every draw, an
// analysis once, when it is decided (its answer makes the row several times longer).
export const hotUpdatesMigration = { name: '350_hot_updates', up, down };

// Run while older replicas serve (a rolling upgrade): their code reads neither index. Dropping an index locks its
// table exclusively for a moment, so the tables are taken in the order the request path's lookup takes them
// (`analyses` before `rate_limit_buckets`: a statement locks its relations in one go when it starts), which
// cannot deadlock with a request; and a lock that is not granted within MIGRATION_LOCK_TIMEOUT (a long reader such
// as a dump) fails the migration, whose transaction rolls back, instead of queueing every request behind it. The
// secretary then stops with the error and its next start runs the migration again.
const MIGRATION_LOCK_TIMEOUT = '10s';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`set local lock_timeout = '${MIGRATION_LOCK_TIMEOUT}'`);
  await knex.raw('drop index if exists analyses_category_index');
  await knex.raw('alter table analyses set (fillfactor = 70)');
  await knex.raw('drop index if exists rate_limit_buckets_tat_ms_index');
  await knex.raw('alter table rate_limit_buckets set (fillfactor = 50)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`set local lock_timeout = '${MIGRATION_LOCK_TIMEOUT}'`);
  await knex.raw('alter table analyses reset (fillfactor)');
  // Blocks writes to analyses while it builds: on a large table, run it in a quiet moment.
  await knex.raw('create index if not exists analyses_category_index on analyses (category)');
  await knex.raw('alter table rate_limit_buckets reset (fillfactor)');
  await knex.raw('create index if not exists rate_limit_buckets_tat_ms_index on rate_limit_buckets (tat_ms)');
}
