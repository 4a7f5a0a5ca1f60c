import type { AnalyticsResponse } from '@workemon/contracts';
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

export type AnalystAnswer = {
  is_enough: boolean;
  response: string;
  action?: string;
  usage: LlmUsage;
  provenance: LlmProvenance;
};
export type AnalystClient = {
  prepareAnalytics(input: {
    context: string;
    request: string;
    /** The department's custom instructions (operator text), sent as their own field. */
    persona?: string;
  }): Promise<AnalystAnswer>;
  /** For /health: the upstream's own /health, read as `ok`, `degraded` (running, but its LLM is not) or down. */
  ping(): Promise<CheckResult>;
  /** The service's GET /prompt: active prompt version, model chain, settings (optional for test doubles). */
  promptInfo?(): Promise<Record<string, unknown>>;
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
  // Its 5xx messages are written for callers (the LLM provider, its URL and the fix): passed on.
  const http = createHttpClient({
    target: 'system-analyst',
    forwardUpstreamMessage: true,
    // Never fewer connections than an LLM service admits (LLM_CONCURRENCY + LLM_QUEUE_LIMIT, 64 + 256 by default).
    pool: { connections: LLM_UPSTREAM_CONNECTIONS },
    ...options,
  });
  return {
    async prepareAnalytics(input) {
      const body = await http
        // Idempotent although a POST: the analyst has no side effects (a repeat costs tokens, changes nothing),
        // so a network error or 500/502/503 is retried exactly as the GET was.
        .post<AnalyticsResponse>('/prepare-analititcs', input, { idempotent: true, validate: isAnalyticsResponse })
        .catch((err: unknown) => {
          throw tooLongForUpstream(err, 'system analyst');
        });
      return {
        is_enough: body.is_enough,
        response: body.response,
        action: typeof body.action === 'string' ? body.action : undefined,
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
