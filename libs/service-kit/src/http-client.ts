import { AppError, ERROR_CODE_HEADER, RETRYABLE_HEADER, errors } from './errors.js';
import {
  exchange,
  headerValue,
  HttpTransportError,
  sharedHttpPool,
  createHttpPool,
  type HttpAnswer,
  type HttpPool,
  type HttpPoolOptions,
} from './http-transport.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { backoffMs, retry } from './resilience.js';

export type HttpClientOptions = {
  /** Name of the upstream, used in metrics (`target`), logs and error messages. */
  target: string;
  baseURL: string;
  /** Deadline of one attempt (headers and body), ms. */
  timeoutMs: number;
  /** Retries for idempotent calls on network errors and 500/502/503. Default 2. */
  maxRetries?: number;
  /** Base delay of the exponential backoff (full jitter). Default 100 ms. */
  retryBaseDelayMs?: number;
  metrics?: Metrics;
  logger?: Logger;
  /** Sent as `Authorization: Bearer <apiKey>` when set. */
  apiKey?: string;
  headers?: Record<string, string>;
  /**
   * The upstream is one of ours and its error messages are written for callers (the contract's
   * `{error, message, statusCode}`): a 5xx's message is appended to ours, so the caller learns why
   * (`Upstream 'guesser' is unavailable: LLM provider 'ollama' at … is unreachable: install Ollama …`).
   * Off for third-party APIs, whose bodies only reach the log.
   */
  forwardUpstreamMessage?: boolean;
  /**
   * Reads the reason out of a 4xx body whose API does not use `message` (Jira's `errorMessages`/`errors`);
   * undefined falls back to `message`. The result is the rejection's message.
   */
  rejectionMessage?: (data: unknown) => string | undefined;
  /** A pool of its own (sizes, see HttpPoolOptions) or one to share; default the process's shared pool. */
  pool?: HttpPool | HttpPoolOptions;
};

export type CallOptions<T> = {
  params?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Overrides the method's default (GET/PUT/DELETE idempotent, POST not). */
  idempotent?: boolean;
  /** Checks the shape of a 2xx body; a throw or `false` turns the answer into a 502. */
  validate?: (data: unknown) => data is T;
};

/** An answer of any status, its body parsed as JSON when it is JSON (else the text). */
export type HttpResponse = { status: number; headers: HttpAnswer['headers']; data: unknown };

export type HttpClient = {
  target: string;
  get<T = unknown>(path: string, options?: CallOptions<T>): Promise<T>;
  post<T = unknown>(path: string, body: unknown, options?: CallOptions<T>): Promise<T>;
  put<T = unknown>(path: string, body: unknown, options?: CallOptions<T>): Promise<T>;
  delete<T = unknown>(path: string, options?: CallOptions<T>): Promise<T>;
  /**
   * One GET without retries or status mapping (health probes read a 503's report): any status resolves; no
   * answer throws the catalogue's 503/504. Counted in the upstream metric like every other call.
   */
  probe(path: string, options?: { timeoutMs?: number }): Promise<HttpResponse>;
};

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';
type Outcome = 'ok' | 'client_error' | 'server_error' | 'timeout' | 'unreachable' | 'bad_response';

/**
 * Added to an attempt's deadline, as the axios-based client did (its socket timeout plus 50 ms for the whole
 * exchange): a busy event loop that runs the expired timer before the answer already waiting on the socket
 * should not turn a fast answer into a 504.
 */
const DEADLINE_GRACE_MS = 50;

// 504 is not retried: the upstream already spent its own deadline, a retry would only double the wait.
const RETRY_AT_ONCE_STATUS = new Set([500, 502, 503]);

/** Internal: an attempt's error with the metric's outcome. */
class AttemptError extends Error {
  constructor(
    readonly appError: AppError,
    readonly outcome: Outcome,
  ) {
    super(appError.message);
  }
}

type Context = {
  options: HttpClientOptions;
  pool: HttpPool;
  base: string;
  headers: Record<string, string>;
};

function upstreamMessage(data: unknown): string | undefined {
  if (data && typeof data === 'object' && typeof (data as { message?: unknown }).message === 'string') {
    return (data as { message: string }).message.slice(0, 500);
  }
  return undefined;
}

function parseBody(text: string): unknown {
  if (!text) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function urlOf(ctx: Context, path: string, params?: CallOptions<unknown>['params']): string {
  const url = `${ctx.base}/${path.replace(/^\/+/, '')}`;
  if (!params) return url;
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value !== undefined) query.append(key, String(value));
  const qs = query.toString();
  return qs ? `${url}${url.includes('?') ? '&' : '?'}${qs}` : url;
}

