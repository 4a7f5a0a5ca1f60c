import type { JsonMode, ProviderSettings } from './llm-config.js';
import { displayUrl, llmErrors } from './llm-errors.js';
import { requestProvider } from './provider-http.js';
import { usageOf, type ChatMessage, type ProviderWire } from './provider-wire.js';

/** The API version every request names (`anthropic-version`); the Messages API's stable version. */
export const ANTHROPIC_VERSION = '2023-06-01';

type MessagesResponse = {
  content?: ({ type?: string; text?: unknown; input?: unknown; name?: unknown } | undefined)[];
  stop_reason?: unknown;
  usage?: { input_tokens?: unknown; output_tokens?: unknown };
};

/** Messages' roles: the system prompt is a top-level field; consecutive turns of one role are merged. */
function toAnthropicMessages(messages: ChatMessage[]): {
  system: string;
  messages: { role: string; content: string }[];
} {
  const system = messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n\n');
  const turns: { role: string; content: string }[] = [];
  for (const m of messages) {
    if (m.role === 'system') continue;
    const last = turns[turns.length - 1];
    if (last && last.role === m.role) last.content += `\n\n${m.content}`;
    else turns.push({ role: m.role, content: m.content });
  }
  return { system, messages: turns };
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
  return {
    async generate(req) {
      const { system, messages } = toAnthropicMessages(req.messages);
      const body: Record<string, unknown> = {
        model: p.model,
        max_tokens: req.maxOutputTokens,
        // The Messages API takes 0–1.
        temperature: Math.min(1, req.temperature),
        system,
        messages: useTool ? messages : [...messages, { role: 'assistant', content: '{' }],
      };
      if (useTool) {
        body['tools'] = [
          {
            name: req.schemaName,
            description: 'Record the answer in the required structure.',
            input_schema: req.jsonSchema,
          },
        ];
        body['tool_choice'] = { type: 'tool', name: req.schemaName };
      }
      const { json, text } = await requestProvider({
        provider: p.name,
        method: 'POST',
        url: `${p.baseUrl}/v1/messages`,
        headers,
        body,
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
