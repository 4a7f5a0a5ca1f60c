import type { JsonMode, ProviderSettings } from './llm-config.js';
import { displayUrl, llmErrors } from './llm-errors.js';
import { createFieldsCache, messagesJson } from './provider-body.js';
import { reachableWithout404, requestProvider } from './provider-http.js';
import { usageOf, type ProviderWire } from './provider-wire.js';

type CompletionResponse = {
  result?: {
    alternatives?: { message?: { text?: unknown }; status?: unknown }[];
    usage?: { inputTextTokens?: unknown; completionTokens?: unknown; totalTokens?: unknown };
  };
};

export function yandexModelUri(p: ProviderSettings): string {
  return p.model.startsWith('gpt://') ? p.model : `gpt://${p.folderId}/${p.model}/latest`;
}

/**
 * YandexGPT's native Foundation Models API (`POST /foundationModels/v1/completion`). Quirks mirrored here:
 * messages carry `text`, not `content`; the REST body is wrapped in `result`; token counts are int64 strings;
 * `maxTokens` is documented as a string. The folder always goes into `modelUri`, and `x-folder-id` carries it
 * too (IAM tokens of user accounts need it; for service-account keys it must equal the account's folder, which
 * the model URI needs anyway). Structured output: `jsonObject` by default (widest model support), `jsonSchema`
 * on request.
 */
export function createYandexGptWire(p: ProviderSettings, jsonMode: JsonMode): ProviderWire {
  const headers: Record<string, string> = {};
  if (p.apiKey) headers['authorization'] = p.yandexAuth === 'iam' ? `Bearer ${p.apiKey}` : `Api-Key ${p.apiKey}`;
  if (p.folderId) headers['x-folder-id'] = p.folderId;
  // Ask Yandex not to keep our requests (they carry employees' messages).
  headers['x-data-logging-enabled'] = 'false';
  const modelUri = yandexModelUri(p);
  const modelUriJson = JSON.stringify(modelUri);
  // The body's constant fields, serialised once per schema (provider-body.ts); keys in the order of the API's
  // reference. `maxTokens` is an int64, written as a string in proto-JSON.
  const optionsOf = createFieldsCache((req) => ({
    completionOptions: { stream: false, temperature: req.temperature, maxTokens: String(req.maxOutputTokens) },
  }));
  const formatOf = createFieldsCache((req) =>
    jsonMode === 'schema' ? { jsonSchema: { schema: req.jsonSchema } } : { jsonObject: true },
  );
  return {
    async generate(req) {
      const body = `{"modelUri":${modelUriJson},${optionsOf(req)},"messages":${messagesJson(req.messages, 'text')},${formatOf(req)}}`;
      const { json, text } = await requestProvider({
        provider: p.name,
        method: 'POST',
        url: `${p.baseUrl}/foundationModels/v1/completion`,
        headers,
        json: body,
        timeoutMs: req.timeoutMs,
        apiKeyEnv: p.apiKeyEnv,
      });
      const result = (json as CompletionResponse | undefined)?.result;
      const alternative = result?.alternatives?.[0];
      if (!alternative || typeof alternative.message?.text !== 'string') {
        throw llmErrors.invalidOutput(p.name, 'no result.alternatives[0].message.text in the response', text);
      }
      // TRUNCATED_FINAL (token limit) and CONTENT_FILTER (moderation) never hold a complete JSON answer.
      if (alternative.status !== undefined && alternative.status !== 'ALTERNATIVE_STATUS_FINAL') {
        throw llmErrors.invalidOutput(
          p.name,
          `alternative status ${String(alternative.status)}`,
          alternative.message.text,
        );
      }
      const u = result?.usage;
      return {
        text: alternative.message.text,
        usage: usageOf(u?.inputTextTokens, u?.completionTokens, u?.totalTokens),
      };
    },
    // The tokenizer checks endpoint, credentials, folder and model URI in one call without generating (not
    // billed as a generation).
    async checkHealth(timeoutMs) {
      const reachable = await reachableWithout404(() =>
        requestProvider({
          provider: p.name,
          method: 'POST',
          url: `${p.baseUrl}/foundationModels/v1/tokenize`,
          headers,
          body: { modelUri, text: 'ping' },
          timeoutMs,
          apiKeyEnv: p.apiKeyEnv,
        }),
      );
      return {
        status: 'ok',
        detail: `yandexgpt ${modelUri} at ${displayUrl(p.baseUrl)}: reachable, ${reachable ? 'tokenizer answered' : 'no tokenizer endpoint'}`,
      };
    },
  };
}
