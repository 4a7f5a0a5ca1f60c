/**
 * Appended to a text cut to a length limit (counts towards the limit): an ellipsis and "answer shortened" in
 * Russian, the language the users read. The one marker for answers cut anywhere in Workemon (the LLM client's
 * LLM_MAX_ANSWER_CHARS, the secretary's MAX_RESPONSE_LENGTH).
 */
export const TEXT_CUT_MARKER = '\n[…ответ сокращён]';

export type CutTextOptions = {
  /** Appended after the cut; default TEXT_CUT_MARKER. */
  marker?: string;
  /**
   * Where the cut may fall: `sentence` (default) keeps whole sentences (Intl.Segmenter, granularity
   * `sentence`); when not even the first sentence fits, whole words, then characters. `character` cuts at the
   * last character that fits (never inside a surrogate pair).
   */
  at?: 'sentence' | 'character';
  /** The language whose sentence rules apply (BCP 47); default `ru`. */
  locale?: string;
};

/** The end of the last whole segment of `granularity` that ends within `room` characters (0 when none does). */
function lastSegmentEnd(text: string, room: number, granularity: 'sentence' | 'word', locale: string): number {
  let end = 0;
  for (const part of new Intl.Segmenter(locale, { granularity }).segment(text)) {
    if (part.index >= room) break;
    // A sentence segment carries its trailing spaces and line breaks: they need not fit.
    const partEnd = part.index + part.segment.trimEnd().length;
    if (partEnd > room) break;
    if (partEnd > 0) end = partEnd;
  }
  return end;
}

/**
 * `text` within `maxChars` UTF-16 code units, the marker included: unchanged when it fits, otherwise cut (see
 * `CutTextOptions.at`), trailing white space dropped, and the marker appended. A limit shorter than the marker
 * gives the marker cut to the limit.
 */
export function cutText(text: string, maxChars: number, options: CutTextOptions = {}): string {
  if (text.length <= maxChars) return text;
  const marker = options.marker ?? TEXT_CUT_MARKER;
  const room = maxChars - marker.length;
  if (room <= 0) return marker.slice(0, Math.max(0, maxChars));
  const locale = options.locale ?? 'ru';
  let end = 0;
  if ((options.at ?? 'sentence') === 'sentence') {
    end = lastSegmentEnd(text, room, 'sentence', locale) || lastSegmentEnd(text, room, 'word', locale);
  }
  if (end === 0) {
    end = room;
    // Never split a surrogate pair.
    if (/[\uD800-\uDBFF]/.test(text[end - 1]!)) end -= 1;
  }
  return `${text.slice(0, end).trimEnd()}${marker}`;
}
