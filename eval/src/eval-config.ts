import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { bundledPromptPath, llmEnvSchema } from '@workemon/llm';

/**
 * One configuration to score: what the guesser and the system analyst run with. Built from a JSON file
 * (`eval/configs/*.json`) or an inline `key=value,…` string; see docs/eval.md for every key.
 */
export type EvalConfig = {
  name: string;
  /** Environment for both LLM services (LLM_PROVIDER, LLM_MODEL, LLM_BASE_URL, LLM_API_KEY, LLM_* …). */
  env: Record<string, string>;
  /** Prompt file per service (a version name like `v2` resolves to prompts/<service>/v2.md); unset: the built-in. */
  prompts: { guesser?: string; 'system-analyst'?: string };
  /** Department name → persona text added to both prompts for that department's requests. */
  personas: Record<string, string>;
  /** Requested sampling temperature; passed as LLM_TEMPERATURE when the LLM client reads it, else recorded only. */
  temperature?: number;
  /** Score running services instead of building them in process. */
  guesserUrl?: string;
  analystUrl?: string;
  /** MAX_CLARIFICATIONS, as the secretary's (default 3). */
  maxClarifications: number;
};

const SERVICES = ['guesser', 'system-analyst'] as const;
const LLM_KEYS = new Set(Object.keys(llmEnvSchema));

/** The LLM_* keys of an environment (the base every configuration starts from, as the services would read it). */
export function llmEnvFrom(source: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(source)) if (LLM_KEYS.has(k) && v !== undefined) env[k] = v;
  return env;
}

/** Whether the LLM client reads LLM_TEMPERATURE (it does once configurable temperature lands). */
export const TEMPERATURE_CONFIGURABLE = LLM_KEYS.has('LLM_TEMPERATURE');

function promptPath(service: (typeof SERVICES)[number], value: string): string {
  if (/^[\w.-]+$/.test(value) && !value.includes('/') && !value.endsWith('.md'))
    return bundledPromptPath(service, value);
  return value;
}

function personaText(value: string): string {
  return existsSync(value) ? readFileSync(value, 'utf8').trim() : value.trim();
}

type RawConfig = {
  name?: string;
  provider?: string;
  model?: string;
  base_url?: string;
  api_key?: string;
  api_key_env?: string;
  temperature?: number | string;
  prompt?: string;
  prompts?: Record<string, string>;
  personas?: Record<string, string>;
  env?: Record<string, string>;
  guesser_url?: string;
  analyst_url?: string;
  max_clarifications?: number | string;
};

function parseInline(text: string): RawConfig {
  const raw: RawConfig & Record<string, unknown> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`--config ${text}: '${part}' is not key=value`);
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key.startsWith('persona.')) (raw.personas ??= {})[key.slice('persona.'.length)] = value;
    else if (key.startsWith('prompt.')) (raw.prompts ??= {})[key.slice('prompt.'.length)] = value;
    else if (/^[A-Z][A-Z0-9_]*$/.test(key)) (raw.env ??= {})[key] = value;
    else raw[key] = value;
  }
  return raw;
}

/**
 * A configuration from `--config`: a path to a JSON file, or inline `name=…,provider=…,model=…,base_url=…,
 * api_key_env=…,temperature=…,prompt=v2,persona.<department>=<file or text>,LLM_TIMEOUT_MS=…`.
 * `base` is the environment's LLM_* keys; the configuration's own keys win.
 */
export function parseEvalConfig(arg: string, base: Record<string, string>, index: number): EvalConfig {
  const fromFile = arg.endsWith('.json') && existsSync(arg);
  const raw = fromFile ? (JSON.parse(readFileSync(arg, 'utf8')) as RawConfig) : parseInline(arg);
  const known = new Set([
    'name',
    'provider',
    'model',
    'base_url',
    'api_key',
    'api_key_env',
    'temperature',
    'prompt',
    'prompts',
    'personas',
    'env',
    'guesser_url',
    'analyst_url',
    'max_clarifications',
    'description',
  ]);
  // Upper-case keys at the top level are environment keys, as inline (`{"LLM_PROVIDER": "openai", …}`).
  for (const [k, v] of Object.entries(raw)) {
    if (/^[A-Z][A-Z0-9_]*$/.test(k)) {
      raw.env = { ...(raw.env ?? {}), [k]: String(v) };
      delete (raw as Record<string, unknown>)[k];
    }
  }
  const unknown = Object.keys(raw).filter((k) => !known.has(k));
  if (unknown.length) throw new Error(`--config ${arg}: unknown keys ${unknown.join(', ')} (see docs/eval.md)`);
  const env: Record<string, string> = { ...base, ...(raw.env ?? {}) };
  if (raw.provider) env['LLM_PROVIDER'] = raw.provider;
  if (raw.model) env['LLM_MODEL'] = raw.model;
  if (raw.base_url) env['LLM_BASE_URL'] = raw.base_url;
  if (raw.api_key) env['LLM_API_KEY'] = raw.api_key;
  if (raw.api_key_env) {
    const key = process.env[raw.api_key_env];
    if (!key) throw new Error(`--config ${arg}: api_key_env names ${raw.api_key_env}, which is not set`);
    env['LLM_API_KEY'] = key;
  }
  const temperature = raw.temperature === undefined ? undefined : Number(raw.temperature);
  if (temperature !== undefined && !(temperature >= 0 && temperature <= 2))
    throw new Error(`--config ${arg}: temperature must be a number from 0 to 2`);
  if (temperature !== undefined && TEMPERATURE_CONFIGURABLE) env['LLM_TEMPERATURE'] = String(temperature);
  const prompts: EvalConfig['prompts'] = {};
  for (const service of SERVICES) {
    const value = raw.prompts?.[service] ?? raw.prompt;
    if (value) prompts[service] = promptPath(service, value);
  }
  const personas: Record<string, string> = {};
  for (const [department, value] of Object.entries(raw.personas ?? {})) personas[department] = personaText(value);
  const maxClarifications = raw.max_clarifications === undefined ? 3 : Number(raw.max_clarifications);
  const name =
    raw.name ??
    (fromFile
      ? basename(arg, '.json')
      : [env['LLM_PROVIDER'] ?? 'ollama', env['LLM_MODEL']].filter(Boolean).join('/')) ??
    `config-${index + 1}`;
  return {
    name,
    env,
    prompts,
    personas,
    temperature,
    guesserUrl: raw.guesser_url,
    analystUrl: raw.analyst_url,
    maxClarifications,
  };
}

/** Adds `--persona DEPARTMENT=FILE` (or text) to a configuration. */
export function withPersonaArg(config: EvalConfig, arg: string): EvalConfig {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new Error(`--persona ${arg}: expected DEPARTMENT=FILE`);
  return { ...config, personas: { ...config.personas, [arg.slice(0, eq)]: personaText(arg.slice(eq + 1)) } };
}
