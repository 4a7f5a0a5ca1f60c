import type { Knex } from 'knex';

/** A provenance row as GET /conversations/{id} shows it under each analysis (`llm_calls`). */
export type LlmCallRow = {
  service: string;
  provider: string | null;
  model: string | null;
  prompt_name: string | null;
  prompt_sha256: string | null;
  persona_sha256: string | null;
  settings: Record<string, unknown> | null;
  input_tokens: number | null;
  output_tokens: number | null;
  latency_ms: number | null;
  duration_ms: number;
};

/** `analysis_llm_calls`: one row per LLM service call behind an analysis (migration 230_analysis_provenance). */
export function createProvenanceRepository(knex: Knex) {
  return {
    /** The provenance rows of these analyses, grouped by analysis id, in call order. */
    async llmCallsOf(analysisIds: readonly number[]): Promise<Map<number, LlmCallRow[]>> {
      const byAnalysis = new Map<number, LlmCallRow[]>();
      if (!analysisIds.length) return byAnalysis;
      const rows = (await knex('analysis_llm_calls')
        .whereIn('analysis_id', analysisIds)
        .orderBy('id')
        .select(
          'analysis_id',
          'service',
          'provider',
          'model',
          'prompt_name',
          'prompt_sha256',
          'persona_sha256',
          'settings',
          'input_tokens',
          'output_tokens',
          'latency_ms',
          'duration_ms',
        )) as (LlmCallRow & { analysis_id: number })[];
      for (const { analysis_id, ...row } of rows) {
        const settings =
          typeof row.settings === 'string' ? (JSON.parse(row.settings) as Record<string, unknown>) : row.settings;
        const list = byAnalysis.get(analysis_id) ?? [];
        list.push({ ...row, settings });
        byAnalysis.set(analysis_id, list);
      }
      return byAnalysis;
    },
  };
}
