import type { Knex } from 'knex';

// Issue 9 ("Trust in the sender"): the verdict on each analysed sender, and why an action did not run on its own.
export const senderTrustMigration = { name: '200_sender_trust', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('analyses', (t) => {
    // {known, authenticated, external, unknownAllowed, method, detail} (sender-trust.ts SenderTrust).
    t.jsonb('sender_trust');
  });
  await knex.schema.alterTable('action_executions', (t) => {
    // sender_unknown | sender_unauthenticated | external_domain; null: the sender was trusted.
    t.text('withheld_reason');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('action_executions', (t) => t.dropColumn('withheld_reason'));
  await knex.schema.alterTable('analyses', (t) => t.dropColumn('sender_trust'));
}
