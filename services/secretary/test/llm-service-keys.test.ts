// The key the secretary sends each LLM service (GUESSER_API_KEY, SYSTEM_ANALYST_API_KEY, their _FILEs, the first
// of SERVICE_API_KEYS by default), and what /health says when an LLM service refuses it: down with the fix, then
// back without any request once the service takes the key. A real guesser app (behind a fake LLM) stands in for
// the deployment, restarted on the same port with the corrected key.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import * as guesserPackage from '@workemon/guesser';
import { ConfigError, createLogger, createMetrics } from '@workemon/service-kit';
import { bearer } from '@workemon/testkit/api-keys';
import { listen, type Listening } from '@workemon/testkit';
import { startFakeLlm, type FakeLlm } from '@workemon/testkit/fake-llm';
import { defaultGuesserReply, type LlmServices } from '@workemon/testkit/llm-stack';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { loadConfig } from '../src/config.js';
import { createGuesserClient } from '../src/index.js';
import { openapi, startSecretary, type Secretary } from './secretary-harness.js';
import { startLlmServices } from './llm-services.js';

/** loadConfig's ConfigError problems, or [] when it loads. */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.problems;
  }
}

describe('loadConfig: the keys sent to the LLM services', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'secretary-llm-keys-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('default: the first of SERVICE_API_KEYS, as before the variables existed', () => {
    const config = loadConfig({ SERVICE_API_KEYS: 'stack:shared-key-0123456789abcdef, old:older-key-0123456789' });
    expect(config.guesserApiKey).toBe('shared-key-0123456789abcdef');
    expect(config.systemAnalystApiKey).toBe('shared-key-0123456789abcdef');
    expect(loadConfig({}).guesserApiKey).toBeUndefined();
  });

  it('GUESSER_API_KEY wins over its _FILE, whose first key (SERVICE_API_KEYS_FILE format) wins over the default', async () => {
    const file = join(dir, 'llm.keys');
    await writeFile(file, '# the LLM services\nllm-services:file-key-0123456789abcdef\nsecond-key-0123456789\n');
    const config = loadConfig({
      SERVICE_API_KEYS: 'stack:shared-key-0123456789abcdef',
      GUESSER_API_KEY: 'guesser-key-0123456789abcdef',
      GUESSER_API_KEY_FILE: file,
      SYSTEM_ANALYST_API_KEY_FILE: file,
    });
    expect(config.guesserApiKey).toBe('guesser-key-0123456789abcdef');
    expect(config.systemAnalystApiKey).toBe('file-key-0123456789abcdef');
    // The service key itself is untouched: still what the communicator is sent and what the secretary accepts.
    expect(config.apiKeys.service).toEqual([{ name: 'stack', key: 'shared-key-0123456789abcdef' }]);
  });

  it('refuses to start when an LLM service would get a client or admin key, or its key file is missing or empty', async () => {
    const empty = join(dir, 'empty.keys');
    await writeFile(empty, '# nothing yet\n');
    const problems = problemsOf({
      API_KEYS: 'app:client-key-0123456789abcdef',
      ADMIN_API_KEYS: 'ops:admin-key-0123456789abcdef',
      GUESSER_API_KEY: 'admin-key-0123456789abcdef',
      SYSTEM_ANALYST_API_KEY_FILE: join(dir, 'absent.keys'),
    });
    expect(problems).toContain(
      "GUESSER_API_KEY: the key is also one of the secretary's ADMIN_API_KEYS; the LLM service would hold an admin key: give it its own",
    );
    expect(problems).toContain(`SYSTEM_ANALYST_API_KEY_FILE: cannot read ${join(dir, 'absent.keys')} (ENOENT)`);
    expect(problems.join('\n')).not.toContain('admin-key-0123456789abcdef');
    expect(
      problemsOf({ API_KEYS: 'client-key-0123456789abcdef', SYSTEM_ANALYST_API_KEY: 'client-key-0123456789abcdef' }),
    ).toEqual([
      "SYSTEM_ANALYST_API_KEY: the key is also one of the secretary's API_KEYS; the LLM service would hold a client key: give it its own",
    ]);
    expect(problemsOf({ GUESSER_API_KEY_FILE: empty })).toEqual([`GUESSER_API_KEY_FILE: ${empty} holds no key`]);
    // The value is also the LLM service's SERVICE_API_KEYS entry: `name:key` or a list there would not be the same key.
    for (const value of ['guesser:key-0123456789abcdef', 'key-0123456789,key-fedcba9876', '<your-key>'])
      expect(problemsOf({ GUESSER_API_KEY: value })).toEqual([
        'GUESSER_API_KEY: not a bearer token (RFC 6750: letters, digits and - . _ ~ + /, then = padding; no : , or spaces)',
      ]);
    expect(loadConfig({ GUESSER_API_KEY: 'Zm9vYmFyMDEyMzQ1Njc4OWFiY2RlZg+/==' }).guesserApiKey).toBe(
      'Zm9vYmFyMDEyMzQ1Njc4OWFiY2RlZg+/==',
    );
    // Bad keys elsewhere are named in the same start (one ConfigError for all).
    expect(problemsOf({ GUESSER_API_KEY_FILE: empty, JIRA_BASE_URL: 'https://jira.example.test' }).length).toBe(2);
  });

  it('refuses an own key that is also a service key the secretary accepts or the key it sends the communicator', async () => {
    // Set explicitly, GUESSER_API_KEY is the guesser's own key: were it one of SERVICE_API_KEYS, the guesser would
    // hold the key to /webhook-tokens, /deliveries, /rate-limits/consume and the sender claims service keys vouch for.
    const file = join(dir, 'shared.keys');
    await writeFile(file, 'llm-services:shared-key-0123456789abcdef\n');
    const shared = { SERVICE_API_KEYS: 'stack:shared-key-0123456789abcdef' };
    const asService =
      "the key is also one of the secretary's SERVICE_API_KEYS; the LLM service would hold a service key: give it its own";
    expect(problemsOf({ ...shared, GUESSER_API_KEY: 'shared-key-0123456789abcdef' })).toEqual([
      `GUESSER_API_KEY: ${asService}`,
    ]);
    expect(problemsOf({ ...shared, SYSTEM_ANALYST_API_KEY_FILE: file })).toEqual([
      `SYSTEM_ANALYST_API_KEY_FILE: ${asService}`,
    ]);
    expect(
      problemsOf({
        COMMUNICATOR_API_KEY: 'communicator-key-0123456789abcdef',
        SYSTEM_ANALYST_API_KEY: 'communicator-key-0123456789abcdef',
      }),
    ).toEqual([
      'SYSTEM_ANALYST_API_KEY: the key is also COMMUNICATOR_API_KEY, which the communicator accepts: give the LLM service its own',
    ]);
    expect(problemsOf({ ...shared, GUESSER_API_KEY: 'shared-key-0123456789abcdef' }).join('\n')).not.toContain(
      'shared-key-0123456789abcdef',
    );
    // Unset, the default (the first of SERVICE_API_KEYS, as before these variables existed) is still allowed.
    expect(loadConfig(shared).guesserApiKey).toBe('shared-key-0123456789abcdef');
  });
});

