import { afterEach, describe, expect, it } from 'vitest';
import request from 'supertest';
import winston from 'winston';
import { ConfigError, createLogger, runService, type RunningService } from '@workemon/service-kit';
import { startFakeLlm, type FakeLlm } from '@workemon/testkit/fake-llm';
import { TEST_KEY_ENV, bearer } from '@workemon/testkit/api-keys';
import { buildApp, loadConfig } from '../src/index.js';

// What main.ts does, minus signal handling: environment → config → app → listen → graceful shutdown.
describe('guesser startup from the environment', () => {
  let llm: FakeLlm | undefined;
  let running: RunningService | undefined;
  afterEach(async () => {
    await running?.shutdown('test');
    await llm?.close();
  });

  it('serves its contract on the configured port', async () => {
    llm = await startFakeLlm({ wire: 'ollama' });
    llm.reply(() => ({ is_enough: true, response: 'Домен b2c: операции кошельков' }));
    const config = loadConfig({
      PORT: '0',
      LLM_PROVIDER: 'ollama',
      OLLAMA_BASE_URL: llm.url,
      OLLAMA_MODEL: llm.model,
      SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS,
    });
    expect(config.llm.primary).toMatchObject({ name: 'ollama', baseUrl: llm.url, model: llm.model, missing: [] });
    const logger = createLogger({ service: 'guesser', stdout: new winston.transports.Console({ silent: true }) });
    running = await runService({ app: buildApp({ config, logger }), port: config.port, logger });
    const url = `http://127.0.0.1:${running.port}`;
    const res = await request(url)
      .get('/get-context')
      .set(bearer('service'))
      .query({ username: 'u', department: 'ДКС', position: 'аналитик', request: 'Операции кошельков' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ is_enough: true, response: 'Домен b2c: операции кошельков' });
    expect(res.body.llm).toMatchObject({ provider: 'ollama', model: llm.model });
    const doc = await request(url).get('/openapi.json');
    expect(Object.keys(doc.body.paths)).toContain('/get-context');
  });

  it('defaults to port 8001 and Ollama, and names every bad key at once', () => {
    const config = loadConfig({});
    expect(config.port).toBe(8001);
    expect(config.llm.primary).toMatchObject({ name: 'ollama', baseUrl: 'http://localhost:11434' });
    expect(config.llm.timeoutMs).toBe(60_000);
    expect(config.llm.maxRetries).toBe(2);
    let error: unknown;
    try {
      loadConfig({ PORT: 'x', LLM_PROVIDER: 'gpt5', LLM_TIMEOUT_MS: 'soon', LLM_FALLBACK_PROVIDERS: 'grok,claude' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).problems.join('\n');
    for (const key of ['PORT', 'LLM_PROVIDER', 'LLM_TIMEOUT_MS', 'LLM_FALLBACK_PROVIDERS']) expect(text).toContain(key);
    expect(() => loadConfig({ PROMPT_FILE: '/nonexistent/prompt.txt' })).toThrow(/PROMPT_FILE/);
  });
});
