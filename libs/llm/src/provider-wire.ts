import type { CheckResult } from '@workemon/service-kit';

export type ChatMessage = {
  role: 'system' | 'user' | 'assistant';
  content: string;
  /**
   * The same content as consecutive pieces (`content === parts.join('')`), when some of them are long and constant
   * (the prompt, the answer format): the HTTP wires serialise the body from the pieces and keep the constant ones'
   * JSON escapes (provider-body.ts). Wires that read `content` ignore it.
   */
  parts?: readonly string[];
};
export type TokenUsage = { inputTokens: number; outputTokens: number; totalTokens: number };
export type Generation = { text: string; usage: TokenUsage };

export type GenerateRequest = {
  messages: ChatMessage[];
  /** The result's JSON Schema (for providers' structured-output modes). */
  jsonSchema: Record<string, unknown>;
  schemaName: string;
  timeoutMs: number;
  maxOutputTokens: number;
  /** Sampling temperature (LLM_TEMPERATURE). */
  temperature: number;
  /** The local provider only: a deadline that fired aborts the generation at once. */
  signal?: AbortSignal;
};

/** One provider's wire format: a single HTTP attempt (no retries here) and a cheap reachability check. */
export type ProviderWire = {
  generate(request: GenerateRequest): Promise<Generation>;
  /** Never a generation: listing models, a tokenizer call, or similar. Throws (= down) when unreachable. */
  checkHealth(timeoutMs: number): Promise<CheckResult>;
};

/** Providers send token counts as numbers or (YandexGPT, int64 in proto-JSON) strings. */
export function toCount(value: unknown): number {
  const n = typeof value === 'string' ? Number(value) : typeof value === 'number' ? value : 0;
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

export function usageOf(input: unknown, output: unknown, total?: unknown): TokenUsage {
  const inputTokens = toCount(input);
  const outputTokens = toCount(output);
  const totalTokens = total === undefined ? inputTokens + outputTokens : toCount(total) || inputTokens + outputTokens;
  return { inputTokens, outputTokens, totalTokens };
}
