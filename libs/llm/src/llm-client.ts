import type { z } from 'zod';
import {
  type AppError,
  SLOW_CALL_BUCKETS,
  backoffMs,
  createCircuitBreaker,
  isAppError,
  isRetryable,
  retry,
  type RetryOptions,
  type CircuitBreaker,
  type HealthCheck,
  type Logger,
  type Metrics,
} from '@workemon/service-kit';
import {
  DEFAULT_LLM_QUEUE_LIMIT,
  DEFAULT_MAX_ANSWER_CHARS,
  type LlmSettings,
  type ProviderName,
  type ProviderSettings,
} from './llm-config.js';
import { isInvalidOutput, llmErrors, unreachableFix } from './llm-errors.js';
import { createOpenAiWire } from './openai-wire.js';
import { createYandexGptWire } from './yandexgpt-wire.js';
import { createOllamaWire } from './ollama-wire.js';
import { createLocalWire, type LocalWire } from './local-wire.js';
import { createAnthropicWire } from './anthropic-wire.js';
import { createCallSlots, type CallSlots } from './call-slots.js';
import type { ChatMessage, ProviderWire, TokenUsage } from './provider-wire.js';
import { jsonSchemaOf, parseStructured } from './structured-output.js';
import { delimitUserContent, prepareUserContent } from './user-content.js';

export type CompleteRequest<T> = {
  /** The fixed instructions (trusted). */
  system: string;
  /** What the user sent (untrusted): stripped of invisible characters, capped, and delimited as data. */
  userContent: string;
  /** The result's shape; the answer is validated against it. */
  schema: z.ZodType<T>;
  /** Name of the schema for providers that want one (OpenAI json_schema). */
  schemaName?: string;
};

export type LlmResult<T> = {
  data: T;
  /** Tokens of every call made for this result (including a repair attempt). */
  usage: TokenUsage;
  provider: ProviderName;
  model: string;
  latencyMs: number;
};

/**
 * The optional `llm` object the guesser and the system analyst add to their answers (their contracts' `LlmCall`):
 * which provider and model answered, the tokens of every call behind the answer, and the time it took.
 */
export type LlmCallMetadata = {
  provider: ProviderName;
  model: string;
  input_tokens: number;
  output_tokens: number;
  latency_ms: number;
};

export function llmCallMetadata(result: LlmResult<unknown>): LlmCallMetadata {
  return {
    provider: result.provider,
    model: result.model,
    // Integers in the contract; a provider reporting odd counts must not break the answer's schema.
    input_tokens: Math.round(result.usage.inputTokens),
    output_tokens: Math.round(result.usage.outputTokens),
    latency_ms: Math.round(result.latencyMs),
  };
}

export type LlmClient = {
  complete<T>(request: CompleteRequest<T>): Promise<LlmResult<T>>;
  /** One reachability check per provider (never a generation), for the service's /health. */
  healthChecks(): HealthCheck[];
  /** The configured chain, primary first (for logs and health). */
  describe(): { provider: ProviderName; model: string; baseUrl: string; configured: boolean }[];
  /** Frees what the providers hold (the local model's memory, a download in progress). */
  close?(): Promise<void>;
};

export type LlmClientDeps = {
  metrics: Metrics;
  logger?: Logger;
};

type Runtime = {
  settings: ProviderSettings;
  wire: ProviderWire;
  breaker: CircuitBreaker;
  /** LLM_CONCURRENCY slots, and the line of calls waiting for one. */
  slots: CallSlots;
  /** Retries on this provider (`retryPolicy`). */
  retryPolicy: RetryOptions;
  /** Moving average of a call's time in its slot, in seconds (for Retry-After when the queue is full). */
  callSeconds: number;
  /** This provider's series, resolved once (a label lookup per call costs more than the increment). */
  series: {
    inputTokens: { inc(n: number): void };
    outputTokens: { inc(n: number): void };
    okDuration: { observe(s: number): void };
  };
};

