import type { ContextResponse } from '@workemon/contracts';
import { createLlmServiceClient, type LlmServiceProbes, type PersonaField } from './llm-service-client.js';
import { isRecord, type LlmUsage, type UpstreamClientOptions } from './llm-service-response.js';
import type { LlmProvenance } from './llm-provenance.js';

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
export type GuesserClient = LlmServiceProbes & {
  getContext(
    input: {
      username: string;
      department: string;
      position: string;
      request: string;
    } & PersonaField,
  ): Promise<GuesserAnswer>;
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
  const service = createLlmServiceClient(options, {
    target: 'guesser',
    described: 'guesser',
    path: '/get-context',
    validate: isContextResponse,
    fields: (body) => ({ is_enough: body.is_enough, response: body.response, ...readClassification(body) }),
  });
  return { getContext: service.call, ping: service.ping, promptInfo: service.promptInfo };
}
