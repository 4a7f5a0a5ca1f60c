import type { Knex } from 'knex';

// The intake a mail came through, beside the audit row's `channel` (docs/audit.md, "Intake"): the channel enum
// stays as the contract fixes it (`email` for a mail the secretary decided, whatever brought it), and
// `event_provider` (ECS `event.provider`, flattened as `event_id` is ECS `event.id`) names the intake — `imap`,
// `mailgun`, `sendgrid`, `ses` — so the secretary's own rows of webhook mail can be told from IMAP mail's.
// Rows the communicator reported under a webhook's channel are that provider's: they are filled in here, and on
// every later write (audit-repository.ts auditRowOf). Plain `text`, nullable: older rows and rows of other
// channels have none. A column without a default is a catalogue-only change (no table rewrite), safe while
// older replicas serve: they neither read nor write it.
export const auditEventProviderMigration = { name: '370_audit_event_provider', up, down };

const WEBHOOK_CHANNELS = ['mailgun', 'sendgrid', 'ses'];

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('audit_events', (t) => {
    t.text('event_provider');
  });
  await knex('audit_events')
    .whereIn('channel', WEBHOOK_CHANNELS)
    .update({ event_provider: knex.ref('channel') });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('audit_events', (t) => {
    t.dropColumn('event_provider');
  });
}
