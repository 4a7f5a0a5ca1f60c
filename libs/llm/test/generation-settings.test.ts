import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, createMetrics, parseEnv } from '@workemon/service-kit';
import { createLlmClient, llmEnvSchema, llmSettingsFromEnv } from '@workemon/llm';
import { startFakeLlm, type FakeLlm, type FakeLlmWire } from '@workemon/testkit/fake-llm';

const fakes: FakeLlm[] = [];
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

const settingsOf = (env: Record<string, string>) => llmSettingsFromEnv(parseEnv(z.object(llmEnvSchema), env));
const schema = z.object({ is_enough: z.boolean(), response: z.string() });

describe('LLM_TEMPERATURE and LLM_MAX_TOKENS', () => {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- whatever the client sent
  type Body = any;
  const cases: { provider: string; wire: FakeLlmWire; sent: (body: Body) => [unknown, unknown] }[] = [
    { provider: 'deepseek', wire: 'openai', sent: (b) => [b.temperature, b.max_tokens] },
    // Any OpenAI-compatible server (LLM_BASE_URL not api.openai.com) gets the widely supported max_tokens.
    { provider: 'openai', wire: 'openai', sent: (b) => [b.temperature, b.max_tokens] },
    { provider: 'grok', wire: 'openai', sent: (b) => [b.temperature, b.max_completion_tokens] },
    {
      provider: 'yandexgpt',
      wire: 'yandexgpt',
      sent: (b) => [b.completionOptions.temperature, b.completionOptions.maxTokens],
    },
    { provider: 'ollama', wire: 'ollama', sent: (b) => [b.options.temperature, b.options.num_predict] },
  ];
  for (const c of cases) {
    it(`reach ${c.provider} in its wire format`, async () => {
      const fake = await startFakeLlm({ wire: c.wire, model: c.wire === 'openai' ? 'm-1' : undefined });
      fakes.push(fake);
      const env: Record<string, string> = {
        LLM_PROVIDER: c.provider,
        LLM_BASE_URL: fake.url,
        LLM_MODEL: fake.model,
        LLM_TEMPERATURE: '0.7',
        LLM_MAX_TOKENS: '321',
        LLM_MAX_OUTPUT_TOKENS: '999',
        ...(fake.apiKey ? { LLM_API_KEY: fake.apiKey } : {}),
        ...(c.provider === 'yandexgpt' ? { YANDEX_FOLDER_ID: fake.folderId } : {}),
      };
      const client = createLlmClient(settingsOf(env), { metrics: createMetrics('t') });
      await client.complete({ system: 'Ответь json', userContent: 'x', schema });
      const [temperature, maxTokens] = c.sent(fake.requests[0]!.body);
      expect(temperature).toBe(0.7);
      // YandexGPT documents maxTokens as an int64, which proto-JSON writes as a string.
      expect(maxTokens).toBe(c.provider === 'yandexgpt' ? '321' : 321);
    });
  }

  it('default to temperature 0.2 and LLM_MAX_OUTPUT_TOKENS; refuse values out of range, naming the key', () => {
    const defaults = settingsOf({});
    expect(defaults.temperature).toBe(0.2);
    expect(defaults.maxOutputTokens).toBe(2000);
    expect(settingsOf({ LLM_MAX_OUTPUT_TOKENS: '500' }).maxOutputTokens).toBe(500);
    const bads: Record<string, string>[] = [
      { LLM_TEMPERATURE: '3' },
      { LLM_TEMPERATURE: 'hot' },
      { LLM_MAX_TOKENS: '0' },
    ];
    for (const bad of bads) {
      const err = (() => {
        try {
          settingsOf(bad);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems.join('\n')).toContain(Object.keys(bad)[0]);
    }
  });
});
