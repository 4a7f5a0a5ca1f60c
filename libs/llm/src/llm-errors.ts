import { AppError } from '@workemon/service-kit';

/**
 * A base URL as it may be shown to a caller or in /health: without user info (`user:password@`), query or
 * fragment, which can carry credentials (RFC 3986 §3.2.1 deprecates passwords in URLs, yet proxies use them).
 */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(an invalid URL)';
  }
}

/**
 * The LLM error catalogue. Messages are shown to callers: they name the provider and the configuration key to
 * fix, never a key's value or the provider's raw body (that goes to `details`, which only reaches the log).
 * `details.retry` marks errors worth another attempt on the same provider (408/429/5xx/network);
 * `details.providerDown` marks errors that count against the provider's circuit breaker.
 */
export const llmErrors = {
  inputTooLarge: (length: number, limit: number) =>
    new AppError(
      'llm_input_too_large',
      413,
      `Request text is too long: ${length} characters, the limit is ${limit} (LLM_MAX_INPUT_CHARS)`,
      { details: { length, limit }, retryable: false },
    ),
  notConfigured: (provider: string, missing: string) =>
    new AppError('llm_not_configured', 503, `LLM provider '${provider}' is not configured: set ${missing}`, {
      details: { provider, missing },
      retryable: false,
    }),
  authRejected: (provider: string, status: number, keyEnv: string) =>
    new AppError(
      'llm_auth_rejected',
      503,
      `LLM provider '${provider}' rejected its credentials (HTTP ${status}): check ${keyEnv}`,
      { details: { provider, status }, retryable: false },
    ),
  timeout: (provider: string, timeoutMs: number) =>
    new AppError('llm_timeout', 504, `LLM provider '${provider}' did not answer within ${timeoutMs} ms`, {
      details: { provider, timeoutMs, providerDown: true },
    }),
  /**
   * The provider did not answer at all (connection refused, DNS, reset). With `where` the message names its
   * URL and the fix (see `unreachableFix`): the first thing a new user without a model meets.
   */
  unreachable: (provider: string, cause: unknown, where?: { baseUrl: string; fix: string }) =>
    new AppError(
      'llm_unavailable',
      503,
      where
        ? `LLM provider '${provider}' at ${displayUrl(where.baseUrl)} is unreachable: ${where.fix}`
        : `LLM provider '${provider}' is unreachable`,
      {
        cause,
        details: {
          provider,
          retry: true,
          providerDown: true,
          ...(where ? { baseUrl: displayUrl(where.baseUrl) } : {}),
        },
      },
    ),
  httpStatus: (provider: string, status: number, retryAfterMs: number | undefined, providerMessage: string) => {
    const transient = status === 408 || status === 429 || status >= 500;
    if (transient) {
      return new AppError(
        'llm_unavailable',
        503,
        status === 429
          ? `LLM provider '${provider}' is rate limiting us (HTTP 429)`
          : `LLM provider '${provider}' is unavailable (HTTP ${status})`,
        {
          details: { provider, status, retry: true, providerDown: true, retryAfterMs, providerMessage },
          // Passed on to our caller when retries ran out: the provider knows best when to come back.
          headers:
            retryAfterMs === undefined
              ? undefined
              : { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
        },
      );
    }
    return new AppError('llm_rejected', 502, `LLM provider '${provider}' rejected the request (HTTP ${status})`, {
      details: { provider, status, providerMessage },
      retryable: false,
    });
  },
  modelMissing: (provider: string, model: string, hint: string, baseUrl?: string) =>
    new AppError(
      'llm_model_missing',
      503,
      `LLM provider '${provider}'${baseUrl ? ` at ${displayUrl(baseUrl)}` : ''} does not have model '${model}': ${hint}`,
      {
        details: { provider, model },
        retryable: false,
      },
    ),
  breakerOpen: (provider: string, retryInMs: number) =>
    new AppError(
      'llm_circuit_open',
      503,
      `LLM provider '${provider}' is failing; calls are paused for ${Math.ceil(retryInMs / 1000)} s`,
      { details: { provider }, headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryInMs / 1000))) } },
    ),
  /**
   * Every slot of the provider is busy and its wait queue is full (LLM_CONCURRENCY + LLM_QUEUE_LIMIT calls):
   * refused at once rather than queued behind minutes of work. Retry-After is the expected wait, at least 1 s.
   * Not the provider's fault: it does not count against its breaker, and the next provider in the chain is tried.
   */
  overloaded: (provider: string, concurrency: number, queueLimit: number, retryAfterS: number) =>
    new AppError(
      'llm_overloaded',
      503,
      `LLM provider '${provider}' is at capacity (${concurrency} calls running, ${queueLimit} waiting: ` +
        'LLM_CONCURRENCY, LLM_QUEUE_LIMIT); retry later',
      {
        details: { provider, concurrency, queueLimit },
        headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterS))) },
      },
    ),
  invalidOutput: (provider: string, problem: string, rawText: string) =>
    new AppError('llm_invalid_output', 502, `LLM provider '${provider}' returned an invalid answer`, {
      details: { provider, problem, rawText: rawText.slice(0, 2000) },
    }),
};

/**
 * What to do about a provider that cannot be reached, in the words of its configuration keys. The default,
 * a local Ollama, needs installing and its model pulling; a hosted provider needs its URL and the network
 * checked; either way another provider is one LLM_PROVIDER (+ LLM_API_KEY) away.
 */
export function unreachableFix(p: { name: string; model: string; primary: boolean }): string {
  const prefix = p.name.toUpperCase();
  const urlKeys = p.primary ? `LLM_BASE_URL or ${prefix}_BASE_URL` : `${prefix}_BASE_URL`;
  if (p.name === 'ollama') {
    return (
      `install Ollama and run \`ollama pull ${p.model}\` (or point ${urlKeys} at a running Ollama), ` +
      'or use a hosted model: set LLM_PROVIDER and LLM_API_KEY'
    );
  }
  return `check the network and ${urlKeys}, or choose another provider with LLM_PROVIDER and LLM_API_KEY`;
}

export function isInvalidOutput(err: unknown): err is AppError {
  return err instanceof AppError && err.code === 'llm_invalid_output';
}