/** What the steps of a call share: the settings, the provider chain and the metrics. */
type ClientContext = {
  settings: LlmSettings;
  /** LLM_QUEUE_LIMIT: calls that may wait for a slot per provider. */
  queueLimit: number;
  logger?: Logger;
  /** The chain, primary first. */
  runtimes: Runtime[];
  /** `workemon_llm_request_duration_seconds`, for the outcomes other than `ok` (rare, looked up when they happen). */
  duration: ReturnType<Metrics['histogram']>;
  /** `workemon_llm_calls_rejected_total`. */
  rejected: ReturnType<Metrics['counter']>;
};

/** The provider-independent half of a call: its messages and the answer's schema. */
type ProviderCall<T> = {
  messages: ChatMessage[];
  schema: z.ZodType<T>;
  jsonSchema: Record<string, unknown>;
  schemaName: string;
};

/** Weight of the newest call in `callSeconds`. */
const CALL_SECONDS_WEIGHT = 0.1;

// Errors after which the next provider in the chain is tried: the provider is down, slow, or talking nonsense.
// 413 (our input) and unexpected errors are not the provider's fault and would fail the same way elsewhere.
const FALLBACK_STATUSES = new Set([502, 503, 504]);

function createWire(p: ProviderSettings, settings: LlmSettings, logger?: Logger): ProviderWire | LocalWire {
  if (p.name === 'local') return createLocalWire(p, settings, { logger });
  if (p.name === 'anthropic') return createAnthropicWire(p, settings.jsonMode);
  if (p.name === 'yandexgpt') return createYandexGptWire(p, settings.jsonMode);
  if (p.name === 'ollama') return createOllamaWire(p, settings.jsonMode);
  return createOpenAiWire(p, settings.jsonMode);
}

function detail(err: AppError, key: string): unknown {
  return err.details?.[key];
}

function outcomeOf(err: unknown): string {
  if (!isAppError(err)) return 'error';
  switch (err.code) {
    case 'llm_timeout':
      return 'timeout';
    case 'llm_unavailable':
      if (detail(err, 'status') === 429) return 'rate_limited';
      return detail(err, 'status') === undefined ? 'unreachable' : 'server_error';
    case 'llm_auth_rejected':
      return 'auth_rejected';
    case 'llm_invalid_output':
      return 'invalid_output';
    case 'llm_rejected':
    case 'llm_model_missing':
      return 'rejected';
    case 'llm_model_unavailable':
      return 'unavailable';
    default:
      return 'error';
  }
}

/**
 * A provider that did not answer (no HTTP status) or, for a health probe, did not answer in time: the error
 * gets the provider's URL and the fix in its message, which reaches the caller's 503 body and /health.
 */
function explainUnreachable(rt: Runtime, primary: boolean, err: unknown, includeTimeout = false): unknown {
  if (!isAppError(err)) return err;
  const noAnswer = err.code === 'llm_unavailable' && detail(err, 'status') === undefined;
  if (!noAnswer && !(includeTimeout && err.code === 'llm_timeout')) return err;
  const { name, baseUrl, model } = rt.settings;
  return llmErrors.unreachable(name, err.cause ?? err, { baseUrl, fix: unreachableFix({ name, model, primary }) });
}

function repairPrompt(problem: string, jsonSchema: Record<string, unknown>): string {
  return (
    `Твой предыдущий ответ нельзя использовать: ${problem}. ` +
    'Ответь заново: только один исправленный JSON-объект (json), без Markdown и пояснений, по этой JSON Schema:\n' +
    JSON.stringify(jsonSchema)
  );
}

/** The system message's closing instruction for a schema, built once per schema (schemas are module constants). */
const answerFormats = new WeakMap<z.ZodType, string>();

/** "Answer with one JSON object of this JSON Schema", with the schema, for `schema` (cached per schema). */
function answerFormatOf(schema: z.ZodType): string {
  let text = answerFormats.get(schema);
  if (text === undefined) {
    text =
      'Формат ответа: только один JSON-объект (json), без Markdown и пояснений, по этой JSON Schema:\n' +
      JSON.stringify(jsonSchemaOf(schema));
    answerFormats.set(schema, text);
  }
  return text;
}

