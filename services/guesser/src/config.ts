import type { Env } from '@workemon/service-kit';
import { loadLlmServiceConfig, type LlmServiceConfig } from '@workemon/llm';
import { GUESSER_PROMPT, GUESSER_PROMPT_VERSION } from './guesser-prompt.js';

export type GuesserConfig = LlmServiceConfig;

/** The guesser's configuration from environment variables (see ARCHITECTURE.md and docs/llm.md). */
export function loadConfig(source: Env): GuesserConfig {
  return loadLlmServiceConfig(source, {
    port: 8001,
    prompt: GUESSER_PROMPT,
    promptName: `guesser/${GUESSER_PROMPT_VERSION}`,
  });
}
