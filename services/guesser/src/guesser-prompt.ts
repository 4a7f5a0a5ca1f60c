import { bundledPromptPath, loadPrompt } from '@workemon/llm';

/**
 * The version of the fixed prompt shipped with the guesser (`prompts/guesser/<version>.md`): v2 asks for the
 * request's category and a confidence besides the seed's answer (v1, kept for `npm run eval` comparisons).
 */
export const GUESSER_PROMPT_VERSION = 'v2';

/**
 * The fixed prompt (the seed's: a systems analyst in fintech decides whether the request is enough to tell the
 * subject area), read at start from `prompts/guesser/<version>.md`. PROMPT_FILE replaces it. The LLM client appends the
 * data-delimiting notice and the exact JSON Schema of the answer, so an override only needs the role and the task. The list of CATEGORIES is appended to
 * whichever prompt is in use (context-routes.ts).
 */
export const GUESSER_PROMPT = loadPrompt(bundledPromptPath('guesser', GUESSER_PROMPT_VERSION)).text;
