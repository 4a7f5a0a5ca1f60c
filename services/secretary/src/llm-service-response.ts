/**
 * What the secretary records about the LLM call behind a guesser or analyst answer. The contracts do not
 * require these fields; when an LLM service adds `provider`, `model` and `usage` to its body they are kept.
 */
export type LlmUsage = { provider?: string; model?: string; promptTokens?: number; completionTokens?: number };

const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : undefined);

export function readLlmUsage(body: Record<string, unknown>): LlmUsage {
  const meta = (body['llm'] && typeof body['llm'] === 'object' ? body['llm'] : body) as Record<string, unknown>;
  const usage = (meta['usage'] && typeof meta['usage'] === 'object' ? meta['usage'] : {}) as Record<string, unknown>;
  return {
    provider: str(meta['provider']),
    model: str(meta['model']),
    promptTokens: num(usage['prompt_tokens'] ?? usage['input_tokens'] ?? usage['inputTextTokens']),
    completionTokens: num(usage['completion_tokens'] ?? usage['output_tokens'] ?? usage['completionTokens']),
  };
}

export const isRecord = (data: unknown): data is Record<string, unknown> =>
  typeof data === 'object' && data !== null && !Array.isArray(data);
