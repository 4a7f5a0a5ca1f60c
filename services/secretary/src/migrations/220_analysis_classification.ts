import type { Knex } from 'knex';

// Issue 16: the guesser's classification is stored with each analysis (category, confidence, and whether the
// category gets no reply), so rules, statistics and a replayed answer see what the decision saw.
export const analysisClassificationMigration = { name: '220_analysis_classification', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('analyses', (t) => {
    t.text('category');
    t.double('confidence');
    t.boolean('no_reply').notNullable().defaultTo(false);
    t.index(['category']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('analyses', (t) => {
    t.dropIndex(['category']);
    t.dropColumn('category');
    t.dropColumn('confidence');
    t.dropColumn('no_reply');
  });
}
