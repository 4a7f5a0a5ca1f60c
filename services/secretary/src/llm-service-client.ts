import { AppError, createHttpClient, type CheckResult } from '@workemon/service-kit';
import {
  isRecord,
  LLM_UPSTREAM_CONNECTIONS,
  keyRefusedByUpstream,
  readUpstreamHealth,
  tooLongForUpstream,
  type LlmUsage,
  type UpstreamClientOptions,
} from './llm-service-response.js';
import { readLlmProvenance, usageOf, type LlmProvenance } from './llm-provenance.js';

/** What /health and the prompts overview read of an LLM service client (guesser-client.ts, analyst-client.ts). */
export type LlmServiceProbes = {
  /** For /health: the upstream's own /health, read as `ok`, `degraded` (running, but its LLM is not) or down. */
  ping(): Promise<CheckResult>;
  /** The service's GET /prompt: active prompt version, model chain, settings (optional for test doubles). */
  promptInfo?(): Promise<Record<string, unknown>>;
};

/** The department's custom instructions (operator text), sent to an LLM service as their own field. */
export type PersonaField = { persona?: string };

/** Which LLM service a client talks to, how its one operation is called and checked, and what it answers. */
export type LlmServiceOperation<Body, Fields> = {
  /** The service kit's target name (metrics, logs, errors): `guesser`, `system-analyst`. */
  target: string;
  /** The service in words for a 413 `request_too_long` the sender reads ("the guesser", "the system analyst"). */
  described: string;
  /** The operation's path (`/get-context`, `/prepare-analititcs`). */
  path: string;
  /** Whether an answer has the contract's shape; one that does not counts as nonsense (502). */
  validate: (data: unknown) => data is Body;
  /** The answer's own fields from the checked body; the client adds `usage` and `provenance` (llm-provenance.ts). */
  fields: (body: Body) => Fields;
};

/** An LLM service's answer as the analyzer takes it: its own fields, the usage and the provenance of its LLM call. */
export type LlmServiceAnswer<Fields> = Fields & { usage: LlmUsage; provenance: LlmProvenance };

/** The calls both LLM service clients (guesser-client.ts, analyst-client.ts) are made of. */
export type LlmServiceClient<Fields> = {
  /**
   * POSTs `input` (a JSON object) to the operation and answers its fields with the call's usage and provenance
   * (read from the answer's optional `llm`). Failures are the catalogue's
   * (timeout 504, down 503, nonsense 502); over the service's LLM_MAX_INPUT_CHARS: 413 `request_too_long`.
   */
  call(input: object): Promise<LlmServiceAnswer<Fields>>;
  /** For /health: the service's own /health (readUpstreamHealth). */
  ping(): Promise<CheckResult>;
  /** The service's GET /prompt: active prompt version, model chain, settings. */
  promptInfo(): Promise<Record<string, unknown>>;
};

/**
 * An HTTP client for one LLM service operation: its 5xx messages are written for callers (the LLM provider, its
 * URL and the fix) and passed on; never fewer pooled connections than an LLM service admits
 * (LLM_UPSTREAM_CONNECTIONS). The operation is idempotent although a POST: the services have no side effects (a
 * repeat costs tokens, changes nothing), so a network error or 500/502/503 is retried as a GET is.
 */
export function createLlmServiceClient<Body extends Record<string, unknown>, Fields>(
  options: UpstreamClientOptions,
  operation: LlmServiceOperation<Body, Fields>,
): LlmServiceClient<Fields> {
  const http = createHttpClient({
    target: operation.target,
    forwardUpstreamMessage: true,
    pool: { connections: LLM_UPSTREAM_CONNECTIONS },
    ...options,
  });
  const variablePrefix = operation.target.toUpperCase().replace('-', '_');
  const keyRefused = (err: unknown) => keyRefusedByUpstream(err, operation.described, `${variablePrefix}_API_KEY`);
  // The last refusal of the secretary's key, shown by /health until a call or a probe (recheckKey) gets through.
  let keyRefusal: string | undefined;
  const promptInfo = () => http.get<Record<string, unknown>>('/prompt', { timeoutMs: 5000, validate: isRecord });
  /**
   * After a refusal, /health asks the service's keyed GET /prompt (no LLM call, nothing spent): still refused →
   * down with the fix; anything else clears the refusal, so a corrected key shows without waiting for traffic
   * (an unreachable service is then reported by the /health probe itself).
   */
  const recheckKey = async () => {
    const refused = await http.get('/prompt', { timeoutMs: 2000, validate: isRecord }).then(
      () => undefined,
      (err: unknown) => keyRefused(err),
    );
    keyRefusal = refused instanceof AppError && refused.code === 'upstream_key_refused' ? refused.message : undefined;
  };
  return {
    async call(input) {
      const body = await http
        .post<Body>(operation.path, input, { idempotent: true, validate: operation.validate })
        .catch((err: unknown) => {
          const refused = keyRefused(err);
          if (refused !== err) keyRefusal = (refused as Error).message;
          throw refused !== err ? refused : tooLongForUpstream(err, operation.described);
        });
      keyRefusal = undefined;
      const provenance = readLlmProvenance(body);
      // The operation's fields are a fresh object: usage and provenance are added to it, not copied around it.
      return Object.assign(operation.fields(body) as LlmServiceAnswer<Fields>, {
        usage: usageOf(provenance),
        provenance,
      });
    },
    // /health reads the upstream's open /health: a refused key shows there once a call met it, until it is accepted.
    async ping() {
      if (keyRefusal) await recheckKey();
      if (keyRefusal) return { status: 'down', detail: keyRefusal };
      return readUpstreamHealth(http, { url: options.baseURL, key: `${variablePrefix}_URL` });
    },
    promptInfo,
  };
}
