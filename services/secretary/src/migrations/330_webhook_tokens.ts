import type { Knex } from 'knex';

// One row per webhook replay token a provider signed (a Mailgun `token`), reserved by the first communicator
// replica that took it, for the payload it came with, until its signed timestamp is stale anyway
// (docs/webhooks.md, "Mailgun tokens across replicas"). An expired row holds nothing and is deleted.
export const webhookTokensMigration = { name: '330_webhook_tokens', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('webhook_tokens', (t) => {
    t.text('provider').notNullable();
    t.text('token').notNullable();
    // Hex SHA-256 of the payload the token was first seen with: a retry of that post repeats it, a replay differs.
    t.text('payload_sha256').notNullable();
    t.timestamp('reserved_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.primary(['provider', 'token']);
    t.index(['expires_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('webhook_tokens');
}
