import type { AnalyticsResponse } from '@workemon/contracts';
import {
  createLlmServiceClient,
  type LlmServiceAnswer,
  type LlmServiceProbes,
  type PersonaField,
} from './llm-service-client.js';
import { isRecord, type UpstreamClientOptions } from './llm-service-response.js';

/**
 * The analyst's answer as the contract's AnalyticsResponse, with `action` widened to any string: the analyzer
 * checks it (an unknown action falls back to the channel's default) rather than trusting the upstream.
 */
export type AnalystAnswer = LlmServiceAnswer<Omit<AnalyticsResponse, 'action' | 'llm'> & { action?: string }>;
export type AnalystClient = LlmServiceProbes & {
  prepareAnalytics(
    input: {
      context: string;
      request: string;
    } & PersonaField,
  ): Promise<AnalystAnswer>;
};

// `action` is checked by the analyzer (an unknown action falls back to the channel's default), not here.
const isAnalyticsResponse = (data: unknown): data is AnalyticsResponse =>
  isRecord(data) &&
  typeof data['is_enough'] === 'boolean' &&
  typeof data['response'] === 'string' &&
  (data['action'] === undefined || data['action'] === null || typeof data['action'] === 'string');

/**
 * The system analyst's POST /prepare-analititcs (the contract's spelling; the seed's GET with the fields in a JSON
 * body, since the context and a long request do not fit in a URL). Over its LLM_MAX_INPUT_CHARS: 413
 * `request_too_long`.
 */
export function createAnalystClient(options: UpstreamClientOptions): AnalystClient {
  const service = createLlmServiceClient(options, {
    target: 'system-analyst',
    described: 'system analyst',
    path: '/prepare-analititcs',
    validate: isAnalyticsResponse,
    fields: (body) => ({
      is_enough: body.is_enough,
      response: body.response,
      action: typeof body.action === 'string' ? body.action : undefined,
    }),
  });
  return { prepareAnalytics: service.call, ping: service.ping, promptInfo: service.promptInfo };
}
