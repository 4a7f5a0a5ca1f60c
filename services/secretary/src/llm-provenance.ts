import { isRecord, type LlmUsage } from './llm-service-response.js';

/**
 * What produced one LLM service's answer, as its optional `llm` metadata tells (guesser.yaml / system-analyst.yaml
 * `LlmCall`): provider, model, prompt name and SHA-256, persona SHA-256, generation settings, tokens, latency.
 * Every field is optional: an answer without metadata (an older service) is still a valid answer.
 */
export type LlmProvenance = {
  provider?: string;
  model?: string;
  promptName?: string;
  promptSha256?: string;
  personaSha256?: string;
  settings?: Record<string, unknown>;
  inputTokens?: number;
  outputTokens?: number;
  /** Time the provider took, as the LLM service measured it. */
  latencyMs?: number;
};

/** One stored provenance row: which service was called, what produced its answer, how long the call took. */
export type LlmCallRecord = LlmProvenance & {
  service: 'guesser' | 'system-analyst';
  /** The whole call as the secretary saw it (HTTP included), in milliseconds. */
  durationMs: number;
};

const str = (v: unknown) => (typeof v === 'string' && v ? v : undefined);
const hash = (v: unknown) => (typeof v === 'string' && /^[0-9a-f]{64}$/.test(v) ? v : undefined);
const count = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.round(v) : undefined);

/** Reads the provenance out of a guesser or analyst answer body (`llm`), ignoring odd or missing values. */
export function readLlmProvenance(body: Record<string, unknown>): LlmProvenance {
  const meta = isRecord(body['llm']) ? body['llm'] : {};
  const prompt = isRecord(meta['prompt']) ? meta['prompt'] : {};
  return {
    provider: str(meta['provider']),
    model: str(meta['model']),
    promptName: str(prompt['name']),
    promptSha256: hash(prompt['sha256']),
    personaSha256: hash(meta['persona_sha256']),
    settings: isRecord(meta['settings']) ? meta['settings'] : undefined,
    inputTokens: count(meta['input_tokens']),
    outputTokens: count(meta['output_tokens']),
    latencyMs: count(meta['latency_ms']),
  };
}

/** The usage the analysis row keeps (provider, model, tokens), from an answer's provenance. */
export function usageOf(provenance: LlmProvenance): LlmUsage {
  return {
    provider: provenance.provider,
    model: provenance.model,
    promptTokens: provenance.inputTokens,
    completionTokens: provenance.outputTokens,
  };
}
