import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import request from 'supertest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import { createLogger, createOpenApi } from '@workemon/service-kit';
import { ACTIONS, loadOpenApiDocument } from '@workemon/contracts';
import { startFakeLlm, userDataOf, type FakeLlm } from '@workemon/testkit/fake-llm';
import { TEST_KEY_ENV, bearer } from '@workemon/testkit/api-keys';
import { ANALYST_PROMPT, buildApp, loadConfig } from '../src/index.js';

/** A supertest agent sending the test service key (the secretary's) on every request. */
const asService = (app: Parameters<typeof request.agent>[0]) => request.agent(app).set(bearer('service'));

const openapi = createOpenApi(loadOpenApiDocument('system-analyst'));
const fakes: FakeLlm[] = [];
async function fake(opts: Parameters<typeof startFakeLlm>[0] = {}): Promise<FakeLlm> {
  const f = await startFakeLlm(opts);
  fakes.push(f);
  return f;
}
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

function envForFake(provider: string, llm: FakeLlm): Record<string, string> {
  return {
    LLM_PROVIDER: provider,
    LLM_BASE_URL: llm.url,
    LLM_MODEL: llm.model,
    LLM_MAX_RETRIES: '0',
    ...(llm.apiKey ? { LLM_API_KEY: llm.apiKey } : {}),
    ...(provider === 'yandexgpt' ? { YANDEX_FOLDER_ID: llm.folderId } : {}),
  };
}

function startAnalyst(env: Record<string, string>) {
  const config = loadConfig({ SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS, ...env });
  const logger = createLogger({ service: 'system-analyst', stdout: new winston.transports.Console({ silent: true }) });
  return buildApp({ config, logger });
}

const query = (overrides: Record<string, string> = {}) => ({
  context: 'Младший системный аналитик клиентского департамента, авторизационные операции кошельков, домен b2c',
  request: 'Я хочу получать аналитику о операциях наших кошельков. Меня интересуют операции авторизации',
  ...overrides,
});

const ADVICE = {
  is_enough: true,
  response: 'Доработать аналитический куб авторизаций: добавить статус авторизации и выполнить запрос к кубу',
  action: 'создать jira-task',
};

/** Every answer carries the optional `llm` metadata; tests about something else only check that it is there. */
const withLlm = (decision: object) => ({
  ...decision,
  llm: expect.objectContaining({ provider: expect.any(String), input_tokens: expect.any(Number) }),
});

const PATHS = [
  ['/prepare-analititcs', 'prepareAnalytics'],
  ['/prepare-analytics', 'prepareAnalyticsAlias'],
] as const;