describe("/health when an LLM service refuses the secretary's key", () => {
  const OWN_KEY = 'guesser-own-key-0123456789abcdef';
  const STALE_KEY = 'guesser-stale-key-fedcba9876543210';
  let db: { url: string; drop: () => Promise<void> };
  let llm: LlmServices;
  let guesserLlm: FakeLlm;
  let guesser: Listening | undefined;
  let secretary: Secretary;

  /** A real guesser app that accepts only `key`, on `port` (0: a free one). */
  const startGuesser = (key: string, port = 0) =>
    listen(
      guesserPackage.buildApp({
        config: guesserPackage.loadConfig({
          LLM_PROVIDER: 'openai',
          LLM_BASE_URL: guesserLlm.url,
          LLM_API_KEY: guesserLlm.apiKey ?? '',
          LLM_MODEL: guesserLlm.model,
          LLM_MAX_RETRIES: '0',
          SERVICE_API_KEYS: `guesser:${key}`,
        }),
        logger: Object.assign(createLogger({ service: 'guesser', level: 'error' }), { silent: true }),
      }),
      port,
    );
  const health = async () => {
    // The details are for admin and service keys (s27).
    const res = await request(secretary.url).get('/health').set(bearer('admin'));
    expect(openapi.responseProblems('getHealth', res.status, res.body)).toEqual([]);
    return res;
  };

  beforeAll(async () => {
    db = await createTestDatabase(inject('postgresUrl'), 'secretary_llm_keys');
    llm = await startLlmServices();
    guesserLlm = await startFakeLlm({ wire: 'openai' });
    guesserLlm.reply(defaultGuesserReply);
    // The deployment's mistake: the guesser still has an old key, the secretary sends the guesser's new one.
    guesser = await startGuesser(STALE_KEY);
    const logger = Object.assign(createLogger({ service: 'secretary', level: 'error' }), { silent: true });
    secretary = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: guesser.url,
      analystUrl: llm.analystUrl,
      overrides: {
        guesser: createGuesserClient({
          baseURL: guesser.url,
          timeoutMs: 5000,
          maxRetries: 0,
          logger,
          metrics: createMetrics('secretary'),
          apiKey: OWN_KEY,
        }),
      },
    });
  });

  afterAll(async () => {
    await secretary?.close();
    await guesser?.close();
    await guesserLlm?.close();
    await llm?.close();
    await db?.drop();
  });

  it('is down naming GUESSER_API_KEY while refused, and ok again without a request once the guesser takes the key', async () => {
    const before = await health();
    expect(before.body.status).toBe('ok');
    expect(before.body.checks.guesser).toMatchObject({ status: 'ok' });

    // The explanation names configuration keys: it is for an admin key (s27; a client key gets 'The guesser is
    // unavailable').
    const refused = await request(secretary.url)
      .post('/analyze-request')
      .set(bearer('admin'))
      .send({ channel: 'direct', username: 'keys-user', request: 'Нужна аналитика по операциям авторизации' });
    expect(openapi.responseProblems('analyzeRequestPost', refused.status, refused.body)).toEqual([]);
    expect(refused.status).toBe(503);
    expect(refused.body).toEqual({
      error: 'Service Unavailable',
      message:
        "The guesser refused the secretary's service key (HTTP 401): the guesser's SERVICE_API_KEYS must hold the key " +
        'the secretary sends it (GUESSER_API_KEY or GUESSER_API_KEY_FILE; unset: the first of SERVICE_API_KEYS)',
      statusCode: 503,
    });

    // Every /health asks again (the keyed GET /prompt, no model call): still refused, still down.
    for (let i = 0; i < 2; i++) {
      const down = await health();
      expect(down.body.status).toBe('degraded');
      expect(down.body.checks.guesser).toEqual({
        status: 'down',
        latency_ms: expect.any(Number) as unknown,
        detail: refused.body.message as string,
      });
    }
    expect(guesserLlm.requests).toHaveLength(0);

    // The operator gives the guesser the key (restarted on the same address); no request is made meanwhile.
    const port = guesser!.port;
    await guesser!.close();
    guesser = await startGuesser(OWN_KEY, port);
    const recovered = await health();
    expect(recovered.body.status).toBe('ok');
    expect(recovered.body.checks.guesser).toMatchObject({ status: 'ok' });
    expect(guesserLlm.requests).toHaveLength(0);

    const answered = await request(secretary.url).post('/analyze-request').set(bearer('client')).send({
      channel: 'direct',
      username: 'keys-user',
      request: 'Нужна аналитика по операциям авторизации кошельков',
    });
    expect(answered.status).toBe(200);
    expect(guesserLlm.requests).toHaveLength(1);
  });
});
