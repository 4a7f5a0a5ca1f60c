import type { Knex } from 'knex';

// A message_id (the idempotency key of /analyze-request) is unique per (channel, namespace, message_id), not per
// (channel, message_id): the namespace is the caller's, as for conversations (320_client_key_scope) — a client
// key's `keyId`, or '' for the shared namespace of service keys, admin keys and keyless loopback callers. Before,
// a client key that posted a real mail's Message-ID (or a guessed `tg:<chat>:<msg>`) first made the
// communicator's later post of that mail a 403, and the mail was never answered (docs/secretary.md,
// "Conversations belong to their client key").
//
// `message_namespace` is `coalesce(conversations.client_key_id, '')` of the message's conversation, on every row
// (answers too); not null, so the unique index treats the shared namespace as one value (a NULL would be distinct
// from every other NULL).
export const messageNamespaceMigration = { name: '340_message_namespace', up, down };

const OLD_UNIQUE = ['channel', 'message_id'];
const NEW_UNIQUE = ['channel', 'message_namespace', 'message_id'];
const NEW_UNIQUE_NAME = 'messages_channel_message_namespace_message_id_unique';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('messages', (t) => {
    t.text('message_namespace').notNullable().defaultTo('');
  });
  await knex.raw(`
    update messages m set message_namespace = c.client_key_id
      from conversations c
     where c.id = m.conversation_id and c.client_key_id is not null`);
  await knex.schema.alterTable('messages', (t) => {
    t.unique(NEW_UNIQUE, { indexName: NEW_UNIQUE_NAME });
  });
  await knex.schema.alterTable('messages', (t) => {
    t.dropUnique(OLD_UNIQUE);
  });
}

/**
 * Back to one message_id per channel. Refused (nothing changed; knex runs a migration in a transaction) while some
 * (channel, message_id) is held in more than one namespace: the old index cannot hold both, and which one to drop
 * is an operator's choice, not a migration's.
 */
export async function down(knex: Knex): Promise<void> {
  const shared = (await knex('messages')
    .whereNotNull('message_id')
    .groupBy('channel', 'message_id')
    .havingRaw('count(*) > 1')
    .select('channel', 'message_id')
    .orderBy(['channel', 'message_id'])) as { channel: string; message_id: string }[];
  if (shared.length > 0) {
    const examples = shared.slice(0, 5).map((r) => `${r.channel} ${r.message_id}`);
    throw new Error(
      `Migration 340_message_namespace cannot be undone: ${shared.length} (channel, message_id) pair(s) are held ` +
        `in more than one namespace (${examples.join(', ')}${shared.length > 5 ? ', …' : ''}); ` +
        `delete or rename all but one row of each in messages first`,
    );
  }
  await knex.schema.alterTable('messages', (t) => {
    t.unique(OLD_UNIQUE);
  });
  await knex.schema.alterTable('messages', (t) => {
    t.dropUnique(NEW_UNIQUE, NEW_UNIQUE_NAME);
    t.dropColumn('message_namespace');
  });
}
