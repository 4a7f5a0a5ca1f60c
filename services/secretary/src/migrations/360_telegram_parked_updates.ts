import type { Knex } from 'knex';

// Telegram updates the communicator took out of Telegram's queue before it finished handling them ("parking",
// docs/communicator.md "Telegram: exactly once"): one chat that waits long (a 429 with a large retry_after, a slow
// analysis) would otherwise hold the getUpdates offset back for every chat. A row is the raw Update JSON, stored
// before the offset moves past it and removed once the update was handled (its `deliveries` record written).
export const telegramParkedUpdatesMigration = { name: '360_telegram_parked_updates', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('telegram_parked_updates', (t) => {
    // The polled bot, as its poller lease names it: `telegram:<bot id>`.
    t.text('resource').notNullable();
    t.bigInteger('update_id').notNullable();
    // The raw Update as the Bot API sent it (JSON text, at most PARKED_UPDATE_MAX_BYTES bytes).
    t.text('body').notNullable();
    t.timestamp('parked_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['resource', 'update_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('telegram_parked_updates');
}
