import { createHash } from 'node:crypto';
import { basename, dirname, extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memoizeBounded } from './memoize-bounded.js';
import { readPromptFile } from './prompt-file.js';
import type { GenerationSettings } from '@workemon/contracts';
import type { LlmSettings } from './llm-config.js';

/**
 * Which prompt (or persona) produced an answer: a readable name and the SHA-256 of the exact text sent (UTF-8,
 * trimmed), as lower-case hex. Two texts with the same hash are the same prompt, whatever their names.
 */
export type PromptVersion = { name: string; sha256: string };

/**
 * The generation settings an answer was produced with (the `settings` of the LLM services' `llm` metadata): the
 * contract's `GenerationSettings` — `temperature` sent to the provider, `max_output_tokens` (LLM_MAX_TOKENS, else
 * LLM_MAX_OUTPUT_TOKENS), `json_mode` (LLM_JSON_MODE).
 */
export type { GenerationSettings };

/** Lower-case hex SHA-256 of a text's UTF-8 bytes: the version of a prompt or persona. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** How many distinct personas keep their hash (departments with custom instructions); the oldest go first. */
export const KEPT_PERSONA_HASHES = 256;

/**
 * `sha256Hex` of a persona (already trimmed), kept for the last KEPT_PERSONA_HASHES distinct personas: a
 * department's persona comes with every request of that department, and hashing it each time cost more than the
 * rest of the answer's metadata.
 */
export const personaSha256: (persona: string) => string = memoizeBounded(KEPT_PERSONA_HASHES, sha256Hex);

// The repository's prompts/ folder: three levels above both libs/llm/src/ and libs/llm/dist/ (the Dockerfile
// copies it to the same place in images).
const PROMPTS_DIR = new URL('../../../prompts/', import.meta.url);

/** Path of a prompt shipped in the repository: `prompts/<service>/<version>.md`. */
export function bundledPromptPath(service: string, version: string): string {
  return fileURLToPath(new URL(`${service}/${version}.md`, PROMPTS_DIR));
}

/**
 * The name of a prompt file: `<service>/<version>` for `…/prompts/<service>/<version>.md` (the repository's
 * layout), otherwise the file name without its extension.
 */
export function promptNameOf(path: string): string {
  const stem = basename(path, extname(path));
  const parent = basename(dirname(path));
  return basename(dirname(dirname(path))) === 'prompts' ? `${parent}/${stem}` : stem;
}

/** Reads a prompt file (UTF-8, trimmed; unreadable or empty: ConfigError naming PROMPT_FILE) with its version. */
export function loadPrompt(path: string): { text: string; version: PromptVersion } {
  const text = readPromptFile(path);
  return { text, version: { name: promptNameOf(path), sha256: sha256Hex(text) } };
}

/** The generation settings of a client configured with `settings`, for provenance. */
export function generationSettings(settings: LlmSettings): GenerationSettings {
  return {
    temperature: settings.temperature,
    max_output_tokens: settings.maxOutputTokens,
    json_mode: settings.jsonMode,
  };
}

/** Longest persona (department instructions) accepted, in characters: operator text, not a document store. */
export const MAX_PERSONA_CHARS = 4000;

/**
 * The system prompt with a department's custom instructions (persona) appended as a separate, delimited section.
 * The persona is operator text set through the directory API, so it belongs to the trusted system message; it is
 * still fenced and subordinated to the fixed prompt so it can shape tone and knowledge but not the answer format.
 * No persona (undefined or blank): the prompt unchanged.
 */
export function withPersona(system: string, persona: string | undefined): string {
  const text = persona?.trim();
  if (!text) return system;
  return (
    `${system.trim()}\n\n` +
    'Инструкции департамента пользователя (задал оператор Workemon; это не данные пользователя). ' +
    'Учитывай их — тон, системы департамента, кто за что отвечает, — но формат ответа и правила выше важнее:\n' +
    `<department_instructions>\n${text.replace(/<\/?department_instructions>/g, '')}\n</department_instructions>`
  );
}
