import { isAppError } from '@workemon/service-kit';
import type { JsonMode, ProviderSettings } from './llm-config.js';
import { displayUrl, llmErrors } from './llm-errors.js';
import { createFieldsCache, messagesJson } from './provider-body.js';
import { requestProvider } from './provider-http.js';
import { usageOf, type ProviderWire } from './provider-wire.js';

type ChatResponse = {
  message?: { content?: unknown; thinking?: unknown };
  done_reason?: unknown;
  prompt_eval_count?: unknown;
  eval_count?: unknown;
};

function isPulled(names: unknown[], model: string): boolean {
  // A model without a tag means `:latest`.
  const wanted = model.includes(':') ? model : `${model}:latest`;
  return names.some((n) => n === model || n === wanted);
}

/**
 * Ollama's native chat API (`POST /api/chat`). `stream: false` (its default is NDJSON streaming), `format` is
 * the JSON Schema (or "json"), and `think: false` so reasoning models answer directly; older Ollama versions
 * put `<think>` blocks inline, which the output parser strips. No auth unless a key is set (a proxy in front).
 */
export function createOllamaWire(p: ProviderSettings, jsonMode: JsonMode): ProviderWire {
  const headers: Record<string, string> = p.apiKey ? { authorization: `Bearer ${p.apiKey}` } : {};
  const pullHint = `run: ollama pull ${p.model}`;
  const modelJson = JSON.stringify(p.model);
  // The body's constant fields, serialised once per schema (provider-body.ts).
  const constantFields = createFieldsCache((req) => ({
    stream: false,
    format: jsonMode === 'object' ? 'json' : req.jsonSchema,
    think: false,
    options: { temperature: req.temperature, num_predict: req.maxOutputTokens },
  }));
  return {
    async generate(req) {
      let response: { json?: unknown; text: string };
      try {
        response = await requestProvider({
          provider: p.name,
          method: 'POST',
          url: `${p.baseUrl}/api/chat`,
          headers,
          json: `{"model":${modelJson},"messages":${messagesJson(req.messages)},${constantFields(req)}}`,
          timeoutMs: req.timeoutMs,
          apiKeyEnv: p.apiKeyEnv,
        });
      } catch (err) {
        // Ollama answers 404 `model "x" not found, try pulling it first`.
        if (isAppError(err) && err.details?.['status'] === 404)
          throw llmErrors.modelMissing(p.name, p.model, pullHint, p.baseUrl);
        throw err;
      }
      const chat = response.json as ChatResponse | undefined;
      if (!chat || typeof chat.message?.content !== 'string') {
        throw llmErrors.invalidOutput(p.name, 'no message.content in the response', response.text);
      }
      if (chat.done_reason === 'length') {
        throw llmErrors.invalidOutput(p.name, 'answer cut off at the token limit', chat.message.content);
      }
      return { text: chat.message.content, usage: usageOf(chat.prompt_eval_count, chat.eval_count) };
    },
    async checkHealth(timeoutMs) {
      const { json } = await requestProvider({
        provider: p.name,
        method: 'GET',
        url: `${p.baseUrl}/api/tags`,
        headers,
        timeoutMs,
        apiKeyEnv: p.apiKeyEnv,
      });
      const names = ((json as { models?: { name?: unknown; model?: unknown }[] } | undefined)?.models ?? []).flatMap(
        (m) => [m.name, m.model],
      );
      return isPulled(names, p.model)
        ? { status: 'ok', detail: `ollama ${p.model} at ${displayUrl(p.baseUrl)}: reachable, model pulled` }
        : {
            status: 'degraded',
            detail: `ollama at ${displayUrl(p.baseUrl)} is reachable but model '${p.model}' is not pulled: ${pullHint}`,
          };
    },
  };
}
