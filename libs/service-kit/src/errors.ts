import { STATUS_CODES } from 'node:http';

/**
 * The one error type services throw. `code` is stable (tests and callers branch on it), `status` is the HTTP
 * status the error middleware answers with, `message` is safe to show to a caller: it never carries secrets
 * or upstream bodies. `cause` and `details` reach the log only.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details?: Record<string, unknown>;
  /** Extra response headers, e.g. Retry-After on a 429. */
  readonly headers?: Record<string, string>;
  /** Whether trying the same call again later may succeed (used by retry policies and callers). */
  readonly retryable: boolean;
  /**
   * The message for a caller who is not an operator (a client key, `Principal.keyClass` `client`, not anonymous),
   * when `message` holds an operator's explanation: hosts, URLs, configuration keys, another service's words
   * (`Upstream 'guesser' is unavailable` for `Upstream 'guesser' is unavailable: LLM provider 'ollama' at …`).
   * Unset: everyone gets `message`. The error handler picks; the log always has `message`.
   */
  readonly publicMessage?: string;

  constructor(
    code: string,
    status: number,
    message: string,
    options: {
      cause?: unknown;
      details?: Record<string, unknown>;
      headers?: Record<string, string>;
      retryable?: boolean;
      publicMessage?: string;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = status;
    this.details = options.details;
    this.headers = options.headers;
    this.retryable = options.retryable ?? (status === 429 || status >= 502);
    if (options.publicMessage !== undefined) this.publicMessage = options.publicMessage;
  }
}

/**
 * Response headers with an error's `code` and `retryable` (set by createServiceApp's error handler, read by the
 * HTTP client): one of our services calling another keeps the upstream's verdict across the hop.
 */
export const ERROR_CODE_HEADER = 'x-workemon-error-code';
export const RETRYABLE_HEADER = 'x-workemon-retryable';

export function isAppError(err: unknown): err is AppError {
  return err instanceof AppError;
}

/** The contract's error body: `{error, message, statusCode}`. */
export function errorBody(status: number, message: string): { error: string; message: string; statusCode: number } {
  return { error: STATUS_CODES[status] ?? 'Error', message, statusCode: status };
}

// The shared catalogue. Services add their own factories beside their code.
export const errors = {
  badRequest: (message: string, details?: Record<string, unknown>) =>
    new AppError('bad_request', 400, message, { details }),
  missingParameter: (name: string) =>
    new AppError('missing_parameter', 400, `Parameter '${name}' is required`, { details: { parameter: name } }),
  invalidParameter: (name: string, message: string) =>
    new AppError('invalid_parameter', 400, `Parameter '${name}' ${message}`, { details: { parameter: name } }),
  invalidJson: () => new AppError('invalid_json', 400, 'Request body is not valid JSON'),
  /** A JSON body whose bytes are not UTF-8: not JSON text at all (RFC 8259 §8.1), so the same code as invalidJson. */
  invalidUtf8: () =>
    new AppError('invalid_json', 400, 'Request body is not valid UTF-8 (JSON is UTF-8 only, RFC 8259 §8.1)'),
  unauthorized: (message = 'Missing or invalid API key: send Authorization: Bearer <key>') =>
    new AppError('unauthorized', 401, message, { headers: { 'WWW-Authenticate': 'Bearer' } }),
  forbidden: (message: string) => new AppError('forbidden', 403, message),
  notFound: (message = 'Not found') => new AppError('not_found', 404, message),
  payloadTooLarge: (message: string) => new AppError('payload_too_large', 413, message),
  /** A request body in an encoding or charset the service does not read (JSON is UTF-8 only, RFC 8259 §8.1). */
  unsupportedMediaType: () => new AppError('unsupported_media_type', 415, 'Unsupported request encoding'),
  /** The client went away before its request body ended. */
  requestAborted: () => new AppError('request_aborted', 400, 'Request aborted'),
  tooManyRequests: (retryAfterS: number, message = 'Too many requests') =>
    new AppError('rate_limited', 429, message, {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterS))) },
    }),
  upstreamBadResponse: (target: string, cause?: unknown, details?: Record<string, unknown>) =>
    new AppError('upstream_bad_response', 502, `Upstream '${target}' returned an invalid response`, { cause, details }),
  upstreamUnavailable: (target: string, cause?: unknown, details?: Record<string, unknown>) =>
    new AppError('upstream_unavailable', 503, `Upstream '${target}' is unavailable`, { cause, details }),
  upstreamTimeout: (target: string, cause?: unknown, details?: Record<string, unknown>) =>
    new AppError('upstream_timeout', 504, `Upstream '${target}' did not answer in time`, { cause, details }),
  dependencyUnavailable: (name: string, cause?: unknown) =>
    new AppError('dependency_unavailable', 503, `Dependency '${name}' is unavailable`, { cause }),
  notConfigured: (message: string) => new AppError('not_configured', 503, message, { retryable: false }),
  internal: (cause?: unknown) => new AppError('internal', 500, 'Internal server error', { cause, retryable: false }),
};
