import { z } from 'zod';
import { env } from '@workemon/service-kit';

export const PROVIDERS = ['yandexgpt', 'deepseek', 'grok', 'openai', 'ollama', 'local', 'anthropic'] as const;
export type ProviderName = (typeof PROVIDERS)[number];

export type JsonMode = 'auto' | 'schema' | 'object';

/** Everything one provider needs; `missing` names the configuration keys still to set (empty: ready). */
export type ProviderSettings = {
  name: ProviderName;
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** The key an operator sets to give this provider its credentials (named in errors and health, never its value). */
  apiKeyEnv: string;
  /** YandexGPT only. */
  folderId?: string;
  /** YandexGPT only: `Api-Key` (service-account API key) or `Bearer` (IAM token). */
  yandexAuth?: 'api-key' | 'iam';
  missing: string[];
};

export type LlmSettings = {
  primary: ProviderSettings;
  fallbacks: ProviderSettings[];
  timeoutMs: number;
  maxRetries: number;
  retryBaseMs: number;
  retryAfterCapMs: number;
  maxInputChars: number;
  maxOutputTokens: number;
  /** Longest text in an answer (each string field); longer ones are cut with a marker. Default DEFAULT_MAX_ANSWER_CHARS. */
  maxAnswerChars?: number;
  /**
   * Calls in flight per provider (LLM_CONCURRENCY). Size it for the model's latency: in-flight = rate × latency
   * (Little's law), e.g. 20 analyses/s × 2 s = 40; the default 128 keeps a 1–3 s hosted model from becoming the
   * queue. Also the size of each provider's connection pool (`providerPoolSize`).
   */
  concurrency: number;
  /**
   * Calls that may wait for a slot beyond `concurrency` (LLM_QUEUE_LIMIT); the next one is refused at once with
   * 503 `llm_overloaded` and Retry-After rather than queued for minutes. Default DEFAULT_LLM_QUEUE_LIMIT.
   */
  queueLimit?: number;
  breakerThreshold: number;
  breakerResetMs: number;
  jsonMode: JsonMode;
  /** Sampling temperature sent to every provider (LLM_TEMPERATURE). */
  temperature: number;
  /** The `local` provider only (docs/llm.md, "The local model"). */
  local: LocalModelSettings;
};

/** Settings of the in-process model (provider `local`). */
export type LocalModelSettings = {
  /** Where `hf:` models are downloaded to (absolute or relative to the working directory). */
  modelsDir: string;
  /** Context window in tokens (prompt + answer). */
  contextSize: number;
  /** CPU threads for generation; 0: the library's choice (the machine's cores). */
  threads: number;
  /** Generations run at the same time (context sequences); more wait in line. */
  parallel: number;
};

/**
 * LLM_MAX_ANSWER_CHARS' default: about what LLM_MAX_OUTPUT_TOKENS' default (2,000) yields, and what the LLM
 * services' LLM_MAX_INPUT_CHARS budgets for the guesser's context (docs/llm.md, "Length limits").
 */
export const DEFAULT_MAX_ANSWER_CHARS = 8_000;

/**
 * LLM_CONCURRENCY's default: calls in flight per provider, sized for a hosted model answering in 1–3 s and at
 * least what one caller brings (128: at 64 a 500 ms model at 128 connections queued here, docs/operations.md).
 */
export const DEFAULT_LLM_CONCURRENCY = 128;
/** LLM_QUEUE_LIMIT's default: calls waiting for a slot per provider before 503 + Retry-After (4 × the default concurrency). */
export const DEFAULT_LLM_QUEUE_LIMIT = 256;

/**
 * Connections one provider's HTTP pool needs: one per call in flight (LLM_CONCURRENCY); waiting calls hold
 * none. The LLM HTTP stack sizes its per-origin pool with this (options, not a second setting to keep in step).
 */
export function providerPoolSize(settings: Pick<LlmSettings, 'concurrency'>): number {
  return settings.concurrency;
}

/** Each provider's usual endpoint and a model that exists there (model names churn: override with *_MODEL). */
// The wires append their own paths (`/foundationModels/v1/completion`, `/api/chat`); a base URL copied with that
// prefix already on it (as the providers' docs print full endpoint URLs) is cut back to the root.
const API_PREFIX: Partial<Record<ProviderName, RegExp>> = {
  yandexgpt: /\/foundationModels\/v1(\/completion)?$/,
  ollama: /\/api(\/chat)?$/,
  local: /\/+$/,
  anthropic: /\/v1(\/messages)?$/,
  deepseek: /\/chat\/completions$/,
  grok: /\/chat\/completions$/,
  openai: /\/chat\/completions$/,
};

