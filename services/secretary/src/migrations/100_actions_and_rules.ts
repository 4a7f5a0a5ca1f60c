import type { Knex } from 'knex';

// Actions (issue 6): routing rules, the execution log that doubles as the outbox, and the rules each analysis
// matched. Self-contained on purpose: analyses and conversations are referenced by their integer ids without
// foreign keys, so the feature's tests run without the directory/history tables (a later migration may add them).
export const actionsAndRulesMigration = { name: '100_actions_and_rules', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('routing_rules', (t) => {
    t.increments('id').primary();
    t.text('name').notNullable();
    t.integer('priority').notNullable().defaultTo(100);
    t.boolean('enabled').notNullable().defaultTo(true);
    t.jsonb('conditions').notNullable().defaultTo('{}');
    t.jsonb('effects').notNullable().defaultTo('{}');
    t.boolean('stop_on_match').notNullable().defaultTo(false);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['enabled', 'priority', 'id']);
  });

  await knex.schema.createTable('action_executions', (t) => {
    t.increments('id').primary();
    t.integer('analysis_id');
    t.integer('conversation_id');
    t.text('requester').notNullable();
    t.text('channel').notNullable();
    t.text('department');
    t.text('action').notNullable();
    t.text('status').notNullable();
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.uuid('lease_token');
    t.timestamp('lease_expires_at', { useTz: true });
    t.jsonb('target');
    t.jsonb('payload').notNullable();
    t.jsonb('result');
    t.text('error');
    t.text('decision');
    t.text('decided_by');
    t.timestamp('decided_at', { useTz: true });
    t.text('decision_reason');
    t.specificType('matched_rule_ids', 'integer[]').notNullable().defaultTo('{}');
    t.text('notify_status');
    t.jsonb('notification');
    t.text('approval_request_status');
    t.jsonb('approval_request');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('started_at', { useTz: true });
    t.timestamp('finished_at', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['analysis_id']);
    t.index(['requester', 'created_at']);
    t.index(['created_at']);
  });
  await knex.raw(`
    ALTER TABLE action_executions
      ADD CONSTRAINT action_executions_status_check
        CHECK (status IN ('pending', 'awaiting_approval', 'succeeded', 'failed', 'skipped')),
      ADD CONSTRAINT action_executions_decision_check CHECK (decision IS NULL OR decision IN ('approved', 'rejected')),
      ADD CONSTRAINT action_executions_notify_check
        CHECK (notify_status IS NULL OR notify_status IN ('pending', 'sent', 'not_needed', 'failed')),
      ADD CONSTRAINT action_executions_approval_request_check
        CHECK (approval_request_status IS NULL OR approval_request_status IN ('pending', 'sent', 'not_needed', 'failed'))
  `);
  // The worker's claim query scans only rows with work left.
  await knex.raw(`
    CREATE INDEX action_executions_due ON action_executions (next_attempt_at)
    WHERE status = 'pending' OR notify_status = 'pending' OR approval_request_status = 'pending'
  `);
  await knex.raw('CREATE INDEX action_executions_matched_rules ON action_executions USING gin (matched_rule_ids)');

  await knex.schema.createTable('rule_matches', (t) => {
    t.increments('id').primary();
    t.integer('analysis_id').notNullable();
    t.integer('rule_id').notNullable().references('id').inTable('routing_rules').onDelete('CASCADE');
    t.integer('execution_id').references('id').inTable('action_executions').onDelete('SET NULL');
    t.timestamp('matched_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['rule_id']);
    t.index(['analysis_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('rule_matches');
  await knex.schema.dropTableIfExists('action_executions');
  await knex.schema.dropTableIfExists('routing_rules');
}
