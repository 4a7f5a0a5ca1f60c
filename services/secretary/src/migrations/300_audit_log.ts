import type { Knex } from 'knex';

// The audit log (issue 15, docs/audit.md): one row per event in the life of a message — received, skipped with
// its reason, decided, delivered or failed — written by the communicator (POST /audit-events) and by the
// secretary itself (REST requests, decisions, action deliveries). `event_id` is the writer's idempotency key: a
// retry after a crash inserts nothing new.
export const auditLogMigration = { name: '300_audit_log', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id');
    t.text('event_id').notNullable().unique();
    // email | telegram | direct | mailgun | sendgrid | ses
    t.text('channel').notNullable();
    // inbound | outbound
    t.text('direction').notNullable();
    // received | skipped | decided | delivered | failed
    t.text('outcome').notNullable();
    t.text('reason');
    t.text('message_id');
    t.text('request_id');
    t.integer('conversation_id');
    t.text('sender');
    t.text('recipient');
    t.text('subject');
    t.text('detail');
    t.boolean('dry_run').notNullable().defaultTo(false);
    t.timestamp('occurred_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('recorded_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    // GET /audit pages newest first by (occurred_at, id); the filters each narrow by one column.
    t.index(['occurred_at', 'id']);
    t.index(['channel', 'occurred_at']);
    t.index(['reason', 'occurred_at']);
    t.index(['message_id']);
    t.index(['request_id']);
    t.index(['conversation_id']);
    // Retention deletes by the time the row was written.
    t.index(['recorded_at']);
  });
  // Senders are filtered case-insensitively (mail addresses).
  await knex.raw('CREATE INDEX audit_events_lower_sender_index ON audit_events (lower(sender), occurred_at)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('audit_events');
}
