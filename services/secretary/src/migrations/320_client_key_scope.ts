import type { Knex } from 'knex';

// The client key (API_KEYS) a conversation belongs to: its `Principal.keyId` (`sha256:` and 16 hex digits of the
// key's SHA-256, never the key). Null: the shared namespace of service keys (the communicator's mail and Telegram
// threads), admin keys and keyless loopback callers. A conversation is continued (by thread_key or by an open
// question) and its message_ids are answered only for a caller of the same namespace (docs/secretary.md,
// "Conversations belong to their client key").
export const clientKeyScopeMigration = { name: '320_client_key_scope', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('conversations', (t) => {
    t.text('client_key_id');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('conversations', (t) => {
    t.dropColumn('client_key_id');
  });
}
