import type { Knex } from 'knex';

// Parked Telegram updates expire (PARKED_UPDATE_MAX_AGE_DAYS, parked-update-repository.ts) before the handled records
// that guard them (`deliveries`, DELIVERY_RETENTION_DAYS): a row nobody removed must never be reloaded once its
// handled record is gone, or its update would be answered a second time. The index serves the prune by age; rows
// older than the bound that 360 may have left are deleted here (2 days, as PARKED_UPDATE_MAX_AGE_DAYS).
export const telegramParkedUpdatesExpiryMigration = { name: '380_telegram_parked_updates_expiry', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('telegram_parked_updates', (t) => {
    t.index(['resource', 'parked_at'], 'telegram_parked_updates_resource_parked_at');
  });
  await knex('telegram_parked_updates').where('parked_at', '<', knex.raw(`now() - interval '2 days'`)).delete();
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('telegram_parked_updates', (t) => {
    t.dropIndex(['resource', 'parked_at'], 'telegram_parked_updates_resource_parked_at');
  });
}
