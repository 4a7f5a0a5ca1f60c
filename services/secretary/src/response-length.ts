import { cutText } from '@workemon/service-kit';
import type { Decision } from './decision.js';

/**
 * MAX_RESPONSE_LENGTH's default, in characters (UTF-16 code units): an answer with its cut marker fits one
 * Telegram message (4,096 characters, Bot API sendMessage) and reads comfortably in a mail.
 */
export const DEFAULT_MAX_RESPONSE_LENGTH = 4000;

/**
 * MAX_RESPONSE_LENGTH applied to what a user receives on every channel: `response` and `question`, each cut at
 * the last sentence boundary that fits (Intl.Segmenter, `sentence`) and marked with the service kit's
 * TEXT_CUT_MARKER (the marker counts towards the limit). The stored analysis keeps the whole text; a replay of a
 * message_id is cut the same way. `maxChars` undefined or 0: unchanged.
 */
export function capDecision<D extends Pick<Decision, 'response' | 'question'>>(decision: D, maxChars?: number): D {
  if (!maxChars) return decision;
  return {
    ...decision,
    response: cutText(decision.response, maxChars),
    question: cutText(decision.question, maxChars),
  };
}
