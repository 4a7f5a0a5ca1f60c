import type { Knex } from 'knex';
import { actionsAndRulesMigration } from './migrations/100_actions_and_rules.js';
import { actionForeignKeysMigration } from './migrations/101_action_foreign_keys.js';
import { senderTrustMigration } from './migrations/200_sender_trust.js';
import { deliveriesMigration } from './migrations/210_deliveries.js';
import { analysisClassificationMigration } from './migrations/220_analysis_classification.js';
import { actionRetriesMigration } from './migrations/220_action_retries.js';
import { personasAndProvenanceMigration } from './migrations/230_personas_and_provenance.js';
import { pollerLeasesMigration } from './migrations/270_poller_leases.js';
import { routingRulesVersionMigration } from './migrations/285_routing_rules_version.js';
import { auditLogMigration } from './migrations/300_audit_log.js';
import { rateLimitsMigration } from './migrations/310_rate_limits.js';
import { clientKeyScopeMigration } from './migrations/320_client_key_scope.js';
import { webhookTokensMigration } from './migrations/330_webhook_tokens.js';
import { messageNamespaceMigration } from './migrations/340_message_namespace.js';
import { hotUpdatesMigration } from './migrations/350_hot_updates.js';
import { telegramParkedUpdatesMigration } from './migrations/360_telegram_parked_updates.js';
import { auditEventProviderMigration } from './migrations/370_audit_event_provider.js';
import { telegramParkedUpdatesExpiryMigration } from './migrations/380_telegram_parked_updates_expiry.js';
import { rateLimitDrawMigration } from './migrations/390_rate_limit_draw.js';
import { drawGenericPlansMigration } from './migrations/400_draw_generic_plans.js';

type Migration = { name: string; up: (knex: Knex) => Promise<void>; down: (knex: Knex) => Promise<void> };

// Migrations live in code (not a directory knex scans) so the same list runs from sources (tsx, vitest) and
// from dist/ without file-extension tricks. Append only: a migration that has run is never edited.
const migrations: Migration[] = [
  {
    name: '001_directory_and_history',
    async up(knex) {
      await knex.schema.createTable('departments', (t) => {
        t.increments('id');
        t.text('name').notNullable().unique();
        t.text('mailing_list');
        t.text('jira_project_key');
        t.text('telegram_contact');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      });
      await knex.schema.createTable('employees', (t) => {
        t.increments('id');
        t.text('username').notNullable().unique();
        t.text('full_name');
        // Stored lower-case: senders are matched case-insensitively.
        t.text('email').unique();
        t.text('telegram_username').unique();
        t.text('telegram_id').unique();
        t.integer('department_id').references('departments.id').onDelete('SET NULL');
        t.text('position');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
      });
      await knex.schema.createTable('conversations', (t) => {
        t.increments('id');
        t.text('channel').notNullable();
        // The sender as the channel named them (address, Telegram username or id, directory username).
        t.text('sender').notNullable();
        t.integer('employee_id').references('employees.id').onDelete('SET NULL');
        t.text('thread_key');
        // awaiting_clarification | answered | escalated | open (created, nothing decided yet)
        t.text('status').notNullable().defaultTo('open');
        t.integer('clarification_rounds').notNullable().defaultTo(0);
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.index(['channel', 'sender', 'status', 'updated_at']);
        t.index(['channel', 'thread_key']);
      });
      await knex.schema.createTable('messages', (t) => {
        t.increments('id');
        t.integer('conversation_id').notNullable().references('conversations.id').onDelete('CASCADE');
        t.text('channel').notNullable();
        t.text('role').notNullable(); // user | assistant
        t.text('text').notNullable();
        // Idempotency key of an inbound message; unique per channel.
        t.text('message_id');
        // For user messages: pending (being analysed) | answered | failed.
        t.text('state');
        t.timestamp('claimed_at', { useTz: true });
        // Bumped by each attempt: guards the take-over of a failed or abandoned attempt against a race.
        t.integer('attempts').notNullable().defaultTo(1);
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.unique(['channel', 'message_id']);
        t.index(['conversation_id', 'id']);
      });
      await knex.schema.createTable('analyses', (t) => {
        t.increments('id');
        t.integer('conversation_id').notNullable().references('conversations.id').onDelete('CASCADE');
        // The inbound message this attempt answers; a failed attempt is retried as a new row.
        t.integer('message_id').notNullable().references('messages.id').onDelete('CASCADE');
        t.text('channel').notNullable();
        t.text('request').notNullable();
        t.text('department');
        t.text('position');
        // pending | succeeded | failed
        t.text('outcome').notNullable().defaultTo('pending');
        t.text('error_code');
        t.text('error_message');
        t.boolean('guesser_is_enough');
        t.text('context');
        t.boolean('analyst_is_enough');
        t.text('analyst_response');
        t.text('proposed_action');
        // The decision: what the user was answered.
        t.boolean('is_enough');
        t.text('action');
        t.text('question');
        t.text('response');
        t.boolean('escalated').notNullable().defaultTo(false);
        t.text('provider');
        t.text('model');
        t.integer('prompt_tokens');
        t.integer('completion_tokens');
        t.integer('guesser_ms');
        t.integer('analyst_ms');
        t.integer('duration_ms');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
        t.timestamp('completed_at', { useTz: true });
        t.index(['message_id']);
        t.index(['conversation_id']);
        t.index(['created_at']);
      });
    },
    async down(knex) {
      for (const table of ['analyses', 'messages', 'conversations', 'employees', 'departments']) {
        await knex.schema.dropTableIfExists(table);
      }
    },
  },
  actionsAndRulesMigration,
  actionForeignKeysMigration,
  senderTrustMigration,
  deliveriesMigration,
  analysisClassificationMigration,
  actionRetriesMigration,
  personasAndProvenanceMigration,
  pollerLeasesMigration,
  routingRulesVersionMigration,
  auditLogMigration,
  rateLimitsMigration,
  clientKeyScopeMigration,
  webhookTokensMigration,
  messageNamespaceMigration,
  hotUpdatesMigration,
  telegramParkedUpdatesMigration,
  auditEventProviderMigration,
  telegramParkedUpdatesExpiryMigration,
  rateLimitDrawMigration,
  drawGenericPlansMigration,
];

/** The migrations' names in the order they run (what `migrateDatabase` returns on an empty database). */
export const MIGRATION_NAMES: readonly string[] = migrations.map((m) => m.name);

export const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => migrations,
  getMigrationName: (migration) => migration.name,
  // Each migration runs in its own transaction (knex's default): an index build on a large table may take longer
  // than DATABASE_QUERY_TIMEOUT's statement_timeout, lifted for that transaction alone.
  getMigration: async (migration) => ({
    ...migration,
    up: async (knex: Knex) => {
      await knex.raw('set local statement_timeout = 0');
      await migration.up(knex);
    },
  }),
};
