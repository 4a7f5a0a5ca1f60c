import { readFileSync } from 'node:fs';
import { ConfigError } from '@workemon/service-kit';

/**
 * Reads a PROMPT_FILE override for a service's config. An unreadable or empty file stops the service at start
 * naming PROMPT_FILE: silently falling back to the built-in prompt would hide a typo for weeks.
 */
export function readPromptFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`PROMPT_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`]);
  }
  if (!text.trim()) throw new ConfigError([`PROMPT_FILE: ${path} is empty`]);
  return text.trim();
}
