import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  createCircuitBreaker,
  extractJson,
  llmEnvSchema,
  llmSettingsFromEnv,
  parseRetryAfterMs,
  parseStructured,
  stripInvisible,
} from '@workemon/llm';
import { parseEnv } from '@workemon/service-kit';

describe('extractJson', () => {
  it.each([
    ['plain', '{"a":1}'],
    ['fenced', '```json\n{"a":1}\n```'],
    ['fenced without language', '```\n{"a":1}\n```'],
    ['after a think block', '<think>\nрассуждаю {"a":2}\n</think>\n{"a":1}'],
    ['inside prose', 'Вот ответ: {"a":1} — готово.'],
    ['with leading blank lines (DeepSeek keep-alive)', '\n\n\n  {"a":1}'],
  ])('reads %s answers', (_name, text) => {
    expect(extractJson(text)).toEqual({ ok: true, value: { a: 1 } });
  });

  it.each([
    ['whitespace-only', '  \n\t ', 'empty'],
    ['unfinished think', '<think>я думаю {"a":1}', 'unfinished'],
    ['prose', 'не знаю', 'not valid JSON'],
  ])('rejects %s answers', (_name, text, problem) => {
    const result = extractJson(text);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problem).toContain(problem);
  });

  it('names the fields that break the schema', () => {
    const result = parseStructured('{"is_enough":"yes"}', z.object({ is_enough: z.boolean(), response: z.string() }));
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problem).toMatch(/is_enough: .*; response: /);
  });

  it('refuses an answer nested thousands of levels deep as nonsense, and keeps __proto__ an unknown field', () => {
    const schema = z.object({ is_enough: z.boolean(), response: z.string() }).strict();
    const deep = parseStructured(`{"is_enough":true,"response":${'['.repeat(5000)}${']'.repeat(5000)}}`, schema);
    expect(deep).toEqual({ ok: false, problem: 'the JSON is nested more than 64 levels deep' });
    const proto = parseStructured('{"__proto__":{"is_enough":true},"response":"ok"}', schema);
    expect(proto.ok).toBe(false);
  });
});

describe('stripInvisible', () => {
  it('removes zero-width, bidi, tag and variation-selector characters and keeps visible text', () => {
    const text = `a\u200bb\u202ec\u2066d\u{E0041}e\ufe0ff\u{E0100}g\ufeffh\u00adi`;
    expect(stripInvisible(text)).toBe('abcdefghi');
    expect(stripInvisible('Привет, мир! 👋 ½')).toBe('Привет, мир! 👋 ½');
  });
});

describe('parseRetryAfterMs', () => {
  it('reads seconds and HTTP dates', () => {
    expect(parseRetryAfterMs('3')).toBe(3000);
    expect(parseRetryAfterMs('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(
      10_000,
    );
    expect(parseRetryAfterMs(null)).toBeUndefined();
    expect(parseRetryAfterMs('soon')).toBeUndefined();
  });
});

describe('createCircuitBreaker', () => {
  it('opens after the threshold, lets one trial through after the reset, and closes on success', () => {
    let now = 0;
    const breaker = createCircuitBreaker({ threshold: 2, resetMs: 1000, now: () => now });
    breaker.recordFailure();
    expect(breaker.state()).toBe('closed');
    breaker.recordFailure();
    expect(breaker.state()).toBe('open');
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.blockedForMs()).toBe(1000);
    now = 1000;
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    breaker.recordFailure();
    expect(breaker.state()).toBe('open');
    now = 2000;
    expect(breaker.tryAcquire()).toBe(true);
    breaker.recordSuccess();
    expect(breaker.state()).toBe('closed');
  });
});

describe('llmSettingsFromEnv', () => {
  const settings = (env: Record<string, string>) => llmSettingsFromEnv(parseEnv(z.object(llmEnvSchema), env));

  it('configures fallbacks from their own keys and names the key each one misses', () => {
    const s = settings({
      LLM_PROVIDER: 'yandexgpt',
      LLM_API_KEY: 'AQVNkey',
      YANDEX_FOLDER_ID: 'b1gfolder',
      LLM_FALLBACK_PROVIDERS: 'deepseek, grok, yandexgpt',
      DEEPSEEK_API_KEY: 'sk-deep',
      GROK_BASE_URL: 'http://grok.local/v1/',
    });
    expect(s.primary).toMatchObject({ name: 'yandexgpt', model: 'yandexgpt-lite', yandexAuth: 'api-key', missing: [] });
    expect(s.fallbacks.map((f) => f.name)).toEqual(['deepseek', 'grok']);
    expect(s.fallbacks[0]).toMatchObject({ apiKey: 'sk-deep', baseUrl: 'https://api.deepseek.com', missing: [] });
    expect(s.fallbacks[1]).toMatchObject({ baseUrl: 'http://grok.local/v1', missing: ['GROK_API_KEY'] });
  });

  it('treats t1. keys as IAM tokens unless YANDEX_AUTH says otherwise', () => {
    expect(settings({ LLM_PROVIDER: 'yandexgpt', LLM_API_KEY: 't1.abc' }).primary).toMatchObject({
      yandexAuth: 'iam',
      missing: ['YANDEX_FOLDER_ID'],
    });
    expect(
      settings({ LLM_PROVIDER: 'yandexgpt', LLM_API_KEY: 't1.abc', YANDEX_AUTH: 'api-key' }).primary.yandexAuth,
    ).toBe('api-key');
  });
});
