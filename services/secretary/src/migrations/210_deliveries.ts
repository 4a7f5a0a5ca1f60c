import type { Knex } from 'knex';

// Inbound messages the communicator has handled (answered, deliberately skipped or given up), keyed by the
// channel's idempotency key: a restart that sees a Telegram update again (its offset was not yet confirmed)
// finds it here and does not answer it twice. See docs/communicator.md "Exactly once".
export const deliveriesMigration = { name: '210_deliveries', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('deliveries', (t) => {
    t.text('key').primary();
    t.text('channel').notNullable();
    // sent | skipped | failed
    t.text('outcome').notNullable();
    t.text('reason');
    t.timestamp('recorded_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['recorded_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('deliveries');
}
