import { z } from 'zod';
import { commonEnvSchema, env, parseEnv, type Env } from '@workemon/service-kit';
import { llmEnvSchema, llmSecrets, llmSettingsFromEnv, readPromptFile, type LlmSettings } from '@workemon/llm';
import { GUESSER_PROMPT } from './guesser-prompt.js';

const schema = z.object({
  PORT: env.port(8001),
  ...commonEnvSchema,
  ...llmEnvSchema,
  PROMPT_FILE: env.optionalString('File holding the prompt that replaces the fixed one in code (UTF-8)'),
});

export type GuesserConfig = {
  port: number;
  logLevel: string;
  llm: LlmSettings;
  prompt: string;
  /** Where the prompt came from: `built-in` or the PROMPT_FILE path (for the startup log). */
  promptSource: string;
  /** Values the logger must redact. */
  secrets: string[];
};

/** The guesser's configuration from environment variables (see ARCHITECTURE.md and docs/llm.md). */
export function loadConfig(source: Env): GuesserConfig {
  const parsed = parseEnv(schema, source);
  const llm = llmSettingsFromEnv(parsed);
  return {
    port: parsed.PORT,
    logLevel: parsed.LOG_LEVEL,
    llm,
    prompt: parsed.PROMPT_FILE ? readPromptFile(parsed.PROMPT_FILE) : GUESSER_PROMPT,
    promptSource: parsed.PROMPT_FILE ?? 'built-in',
    secrets: [...llmSecrets(llm), ...(parsed.ELASTICSEARCH_PASSWORD ? [parsed.ELASTICSEARCH_PASSWORD] : [])],
  };
}