/**
 * The two messages of a call: the system message (the service's instructions, the notice that the delimited block
 * is data, the answer format) and the user message (the user's text, cleaned, capped at `maxInputChars` — 413
 * beyond — and wrapped in a tag with a fresh nonce). The system message also carries its three pieces as `parts`:
 * the instructions and the answer format are the same on every call, and the HTTP wires keep their JSON escapes.
 */
function chatMessages(request: CompleteRequest<unknown>, maxInputChars: number): ChatMessage[] {
  const content = prepareUserContent(request.userContent, maxInputChars);
  const { userMessage, systemNotice } = delimitUserContent(content);
  const parts = [request.system.trim(), `\n\n${systemNotice}\n\n`, answerFormatOf(request.schema)] as const;
  return [
    { role: 'system', content: `${parts[0]}${parts[1]}${parts[2]}`, parts },
    { role: 'user', content: userMessage },
  ];
}

/** The LLM client's metrics (docs/operations.md lists them), created on the service's registry once per client. */
type LlmMetrics = {
  duration: ReturnType<Metrics['histogram']>;
  tokens: ReturnType<Metrics['counter']>;
  breakerOpen: ReturnType<Metrics['gauge']>;
  waiting: ReturnType<Metrics['gauge']>;
  rejected: ReturnType<Metrics['counter']>;
};

function createLlmMetrics(metrics: Metrics): LlmMetrics {
  return {
    duration: metrics.histogram(
      'workemon_llm_request_duration_seconds',
      'Duration of HTTP attempts to LLM providers, by provider, model and outcome',
      ['provider', 'model', 'outcome'],
      SLOW_CALL_BUCKETS,
    ),
    tokens: metrics.counter('workemon_llm_tokens_total', 'Tokens used by LLM calls, by provider, model and kind', [
      'provider',
      'model',
      'kind',
    ]),
    breakerOpen: metrics.gauge(
      'workemon_llm_breaker_open',
      "Whether an LLM provider's circuit breaker is open or half-open (1) or closed (0)",
      ['provider'],
    ),
    waiting: metrics.gauge(
      'workemon_llm_calls_waiting',
      'LLM calls waiting for a slot (LLM_CONCURRENCY) of a provider, by provider',
      ['provider'],
    ),
    rejected: metrics.counter(
      'workemon_llm_calls_rejected_total',
      'LLM calls refused at once because every slot was busy and the wait queue full (LLM_QUEUE_LIMIT), by provider',
      ['provider'],
    ),
  };
}

/**
 * One provider of the chain: its wire, breaker (its gauge follows it), concurrency slots (the waiting gauge
 * follows the line) and its metric series, present from the first scrape so dashboards and alerts see zeros
 * rather than missing series.
 */
function createRuntime(p: ProviderSettings, settings: LlmSettings, m: LlmMetrics, logger?: Logger): Runtime {
  const provider = { provider: p.name };
  m.breakerOpen.set(provider, 0);
  m.tokens.inc({ provider: p.name, model: p.model, kind: 'input' }, 0);
  m.tokens.inc({ provider: p.name, model: p.model, kind: 'output' }, 0);
  m.duration.zero({ provider: p.name, model: p.model, outcome: 'ok' });
  m.waiting.set(provider, 0);
  m.rejected.inc(provider, 0);
  return {
    settings: p,
    wire: createWire(p, settings, logger),
    breaker: createCircuitBreaker({
      threshold: settings.breakerThreshold,
      resetMs: settings.breakerResetMs,
      // The breaker only changes between closed and not-closed on a verdict, so the gauge is set there.
      onChange: (closed) => m.breakerOpen.set(provider, closed ? 0 : 1),
    }),
    slots: createCallSlots(settings.concurrency, (waiting) => m.waiting.set(provider, waiting)),
    retryPolicy: retryPolicy(p, settings, logger),
    callSeconds: 1,
    series: {
      inputTokens: m.tokens.labels({ provider: p.name, model: p.model, kind: 'input' }),
      outputTokens: m.tokens.labels({ provider: p.name, model: p.model, kind: 'output' }),
      okDuration: m.duration.labels({ provider: p.name, model: p.model, outcome: 'ok' }),
    },
  };
}

