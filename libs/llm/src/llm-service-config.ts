import { z } from 'zod';
import {
  commonEnvSchema,
  elasticsearchFromEnv,
  env,
  parseEnv,
  type ElasticsearchLogOptions,
  type Env,
} from '@workemon/service-kit';
import { llmEnvSchema, llmSecrets, llmSettingsFromEnv, type LlmSettings } from './llm-config.js';
import { readPromptFile } from './prompt-file.js';

/** The configuration of an LLM-backed service (guesser, system analyst): they differ only in port and prompt. */
export type LlmServiceConfig = {
  port: number;
  logLevel: string;
  llm: LlmSettings;
  prompt: string;
  /** Where the prompt came from: `built-in` or the PROMPT_FILE path (for the startup log). */
  promptSource: string;
  /** Where logs are shipped besides stdout; unset: stdout only. */
  elasticsearch?: ElasticsearchLogOptions;
  /** Values the logger must redact. */
  secrets: string[];
};

function schemaFor(defaultPort: number) {
  return z.object({
    PORT: env.port(defaultPort),
    ...commonEnvSchema,
    ...llmEnvSchema,
    PROMPT_FILE: env.optionalString('File holding the prompt that replaces the fixed one in code (UTF-8)'),
  });
}

/** Reads PORT, LOG_LEVEL, ELASTICSEARCH_*, LLM_* and PROMPT_FILE (see docs/architecture.md and docs/llm.md). */
export function loadLlmServiceConfig(source: Env, defaults: { port: number; prompt: string }): LlmServiceConfig {
  const parsed = parseEnv(schemaFor(defaults.port), source);
  const llm = llmSettingsFromEnv(parsed);
  return {
    port: parsed.PORT,
    logLevel: parsed.LOG_LEVEL,
    llm,
    prompt: parsed.PROMPT_FILE ? readPromptFile(parsed.PROMPT_FILE) : defaults.prompt,
    promptSource: parsed.PROMPT_FILE ?? 'built-in',
    elasticsearch: elasticsearchFromEnv(parsed),
    secrets: [...llmSecrets(llm), ...(parsed.ELASTICSEARCH_PASSWORD ? [parsed.ELASTICSEARCH_PASSWORD] : [])],
  };
}
