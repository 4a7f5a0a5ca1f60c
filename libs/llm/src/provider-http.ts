import {
  createHttpPool,
  exchange,
  headerValue,
  HttpTransportError,
  type HttpAnswer,
  type HttpPool,
  type HttpPoolOptions,
} from '@workemon/service-kit';
import { llmErrors } from './llm-errors.js';

/**
 * Keep-alive connection pools for every provider call of the process, one pool per origin, on the tree's one
 * HTTP transport (service-kit's http-transport.ts, undici's `request`; figures in docs/DEVELOPING.md).
 */
let providerPool: HttpPool = createHttpPool({ connections: 256, keepAliveTimeoutMs: 30_000 });

/**
 * Sizes the providers' pool (connections per provider origin, e.g. to LLM_CONCURRENCY). Call at start, before
 * the first provider call; the previous pool is closed once its calls in flight have finished.
 */
export function configureProviderPool(options: HttpPoolOptions): void {
  const previous = providerPool;
  providerPool = createHttpPool(options);
  void previous.close();
}

export type ProviderRequest = {
  provider: string;
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  /** A JSON body, serialised here with JSON.stringify. */
  body?: unknown;
  /** A JSON body already serialised (provider-body.ts), sent as is; wins over `body`. */
  json?: string;
  timeoutMs: number;
  /** The key named when the provider answers 401/403. */
  apiKeyEnv: string;
};

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3), in ms; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function providerMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    const err = body.error;
    const msg =
      typeof err === 'string'
        ? err
        : typeof (err as { message?: unknown } | undefined)?.message === 'string'
          ? (err as { message: string }).message
          : typeof body.message === 'string'
            ? body.message
            : text;
    return msg.slice(0, 300);
  } catch {
    return text.slice(0, 300);
  }
}

/**
 * One HTTP exchange with a provider under a deadline covering headers and body. Returns the parsed JSON body,
 * or the raw text when it is not JSON (the caller decides whether that is nonsense). Non-2xx statuses become
 * errors from the LLM catalogue; the provider's body goes to details (the log), not to the caller.
 */
export async function requestProvider(req: ProviderRequest): Promise<{ json?: unknown; text: string }> {
  const body = req.json ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let answer: HttpAnswer;
  try {
    answer = await exchange({
      method: req.method,
      url: req.url,
      headers,
      body,
      timeoutMs: req.timeoutMs,
      pool: providerPool,
    });
  } catch (err) {
    if (err instanceof HttpTransportError && err.kind === 'timeout')
      throw llmErrors.timeout(req.provider, req.timeoutMs);
    throw llmErrors.unreachable(req.provider, err instanceof HttpTransportError ? err.cause : err);
  }
  const { status, text } = answer;
  if (status === 401 || status === 403) {
    throw llmErrors.authRejected(req.provider, status, req.apiKeyEnv);
  }
  if (status < 200 || status > 299) {
    const retryAfter = headerValue(answer.headers, 'retry-after');
    throw llmErrors.httpStatus(req.provider, status, parseRetryAfterMs(retryAfter ?? null), providerMessage(text));
  }
  try {
    return { json: JSON.parse(text) as unknown, text };
  } catch {
    return { text };
  }
}

/**
 * Runs a health probe; a 404/405 means the server answered but lacks that optional endpoint (some compatible
 * servers have no /models), which still proves reachability: resolves false then. Other errors propagate.
 */
export async function reachableWithout404(probe: () => Promise<unknown>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (err) {
    const status = (err as { details?: Record<string, unknown> }).details?.['status'];
    if (status === 404 || status === 405) return false;
    throw err;
  }
}
