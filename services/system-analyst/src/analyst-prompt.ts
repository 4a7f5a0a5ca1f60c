import { bundledPromptPath, loadPrompt } from '@workemon/llm';

/** The version of the fixed prompt shipped with the system analyst (`prompts/system-analyst/<version>.md`). */
export const ANALYST_PROMPT_VERSION = 'v1';

/**
 * The fixed prompt (the seed's: a data engineer in fintech advises in which system components which operations
 * are needed), read at start from `prompts/system-analyst/v1.md`. PROMPT_FILE replaces it. The LLM client appends
 * the data-delimiting notice and the exact JSON Schema of the answer (including the action enum), so an override
 * only needs the role and the task.
 */
export const ANALYST_PROMPT = loadPrompt(bundledPromptPath('system-analyst', ANALYST_PROMPT_VERSION)).text;