/** Retry-After (capped) when the provider sent one, else full-jitter backoff capped likewise. */
function waitMs(settings: LlmSettings, n: number, retryAfterMs: number | undefined): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, settings.retryAfterCapMs);
  return Math.round(backoffMs(n, { baseMs: settings.retryBaseMs, maxMs: settings.retryAfterCapMs }));
}

/** Adds a generation's tokens to the provider's counters and to the call's usage (every attempt counts). */
function countTokens(rt: Runtime, generated: TokenUsage, usage: TokenUsage): void {
  rt.series.inputTokens.inc(generated.inputTokens);
  rt.series.outputTokens.inc(generated.outputTokens);
  usage.inputTokens += generated.inputTokens;
  usage.outputTokens += generated.outputTokens;
  usage.totalTokens += generated.totalTokens;
}

/**
 * One HTTP attempt on one provider: generation, tokens counted, the answer parsed and validated (an invalid one
 * throws `llm_invalid_output` with the problem and the raw text). Its duration is observed by outcome.
 */
async function attempt<T>(ctx: ClientContext, rt: Runtime, call: ProviderCall<T>, usage: TokenUsage): Promise<T> {
  const { settings } = ctx;
  const started = performance.now();
  try {
    const generation = await rt.wire.generate({
      messages: call.messages,
      jsonSchema: call.jsonSchema,
      schemaName: call.schemaName,
      timeoutMs: settings.timeoutMs,
      maxOutputTokens: settings.maxOutputTokens,
      temperature: settings.temperature,
    });
    countTokens(rt, generation.usage, usage);
    const parsed = parseStructured(generation.text, call.schema, {
      maxStringChars: settings.maxAnswerChars ?? DEFAULT_MAX_ANSWER_CHARS,
    });
    if (!parsed.ok) throw llmErrors.invalidOutput(rt.settings.name, parsed.problem, generation.text);
    rt.series.okDuration.observe((performance.now() - started) / 1000);
    return parsed.data;
  } catch (err) {
    const { name, model } = rt.settings;
    ctx.duration.observe({ provider: name, model, outcome: outcomeOf(err) }, (performance.now() - started) / 1000);
    throw explainUnreachable(rt, rt === ctx.runtimes[0], err);
  }
}

/**
 * The retry policy on one provider (built once per provider, `retry()` takes it on every call): errors that are
 * retryable (AppError.retryable) and marked for an immediate retry here (`details.retry`: 408/429/5xx/network; a
 * timeout is retryable later but not here), waiting Retry-After or the backoff, each retry logged.
 */
function retryPolicy(p: ProviderSettings, settings: LlmSettings, logger?: Logger): RetryOptions {
  return {
    maxRetries: settings.maxRetries,
    shouldRetry: (err) => isRetryable(err) && detail(err as AppError, 'retry') === true,
    delayMs: (n, err) => waitMs(settings, n, detail(err as AppError, 'retryAfterMs') as number | undefined),
    onRetry: (err, n, wait) =>
      logger?.warn(`LLM ${p.name} failed (${(err as AppError).message}); retry ${n + 1} in ${wait} ms`, {
        llm: { provider: p.name, retry: n + 1, wait_ms: wait },
      }),
  };
}

/**
 * The breaker's verdict on a failed call: a provider down counts against it (and opening it is logged);
 * nonsense still proves the provider is up; bad credentials or our own mistakes say nothing about it.
 */
function recordFailedCall(ctx: ClientContext, rt: Runtime, err: unknown): void {
  if (isAppError(err) && detail(err, 'providerDown') === true) {
    rt.breaker.recordFailure();
    if (rt.breaker.state() === 'open') {
      ctx.logger?.warn(`LLM ${rt.settings.name}: circuit breaker opened`, { llm: { provider: rt.settings.name } });
    }
  } else if (isInvalidOutput(err)) rt.breaker.recordSuccess();
  else rt.breaker.recordNeutral();
}

