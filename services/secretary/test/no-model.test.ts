// A fresh install without a model: the real guesser and system analyst on their defaults (a local Ollama) with
// nothing listening there. Every answer and every /health on the way names the provider, its URL and the fix.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@workemon/service-kit';
import { buildApp as buildGuesser, loadConfig as loadGuesserConfig } from '@workemon/guesser';
import { buildApp as buildAnalyst, loadConfig as loadAnalystConfig } from '@workemon/system-analyst';
import { getFreePort, listen, type Listening } from '@workemon/testkit';
import { TEST_KEY_ENV, bearer } from '@workemon/testkit/api-keys';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { MemoryTransport, keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

let ollamaUrl: string;
let guesser: Listening;
let analyst: Listening;
let secretary: Secretary;
let dropDatabase: () => Promise<void>;
const quiet = () => createLogger({ service: 'llm-service', stdout: new MemoryTransport() });
let databaseUrl: string;

beforeAll(async () => {
  // A port nothing listens on: Ollama is not installed.
  ollamaUrl = `http://127.0.0.1:${await getFreePort()}`;
  // The test world's service key: the secretary (and this test) call the LLM services with it.
  const env = { OLLAMA_BASE_URL: ollamaUrl, LLM_MAX_RETRIES: '0', LOG_LEVEL: 'error', ...TEST_KEY_ENV };
  guesser = await listen(buildGuesser({ config: loadGuesserConfig(env), logger: quiet() }));
  analyst = await listen(buildAnalyst({ config: loadAnalystConfig(env), logger: quiet() }));
  const db = await createTestDatabase(inject('postgresUrl'), 'secretary_no_model');
  dropDatabase = db.drop;
  databaseUrl = db.url;
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: guesser.url, analystUrl: analyst.url });
});

afterAll(async () => {
  await secretary?.close();
  await guesser?.close();
  await analyst?.close();
  await dropDatabase?.();
});

const fix = 'install Ollama and run `ollama pull qwen3:0.6b`';
const hosted = 'or use a hosted model: set LLM_PROVIDER and LLM_API_KEY';

describe('no model yet', () => {
  it('the guesser answers 503 in the contract shape naming the provider, its URL and the fix', async () => {
    const res = await request(guesser.url)
      .get('/get-context')
      .set(bearer('service'))
      .query({ username: 'smirnovanton', department: 'ДКС', position: 'аналитик', request: 'Отчёт по кошелькам' });
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      error: 'Service Unavailable',
      message: expect.stringContaining(`LLM provider 'ollama' at ${ollamaUrl} is unreachable: ${fix}`),
      statusCode: 503,
    });
    expect(res.body.message).toContain(hosted);
  });

  it("the LLM services' /health name the provider, its URL and the fix (to a service key)", async () => {
    for (const url of [guesser.url, analyst.url]) {
      // The details are for the secretary's key (and admin keys); a caller without one sees the status only (s27).
      const res = await request(url).get('/health').set(bearer('service'));
      expect(res.status).toBe(503);
      expect(res.body.checks['llm:ollama']).toMatchObject({
        status: 'down',
        detail: expect.stringContaining(`LLM provider 'ollama' at ${ollamaUrl} is unreachable: ${fix}`),
      });
    }
  });

  it("the secretary's /health reports both as degraded (running, LLM unreachable), with the LLM's detail", async () => {
    const res = await request(secretary.url).get('/health').set(bearer('admin'));
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('degraded');
    for (const name of ['guesser', 'system-analyst']) {
      expect(res.body.checks[name].status).toBe('degraded');
      expect(res.body.checks[name].detail).toContain(`running, but llm:ollama: LLM provider 'ollama' at ${ollamaUrl}`);
      expect(res.body.checks[name].detail).toContain(fix);
    }
  });

  it("the secretary's answer passes the guesser's explanation on, in the contract shape", async () => {
    const res = await keyed(secretary.url)
      .get('/analyze-request')
      .query({ channel: 'direct', username: 'smirnovanton', request: 'Я хочу получать аналитику о операциях' });
    expect(openapi.responseProblems('analyzeRequestGet', res.status, res.body)).toEqual([]);
    expect(res.status).toBe(503);
    expect(res.body.message).toBe(
      `Upstream 'guesser' is unavailable: LLM provider 'ollama' at ${ollamaUrl} is unreachable: ${fix} ` +
        `(or point LLM_BASE_URL or OLLAMA_BASE_URL at a running Ollama), ${hosted}`,
    );
  });

  it('a guesser that does not run at all is down, not degraded', async () => {
    const gone = `http://127.0.0.1:${await getFreePort()}`;
    const other = await startSecretary({ databaseUrl, guesserUrl: gone, analystUrl: analyst.url });
    try {
      const res = await request(other.url).get('/health').set(bearer('admin'));
      expect(res.body.checks.guesser).toMatchObject({
        status: 'down',
        detail: `nothing answers at ${gone} (GUESSER_URL): start the guesser (npm start runs every service) or correct GUESSER_URL`,
      });
      expect(res.body.checks['system-analyst'].status).toBe('degraded');
    } finally {
      await other.close();
    }
  });
});