describe('GET /prepare-analititcs and /prepare-analytics', () => {
  for (const [path, operationId] of PATHS) {
    for (const name of ['context', 'request']) {
      it(`${path}: answers 400 naming '${name}' when it is missing`, async () => {
        const llm = await fake();
        const app = startAnalyst(envForFake('openai', llm));
        const q: Record<string, string> = query();
        delete q[name];
        const res = await asService(app).get(path).query(q);
        expect(res.status).toBe(400);
        expect(openapi.responseProblems(operationId, 400, res.body)).toEqual([]);
        expect(res.body.message).toBe(`Parameter '${name}' is required`);
        expect(llm.requests).toHaveLength(0);
      });
    }

    it(`${path}: takes the seed's \`preparedcontext\` as \`context\` (and \`context\` wins when both come)`, async () => {
      const llm = await fake();
      llm.reply(() => ADVICE);
      const app = startAnalyst(envForFake('openai', llm));
      const { context, request: text } = query();
      const seed = await asService(app).get(path).query({ preparedcontext: context, request: text });
      expect(seed.status).toBe(200);
      expect(openapi.responseProblems(operationId, 200, seed.body)).toEqual([]);
      expect(seed.body).toEqual(withLlm(ADVICE));
      expect(userDataOf(llm.requests[0]!.user)).toEqual({ context, request: text });
      const both = await asService(app).get(path).query({ context: 'b2c', preparedcontext: 'b2b', request: text });
      expect(both.status).toBe(200);
      expect(userDataOf(llm.requests[1]!.user)).toEqual({ context: 'b2c', request: text });
      const empty = await asService(app).get(path).query({ preparedcontext: '', request: text });
      expect(empty.status).toBe(400);
      expect(empty.body.message).toMatch(/^Parameter '(preparedcontext|context)'/);
      expect(llm.requests).toHaveLength(2);
    });

    it(`${path}: answers the advice with its action`, async () => {
      const llm = await fake();
      llm.reply(() => ADVICE);
      const app = startAnalyst(envForFake('openai', llm));
      const res = await asService(app).get(path).query(query());
      expect(res.status).toBe(200);
      expect(openapi.responseProblems(operationId, 200, res.body)).toEqual([]);
      const sent = llm.requests[0]!;
      expect(res.body).toEqual({
        ...ADVICE,
        llm: {
          provider: 'openai',
          model: llm.model,
          input_tokens: sent.usage!.inputTokens,
          output_tokens: sent.usage!.outputTokens,
          latency_ms: expect.any(Number),
          prompt: { name: 'system-analyst/v1', sha256: createHash('sha256').update(ANALYST_PROMPT).digest('hex') },
          settings: { temperature: 0.2, max_output_tokens: 2000, json_mode: 'auto' },
        },
      });
      expect(sent.system).toContain('инженер данных в финтехе');
      expect(userDataOf(sent.user)).toEqual(query());
      expect(sent.body.response_format.json_schema.schema.properties.action.enum).toEqual([...ACTIONS]);
    });
  }

  it('talks to YandexGPT in jsonSchema mode when LLM_JSON_MODE=schema', async () => {
    const llm = await fake({ wire: 'yandexgpt' });
    llm.reply(() => ADVICE);
    const app = startAnalyst({ ...envForFake('yandexgpt', llm), LLM_JSON_MODE: 'schema' });
    const res = await asService(app).get('/prepare-analititcs').query(query());
    expect(res.status).toBe(200);
    expect(res.body).toEqual(withLlm(ADVICE));
    const body = llm.requests[0]!.body;
    expect(body.jsonObject).toBeUndefined();
    expect(body.jsonSchema.schema.required).toEqual(['is_enough', 'response']);
  });

  it('talks to Ollama with the answer schema as format', async () => {
    const llm = await fake({ wire: 'ollama' });
    llm.reply(() => ({ is_enough: false, response: 'За какой период нужна аналитика?', action: 'уточнить' }));
    const app = startAnalyst(envForFake('ollama', llm));
    const res = await asService(app).get('/prepare-analytics').query(query());
    expect(res.status).toBe(200);
    expect(res.body).toEqual(
      withLlm({ is_enough: false, response: 'За какой период нужна аналитика?', action: 'уточнить' }),
    );
    expect(llm.requests[0]!.body.format.properties.action.enum).toEqual([...ACTIONS]);
  });

  it('leaves out an action the model gave as null', async () => {
    const llm = await fake();
    llm.reply(() => ({ is_enough: true, response: 'Данные есть в витрине операций', action: null }));
    const app = startAnalyst(envForFake('openai', llm));
    const res = await asService(app).get('/prepare-analititcs').query(query());
    expect(res.status).toBe(200);
    expect(openapi.responseProblems('prepareAnalytics', 200, res.body)).toEqual([]);
    expect(res.body).toEqual(withLlm({ is_enough: true, response: 'Данные есть в витрине операций' }));
  });

  it('drops an action outside the enum (no repair request, no 502): the secretary then uses the reply action', async () => {
    const llm = await fake();
    llm.reply(() => ({ ...ADVICE, action: 'позвонить директору' }));
    const app = startAnalyst(envForFake('openai', llm));
    const res = await asService(app).get('/prepare-analititcs').query(query());
    expect(res.status).toBe(200);
    expect(openapi.responseProblems('prepareAnalytics', 200, res.body)).toEqual([]);
    expect(res.body).toEqual(withLlm({ is_enough: ADVICE.is_enough, response: ADVICE.response }));
    expect(llm.requests).toHaveLength(1);
  });

  it('removes NUL and other control characters from the answer, and replaces lone surrogates', async () => {
    const llm = await fake();
    // As JSON escapes (a model writing \u0000) and raw in the text around the JSON.
    llm.reply(
      () =>
        `\u0000{"is_enough": true, "response": "Витрина\\u0000 операций\\u0007\\r\\nшаг \\ud800 2", "action": "ответить сообщением"}`,
    );
    const app = startAnalyst(envForFake('openai', llm));
    const res = await asService(app).get('/prepare-analititcs').query(query());
    expect(res.status).toBe(200);
    expect(res.body.response).toBe('Витрина операций\nшаг \uFFFD 2');
  });

  it('cuts an over-long answer to LLM_MAX_ANSWER_CHARS with a marker instead of refusing it', async () => {
    const llm = await fake();
    llm.reply(() => ({ ...ADVICE, response: 'Шаг. '.repeat(5_000) }));
    const app = startAnalyst({ ...envForFake('openai', llm), LLM_MAX_ANSWER_CHARS: '1000' });
    const res = await asService(app).get('/prepare-analititcs').query(query());
    expect(res.status).toBe(200);
    expect(res.body.response.length).toBeLessThanOrEqual(1000);
    expect(res.body.response).toMatch(/^Шаг\. Шаг\./);
    expect(res.body.response.endsWith('\n[…ответ сокращён]')).toBe(true);
  });

  it('answers 504 on a slow provider and 413 on an over-long request', async () => {
    const llm = await fake();
    llm.delayMs = 1500;
    const app = startAnalyst({ ...envForFake('openai', llm), LLM_TIMEOUT_MS: '150', LLM_MAX_INPUT_CHARS: '400' });
    const slow = await asService(app).get('/prepare-analititcs').query(query());
    expect(slow.status).toBe(504);
    expect(openapi.responseProblems('prepareAnalytics', 504, slow.body)).toEqual([]);
    const long = await asService(app)
      .get('/prepare-analititcs')
      .query(query({ request: 'кошельки '.repeat(60) }));
    expect(long.status).toBe(413);
    expect(openapi.responseProblems('prepareAnalytics', 413, long.body)).toEqual([]);
  });

  it('uses the prompt from PROMPT_FILE', async () => {
    const llm = await fake();
    llm.reply(() => ADVICE);
    const file = join(mkdtempSync(join(tmpdir(), 'analyst-prompt-')), 'prompt.txt');
    writeFileSync(file, 'Ты архитектор хранилища данных. ANALYST-PROMPT-MARKER');
    const app = startAnalyst({ ...envForFake('openai', llm), PROMPT_FILE: file });
    await asService(app).get('/prepare-analititcs').query(query());
    expect(llm.requests[0]!.system).toContain('ANALYST-PROMPT-MARKER');
    expect(llm.requests[0]!.system).not.toContain(ANALYST_PROMPT.slice(0, 40));
  });

  it('reports a fallback without its key by the fallback key name', async () => {
    const llm = await fake();
    const app = startAnalyst({ ...envForFake('openai', llm), LLM_FALLBACK_PROVIDERS: 'grok' });
    const health = await asService(app).get('/health');
    expect(health.status).toBe(200);
    expect(openapi.responseProblems('getHealth', 200, health.body)).toEqual([]);
    expect(health.body.status).toBe('degraded');
    expect(health.body.checks['llm:openai'].status).toBe('ok');
    expect(health.body.checks['llm:grok']).toMatchObject({ status: 'degraded' });
    expect(health.body.checks['llm:grok'].detail).toContain('GROK_API_KEY');
  });

  it('exposes the LLM metrics on /metrics', async () => {
    const llm = await fake();
    llm.reply(() => ADVICE);
    const app = startAnalyst(envForFake('openai', llm));
    await asService(app).get('/prepare-analytics').query(query());
    const text = (await asService(app).get('/metrics')).text;
    expect(text).toMatch(/workemon_llm_request_duration_seconds_count\{[^}]*outcome="ok"[^}]*\} 1/);
    expect(text).toMatch(/workemon_llm_tokens_total\{[^}]*kind="output"[^}]*\} [1-9]/);
  });
});

