import { AppError } from '@workemon/service-kit';

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

/**
 * The LLM services take the request in the query string (the seed's GET contract), and Node refuses request
 * heads over 16 KB (431), about 2,500 Cyrillic characters once percent-encoded. Such an answer means "too long
 * for this upstream", not a bug of the caller's: reported as 413 so the sender can shorten the text.
 */
export function tooLongForUpstream(err: unknown, target: string): unknown {
  const status = (err as { code?: string; details?: { status?: unknown } } | undefined)?.details?.status;
  if ((err as { code?: string }).code !== 'upstream_rejected' || (status !== 431 && status !== 414)) return err;
  return new AppError('request_too_long', 413, `The request is too long for the ${target}; please shorten it`, {
    cause: err,
    retryable: false,
  });
}
