import type { Env } from '@workemon/service-kit';
import { ConfigError } from '@workemon/service-kit';
import { loadLlmServiceConfig, type LlmServiceConfig } from '@workemon/llm';
import { GUESSER_PROMPT, GUESSER_PROMPT_VERSION } from './guesser-prompt.js';
import { loadCategories, type Category } from './categories.js';

export type GuesserConfig = LlmServiceConfig & {
  /** CATEGORIES / CATEGORIES_FILE (docs/llm.md); the shipped default when neither is set. */
  categories: Category[];
  /** `built-in`, `CATEGORIES` or the file's path (for the startup log). */
  categoriesSource: string;
  /**
   * NO_REPLY_MIN_CONFIDENCE (0–1, default DEFAULT_NO_REPLY_MIN_CONFIDENCE): the least classification confidence at
   * which a category marked `(no_reply)` ends a request unanswered; below it (or with no confidence) the request is
   * answered as any other, so a misfiled real request is never dropped in silence.
   */
  noReplyMinConfidence: number;
};

/**
 * NO_REPLY_MIN_CONFIDENCE's default: the workflow engine's default threshold for processing without a person
 * (`EMAIL_AI_CONFIDENCE_THRESHOLD=0.7`, docs/llm.md).
 */
export const DEFAULT_NO_REPLY_MIN_CONFIDENCE = 0.7;

/** NO_REPLY_MIN_CONFIDENCE as a number in 0–1; a problem naming the key otherwise. */
function noReplyMinConfidenceOf(source: Env, problems: string[]): number {
  const raw = source['NO_REPLY_MIN_CONFIDENCE']?.trim();
  if (!raw) return DEFAULT_NO_REPLY_MIN_CONFIDENCE;
  const value = Number(raw);
  if (Number.isFinite(value) && value >= 0 && value <= 1) return value;
  problems.push('NO_REPLY_MIN_CONFIDENCE: must be a number from 0 to 1');
  return DEFAULT_NO_REPLY_MIN_CONFIDENCE;
}

/** The guesser's configuration from environment variables (see docs/architecture.md and docs/llm.md). */
export function loadConfig(source: Env): GuesserConfig {
  const problems: string[] = [];
  let llm: LlmServiceConfig | undefined;
  let categories: ReturnType<typeof loadCategories> | undefined;
  // Both halves are checked so one start names every bad key.
  try {
    llm = loadLlmServiceConfig(source, {
      port: 8001,
      prompt: GUESSER_PROMPT,
      promptName: `guesser/${GUESSER_PROMPT_VERSION}`,
    });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  try {
    categories = loadCategories({ CATEGORIES: source['CATEGORIES'], CATEGORIES_FILE: source['CATEGORIES_FILE'] });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const noReplyMinConfidence = noReplyMinConfidenceOf(source, problems);
  if (problems.length || !llm || !categories) throw new ConfigError(problems);
  return { ...llm, categories: categories.categories, categoriesSource: categories.source, noReplyMinConfidence };
}
