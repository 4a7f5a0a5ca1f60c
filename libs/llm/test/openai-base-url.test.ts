import { describe, it, expect, afterEach } from 'vitest';
import express from 'express';
import { z } from 'zod';
import { parseEnv, createMetrics } from '@workemon/service-kit';
import { createLlmClient, llmEnvSchema, llmSettingsFromEnv } from '@workemon/llm';
import { listen, type Listening } from '@workemon/testkit/ports';

// A compatible server that, like most proxies and local servers, serves the API only under /v1.
async function startV1OnlyServer(): Promise<Listening & { paths: string[] }> {
  const paths: string[] = [];
  const app = express();
  app.use(express.json());
  app.use((req, _res, next) => {
    paths.push(`${req.method} ${req.path}`);
    next();
  });
  app.post('/v1/chat/completions', (req, res) => {
    expect(req.get('authorization')).toBe('Bearer k-123');
    res.json({
      choices: [{ message: { content: JSON.stringify({ is_enough: true, response: 'ok' }) }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    });
  });
  app.use((_req, res) => res.status(404).json({ error: { message: 'not found' } }));
  return Object.assign(await listen(app), { paths });
}

const open: Listening[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((l) => l.close()));
});

function clientFor(baseUrl: string) {
  const settings = llmSettingsFromEnv(
    parseEnv(z.object(llmEnvSchema), {
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: baseUrl,
      LLM_API_KEY: 'k-123',
      LLM_MAX_RETRIES: '0',
    }),
  );
  return createLlmClient(settings, { metrics: createMetrics('t') });
}

const schema = z.object({ is_enough: z.boolean(), response: z.string() });

describe('OpenAI-compatible base URL', () => {
  it('reaches a /v1-only server whether or not LLM_BASE_URL carries /v1, and keeps the form that answered', async () => {
    const server = await startV1OnlyServer();
    open.push(server);
    const withoutV1 = clientFor(server.url);
    const first = await withoutV1.complete({ system: 'answer json', userContent: 'hi', schema });
    expect(first.data).toEqual({ is_enough: true, response: 'ok' });
    await withoutV1.complete({ system: 'answer json', userContent: 'again', schema });
    expect(server.paths).toEqual(['POST /chat/completions', 'POST /v1/chat/completions', 'POST /v1/chat/completions']);

    server.paths.length = 0;
    const withV1 = clientFor(`${server.url}/v1`);
    expect((await withV1.complete({ system: 'answer json', userContent: 'hi', schema })).data.response).toBe('ok');
    expect(server.paths).toEqual(['POST /v1/chat/completions']);
  });

  it("reports the configured form's 404 when neither form exists", async () => {
    const app = express();
    app.use((_req, res) => res.status(404).json({ error: { message: 'The model does not exist' } }));
    const server = await listen(app);
    open.push(server);
    await expect(
      clientFor(server.url).complete({ system: 'answer json', userContent: 'hi', schema }),
    ).rejects.toMatchObject({
      status: 502,
    });
  });
});

describe('provider base URLs copied with their endpoint path', () => {
  const baseOf = (env: Record<string, string>) =>
    llmSettingsFromEnv(parseEnv(z.object(llmEnvSchema), env)).primary.baseUrl;
  it('are cut back to the API root the wires append their paths to', () => {
    expect(
      baseOf({
        LLM_PROVIDER: 'yandexgpt',
        LLM_API_KEY: 'k',
        YANDEX_FOLDER_ID: 'b1g',
        LLM_BASE_URL: 'http://y:1/foundationModels/v1/',
      }),
    ).toBe('http://y:1');
    expect(
      baseOf({
        LLM_PROVIDER: 'yandexgpt',
        LLM_API_KEY: 'k',
        YANDEX_FOLDER_ID: 'b1g',
        LLM_BASE_URL: 'http://y:1/foundationModels/v1/completion',
      }),
    ).toBe('http://y:1');
    expect(baseOf({ LLM_PROVIDER: 'ollama', LLM_BASE_URL: 'http://o:11434/api' })).toBe('http://o:11434');
    expect(baseOf({ LLM_PROVIDER: 'deepseek', LLM_API_KEY: 'k', LLM_BASE_URL: 'http://d:1/v1/chat/completions' })).toBe(
      'http://d:1/v1',
    );
    expect(baseOf({ LLM_PROVIDER: 'openai', LLM_API_KEY: 'k', LLM_BASE_URL: 'http://o:1/v1' })).toBe('http://o:1/v1');
  });
});
