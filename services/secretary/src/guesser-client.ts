import type { ContextResponse } from '@workemon/contracts';
import { createHttpClient, type CheckResult } from '@workemon/service-kit';
import {
  isRecord,
  readLlmUsage,
  readUpstreamHealth,
  tooLongForUpstream,
  type LlmUsage,
} from './llm-service-response.js';
import type { UpstreamClientOptions } from './llm-service-response.js';

export type GuesserAnswer = ContextResponse & { usage: LlmUsage };
export type GuesserClient = {
  getContext(input: {
    username: string;
    department: string;
    position: string;
    request: string;
  }): Promise<GuesserAnswer>;
  /** For /health: the upstream's own /health, read as `ok`, `degraded` (running, but its LLM is not) or down. */
  ping(): Promise<CheckResult>;
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
  const http = createHttpClient({ target: 'guesser', forwardUpstreamMessage: true, ...options });
  return {
    async getContext(input) {
      const body = await http
        // Idempotent although a POST: the guesser has no side effects (a repeat costs tokens, changes nothing),
        // so a network error or 500/502/503 is retried exactly as the GET was.
        .post<ContextResponse>('/get-context', input, { idempotent: true, validate: isContextResponse })
        .catch((err: unknown) => {
          throw tooLongForUpstream(err, 'guesser');
        });
      return { is_enough: body.is_enough, response: body.response, usage: readLlmUsage(body) };
    },
    ping: () => readUpstreamHealth(http),
  };
}