/** The upstream's verdict (X-Workemon-Retryable) when it sent one, else `fallback`. */
function upstreamRetryable(answer: HttpAnswer, fallback: boolean): boolean {
  const verdict = headerValue(answer.headers, RETRYABLE_HEADER);
  return verdict === 'true' ? true : verdict === 'false' ? false : fallback;
}

function upstreamDetails(ctx: Context, answer: HttpAnswer, data: unknown): Record<string, unknown> {
  const code = headerValue(answer.headers, ERROR_CODE_HEADER);
  return {
    status: answer.status,
    target: ctx.options.target,
    upstreamMessage: upstreamMessage(data),
    ...(code ? { upstreamCode: code } : {}),
  };
}

function withUpstreamMessage(ctx: Context, error: AppError, message: string | undefined, retryable: boolean): AppError {
  const forwarded = ctx.options.forwardUpstreamMessage && message;
  return new AppError(error.code, error.status, forwarded ? `${error.message}: ${message}` : error.message, {
    details: error.details,
    headers: error.headers,
    retryable,
    // The upstream's words are for operators; a client key gets ours alone (AppError.publicMessage).
    publicMessage: forwarded ? (error.publicMessage ?? error.message) : error.publicMessage,
  });
}

/** An upstream 4xx: its status and reason kept; 408/429 retryable unless the upstream says otherwise. */
function rejection(ctx: Context, answer: HttpAnswer, data: unknown): AppError {
  const { status } = answer;
  const retryAfter = headerValue(answer.headers, 'retry-after');
  const reason = ctx.options.rejectionMessage?.(data)?.slice(0, 500) ?? upstreamMessage(data);
  const details = upstreamDetails(ctx, answer, data);
  delete details['upstreamMessage'];
  return new AppError('upstream_rejected', status, reason ?? `Upstream '${ctx.options.target}' rejected the request`, {
    details,
    headers: status === 429 && retryAfter ? { 'Retry-After': retryAfter } : undefined,
    retryable: upstreamRetryable(answer, status === 429 || status === 408),
  });
}

/** An upstream 5xx: 501 stays (not configured), 503/504 keep their meaning, anything else is a 502. */
function serverFailure(ctx: Context, answer: HttpAnswer, data: unknown): AppError {
  const { target } = ctx.options;
  const details = upstreamDetails(ctx, answer, data);
  const message = upstreamMessage(data);
  // 501: the upstream does not offer this here (a channel or integration that is not configured). Stable, so
  // never retried; the upstream's message says what to configure.
  if (answer.status === 501)
    return new AppError(
      'upstream_not_configured',
      501,
      message ?? `Upstream '${target}' does not offer this function`,
      {
        details,
        retryable: false,
      },
    );
  const error =
    answer.status === 503
      ? errors.upstreamUnavailable(target, undefined, details)
      : answer.status === 504
        ? errors.upstreamTimeout(target, undefined, details)
        : errors.upstreamBadResponse(target, undefined, details);
  return withUpstreamMessage(ctx, error, message, upstreamRetryable(answer, error.retryable));
}

function checked<T>(ctx: Context, answer: HttpAnswer, data: unknown, validate?: (d: unknown) => d is T): T {
  let ok = true;
  if (validate) {
    try {
      ok = validate(data);
    } catch {
      ok = false;
    }
  }
  if (!ok)
    throw new AttemptError(
      errors.upstreamBadResponse(ctx.options.target, undefined, { status: answer.status }),
      'bad_response',
    );
  return data as T;
}

/** Maps an answer to its data (2xx) or throws the catalogue's error with the metric's outcome. */
function interpret<T>(ctx: Context, answer: HttpAnswer, validate?: (d: unknown) => d is T): T {
  const data = parseBody(answer.text);
  if (answer.status >= 200 && answer.status < 300) return checked(ctx, answer, data, validate);
  if (answer.status >= 400 && answer.status < 500) throw new AttemptError(rejection(ctx, answer, data), 'client_error');
  throw new AttemptError(serverFailure(ctx, answer, data), 'server_error');
}

function transportFailure(ctx: Context, err: unknown, timeoutMs: number): AttemptError {
  const { target } = ctx.options;
  if (err instanceof HttpTransportError && err.kind === 'timeout')
    return new AttemptError(errors.upstreamTimeout(target, err, { timeoutMs }), 'timeout');
  const code = err instanceof HttpTransportError ? err.code : undefined;
  return new AttemptError(errors.upstreamUnavailable(target, err, code ? { code } : undefined), 'unreachable');
}

type Attempt = { method: Method; url: string; body?: string; headers?: Record<string, string>; timeoutMs: number };

