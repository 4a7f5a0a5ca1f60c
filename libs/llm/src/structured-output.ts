import { z } from 'zod';
import { JsonTooDeepError, TEXT_CUT_MARKER, cutText, sanitizeDeep, sanitizeText } from '@workemon/service-kit';

export type ParseOutcome<T> = { ok: true; data: T } | { ok: false; problem: string };

const THINK_BLOCK = /<think(?:ing)?>[\s\S]*?<\/think(?:ing)?>/gi;
const FENCE = /^```[a-zA-Z0-9_-]*\s*\n?([\s\S]*?)\n?\s*```$/;

/**
 * Extracts a JSON value from a model's text tolerantly: drops `<think>` blocks (reasoning models, older Ollama),
 * Markdown code fences (YandexGPT answers Markdown by default), and prose around one JSON object.
 */
export function extractJson(raw: string): { ok: true; value: unknown } | { ok: false; problem: string } {
  let text = raw.replace(THINK_BLOCK, '').trim();
  // A reasoning block that never closed holds no answer.
  if (/^<think/i.test(text)) return { ok: false, problem: 'the answer is an unfinished <think> block with no JSON' };
  if (!text) return { ok: false, problem: 'the answer is empty (whitespace only)' };
  const fenced = FENCE.exec(text);
  if (fenced) text = fenced[1]!.trim();
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    const start = text.indexOf('{');
    const end = text.lastIndexOf('}');
    if (start >= 0 && end > start) {
      try {
        return { ok: true, value: JSON.parse(text.slice(start, end + 1)) as unknown };
      } catch {
        // fall through to the problem below
      }
    }
    return { ok: false, problem: 'the answer is not valid JSON' };
  }
}

/** Appended to a text cut at the answer limit (it counts towards the limit): the service kit's one marker. */
export const ANSWER_CUT_MARKER = TEXT_CUT_MARKER;

/** `text` within `maxChars` (the marker included), cut at a character boundary; unchanged when it fits. */
export function cutAnswer(text: string, maxChars: number): string {
  return cutText(text, maxChars, { at: 'character' });
}

/**
 * Cuts every string of a parsed answer to `maxChars` (see `cutAnswer`), in place: the value is the parser's own
 * copy, and an answer within the limit — the usual one — is walked without allocating. Returns the value, or the
 * cut string when the value is a string.
 */
function cutStrings(value: unknown, maxChars: number): unknown {
  if (typeof value === 'string') return cutAnswer(value, maxChars);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) value[i] = cutStrings(value[i], maxChars);
  } else if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const cut = cutStrings(record[key], maxChars);
      // defineProperty: a key named `__proto__` is an own property here, and assignment would not reach it.
      if (cut !== record[key]) Object.defineProperty(record, key, { value: cut, enumerable: true, writable: true });
    }
  }
  return value;
}

/**
 * Parses and validates a model's answer against the result schema. The answer is hostile text like any input:
 * control characters and lone surrogates are cleaned (service kit `sanitizeText`) before and after JSON parsing
 * (a `\u0000` escape decodes to NUL), and with `maxStringChars` every string is cut to it with a marker, so
 * a runaway answer is shortened rather than refused.
 */
export function parseStructured<T>(
  raw: string,
  schema: z.ZodType<T>,
  options: { maxStringChars?: number } = {},
): ParseOutcome<T> {
  const extracted = extractJson(sanitizeText(raw));
  if (!extracted.ok) return extracted;
  let clean: unknown;
  try {
    clean = sanitizeDeep(extracted.value);
  } catch (err) {
    if (err instanceof JsonTooDeepError) return { ok: false, problem: `the JSON is ${err.message}` };
    throw err;
  }
  const result = schema.safeParse(options.maxStringChars ? cutStrings(clean, options.maxStringChars) : clean);
  if (result.success) return { ok: true, data: result.data };
  const problem = result.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  return { ok: false, problem: `the JSON does not match the schema: ${problem}` };
}

// Converting a schema costs more than the rest of a call's bookkeeping; schemas are module constants, so the
// conversion is done once per schema.
const jsonSchemas = new WeakMap<z.ZodType, Record<string, unknown>>();

/** The result schema as JSON Schema for providers' structured-output modes and for the prompt (shared: read only). */
export function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  let converted = jsonSchemas.get(schema);
  if (!converted) {
    // `$schema` is dropped: some OpenAI-compatible servers reject unknown top-level keywords.
    const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input' }) as Record<string, unknown>;
    converted = rest;
    jsonSchemas.set(schema, converted);
  }
  return converted;
}