function apiRoot(name: ProviderName, url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return trimmed.replace(API_PREFIX[name] ?? /$^/, '');
}

export const PROVIDER_DEFAULTS: Record<ProviderName, { baseUrl: string; model: string; needsKey: boolean }> = {
  yandexgpt: { baseUrl: 'https://llm.api.cloud.yandex.net', model: 'yandexgpt-lite', needsKey: true },
  // deepseek-chat was announced to retire after 2026-07-24; V4 Flash is its successor.
  deepseek: { baseUrl: 'https://api.deepseek.com', model: 'deepseek-v4-flash', needsKey: true },
  grok: { baseUrl: 'https://api.x.ai/v1', model: 'grok-4-fast-non-reasoning', needsKey: true },
  openai: { baseUrl: 'https://api.openai.com/v1', model: 'gpt-4o-mini', needsKey: true },
  ollama: { baseUrl: 'http://localhost:11434', model: 'qwen3:0.6b', needsKey: false },
  // In process (node-llama-cpp); the base URL is where `hf:` models are downloaded from (LLM_MODEL_BASE_URL).
  local: { baseUrl: 'https://huggingface.co', model: 'hf:Qwen/Qwen3-0.6B-GGUF:Q8_0', needsKey: false },
  anthropic: { baseUrl: 'https://api.anthropic.com', model: 'claude-haiku-4-5', needsKey: true },
};

/** A decimal number from the environment (all values arrive as strings). */
const envNumber = (fallback: number, description: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'must be a number such as 0.2')
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
    .default(fallback)
    .describe(description);

const providerKeys = (p: ProviderName) => {
  const prefix = p.toUpperCase();
  return {
    [`${prefix}_API_KEY`]: env.optionalString(
      `API key of ${p} when used as a fallback (or primary without LLM_API_KEY)`,
    ),
    [`${prefix}_BASE_URL`]: env.url(undefined, `Base URL of ${p}; default ${PROVIDER_DEFAULTS[p].baseUrl}`),
    [`${prefix}_MODEL`]: env.optionalString(`Model of ${p}; default ${PROVIDER_DEFAULTS[p].model}`),
  };
};

/** The environment keys of the LLM client; spread into a service's config schema. */
export const llmEnvSchema = {
  LLM_PROVIDER: env.oneOf(PROVIDERS, 'ollama', 'Primary LLM provider'),
  LLM_MODEL: env.optionalString("Primary provider's model; default: the provider's usual model"),
  LLM_API_KEY: env.optionalString("Primary provider's API key (YandexGPT: API key or IAM token)"),
  LLM_BASE_URL: env.url(undefined, "Primary provider's base URL (any OpenAI-compatible endpoint for openai)"),
  LLM_TIMEOUT_MS: env.int(60_000, 'Deadline of one LLM HTTP attempt', { min: 100 }),
  LLM_MAX_RETRIES: env.int(2, 'Retries per provider for 408/429/5xx/network errors', { min: 0, max: 10 }),
  LLM_RETRY_BASE_MS: env.int(500, 'First backoff step; doubles per retry, with full jitter', { min: 1 }),
  LLM_RETRY_AFTER_CAP_MS: env.int(30_000, 'Longest Retry-After we wait before retrying', { min: 0 }),
  // 32,000 holds the secretary's longest request (20,000 characters) plus the other fields and the guesser's context
  // (itself capped by LLM_MAX_OUTPUT_TOKENS), so anything the secretary accepts fits (docs/llm.md, "Length limits").
  LLM_MAX_INPUT_CHARS: env.int(32_000, 'Longest user content sent to the LLM; longer requests get 413', { min: 1 }),
  LLM_MAX_OUTPUT_TOKENS: env.int(2_000, 'Token limit of one answer', { min: 16 }),
  LLM_MAX_ANSWER_CHARS: env.int(
    DEFAULT_MAX_ANSWER_CHARS,
    'Longest text field of an answer; a longer one (a provider ignoring the token limit) is cut with a marker',
    { min: 200 },
  ),
  LLM_MAX_TOKENS: z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().min(16, 'must be at least 16'))
    .optional()
    .describe('Token limit of one answer (max_tokens); overrides LLM_MAX_OUTPUT_TOKENS'),
  LLM_TEMPERATURE: envNumber(0.2, 'Sampling temperature of every provider (0: most deterministic)', 0, 2),
  LLM_MODEL_BASE_URL: env.url(
    undefined,
    'Where the local provider downloads hf: models; default https://huggingface.co',
  ),
  LLM_MODELS_DIR: env.withDefault('./data/models', 'Directory of downloaded local models'),
  LLM_CONTEXT_SIZE: env.int(8_192, 'Context window of the local model in tokens (prompt + answer)', { min: 512 }),
  LLM_THREADS: env.int(0, 'CPU threads of the local model; 0: all cores', { min: 0, max: 256 }),
  LLM_LOCAL_PARALLEL: env.int(1, 'Generations the local model runs at once; more wait in line', { min: 1, max: 16 }),
  LLM_CONCURRENCY: env.int(
    DEFAULT_LLM_CONCURRENCY,
    'Calls in flight per provider (in-flight = requests/s × model latency in s); more wait in line',
    { min: 1, max: 4096 },
  ),
  LLM_QUEUE_LIMIT: env.int(
    DEFAULT_LLM_QUEUE_LIMIT,
    'Calls waiting for a slot per provider; beyond it a call gets 503 with Retry-After at once',
    { min: 0 },
  ),
  LLM_BREAKER_THRESHOLD: env.int(5, 'Consecutive failed calls that open the breaker of a provider', { min: 1 }),
  LLM_BREAKER_RESET_MS: env.int(30_000, 'How long an open breaker skips its provider before one trial call', {
    min: 1,
  }),
  LLM_JSON_MODE: env.oneOf(
    ['auto', 'schema', 'object'] as const,
    'auto',
    "Structured output: schema (JSON Schema), object (any JSON), auto (the provider's best)",
  ),
  LLM_FALLBACK_PROVIDERS: env
    .list('Providers tried in order when the primary is down, e.g. deepseek,grok')
    .pipe(z.array(z.enum(PROVIDERS, { error: `must list only: ${PROVIDERS.join(', ')}` }))),
  YANDEX_FOLDER_ID: env.optionalString('Yandex Cloud folder id (required for yandexgpt)'),
  YANDEX_AUTH: env.oneOf(
    ['auto', 'api-key', 'iam'] as const,
    'auto',
    'YandexGPT credential kind; auto: keys starting with t1. are IAM tokens, others API keys',
  ),
  ...providerKeys('yandexgpt'),
  ...providerKeys('deepseek'),
  ...providerKeys('grok'),
  ...providerKeys('openai'),
  ...providerKeys('ollama'),
  ...providerKeys('anthropic'),
};

