import type { Knex } from 'knex';

// Issue 16: an operator may re-run a failed action (POST /action-executions/{id}/retry). The same row runs again
// (same id, so the same Jira label finds an issue an earlier try created); `retries` counts the re-runs and keeps
// the outcome message of each run distinct for the communicator's idempotency keys. Stands alone on
// action_executions, like 100_actions_and_rules.
export const actionRetriesMigration = { name: '220_action_retries', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('action_executions', (t) => {
    t.integer('retries').notNullable().defaultTo(0);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('action_executions', (t) => t.dropColumn('retries'));
}
