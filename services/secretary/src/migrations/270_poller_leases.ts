import type { Knex } from 'knex';

// One row per polled resource (a mailbox, a bot token): which communicator replica polls it, until when, and a
// fencing epoch bumped at every change of holder (docs/kubernetes.md, "One active poller").
export const pollerLeasesMigration = { name: '270_poller_leases', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('poller_leases', (t) => {
    // The resource, named by the communicator without secrets: `imap:<user>@<host>:<port>/<mailbox>`,
    // `telegram:<bot id>`.
    t.text('name').primary();
    t.text('holder').notNullable();
    t.bigInteger('epoch').notNullable().defaultTo(1);
    t.timestamp('acquired_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('renewed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('poller_leases');
}
