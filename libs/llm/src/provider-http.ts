import { Agent, request } from 'undici';
import { getRequestId } from '@workemon/service-kit';
import { llmErrors } from './llm-errors.js';

/**
 * Keep-alive connection pools for every provider call of the process, one pool per origin. undici's `request`
 * rather than `fetch()` (Node's fetch is built on the same undici, plus a WHATWG layer that cost about four times
 * the CPU per call in docs/DEVELOPING.md's measurement) or axios (about three times).
 */
const providerDispatcher = new Agent({ keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000, connections: 256 });

export type ProviderRequest = {
  provider: string;
  method: 'GET' | 'POST';
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
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
  const headers: Record<string, string> = { accept: 'application/json', ...req.headers };
  const requestId = getRequestId();
  if (requestId) headers['x-request-id'] = requestId;
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  let status: number;
  let retryAfter: string | string[] | undefined;
  let text: string;
  // A controller with a timer cleared on completion, not AbortSignal.timeout(): that signal (and the request it
  // is attached to) stays reachable until its timer fires, so at a few hundred calls a second with a 60 s
  // deadline memory grew by the whole minute's worth of requests.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), req.timeoutMs);
  try {
    const response = await request(req.url, {
      method: req.method,
      headers,
      body: req.body === undefined ? undefined : JSON.stringify(req.body),
      signal: controller.signal,
      dispatcher: providerDispatcher,
    });
    status = response.statusCode;
    retryAfter = response.headers['retry-after'];
    text = await response.body.text();
  } catch (err) {
    if (controller.signal.aborted) throw llmErrors.timeout(req.provider, req.timeoutMs);
    throw llmErrors.unreachable(req.provider, err);
  } finally {
    clearTimeout(timer);
  }
  if (status === 401 || status === 403) {
    throw llmErrors.authRejected(req.provider, status, req.apiKeyEnv);
  }
  if (status < 200 || status > 299) {
    const header = Array.isArray(retryAfter) ? retryAfter[0] : retryAfter;
    throw llmErrors.httpStatus(req.provider, status, parseRetryAfterMs(header ?? null), providerMessage(text));
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