type ParsedLlmEnv = {
  LLM_PROVIDER: ProviderName;
  LLM_MODEL?: string;
  LLM_API_KEY?: string;
  LLM_BASE_URL?: string;
  LLM_TIMEOUT_MS: number;
  LLM_MAX_RETRIES: number;
  LLM_RETRY_BASE_MS: number;
  LLM_RETRY_AFTER_CAP_MS: number;
  LLM_MAX_INPUT_CHARS: number;
  LLM_MAX_OUTPUT_TOKENS: number;
  LLM_MAX_ANSWER_CHARS?: number;
  LLM_MAX_TOKENS?: number;
  LLM_TEMPERATURE: number;
  LLM_MODEL_BASE_URL?: string;
  LLM_MODELS_DIR: string;
  LLM_CONTEXT_SIZE: number;
  LLM_THREADS: number;
  LLM_LOCAL_PARALLEL: number;
  LLM_CONCURRENCY: number;
  LLM_QUEUE_LIMIT?: number;
  LLM_BREAKER_THRESHOLD: number;
  LLM_BREAKER_RESET_MS: number;
  LLM_JSON_MODE: JsonMode;
  LLM_FALLBACK_PROVIDERS: ProviderName[];
  YANDEX_FOLDER_ID?: string;
  YANDEX_AUTH: 'auto' | 'api-key' | 'iam';
  [key: string]: unknown;
};

/** A provider's own key `{PREFIX}_{suffix}` (e.g. `DEEPSEEK_API_KEY`); undefined when unset. */
function ownKey(name: ProviderName, parsed: ParsedLlmEnv, suffix: string): string | undefined {
  return parsed[`${name.toUpperCase()}_${suffix}`] as string | undefined;
}

/**
 * A provider's API key and the key an operator sets for it: the primary reads `LLM_API_KEY` first, then its own
 * `{PREFIX}_API_KEY`; a fallback reads only its own. `apiKeyEnv` names `LLM_API_KEY` for a primary without its own.
 */
function credentialsOf(
  name: ProviderName,
  parsed: ParsedLlmEnv,
  primary: boolean,
): { apiKey?: string; apiKeyEnv: string } {
  const own = ownKey(name, parsed, 'API_KEY');
  const apiKey = (primary ? parsed.LLM_API_KEY : undefined) ?? own;
  const apiKeyEnv = primary && own === undefined ? 'LLM_API_KEY' : `${name.toUpperCase()}_API_KEY`;
  return { apiKey, apiKeyEnv };
}