/** The 503 `llm_overloaded` of a provider whose slots and line are full, with the expected wait as Retry-After. */
function overloaded(ctx: ClientContext, rt: Runtime): AppError {
  const { concurrency } = ctx.settings;
  ctx.rejected.inc({ provider: rt.settings.name });
  // The queue drains `concurrency` calls per call time: the wait of the last one in line, plus its own call.
  const retryAfterS = (rt.slots.waiting / concurrency + 1) * rt.callSeconds;
  return llmErrors.overloaded(rt.settings.name, concurrency, ctx.queueLimit, retryAfterS);
}

/**
 * One logical call on one provider: concurrency slot (LLM_CONCURRENCY, then a wait queue of LLM_QUEUE_LIMIT;
 * beyond both, 503 `llm_overloaded` with Retry-After at once), breaker verdict, retries. With a slot free the
 * call starts at once, without a promise of its own.
 */
async function guarded<R>(ctx: ClientContext, rt: Runtime, fn: () => Promise<R>): Promise<R> {
  if (rt.slots.active + rt.slots.waiting >= ctx.settings.concurrency + ctx.queueLimit) throw overloaded(ctx, rt);
  const turn = rt.slots.acquire();
  if (turn) await turn;
  try {
    if (!rt.breaker.tryAcquire()) throw llmErrors.breakerOpen(rt.settings.name, rt.breaker.blockedForMs());
    const started = performance.now();
    try {
      const result = await retry(fn, rt.retryPolicy);
      rt.breaker.recordSuccess();
      rt.callSeconds += CALL_SECONDS_WEIGHT * ((performance.now() - started) / 1000 - rt.callSeconds);
      return result;
    } catch (err) {
      recordFailedCall(ctx, rt, err);
      throw err;
    }
  } finally {
    rt.slots.release();
  }
}

/** The messages of the one repair request after an invalid answer: the call, the answer, and what was wrong. */
function repairMessages(call: ProviderCall<unknown>, err: AppError): ChatMessage[] {
  const rawText = String(detail(err, 'rawText') ?? '');
  return [
    ...call.messages,
    { role: 'assistant', content: rawText.trim() || '(пустой ответ)' },
    { role: 'user', content: repairPrompt(String(detail(err, 'problem')), call.jsonSchema) },
  ];
}

/** A call on one provider, with one repair request when the answer is not valid JSON of the schema. */
async function runOnProvider<T>(ctx: ClientContext, rt: Runtime, call: ProviderCall<T>): Promise<LlmResult<T>> {
  const usage: TokenUsage = { inputTokens: 0, outputTokens: 0, totalTokens: 0 };
  const started = performance.now();
  let data: T;
  try {
    data = await guarded(ctx, rt, () => attempt(ctx, rt, call, usage));
  } catch (err) {
    if (!isInvalidOutput(err)) throw err;
    const problem = String(detail(err, 'problem'));
    ctx.logger?.warn(`LLM ${rt.settings.name} answered invalid output (${problem}); asking once for a correction`, {
      llm: { provider: rt.settings.name, problem },
    });
    const repair: ProviderCall<T> = { ...call, messages: repairMessages(call, err) };
    data = await guarded(ctx, rt, () => attempt(ctx, rt, repair, usage));
  }
  return {
    data,
    usage,
    provider: rt.settings.name,
    model: rt.settings.model,
    latencyMs: Math.round(performance.now() - started),
  };
}

/**
 * `complete()` over the chain: each provider in turn, skipping the unconfigured ones and those whose breaker is
 * open; the next is tried after a 502/503/504. When all fail, the primary's failure is thrown (the one an
 * operator has to fix first).
 */
