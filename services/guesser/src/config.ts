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
};

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
  if (problems.length || !llm || !categories) throw new ConfigError(problems);
  return { ...llm, categories: categories.categories, categoriesSource: categories.source };
}