const POST_PATHS = [
  ['/prepare-analititcs', 'prepareAnalyticsPost'],
  ['/prepare-analytics', 'prepareAnalyticsAliasPost'],
] as const;

describe('POST /prepare-analititcs and /prepare-analytics (the same fields as a JSON body, for long texts)', () => {
  for (const [path, operationId] of POST_PATHS) {
    it(`${path}: answers 400 naming the parameter for a missing, empty, mistyped or unknown field`, async () => {
      const llm = await fake();
      const app = startAnalyst(envForFake('openai', llm));
      const cases: [object | undefined, string][] = [
        [{ request: query().request }, "Parameter 'context' is required"],
        [{ context: query().context }, "Parameter 'request' is required"],
        [query({ request: '' }), "Parameter 'request' must not be empty"],
        [{ ...query(), context: ['b2c'] }, "Parameter 'context' must be a string"],
        [{ ...query(), action: 'уточнить' }, "Parameter 'action' is not allowed"],
        [undefined, 'Request body is required (Content-Type: application/json)'],
      ];
      for (const [body, message] of cases) {
        const res = body ? await asService(app).post(path).send(body) : await asService(app).post(path);
        expect(res.status).toBe(400);
        expect(openapi.responseProblems(operationId, 400, res.body)).toEqual([]);
        expect(res.body.message).toBe(message);
      }
      expect(llm.requests).toHaveLength(0);
    });

    it(`${path}: analyses a 12,000-character Cyrillic request with its context`, async () => {
      const llm = await fake();
      llm.reply(() => ADVICE);
      const app = startAnalyst(envForFake('openai', llm));
      const text = 'Нужна выгрузка авторизационных операций кошельков за квартал. '.repeat(200).slice(0, 12_000);
      const res = await asService(app)
        .post(path)
        .send(query({ request: text }));
      expect(res.status).toBe(200);
      expect(openapi.responseProblems(operationId, 200, res.body)).toEqual([]);
      expect(res.body).toEqual(withLlm(ADVICE));
      expect(userDataOf(llm.requests[0]!.user)).toEqual(query({ request: text }));
    });
  }

  it('answers 413 when context and request together are over LLM_MAX_INPUT_CHARS', async () => {
    const llm = await fake();
    const app = startAnalyst({ ...envForFake('openai', llm), LLM_MAX_INPUT_CHARS: '1000' });
    const res = await asService(app)
      .post('/prepare-analititcs')
      .send({ context: 'контекст '.repeat(60), request: 'запрос '.repeat(80) });
    expect(res.status).toBe(413);
    expect(openapi.responseProblems('prepareAnalyticsPost', 413, res.body)).toEqual([]);
    expect(res.body.message).toMatch(/the limit is 1000 \(LLM_MAX_INPUT_CHARS\)/);
    expect(llm.requests).toHaveLength(0);
  });
});
