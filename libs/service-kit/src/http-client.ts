import axios, { type AxiosError, type AxiosInstance, type AxiosResponse } from 'axios';
import { AppError, errors } from './errors.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { getRequestId } from './request-context.js';

export type HttpClientOptions = {
  /** Name of the upstream, used in metrics (`target`), logs and error messages. */
  target: string;
  baseURL: string;
  /** Deadline of one attempt. */
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

export type HttpClient = {
  target: string;
  get<T = unknown>(path: string, options?: CallOptions<T>): Promise<T>;
  post<T = unknown>(path: string, body: unknown, options?: CallOptions<T>): Promise<T>;
  put<T = unknown>(path: string, body: unknown, options?: CallOptions<T>): Promise<T>;
  delete<T = unknown>(path: string, options?: CallOptions<T>): Promise<T>;
  axios: AxiosInstance;
};

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);
// 504 is not retried: the upstream already spent its own deadline, a retry would only double the wait.
const RETRYABLE_STATUS = new Set([500, 502, 503]);

type Outcome = 'ok' | 'client_error' | 'server_error' | 'timeout' | 'unreachable' | 'bad_response';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function upstreamMessage(data: unknown): string | undefined {
  if (data && typeof data === 'object' && typeof (data as { message?: unknown }).message === 'string') {
    return (data as { message: string }).message.slice(0, 500);
  }
  return undefined;
}

/**
 * The one way services call each other and external HTTP APIs: a deadline per attempt, the request id
 * forwarded, retries only where repeating is safe, `workemon_upstream_request_duration_seconds`, and failures
 * mapped to the error catalogue (504 timeout, 503 unreachable, 502 nonsense; an upstream 4xx keeps its status).
 */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const instance = axios.create({
    baseURL: options.baseURL,
    headers: {
      Accept: 'application/json',
      ...(options.apiKey ? { Authorization: `Bearer ${options.apiKey}` } : {}),
      ...options.headers,
    },
    // Status handling is ours; axios must not throw on 4xx/5xx.
    validateStatus: () => true,
    maxRedirects: 0,
    transitional: { clarifyTimeoutError: true },
  });
  const maxRetries = options.maxRetries ?? 2;
  const explained = (error: AppError, message: string | undefined): AppError =>
    options.forwardUpstreamMessage && message
      ? new AppError(error.code, error.status, `${error.message}: ${message}`, {
          details: error.details,
          headers: error.headers,
          retryable: error.retryable,
        })
      : error;
  const baseDelay = options.retryBaseDelayMs ?? 100;

  async function call<T>(
    method: 'get' | 'post' | 'put' | 'delete',
    path: string,
    body: unknown,
    opts: CallOptions<T> = {},
  ): Promise<T> {
    const idempotent = opts.idempotent ?? method !== 'post';
    const attempts = idempotent ? maxRetries + 1 : 1;
    let lastError: AppError | undefined;
    for (let attempt = 1; attempt <= attempts; attempt += 1) {
      const timeoutMs = opts.timeoutMs ?? options.timeoutMs;
      const started = performance.now();
      let outcome: Outcome = 'ok';
      try {
        const requestId = getRequestId();
        let response: AxiosResponse;
        // axios' own `timeout` is an idle timer on the socket; this controller makes it a deadline for the whole
        // exchange. Its timer is cleared on completion (AbortSignal.timeout would keep every request reachable
        // until its deadline passed).
        const deadline = new AbortController();
        const deadlineTimer = setTimeout(() => deadline.abort(), timeoutMs + 50);
        try {
          response = await instance.request({
            method,
            url: path,
            params: opts.params,
            data: body,
            timeout: timeoutMs,
            signal: deadline.signal,
            headers: { ...(requestId ? { 'X-Request-Id': requestId } : {}), ...opts.headers },
          });
        } catch (err) {
          const e = err as AxiosError & { cause?: { code?: string } };
          const code = e.code ?? e.cause?.code ?? '';
          if (
            code === 'ETIMEDOUT' ||
            (code === 'ECONNABORTED' && /timeout/i.test(e.message)) ||
            code === 'ERR_CANCELED' ||
            axios.isCancel(err)
          ) {
            outcome = 'timeout';
            throw errors.upstreamTimeout(options.target, err, { timeoutMs });
          }
          outcome = 'unreachable';
          if (NETWORK_CODES.has(code) || e.isAxiosError)
            throw errors.upstreamUnavailable(options.target, err, { code });
          throw errors.upstreamUnavailable(options.target, err);
        } finally {
          clearTimeout(deadlineTimer);
        }
        const { status, data } = response;
        if (status >= 200 && status < 300) {
          if (opts.validate) {
            let ok = false;
            try {
              ok = opts.validate(data);
            } catch {
              ok = false;
            }
            if (!ok) {
              outcome = 'bad_response';
              throw errors.upstreamBadResponse(options.target, undefined, { status });
            }
          }
          return data as T;
        }
        if (status >= 400 && status < 500) {
          outcome = 'client_error';
          const retryAfter = response.headers['retry-after'];
          throw new AppError(
            'upstream_rejected',
            status,
            upstreamMessage(data) ?? `Upstream '${options.target}' rejected the request`,
            {
              details: { status, target: options.target },
              headers: status === 429 && retryAfter ? { 'Retry-After': String(retryAfter) } : undefined,
              retryable: status === 429 || status === 408,
            },
          );
        }
        outcome = 'server_error';
        const message = upstreamMessage(data);
        const details = { status, target: options.target, upstreamMessage: message };
        // 501: the upstream does not offer this here (a channel or integration that is not configured). Stable,
        // so never retried; the upstream's message says what to configure.
        if (status === 501)
          throw new AppError(
            'upstream_not_configured',
            501,
            message ?? `Upstream '${options.target}' does not offer this function`,
            { details, retryable: false },
          );
        if (status === 503) throw explained(errors.upstreamUnavailable(options.target, undefined, details), message);
        if (status === 504) throw explained(errors.upstreamTimeout(options.target, undefined, details), message);
        throw explained(errors.upstreamBadResponse(options.target, undefined, details), message);
      } catch (err) {
        lastError = err instanceof AppError ? err : errors.upstreamUnavailable(options.target, err);
        const failure = outcome as Outcome;
        // The error's own verdict (AppError.retryable), narrowed to what is worth repeating at once: a network
        // error or a 500/502/503. 408/429 wait for the caller's own schedule (Retry-After), a timeout is not
        // repeated (the deadline is spent), nonsense would be nonsense again.
        const retryable =
          attempt < attempts &&
          lastError.retryable &&
          (failure === 'unreachable' ||
            (failure === 'server_error' && RETRYABLE_STATUS.has(Number(lastError.details?.['status']))));
        if (!retryable) throw lastError;
        options.logger?.warn(`retrying ${method.toUpperCase()} ${options.target}${path}`, {
          attempt,
          error: { code: lastError.code },
        });
        await sleep(Math.random() * baseDelay * 2 ** (attempt - 1));
      } finally {
        options.metrics?.upstreamRequestDuration.observe(
          { target: options.target, outcome },
          (performance.now() - started) / 1000,
        );
      }
    }
    throw lastError ?? errors.internal();
  }

  return {
    target: options.target,
    axios: instance,
    get: (path, o) => call('get', path, undefined, o),
    post: (path, body, o) => call('post', path, body, o),
    put: (path, body, o) => call('put', path, body, o),
    delete: (path, o) => call('delete', path, undefined, o),
  };
}
