import { memoizeBounded } from './memoize-bounded.js';
import type { ChatMessage, GenerateRequest } from './provider-wire.js';

/**
 * The JSON text of provider request bodies, built from pieces serialised once. A call's body is mostly constant:
 * the service's prompt (kilobytes), the answer format and the JSON Schema of the answer; only the user's message
 * and the nonce of its delimiters change per call. `JSON.stringify` of the whole body escaped the constant
 * kilobytes again on every call (the largest single cost of a call in the LLM services' profiles); here their
 * escapes are kept and only the changing pieces are serialised. The text is the same JSON (RFC 8259) the
 * provider would get from `JSON.stringify` of the body object, key for key and in the same order.
 */

/**
 * Parts of a message at least this long (the prompt, the answer format) have their escapes kept; shorter parts
 * (the per-call notice) and whole messages without parts (the user's, unique per call) are escaped anew.
 */
export const KEPT_ESCAPE_MIN_CHARS = 256;

/** How many distinct long parts keep their escapes (prompts × department personas); the oldest go first. */
export const KEPT_ESCAPES = 64;

/** The escaped characters of a string without its quotes, as JSON.stringify writes them. */
function jsonEscaped(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}

const keptEscape = memoizeBounded(KEPT_ESCAPES, jsonEscaped);

/** The escaped characters of one part of a message: kept for long parts, which are the constant ones. */
function partEscaped(part: string): string {
  return part.length >= KEPT_ESCAPE_MIN_CHARS ? keptEscape(part) : jsonEscaped(part);
}

/**
 * A message's content as a JSON string literal: from its `parts` when it has them (each part's escapes, the
 * long constant ones kept), else `JSON.stringify(content)`. Escaping part by part gives the same string: JSON
 * escapes are per character, and a surrogate pair split between two parts is written as two `\u` escapes that
 * decode to the same pair.
 */
export function contentJson(message: ChatMessage): string {
  return message.parts ? `"${contentEscaped(message)}"` : JSON.stringify(message.content);
}

/** A message's content as escaped JSON string characters without the quotes (see `contentJson`). */
export function contentEscaped(message: ChatMessage): string {
  if (!message.parts) return jsonEscaped(message.content);
  let text = '';
  for (const part of message.parts) text += partEscaped(part);
  return text;
}

/**
 * The messages of a chat as a JSON array of `{"role": …, "<contentKey>": …}` (`content` for OpenAI and Ollama,
 * `text` for YandexGPT). Roles are the fixed ASCII names of `ChatMessage`, written as they are.
 */
export function messagesJson(messages: readonly ChatMessage[], contentKey = 'content'): string {
  let text = '[';
  for (let i = 0; i < messages.length; i += 1) {
    const message = messages[i]!;
    text += `${i ? ',' : ''}{"role":"${message.role}","${contentKey}":${contentJson(message)}}`;
  }
  return `${text}]`;
}

/**
 * The JSON text of an object's fields without its braces (`"a":1,"b":{…}`), for joining into a larger object.
 * An empty object gives an empty string.
 */
export function jsonFields(fields: Record<string, unknown>): string {
  return JSON.stringify(fields).slice(1, -1);
}

/**
 * A wire's constant fields, serialised once: `createFieldsCache(build)` returns `fieldsOf(request)`, which is
 * `jsonFields(build(request))` kept per JSON Schema object (schemas are module constants, converted once by
 * `jsonSchemaOf`) and per schema name, temperature and token limit (what else a wire's constant fields depend
 * on). A schema object no longer used is collected with its texts.
 */
export function createFieldsCache(
  build: (request: GenerateRequest) => Record<string, unknown>,
): (request: GenerateRequest) => string {
  const bySchema = new WeakMap<object, Map<string, string>>();
  return (request) => {
    let byVariant = bySchema.get(request.jsonSchema);
    if (!byVariant) {
      byVariant = new Map();
      bySchema.set(request.jsonSchema, byVariant);
    }
    const variant = `${request.schemaName}\n${request.temperature}\n${request.maxOutputTokens}`;
    let text = byVariant.get(variant);
    if (text === undefined) {
      text = jsonFields(build(request));
      byVariant.set(variant, text);
    }
    return text;
  };
}