async function completeOnChain<T>(ctx: ClientContext, request: CompleteRequest<T>): Promise<LlmResult<T>> {
  const call: ProviderCall<T> = {
    messages: chatMessages(request, ctx.settings.maxInputChars),
    schema: request.schema,
    jsonSchema: jsonSchemaOf(request.schema),
    schemaName: request.schemaName ?? 'result',
  };
  const failures: AppError[] = [];
  for (const rt of ctx.runtimes) {
    const skipped = unavailableProvider(rt);
    if (skipped) {
      failures.push(skipped);
      continue;
    }
    try {
      return await runOnProvider(ctx, rt, call);
    } catch (err) {
      if (!isAppError(err) || !FALLBACK_STATUSES.has(err.status)) throw err;
      failures.push(err);
      if (rt !== ctx.runtimes[ctx.runtimes.length - 1]) {
        ctx.logger?.warn(`LLM ${rt.settings.name} failed (${err.message}); trying the next provider`, {
          llm: { provider: rt.settings.name },
        });
      }
    }
  }
  throw failures[0]!;
}

/** Why a provider is skipped without a call (not configured, breaker open), or undefined when it may be called. */
function unavailableProvider(rt: Runtime): AppError | undefined {
  const { name, missing } = rt.settings;
  if (missing.length) return llmErrors.notConfigured(name, missing.join(' and '));
  const blockedMs = rt.breaker.blockedForMs();
  return blockedMs > 0 ? llmErrors.breakerOpen(name, blockedMs) : undefined;
}

/** The /health check of one provider of the chain (never a generation). */
function providerHealthCheck(rt: Runtime, index: number, chainLength: number): HealthCheck {
  const role = index === 0 ? 'primary' : 'fallback';
  return {
    name: `llm:${rt.settings.name}`,
    // With fallbacks configured one provider down degrades the service; alone it takes it down.
    critical: chainLength === 1,
    timeoutMs: 3000,
    run: async () => {
      const { name, missing } = rt.settings;
      if (missing.length) {
        return { status: 'degraded', detail: `${role} ${name} is not configured: set ${missing.join(' and ')}` };
      }
      const result = await rt.wire.checkHealth(2500).catch((err: unknown) => {
        throw explainUnreachable(rt, index === 0, err, true);
      });
      if (rt.breaker.state() !== 'closed') {
        return { status: 'degraded', detail: `${role} ${name}: circuit breaker ${rt.breaker.state()}` };
      }
      return { ...result, detail: `${role} ${result.detail ?? name}` };
    },
  };
}

/**
 * The LLM client: one `complete()` over a chain of providers (primary, then LLM_FALLBACK_PROVIDERS). Per
 * provider: a concurrency limit, a circuit breaker, retries of 408/429/5xx/network errors with exponential
 * backoff and full jitter (honouring Retry-After up to a cap), a per-attempt deadline, and one repair attempt
 * when the answer is not valid JSON of the schema. Timeouts are not retried: a model that needed the whole
 * deadline once will likely need it again, and the caller's own deadline is already spent.
 */
export function createLlmClient(settings: LlmSettings, deps: LlmClientDeps): LlmClient {
  const { metrics, logger } = deps;
  const m = createLlmMetrics(metrics);
  const runtimes = [settings.primary, ...settings.fallbacks].map((p) => createRuntime(p, settings, m, logger));
  const ctx: ClientContext = {
    settings,
    queueLimit: settings.queueLimit ?? DEFAULT_LLM_QUEUE_LIMIT,
    logger,
    runtimes,
    duration: m.duration,
    rejected: m.rejected,
  };
  return {
    complete: (request) => completeOnChain(ctx, request),
    healthChecks: () => runtimes.map((rt, index) => providerHealthCheck(rt, index, runtimes.length)),
    async close() {
      await Promise.all(runtimes.map((rt) => (rt.wire as Partial<LocalWire>).close?.() ?? Promise.resolve()));
    },
    describe() {
      return runtimes.map((rt) => ({
        provider: rt.settings.name,
        model: rt.settings.model,
        baseUrl: rt.settings.baseUrl,
        configured: rt.settings.missing.length === 0,
      }));
    },
  };
}
