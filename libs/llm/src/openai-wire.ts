import type { JsonMode, ProviderSettings } from './llm-config.js';
import { displayUrl, llmErrors } from './llm-errors.js';
import { createFieldsCache, messagesJson } from './provider-body.js';
import { reachableWithout404, requestProvider } from './provider-http.js';
import { usageOf, type ProviderWire } from './provider-wire.js';

type ChatCompletion = {
  choices?: { message?: { content?: unknown; reasoning_content?: unknown }; finish_reason?: unknown }[];
  usage?: { prompt_tokens?: unknown; completion_tokens?: unknown; total_tokens?: unknown };
};

/**
 * OpenAI-compatible chat completions (`POST {base}/chat/completions`, `Authorization: Bearer`), used for
 * DeepSeek, xAI Grok, OpenAI and any compatible endpoint. Structured output: `json_schema` where the provider
 * documents it (OpenAI, Grok), `json_object` for DeepSeek (which requires the word "json" in the prompt; the
 * client's system prompt carries it).
 */
export function createOpenAiWire(p: ProviderSettings, jsonMode: JsonMode): ProviderWire {
  const useSchema = jsonMode === 'schema' || (jsonMode === 'auto' && p.name !== 'deepseek');
  const ownApi = p.name === 'grok' || (p.name === 'openai' && /^https:\/\/api\.openai\.com(\/|$)/.test(p.baseUrl));
  const maxTokensField = ownApi ? 'max_completion_tokens' : 'max_tokens';
  const auth: Record<string, string> = p.apiKey ? { authorization: `Bearer ${p.apiKey}` } : {};
  // Compatible servers disagree on whether the API root carries `/v1` (DeepSeek answers both, most proxies and
  // local servers only `/v1/...`), and users copy either form into LLM_BASE_URL. A 404 on the configured form
  // tries the other once; the one that answered is kept.
  let base = p.baseUrl;
  const otherForm = (root: string) => (/\/v1$/.test(root) ? root.replace(/\/v1$/, '') : `${root}/v1`);
  const isNotFound = (err: unknown) => (err as { details?: Record<string, unknown> }).details?.['status'] === 404;
  const modelJson = JSON.stringify(p.model);
  // The body's constant fields, serialised once per schema; keys in the order the API documents them.
  const constantFields = createFieldsCache((req) => ({
    stream: false,
    temperature: req.temperature,
    response_format: useSchema
      ? { type: 'json_schema', json_schema: { name: req.schemaName, schema: req.jsonSchema, strict: false } }
      : { type: 'json_object' },
    // DeepSeek and OpenAI-compatible servers (vLLM, LM Studio, llama.cpp, LiteLLM) read max_tokens; OpenAI's own
    // API and Grok deprecate it in favour of max_completion_tokens (OpenAI's reasoning models reject max_tokens).
    [maxTokensField]: req.maxOutputTokens,
  }));
  return {
    async generate(req) {
      const body = `{"model":${modelJson},"messages":${messagesJson(req.messages)},${constantFields(req)}}`;
      const post = (root: string) =>
        requestProvider({
          provider: p.name,
          method: 'POST',
          url: `${root}/chat/completions`,
          headers: auth,
          json: body,
          timeoutMs: req.timeoutMs,
          apiKeyEnv: p.apiKeyEnv,
        });
      let answer: Awaited<ReturnType<typeof post>>;
      try {
        answer = await post(base);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const other = otherForm(base);
        try {
          answer = await post(other);
        } catch {
          throw err; // a real 404 (e.g. an unknown model): the configured form's error is the one to report
        }
        base = other;
      }
      const { json, text } = answer;
      const completion = json as ChatCompletion | undefined;
      const choice = completion?.choices?.[0];
      if (!choice || typeof choice.message?.content !== 'string') {
        // DeepSeek JSON mode may return null/blank content: treated like any nonsense (one repair attempt).
        throw llmErrors.invalidOutput(p.name, 'no choices[0].message.content in the response', text);
      }
      if (choice.finish_reason === 'length') {
        throw llmErrors.invalidOutput(p.name, 'answer cut off at the token limit', choice.message.content);
      }
      const u = completion?.usage;
      return { text: choice.message.content, usage: usageOf(u?.prompt_tokens, u?.completion_tokens, u?.total_tokens) };
    },
    async checkHealth(timeoutMs) {
      let json: unknown;
      const listed = await reachableWithout404(async () => {
        json = (
          await requestProvider({
            provider: p.name,
            method: 'GET',
            url: `${base}/models`,
            headers: auth,
            timeoutMs,
            apiKeyEnv: p.apiKeyEnv,
          })
        ).json;
      });
      if (!listed)
        return {
          status: 'ok',
          detail: `${p.name} at ${displayUrl(p.baseUrl)}: reachable (no /models endpoint to list)`,
        };
      const ids = ((json as { data?: { id?: unknown }[] } | undefined)?.data ?? []).map((m) => m.id);
      return ids.includes(p.model)
        ? { status: 'ok', detail: `${p.name} ${p.model} at ${displayUrl(p.baseUrl)}: reachable, model listed` }
        : {
            status: 'degraded',
            detail: `${p.name} at ${displayUrl(p.baseUrl)} is reachable but does not list model '${p.model}'`,
          };
    },
  };
}
