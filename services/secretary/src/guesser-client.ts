import type { ContextResponse } from '@workemon/contracts';
import { createHttpClient, type CheckResult } from '@workemon/service-kit';
import {
  isRecord,
  readLlmUsage,
  readUpstreamHealth,
  tooLongForUpstream,
  type LlmUsage,
} from './llm-service-response.js';
import { LLM_UPSTREAM_CONNECTIONS, type UpstreamClientOptions } from './llm-service-response.js';
import { readLlmProvenance, type LlmProvenance } from './llm-provenance.js';

export type GuesserAnswer = ContextResponse & { usage: LlmUsage; provenance: LlmProvenance };

const CATEGORY_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/**
 * The guesser's optional classification, checked: a category that is not a category name, a confidence outside
 * 0–1 or a non-boolean no_reply is dropped (the decision itself stays valid), never passed on to rules.
 */
export function readClassification(
  body: Record<string, unknown>,
): Pick<ContextResponse, 'category' | 'confidence' | 'no_reply'> {
  const category = body['category'];
  const confidence = body['confidence'];
  const ok = typeof category === 'string' && CATEGORY_NAME.test(category);
  return {
    ...(ok ? { category } : {}),
    ...(typeof confidence === 'number' && Number.isFinite(confidence) && confidence >= 0 && confidence <= 1
      ? { confidence }
      : {}),
    ...(ok && body['no_reply'] === true ? { no_reply: true } : {}),
  };
}
export type GuesserClient = {
  getContext(input: {
    username: string;
    department: string;
    position: string;
    request: string;
    /** The department's custom instructions (operator text), sent as their own field. */
    persona?: string;
  }): Promise<GuesserAnswer>;
  /** For /health: the upstream's own /health, read as `ok`, `degraded` (running, but its LLM is not) or down. */
  ping(): Promise<CheckResult>;
  /** The service's GET /prompt: active prompt version, model chain, settings (optional for test doubles). */
  promptInfo?(): Promise<Record<string, unknown>>;
};

const isContextResponse = (data: unknown): data is ContextResponse =>
  isRecord(data) && typeof data['is_enough'] === 'boolean' && typeof data['response'] === 'string';

/**
 * The guesser's POST /get-context (the seed's GET with the fields in a JSON body: a long email does not fit in a
 * URL, Node refuses request heads over 16 KB). Its failures arrive as the catalogue's errors (timeout 504, down
 * 503, nonsense 502, over its LLM_MAX_INPUT_CHARS 413 `request_too_long`) from the service kit's client; an
 * answer that is not {is_enough, response} counts as nonsense.
 */
export function createGuesserClient(options: UpstreamClientOptions): GuesserClient {
  // Its 5xx messages are written for callers (the LLM provider, its URL and the fix): passed on.
  const http = createHttpClient({
    target: 'guesser',
    forwardUpstreamMessage: true,
    // Never fewer connections than an LLM service admits (LLM_CONCURRENCY + LLM_QUEUE_LIMIT, 64 + 256 by default).
    pool: { connections: LLM_UPSTREAM_CONNECTIONS },
    ...options,
  });
  return {
    async getContext(input) {
      const body = await http
        // Idempotent although a POST: the guesser has no side effects (a repeat costs tokens, changes nothing),
        // so a network error or 500/502/503 is retried exactly as the GET was.
        .post<ContextResponse>('/get-context', input, { idempotent: true, validate: isContextResponse })
        .catch((err: unknown) => {
          throw tooLongForUpstream(err, 'guesser');
        });
      return {
        is_enough: body.is_enough,
        response: body.response,
        ...readClassification(body),
        usage: readLlmUsage(body),
        provenance: readLlmProvenance(body),
      };
    },
    ping: () => readUpstreamHealth(http),
    async promptInfo() {
      return http.get<Record<string, unknown>>('/prompt', { timeoutMs: 5000, validate: isRecord });
    },
  };
}
