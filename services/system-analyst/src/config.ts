import type { Env } from '@workemon/service-kit';
import { loadLlmServiceConfig, type LlmServiceConfig } from '@workemon/llm';
import { ANALYST_PROMPT, ANALYST_PROMPT_VERSION } from './analyst-prompt.js';

export type AnalystConfig = LlmServiceConfig;

/** The system analyst's configuration from environment variables (see docs/architecture.md and docs/llm.md). */
export function loadConfig(source: Env): AnalystConfig {
  return loadLlmServiceConfig(source, {
    port: 8002,
    prompt: ANALYST_PROMPT,
    promptName: `system-analyst/${ANALYST_PROMPT_VERSION}`,
  });
}
