import type { Env } from '@workemon/service-kit';
import { loadLlmServiceConfig, type LlmServiceConfig } from '@workemon/llm';
import { GUESSER_PROMPT } from './guesser-prompt.js';

export type GuesserConfig = LlmServiceConfig;

/** The guesser's configuration from environment variables (see docs/architecture.md and docs/llm.md). */
export function loadConfig(source: Env): GuesserConfig {
  return loadLlmServiceConfig(source, { port: 8001, prompt: GUESSER_PROMPT });
}
