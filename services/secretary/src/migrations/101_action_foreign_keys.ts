import type { Knex } from 'knex';

// 100_actions_and_rules stands alone (its tests run without the history tables); in the secretary the
// execution log and the rule matches belong to an analysis. SET NULL keeps the log of an action whose
// conversation was removed (what was done stays auditable); a match without its analysis means nothing.
export const actionForeignKeysMigration = { name: '101_action_foreign_keys', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('action_executions', (t) => {
    t.foreign('analysis_id').references('analyses.id').onDelete('SET NULL');
    t.foreign('conversation_id').references('conversations.id').onDelete('SET NULL');
  });
  await knex.schema.alterTable('rule_matches', (t) => {
    t.foreign('analysis_id').references('analyses.id').onDelete('CASCADE');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('rule_matches', (t) => t.dropForeign(['analysis_id']));
  await knex.schema.alterTable('action_executions', (t) => {
    t.dropForeign(['analysis_id']);
    t.dropForeign(['conversation_id']);
  });
}
