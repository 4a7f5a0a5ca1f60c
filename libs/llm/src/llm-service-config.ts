import { z } from 'zod';
import {
  authEnvSchema,
  allKeys,
  camelCaseKeys,
  commonEnvSchema,
  readApiKeys,
  type ApiKeys,
  elasticsearchFromEnv,
  env,
  parseEnv,
  type ElasticsearchLogOptions,
  type Env,
} from '@workemon/service-kit';
import { llmEnvSchema, llmSecrets, llmSettingsFromEnv, type LlmSettings } from './llm-config.js';
import { readPromptFile } from './prompt-file.js';
import { promptNameOf, sha256Hex, type PromptVersion } from './prompt-version.js';

/** The configuration of an LLM-backed service (guesser, system analyst): they differ only in port and prompt. */
export type LlmServiceConfig = {
  port: number;
  logLevel: string;
  llm: LlmSettings;
  prompt: string;
  /** Where the prompt came from: `built-in` or the PROMPT_FILE path (for the startup log). */
  promptSource: string;
  /** The prompt's name (`guesser/v1`, or the PROMPT_FILE's) and the SHA-256 of its text, for provenance. */
  promptVersion: PromptVersion;
  /** Where logs are shipped besides stdout; unset: stdout only. */
  elasticsearch?: ElasticsearchLogOptions;
  /** Values the logger must redact. */
  secrets: string[];
  /** `HOST`: the address to listen on. */
  host: string;
  /** The key classes (`SERVICE_API_KEYS` is the one these services serve). */
  apiKeys: ApiKeys;
};

function schemaFor(defaultPort: number) {
  return z.object({
    PORT: env.port(defaultPort),
    ...commonEnvSchema,
    ...authEnvSchema,
    ...llmEnvSchema,
    PROMPT_FILE: env.optionalString('File holding the prompt that replaces the fixed one in code (UTF-8)'),
  });
}

/** Reads PORT, HOST, LOG_LEVEL, ELASTICSEARCH_*, *_API_KEYS, LLM_* and PROMPT_FILE (see docs/architecture.md and docs/llm.md). */
export function loadLlmServiceConfig(
  source: Env,
  defaults: {
    port: number;
    prompt: string;
    /** Name of the built-in prompt, e.g. `guesser/v1`. */ promptName?: string;
  },
): LlmServiceConfig {
  const parsed = parseEnv(schemaFor(defaults.port), source);
  const llm = llmSettingsFromEnv(parsed);
  const apiKeys = readApiKeys(parsed);
  const prompt = parsed.PROMPT_FILE ? readPromptFile(parsed.PROMPT_FILE) : defaults.prompt.trim();
  return {
    port: parsed.PORT,
    logLevel: parsed.LOG_LEVEL,
    llm,
    prompt,
    promptSource: parsed.PROMPT_FILE ?? 'built-in',
    promptVersion: {
      name: parsed.PROMPT_FILE ? promptNameOf(parsed.PROMPT_FILE) : (defaults.promptName ?? 'built-in'),
      sha256: sha256Hex(prompt),
    },
    elasticsearch: elasticsearchFromEnv(camelCaseKeys(parsed)),
    secrets: [
      ...llmSecrets(llm),
      ...(parsed.ELASTICSEARCH_PASSWORD ? [parsed.ELASTICSEARCH_PASSWORD] : []),
      ...allKeys(apiKeys),
    ],
    host: parsed.HOST,
    apiKeys,
  };
}