/** One exchange, observed in `workemon_upstream_request_duration_seconds` with its outcome. */
async function observed<R>(ctx: Context, attempt: Attempt, read: (answer: HttpAnswer) => R): Promise<R> {
  const started = performance.now();
  let outcome: Outcome = 'ok';
  try {
    let answer: HttpAnswer;
    try {
      answer = await exchange({
        ...attempt,
        headers: { ...ctx.headers, ...attempt.headers },
        timeoutMs: attempt.timeoutMs + DEADLINE_GRACE_MS,
        pool: ctx.pool,
      });
    } catch (err) {
      throw transportFailure(ctx, err, attempt.timeoutMs);
    }
    return read(answer);
  } catch (err) {
    if (err instanceof AttemptError) outcome = err.outcome;
    throw err;
  } finally {
    ctx.options.metrics?.upstreamRequestDuration.observe(
      { target: ctx.options.target, outcome },
      (performance.now() - started) / 1000,
    );
  }
}

/**
 * Worth repeating at once: the error's own verdict (AppError.retryable), narrowed to a network error or a
 * 500/502/503. 408/429 wait for the caller's own schedule (Retry-After), a timeout is not repeated (the deadline
 * is spent), nonsense would be nonsense again.
 */
function retriesAtOnce(err: unknown): boolean {
  if (!(err instanceof AttemptError) || !err.appError.retryable) return false;
  if (err.outcome === 'unreachable') return true;
  return err.outcome === 'server_error' && RETRY_AT_ONCE_STATUS.has(Number(err.appError.details?.['status']));
}

/** Header names in lower case, so a caller's `Content-Type` replaces ours instead of doubling it. */
function lowerCased(headers: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) out[name.toLowerCase()] = value;
  return out;
}

function contextOf(options: HttpClientOptions): Context {
  const pool = options.pool;
  return {
    options,
    pool: !pool ? sharedHttpPool() : 'dispatch' in pool ? pool : createHttpPool(pool),
    base: options.baseURL.replace(/\/+$/, ''),
    headers: {
      accept: 'application/json',
      ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
      ...lowerCased(options.headers),
    },
  };
}

function bodyOf(
  body: unknown,
  headers: Record<string, string> | undefined,
): { body?: string; headers?: Record<string, string> } {
  const own = lowerCased(headers);
  if (body === undefined) return { headers: own };
  if (typeof body === 'string') return { body, headers: own };
  return { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...own } };
}

async function call<T>(
  ctx: Context,
  method: Method,
  path: string,
  body: unknown,
  opts: CallOptions<T> = {},
): Promise<T> {
  const idempotent = opts.idempotent ?? method !== 'POST';
  const attempt: Attempt = {
    method,
    url: urlOf(ctx, path, opts.params),
    timeoutMs: opts.timeoutMs ?? ctx.options.timeoutMs,
    ...bodyOf(body, opts.headers),
  };
  try {
    return await retry(() => observed(ctx, attempt, (answer) => interpret(ctx, answer, opts.validate)), {
      maxRetries: idempotent ? (ctx.options.maxRetries ?? 2) : 0,
      shouldRetry: retriesAtOnce,
      delayMs: (n) => backoffMs(n, { baseMs: ctx.options.retryBaseDelayMs ?? 100 }),
      onRetry: (err, n) =>
        ctx.options.logger?.warn(`retrying ${method} ${ctx.options.target}${path}`, {
          attempt: n + 1,
          error: { code: (err as AttemptError).appError.code },
        }),
    });
  } catch (err) {
    throw err instanceof AttemptError ? err.appError : errors.upstreamUnavailable(ctx.options.target, err);
  }
}

async function probe(ctx: Context, path: string, timeoutMs: number): Promise<HttpResponse> {
  try {
    return await observed(ctx, { method: 'GET', url: urlOf(ctx, path), timeoutMs }, (answer) => ({
      status: answer.status,
      headers: answer.headers,
      data: parseBody(answer.text),
    }));
  } catch (err) {
    throw err instanceof AttemptError ? err.appError : errors.upstreamUnavailable(ctx.options.target, err);
  }
}

/**
 * The one way services call each other and external HTTP APIs (over http-transport.ts: undici keep-alive
 * pools): a deadline per attempt, the request id forwarded, retries only where repeating is safe,
 * `workemon_upstream_request_duration_seconds`, and failures mapped to the error catalogue (504 timeout, 503
 * unreachable, 502 nonsense; an upstream 4xx keeps its status; the upstream's own error code and retry verdict
 * carried over in `details.upstreamCode` and `retryable`).
 */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const ctx = contextOf(options);
  return {
    target: options.target,
    get: (path, o) => call(ctx, 'GET', path, undefined, o),
    post: (path, body, o) => call(ctx, 'POST', path, body, o),
    put: (path, body, o) => call(ctx, 'PUT', path, body, o),
    delete: (path, o) => call(ctx, 'DELETE', path, undefined, o),
    probe: (path, o) => probe(ctx, path, o?.timeoutMs ?? options.timeoutMs),
  };
}
