import type { JsonMode, ProviderSettings } from './llm-config.js';
import { displayUrl, llmErrors } from './llm-errors.js';
import { contentEscaped, createFieldsCache, messagesJson } from './provider-body.js';
import { requestProvider } from './provider-http.js';
import { usageOf, type ChatMessage, type ProviderWire } from './provider-wire.js';

/** The API version every request names (`anthropic-version`); the Messages API's stable version. */
export const ANTHROPIC_VERSION = '2023-06-01';

type MessagesResponse = {
  content?: ({ type?: string; text?: unknown; input?: unknown; name?: unknown } | undefined)[];
  stop_reason?: unknown;
  usage?: { input_tokens?: unknown; output_tokens?: unknown };
};

/**
 * The system prompt of the Messages API, a top-level field: the system messages' contents joined by a blank
 * line, as a JSON string literal (the long constant parts' escapes kept, provider-body.ts).
 */
function systemJson(messages: readonly ChatMessage[]): string {
  let text = '';
  for (const m of messages) {
    if (m.role !== 'system') continue;
    text += `${text ? '\\n\\n' : ''}${contentEscaped(m)}`;
  }
  return `"${text}"`;
}

/** The Messages API's turns: every message but the system ones, consecutive turns of one role merged. */
function anthropicTurns(messages: readonly ChatMessage[]): ChatMessage[] {
  const turns: ChatMessage[] = [];
  for (const m of messages) {
    if (m.role === 'system') continue;
    const last = turns[turns.length - 1];
    if (last && last.role === m.role) last.content += `\n\n${m.content}`;
    else turns.push({ role: m.role, content: m.content });
  }
  return turns;
}

/**
 * Anthropic's Messages API (`POST {base}/v1/messages`, `x-api-key`, `anthropic-version: 2023-06-01`). Structured
 * output: by default (`auto`, `schema`) one tool whose `input_schema` is the answer's JSON Schema, forced with
 * `tool_choice: {type: 'tool'}`, so the answer is the tool call's `input` object; with `LLM_JSON_MODE=object`, a
 * prefilled assistant turn `{` that the answer continues. `max_tokens` is required by the API. Errors come as
 * `{type:'error', error:{type, message}}`: 429 (`rate_limit_error`, with `retry-after`), 500 (`api_error`) and
 * 529 (`overloaded_error`) are retried and count against the breaker like any 5xx; 401/403 name the key.
 */
export function createAnthropicWire(p: ProviderSettings, jsonMode: JsonMode): ProviderWire {
  const headers: Record<string, string> = { 'anthropic-version': ANTHROPIC_VERSION };
  if (p.apiKey) headers['x-api-key'] = p.apiKey;
  const useTool = jsonMode !== 'object';
  const modelJson = JSON.stringify(p.model);
  // The body's constant fields, serialised once per schema (provider-body.ts); keys in the order of the API's
  // reference. `max_tokens` is required; the API takes a temperature of 0–1.
  const generationFields = createFieldsCache((req) => ({
    max_tokens: req.maxOutputTokens,
    temperature: Math.min(1, req.temperature),
  }));
  const toolFields = createFieldsCache((req) => ({
    tools: [
      {
        name: req.schemaName,
        description: 'Record the answer in the required structure.',
        input_schema: req.jsonSchema,
      },
    ],
    tool_choice: { type: 'tool', name: req.schemaName },
  }));
  return {
    async generate(req) {
      const turns = anthropicTurns(req.messages);
      if (!useTool) turns.push({ role: 'assistant', content: '{' });
      const body =
        `{"model":${modelJson},${generationFields(req)},"system":${systemJson(req.messages)},` +
        `"messages":${messagesJson(turns)}${useTool ? `,${toolFields(req)}` : ''}}`;
      const { json, text } = await requestProvider({
        provider: p.name,
        method: 'POST',
        url: `${p.baseUrl}/v1/messages`,
        headers,
        json: body,
        timeoutMs: req.timeoutMs,
        apiKeyEnv: p.apiKeyEnv,
      });
      const message = json as MessagesResponse | undefined;
      if (!message || !Array.isArray(message.content)) {
        throw llmErrors.invalidOutput(p.name, 'no content in the response', text);
      }
      let answer: string | undefined;
      if (useTool) {
        const call = message.content.find((c) => c?.type === 'tool_use');
        if (call && typeof call.input === 'object' && call.input !== null) answer = JSON.stringify(call.input);
      } else {
        const texts = message.content.filter((c) => c?.type === 'text' && typeof c.text === 'string');
        if (texts.length) answer = `{${texts.map((c) => c!.text as string).join('')}`;
      }
      if (answer === undefined) {
        throw llmErrors.invalidOutput(
          p.name,
          useTool ? 'no tool_use block in the response' : 'no text block in the response',
          text,
        );
      }
      if (message.stop_reason === 'max_tokens') {
        throw llmErrors.invalidOutput(p.name, 'answer cut off at the token limit', answer);
      }
      return { text: answer, usage: usageOf(message.usage?.input_tokens, message.usage?.output_tokens) };
    },
    // GET /v1/models lists the models the key may use: endpoint and credentials in one call, no generation.
    async checkHealth(timeoutMs) {
      const { json } = await requestProvider({
        provider: p.name,
        method: 'GET',
        url: `${p.baseUrl}/v1/models?limit=1000`,
        headers,
        timeoutMs,
        apiKeyEnv: p.apiKeyEnv,
      });
      const ids = ((json as { data?: { id?: unknown }[] } | undefined)?.data ?? []).map((m) => m.id);
      // Aliases (claude-haiku-4-5) are not listed; their dated snapshots (claude-haiku-4-5-20251001) are.
      const listed = ids.some((id) => typeof id === 'string' && (id === p.model || id.startsWith(`${p.model}-`)));
      return listed
        ? { status: 'ok', detail: `anthropic ${p.model} at ${displayUrl(p.baseUrl)}: reachable, model listed` }
        : {
            status: 'degraded',
            detail: `anthropic at ${displayUrl(p.baseUrl)} is reachable but does not list model '${p.model}' (an alias or retired name?)`,
          };
    },
  };
}
