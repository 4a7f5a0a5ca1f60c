// An attacker holding a client key (or none), against the real secretary, the real guesser and system analyst over
// HTTP and a real Postgres (issue s27): what the answers and /health tell about the deployment behind them. The
// LLM services' model is a port nothing listens on, with a password in its URL, as an operator may configure it.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger } from '@workemon/service-kit';
import { buildApp as buildGuesser, loadConfig as loadGuesserConfig } from '@workemon/guesser';
import { buildApp as buildAnalyst, loadConfig as loadAnalystConfig } from '@workemon/system-analyst';
import { getFreePort, listen, type Listening } from '@workemon/testkit';
import { TEST_KEY_ENV, bearer } from '@workemon/testkit/api-keys';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { MemoryTransport, openapi, startSecretary, type Secretary } from './secretary-harness.js';

let llmPort: number;
let guesser: Listening;
let analyst: Listening;
let secretary: Secretary;
let refusing: Secretary;
let dropDatabase: () => Promise<void>;
const quiet = () => createLogger({ service: 'llm-service', stdout: new MemoryTransport() });

beforeAll(async () => {
  llmPort = await getFreePort();
  const env = {
    LLM_PROVIDER: 'openai',
    LLM_API_KEY: 'sk-s27-provider-key-0123456789abcdef',
    LLM_BASE_URL: `http://llm-user:llm-url-password-s27@127.0.0.1:${llmPort}/v1`,
    LLM_MAX_RETRIES: '0',
    LOG_LEVEL: 'error',
    ...TEST_KEY_ENV,
  };
  guesser = await listen(buildGuesser({ config: loadGuesserConfig(env), logger: quiet() }));
  analyst = await listen(buildAnalyst({ config: loadAnalystConfig(env), logger: quiet() }));
  const db = await createTestDatabase(inject('postgresUrl'), 'secretary_s27_attacks');
  dropDatabase = db.drop;
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: guesser.url, analystUrl: analyst.url });
  // A guesser that refuses the key this secretary sends it: a deployment fault, not the caller's.
  const other = await listen(
    buildGuesser({
      config: loadGuesserConfig({ ...env, SERVICE_API_KEYS: 'other:another-service-key-0123456789abcd' }),
      logger: quiet(),
    }),
  );
  extra.push(other);
  refusing = await startSecretary({ databaseUrl: db.url, guesserUrl: other.url, analystUrl: analyst.url });
});

const extra: Listening[] = [];
afterAll(async () => {
  await secretary?.close();
  await refusing?.close();
  for (const l of extra) await l.close();
  await guesser?.close();
  await analyst?.close();
  await dropDatabase?.();
});

const ask = { channel: 'direct', username: 'smirnovanton', request: 'Нужна аналитика по операциям кошельков' };
/** What a message must not tell a client: where things run and how they are configured. */
const OPERATOR_TEXT = new RegExp(
  `127\\.0\\.0\\.1|:${'\\d'}+/v1|llm-url-password|LLM_|SERVICE_API_KEYS|_API_KEY|http://`,
);

describe('a client key meets a failing upstream (s27)', () => {
  it("gets a 503 in the contract's shape that names no URL, host or configuration key", async () => {
    for (const call of [
      request(secretary.url).get('/analyze-request').query(ask),
      request(secretary.url).post('/analyze-request').send(ask),
    ]) {
      const res = await call.set(bearer('client'));
      expect(res.status).toBe(503);
      expect(openapi.responseProblems('analyzeRequestGet', res.status, res.body)).toEqual([]);
      expect(res.body).toEqual({
        error: 'Service Unavailable',
        message: "Upstream 'guesser' is unavailable",
        statusCode: 503,
      });
      expect(res.text).not.toMatch(OPERATOR_TEXT);
    }
  });

  it("an admin key still gets the operator's explanation (the provider, its URL without the password, the fix)", async () => {
    const res = await request(secretary.url).get('/analyze-request').query(ask).set(bearer('admin'));
    expect(res.status).toBe(503);
    expect(res.body.message).toContain(
      `Upstream 'guesser' is unavailable: LLM provider 'openai' at http://127.0.0.1:${llmPort}/v1`,
    );
    expect(res.text).not.toContain('llm-url-password');
    expect(res.text).not.toContain('sk-s27-provider-key');
  });

  it("a guesser refusing the secretary's key is not explained to a client key either", async () => {
    const client = await request(refusing.url).get('/analyze-request').query(ask).set(bearer('client'));
    expect(client.status).toBe(503);
    expect(client.body).toEqual({
      error: 'Service Unavailable',
      message: 'The guesser is unavailable',
      statusCode: 503,
    });
    const admin = await request(refusing.url).get('/analyze-request').query(ask).set(bearer('admin'));
    expect(admin.status).toBe(503);
    expect(admin.body.message).toMatch(/refused the secretary's service key .*GUESSER_API_KEY/);
  });
});

describe("the secretary's /health seen by an attacker (s27)", () => {
  it("without a key or with a client key: each dependency's status, nothing about where it runs", async () => {
    for (const headers of [{}, bearer('client'), { Authorization: 'Bearer not-a-key-0123456789abcdef' }]) {
      const res = await request(secretary.url).get('/health').set(headers);
      expect(res.status).toBe(200);
      expect(openapi.responseProblems('getHealth', res.status, res.body)).toEqual([]);
      expect(res.body.checks).toEqual({
        postgres: { status: 'ok', latency_ms: expect.any(Number) as unknown },
        guesser: { status: 'degraded', latency_ms: expect.any(Number) as unknown },
        'system-analyst': { status: 'degraded', latency_ms: expect.any(Number) as unknown },
      });
      expect(res.text).not.toMatch(OPERATOR_TEXT);
    }
    for (const url of [guesser.url, analyst.url]) {
      const res = await request(url).get('/health').set(bearer('client'));
      expect(res.status).toBe(503);
      expect(res.body.checks['llm:openai']).toEqual({ status: 'down', latency_ms: expect.any(Number) as unknown });
    }
  });

  it("with an admin key: the guesser's and the analyst's details, read by the secretary with its own key", async () => {
    const res = await request(secretary.url).get('/health').set(bearer('admin'));
    for (const name of ['guesser', 'system-analyst'])
      expect(res.body.checks[name].detail).toContain(
        `running, but llm:openai: LLM provider 'openai' at http://127.0.0.1:${llmPort}/v1`,
      );
  });
});
