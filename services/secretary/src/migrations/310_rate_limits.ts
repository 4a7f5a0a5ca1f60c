import type { Knex } from 'knex';

// One row per rate-limited key (`email:<address>`, `analyze:username:<name>`, …): its GCRA "theoretical arrival
// time" (docs/rate-limits.md). A row whose tat lies in the past holds no budget: it is the same as no row, and
// the store's cleanup deletes it.
export const rateLimitsMigration = { name: '310_rate_limits', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('rate_limit_buckets', (t) => {
    t.text('key').primary();
    // Milliseconds since the Unix epoch on the database clock (float8: exact for integers up to 2^53).
    t.double('tat_ms').notNullable();
    t.index(['tat_ms']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rate_limit_buckets');
}