/**
 * The base URL configured for a provider, before defaults: `LLM_MODEL_BASE_URL` for `local` (where hf: models are
 * downloaded from), else `LLM_BASE_URL` (primary only) then `{PREFIX}_BASE_URL`; undefined when none is set.
 */
function configuredBaseUrl(name: ProviderName, parsed: ParsedLlmEnv, primary: boolean): string | undefined {
  if (name === 'local') return parsed.LLM_MODEL_BASE_URL;
  return (primary ? parsed.LLM_BASE_URL : undefined) ?? ownKey(name, parsed, 'BASE_URL');
}

/**
 * YandexGPT's extra settings: the folder (`YANDEX_FOLDER_ID`, required unless the model is a full `gpt://` URI,
 * which carries its folder — pushed onto `settings.missing` otherwise) and the credential kind (`YANDEX_AUTH`;
 * `auto`: IAM tokens are issued with the `t1.` prefix, service-account API keys never start with it).
 */
function applyYandexSettings(settings: ProviderSettings, parsed: ParsedLlmEnv): void {
  settings.folderId = parsed.YANDEX_FOLDER_ID;
  if (!settings.folderId && !settings.model.startsWith('gpt://')) settings.missing.push('YANDEX_FOLDER_ID');
  const iam = settings.apiKey?.startsWith('t1.') === true;
  settings.yandexAuth = parsed.YANDEX_AUTH === 'auto' ? (iam ? 'iam' : 'api-key') : parsed.YANDEX_AUTH;
}

/** One provider's settings from the parsed environment; `primary` reads the `LLM_*` keys before the provider's own. */
function providerSettings(name: ProviderName, parsed: ParsedLlmEnv, primary: boolean): ProviderSettings {
  const { apiKey, apiKeyEnv } = credentialsOf(name, parsed, primary);
  const defaults = PROVIDER_DEFAULTS[name];
  const model = (primary ? parsed.LLM_MODEL : undefined) ?? ownKey(name, parsed, 'MODEL') ?? defaults.model;
  const missing: string[] = defaults.needsKey && !apiKey ? [apiKeyEnv] : [];
  const settings: ProviderSettings = {
    name,
    baseUrl: apiRoot(name, configuredBaseUrl(name, parsed, primary) ?? defaults.baseUrl),
    model,
    apiKey,
    apiKeyEnv,
    missing,
  };
  if (name === 'yandexgpt') applyYandexSettings(settings, parsed);
  return settings;
}

/** Turns the parsed environment (see llmEnvSchema) into the client's settings. Reads nothing itself. */
export function llmSettingsFromEnv(parsed: ParsedLlmEnv): LlmSettings {
  const fallbacks = [...new Set(parsed.LLM_FALLBACK_PROVIDERS)].filter((p) => p !== parsed.LLM_PROVIDER);
  return {
    primary: providerSettings(parsed.LLM_PROVIDER, parsed, true),
    fallbacks: fallbacks.map((p) => providerSettings(p, parsed, false)),
    timeoutMs: parsed.LLM_TIMEOUT_MS,
    maxRetries: parsed.LLM_MAX_RETRIES,
    retryBaseMs: parsed.LLM_RETRY_BASE_MS,
    retryAfterCapMs: parsed.LLM_RETRY_AFTER_CAP_MS,
    maxInputChars: parsed.LLM_MAX_INPUT_CHARS,
    maxOutputTokens: parsed.LLM_MAX_TOKENS ?? parsed.LLM_MAX_OUTPUT_TOKENS,
    maxAnswerChars: parsed.LLM_MAX_ANSWER_CHARS ?? DEFAULT_MAX_ANSWER_CHARS,
    concurrency: parsed.LLM_CONCURRENCY,
    queueLimit: parsed.LLM_QUEUE_LIMIT ?? DEFAULT_LLM_QUEUE_LIMIT,
    breakerThreshold: parsed.LLM_BREAKER_THRESHOLD,
    breakerResetMs: parsed.LLM_BREAKER_RESET_MS,
    jsonMode: parsed.LLM_JSON_MODE,
    temperature: parsed.LLM_TEMPERATURE,
    local: {
      modelsDir: parsed.LLM_MODELS_DIR,
      contextSize: parsed.LLM_CONTEXT_SIZE,
      threads: parsed.LLM_THREADS,
      parallel: parsed.LLM_LOCAL_PARALLEL,
    },
  };
}

/** Secret values a service's logger must redact. */
export function llmSecrets(settings: LlmSettings): string[] {
  return [settings.primary, ...settings.fallbacks].flatMap((p) => (p.apiKey ? [p.apiKey] : []));
}
