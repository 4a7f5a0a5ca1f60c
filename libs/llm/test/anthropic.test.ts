import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMetrics, isAppError, parseEnv } from '@workemon/service-kit';
import { createLlmClient, llmEnvSchema, llmSettingsFromEnv } from '@workemon/llm';
import { startFakeAnthropic, type FakeAnthropic } from '@workemon/testkit/fake-anthropic';

const fakes: FakeAnthropic[] = [];
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

async function fake(): Promise<FakeAnthropic> {
  const f = await startFakeAnthropic();
  fakes.push(f);
  return f;
}

function clientFor(f: FakeAnthropic, env: Record<string, string> = {}) {
  const settings = llmSettingsFromEnv(
    parseEnv(z.object(llmEnvSchema), {
      LLM_PROVIDER: 'anthropic',
      LLM_BASE_URL: f.url,
      LLM_API_KEY: f.apiKey,
      LLM_MAX_RETRIES: '0',
      LLM_RETRY_BASE_MS: '1',
      ...env,
    }),
  );
  return createLlmClient(settings, { metrics: createMetrics('t') });
}

const schema = z.object({ is_enough: z.boolean(), response: z.string().min(1) });

describe('anthropic provider (Messages API)', () => {
  it('forces a tool whose input_schema is the answer schema and reads the tool call as the answer', async () => {
    const f = await fake();
    f.reply(() => ({ is_enough: false, response: 'Уточните, какой отчёт нужен' }));
    const client = clientFor(f, { LLM_TEMPERATURE: '0.4', LLM_MAX_TOKENS: '300' });
    const result = await client.complete({
      system: 'Ты секретарь.',
      userContent: 'Нужен отчёт',
      schema,
      schemaName: 'decision',
    });
    expect(result.data).toEqual({ is_enough: false, response: 'Уточните, какой отчёт нужен' });
    expect(result).toMatchObject({ provider: 'anthropic', model: 'claude-haiku-4-5' });
    expect(result.usage.inputTokens).toBeGreaterThan(0);
    const r = f.requests[0]!;
    expect(r.headers['x-api-key']).toBe(f.apiKey);
    expect(r.headers['anthropic-version']).toBe('2023-06-01');
    expect(r.headers['authorization']).toBeUndefined();
    expect(r.body).toMatchObject({ model: 'claude-haiku-4-5', max_tokens: 300, temperature: 0.4 });
    expect(r.body.system).toContain('Ты секретарь.');
    expect(r.body.messages).toHaveLength(1);
    expect(r.body.messages[0].role).toBe('user');
    expect(r.body.tools[0]).toMatchObject({ name: 'decision', input_schema: { type: 'object' } });
    expect(r.body.tools[0].input_schema.required).toEqual(['is_enough', 'response']);
    expect(r.body.tool_choice).toEqual({ type: 'tool', name: 'decision' });
  });

  it('with LLM_JSON_MODE=object prefills "{" and continues it', async () => {
    const f = await fake();
    f.reply(() => ({ is_enough: true, response: 'Отчёт по кошелькам' }));
    const result = await clientFor(f, { LLM_JSON_MODE: 'object' }).complete({ system: 's', userContent: 'u', schema });
    expect(result.data).toEqual({ is_enough: true, response: 'Отчёт по кошелькам' });
    const sent = f.requests[0]!.body;
    expect(sent.tools).toBeUndefined();
    expect(sent.messages.at(-1)).toEqual({ role: 'assistant', content: '{' });
  });

  it('retries 529 overloaded and 429 (honouring retry-after) like any provider, then answers', async () => {
    const f = await fake();
    f.failNext(1, { status: 529 });
    f.failNext(1, { status: 429, headers: { 'retry-after': '0' } });
    const result = await clientFor(f, { LLM_MAX_RETRIES: '2' }).complete({ system: 's', userContent: 'u', schema });
    expect(result.data.is_enough).toBe(true);
    expect(f.requests).toHaveLength(3);
  });

  it('maps exhausted overload to 503 (with Retry-After from 429) and a bad key to 503 naming the key', async () => {
    const f = await fake();
    f.failNext(1, { status: 529 });
    const overloaded = await clientFor(f)
      .complete({ system: 's', userContent: 'u', schema })
      .catch((e: unknown) => e);
    expect(isAppError(overloaded) && [overloaded.status, overloaded.code, overloaded.message]).toEqual([
      503,
      'llm_unavailable',
      "LLM provider 'anthropic' is unavailable (HTTP 529)",
    ]);
    f.failNext(1, { status: 429, headers: { 'retry-after': '7' } });
    const limited = await clientFor(f)
      .complete({ system: 's', userContent: 'u', schema })
      .catch((e: unknown) => e);
    expect(isAppError(limited) && [limited.status, limited.headers]).toEqual([503, { 'Retry-After': '7' }]);
    const badKey = await clientFor(f, { LLM_API_KEY: 'sk-ant-wrong' })
      .complete({ system: 's', userContent: 'u', schema })
      .catch((e: unknown) => e);
    expect(isAppError(badKey) && [badKey.status, badKey.code, badKey.message]).toEqual([
      503,
      'llm_auth_rejected',
      "LLM provider 'anthropic' rejected its credentials (HTTP 401): check LLM_API_KEY",
    ]);
  });

  it('is not configured without a key, and its health lists the model (aliases match their snapshots)', async () => {
    const f = await fake();
    const healthy = await clientFor(f).healthChecks()[0]!.run();
    expect(healthy).toEqual({
      status: 'ok',
      detail: `primary anthropic claude-haiku-4-5 at ${f.url}: reachable, model listed`,
    });
    expect(f.healthRequests[0]!.headers['x-api-key']).toBe(f.apiKey);
    const settings = llmSettingsFromEnv(parseEnv(z.object(llmEnvSchema), { LLM_PROVIDER: 'anthropic' }));
    expect(settings.primary).toMatchObject({ baseUrl: 'https://api.anthropic.com', missing: ['LLM_API_KEY'] });
    // A base URL pasted with the endpoint path is cut back to the root.
    const pasted = llmSettingsFromEnv(
      parseEnv(z.object(llmEnvSchema), {
        LLM_PROVIDER: 'anthropic',
        LLM_BASE_URL: 'https://api.anthropic.com/v1/messages',
      }),
    );
    expect(pasted.primary.baseUrl).toBe('https://api.anthropic.com');
  });
});
