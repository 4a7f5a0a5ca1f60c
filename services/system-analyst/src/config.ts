import { z } from 'zod';
import { commonEnvSchema, env, parseEnv, type Env } from '@workemon/service-kit';
import { llmEnvSchema, llmSecrets, llmSettingsFromEnv, readPromptFile, type LlmSettings } from '@workemon/llm';
import { ANALYST_PROMPT } from './analyst-prompt.js';

const schema = z.object({
  PORT: env.port(8002),
  ...commonEnvSchema,
  ...llmEnvSchema,
  PROMPT_FILE: env.optionalString('File holding the prompt that replaces the fixed one in code (UTF-8)'),
});

export type AnalystConfig = {
  port: number;
  logLevel: string;
  llm: LlmSettings;
  prompt: string;
  /** Where the prompt came from: `built-in` or the PROMPT_FILE path (for the startup log). */
  promptSource: string;
  /** Values the logger must redact. */
  secrets: string[];
};

/** The system analyst's configuration from environment variables (see ARCHITECTURE.md and docs/llm.md). */
export function loadConfig(source: Env): AnalystConfig {
  const parsed = parseEnv(schema, source);
  const llm = llmSettingsFromEnv(parsed);
  return {
    port: parsed.PORT,
    logLevel: parsed.LOG_LEVEL,
    llm,
    prompt: parsed.PROMPT_FILE ? readPromptFile(parsed.PROMPT_FILE) : ANALYST_PROMPT,
    promptSource: parsed.PROMPT_FILE ?? 'built-in',
    secrets: [...llmSecrets(llm), ...(parsed.ELASTICSEARCH_PASSWORD ? [parsed.ELASTICSEARCH_PASSWORD] : [])],
  };
}
