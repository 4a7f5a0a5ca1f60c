import type { CheckResult, HttpClient, HttpClientOptions } from '@workemon/service-kit';
import { AppError } from '@workemon/service-kit';

/**
 * What the secretary records about the LLM call behind a guesser or analyst answer: their optional
 * `llm: {provider, model, input_tokens, output_tokens, latency_ms}`. The contracts do not require it, so an
 * answer without it (or with odd values) is still a valid answer; the fields just stay unknown.
 */
export type LlmUsage = { provider?: string; model?: string; promptTokens?: number; completionTokens?: number };

export const isRecord = (data: unknown): data is Record<string, unknown> =>
  typeof data === 'object' && data !== null && !Array.isArray(data);

/**
 * The LLM services answer 413 when the text is over their LLM_MAX_INPUT_CHARS. That is "too long for this
 * upstream", not a bug of the caller's: reported as `request_too_long`, in words the sender can act on, instead
 * of the upstream's message naming another service's configuration key.
 */
export function tooLongForUpstream(err: unknown, target: string): unknown {
  const e = err as { code?: string; details?: { status?: unknown } } | undefined;
  if (e?.code !== 'upstream_rejected' || e.details?.status !== 413) return err;
  return new AppError('request_too_long', 413, `The request is too long for the ${target}; please shorten it`, {
    cause: err,
    retryable: false,
  });
}

/**
 * Connections per LLM service origin in the secretary's pool: at least what one LLM service admits at once
 * (LLM_CONCURRENCY + LLM_QUEUE_LIMIT, 128 + 256 by default), so the secretary never limits below its upstreams;
 * beyond that the LLM service itself answers 503 + Retry-After. Idle connections close after keep-alive.
 */
export const LLM_UPSTREAM_CONNECTIONS = 512;

/** What main.ts and tests choose for the guesser and analyst clients (the target name is the client's own). */
export type UpstreamClientOptions = Omit<HttpClientOptions, 'target'>;

/** Where the secretary looks for an upstream: its base URL and the key that sets it (`GUESSER_URL`). */
export type UpstreamLocation = { url: string; key: string };

/**
 * A probe that got no answer, said for the operator reading /health: the URL, its key and what to do. Only
 * "nothing listens" and "no answer in time" are reworded; anything else passes through.
 */
function notAnswering(err: unknown, target: string, where: UpstreamLocation): unknown {
  const code = (err as { code?: unknown } | undefined)?.code;
  const fix = `start the ${target} (npm start runs every service) or correct ${where.key}`;
  if (code === 'upstream_unavailable') return new Error(`nothing answers at ${where.url} (${where.key}): ${fix}`);
  if (code === 'upstream_timeout') return new Error(`${where.url} (${where.key}) did not answer /health in 2 s`);
  return err;
}

/**
 * An LLM service that refuses the secretary's own service key (401/403) is a configuration fault of the
 * deployment, not of the caller, whose key the secretary accepted: a 503 `upstream_key_refused` naming the fix
 * (never retried) instead of passing the upstream's "Invalid API key" on as if the caller's key were wrong.
 * `keyVariable` is the secretary's variable for the key it sends that service (`GUESSER_API_KEY`, config.ts).
 */
export function keyRefusedByUpstream(err: unknown, described: string, keyVariable: string): unknown {
  const e = err as { code?: string; details?: { status?: unknown } } | undefined;
  const status = e?.details?.status;
  if (e?.code !== 'upstream_rejected' || (status !== 401 && status !== 403)) return err;
  return new AppError(
    'upstream_key_refused',
    503,
    `The ${described} refused the secretary's service key (HTTP ${String(status)}): the ${described}'s ` +
      `SERVICE_API_KEYS must hold the key the secretary sends it (${keyVariable} or ${keyVariable}_FILE; ` +
      'unset: the first of SERVICE_API_KEYS)',
    { cause: err, retryable: false, publicMessage: `The ${described} is unavailable` },
  );
}

/**
 * An LLM service's health as the secretary sees it: its `/health` answers (200 or 503 with the kit's report)
 * → it runs; `ok` stays ok, anything else is `degraded` with the failing checks' details (typically its LLM
 * provider, with the provider's URL and the fix). No answer at all → throws, i.e. `down`.
 */
export async function readUpstreamHealth(http: HttpClient, where?: UpstreamLocation): Promise<CheckResult> {
  const res = await http.probe('/health', { timeoutMs: 2000 }).catch((err: unknown) => {
    throw where ? notAnswering(err, http.target, where) : err;
  });
  const report = res.data;
  if (!isRecord(report) || typeof report['status'] !== 'string') {
    throw new Error(`${http.target} /health answered ${res.status} without a health report`);
  }
  if (report['status'] === 'ok') return { status: 'ok' };
  const checks = isRecord(report['checks']) ? report['checks'] : {};
  const problems = Object.entries(checks).flatMap(([name, check]) => {
    if (!isRecord(check) || check['status'] === 'ok' || check['status'] === 'disabled') return [];
    const detail = typeof check['detail'] === 'string' ? check['detail'] : String(check['status']);
    return [`${name}: ${detail}`];
  });
  return {
    status: 'degraded',
    detail: `running, but ${problems.length ? problems.join('; ') : `reports ${String(report['status'])}`}`,
  };
}
