import type { Knex } from 'knex';

// Issue 17. Departments get custom instructions (a persona) versioned by their SHA-256, and every analysis gets
// one provenance row per LLM service call: provider, model, prompt and persona versions, settings, tokens, latency.
// persona_versions keeps every persona text ever set, so a hash in provenance can always be read back (and replayed).
export const personasAndProvenanceMigration = { name: '230_personas_and_provenance', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('departments', (t) => {
    t.text('persona');
    t.text('persona_sha256');
    t.timestamp('persona_updated_at', { useTz: true });
  });
  await knex.schema.createTable('persona_versions', (t) => {
    t.text('sha256').primary();
    t.text('text').notNullable();
    // The department that first set this text (a text shared by two departments is stored once).
    t.text('department').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('analysis_llm_calls', (t) => {
    t.increments('id');
    t.integer('analysis_id').notNullable().references('analyses.id').onDelete('CASCADE');
    // guesser | system-analyst
    t.text('service').notNullable();
    t.text('provider');
    t.text('model');
    t.text('prompt_name');
    t.text('prompt_sha256');
    t.text('persona_sha256');
    t.jsonb('settings');
    t.integer('input_tokens');
    t.integer('output_tokens');
    // As the LLM service measured its provider; duration_ms is the whole call as the secretary saw it.
    t.integer('latency_ms');
    t.integer('duration_ms').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['analysis_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTableIfExists('analysis_llm_calls');
  await knex.schema.dropTableIfExists('persona_versions');
  await knex.schema.alterTable('departments', (t) => {
    t.dropColumn('persona');
    t.dropColumn('persona_sha256');
    t.dropColumn('persona_updated_at');
  });
}
