// C0 control characters other than TAB (U+0009) and LF (U+000A); CR is normalised to LF before this runs.
// PostgreSQL refuses U+0000 in text and jsonb outright, and the others are invisible formatting tricks at best.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const C0_CONTROLS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/g;
// A high surrogate not followed by a low one, or a low one not preceded by a high one: not valid UTF-16, so it
// cannot be encoded as UTF-8 (PostgreSQL, JSON consumers and loggers each fail on it in their own way).
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
// Anything one of the three steps of sanitizeText may change: CR, the C0 controls they remove, any surrogate (a pair is
// kept, but telling pairs from lone halves is the full step's work).
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const NEEDS_CLEANING = /[\u0000-\u0008\u000B-\u001F\uD800-\uDFFF]/;

/**
 * Makes untrusted text safe to store and pass on: CRLF and lone CR become LF, the other C0 control characters
 * (U+0000–U+001F except TAB and LF) are removed, and lone surrogates are replaced by U+FFFD (the Unicode
 * replacement character, as a UTF-8 decoder would). Everything else, including other invisible characters, is
 * kept (the LLM client strips those it must). Idempotent.
 */
export function sanitizeText(text: string): string {
  // Most text needs nothing: one scan instead of three replacements (and no new string).
  if (!NEEDS_CLEANING.test(text)) return text;
  return text.replace(/\r\n?/g, '\n').replace(C0_CONTROLS, '').replace(LONE_SURROGATE, '\uFFFD');
}

/** Deepest nesting of arrays and objects `sanitizeDeep` accepts; real requests and answers use a handful of levels. */
export const MAX_JSON_DEPTH = 64;

/** A JSON value nested deeper than MAX_JSON_DEPTH (thousands of `[` would otherwise overflow the stack: a 500). */
export class JsonTooDeepError extends Error {
  override name = 'JsonTooDeepError';
  constructor() {
    super(`nested more than ${MAX_JSON_DEPTH} levels deep`);
  }
}

/**
 * `sanitizeText` applied to every string in a JSON-like value (object keys included), returning a copy;
 * numbers, booleans and null are returned as they are. Used on every request's query, path and JSON body by
 * `openapi.validate`, and on every LLM answer before it is validated. A key `__proto__` (JSON.parse makes it an
 * own property) stays an own property of the copy, never its prototype, so validation sees it as the unknown
 * field it is instead of the copy inheriting the fields inside it. Throws JsonTooDeepError beyond MAX_JSON_DEPTH.
 */
export function sanitizeDeep<T>(value: T): T {
  return sanitizeAt(value, 0);
}

function sanitizeAt<T>(value: T, depth: number): T {
  if (typeof value === 'string') return sanitizeText(value) as T;
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= MAX_JSON_DEPTH) throw new JsonTooDeepError();
  if (Array.isArray(value)) return value.map((v: unknown) => sanitizeAt(v, depth + 1)) as T;
  if (Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const key = sanitizeText(k);
      const clean = sanitizeAt(v, depth + 1);
      if (key === '__proto__') {
        Object.defineProperty(out, key, { value: clean, enumerable: true, writable: true, configurable: true });
      } else out[key] = clean;
    }
    return out as T;
  }
  return value;
}
