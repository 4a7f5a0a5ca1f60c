import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
// Brings in the typing of inject('postgresUrl') (the global setup's ProvidedContext).
import type {} from '@workemon/testkit/global-setup';
import { userDataOf } from '@workemon/testkit/fake-llm';
import { getFreePort } from '@workemon/testkit';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';
import { bearer } from '@workemon/testkit/api-keys';
import { createAuthenticator, createLogger, createMetrics } from '@workemon/service-kit';
import { createGuesserClient } from '../src/index.js';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';

type Fields = { channel?: string; username?: string; request?: string; message_id?: string; thread_key?: string };

const unique = (prefix: string) => `${prefix}${randomBytes(4).toString('hex')}`;

let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let secretary: Secretary;
const extra: { close: () => Promise<void> }[] = [];

const QUESTION = 'Уточните, аналитику каких операций вы хотите получать?';
const CONTEXT = 'Сотрудник хочет аналитику по операциям кошельков, домен b2c.';
const ANSWER = 'Нужно доработать аналитический куб авторизаций и выполнить запрос к нему.';

/** The guesser's model: asks a question unless the request mentions authorisations. */
const guesserModel = (req: { user: string }) => {
  const data = userDataOf(req.user) as { request: string };
  return /авторизац|jira|задач/i.test(data.request)
    ? { is_enough: true, response: CONTEXT }
    : { is_enough: false, response: QUESTION };
};
const analystModel = (req: { user: string }) => {
  const data = userDataOf(req.user) as { request: string };
  return /jira|задач/i.test(data.request)
    ? { is_enough: true, response: ANSWER, action: 'создать jira-task' }
    : { is_enough: true, response: ANSWER };
};

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_analyze');
  llm = await startLlmServices({ guesser: guesserModel, analyst: analystModel });
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl });
});

afterAll(async () => {
  for (const s of extra) await s.close();
  await secretary?.close();
  await llm?.close();
  await db?.drop();
});

beforeEach(() => {
  llm.guesserLlm.reply(guesserModel);
  llm.analystLlm.reply(analystModel);
  llm.guesserLlm.delayMs = 0;
  llm.analystLlm.delayMs = 0;
});

// A client key unless a test says otherwise (`{}`: no key at all).
async function analyzeGet(target: { url: string }, fields: Fields, headers: Record<string, string> = bearer('client')) {
  const res = await request(target.url).get('/analyze-request').query(fields).set(headers);
  expect(openapi.responseProblems('analyzeRequestGet', res.status, res.body)).toEqual([]);
  return res;
}
async function analyzePost(target: { url: string }, body: unknown, headers: Record<string, string> = bearer('client')) {
  const res = await request(target.url)
    .post('/analyze-request')
    .send(body as object)
    .set(headers);
  expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
  return res;
}

async function putEmployee(username: string, fields: Record<string, string>) {
  const res = await keyed(secretary.url).put(`/employees/${username}`).send(fields);
  expect(res.status).toBe(201);
  return res.body as { username: string };
}

const knex = () => secretary.db.knex;
const countRows = async () => ({
  conversations: Number((await knex()('conversations').count('* as n'))[0]!['n']),
  messages: Number((await knex()('messages').count('* as n'))[0]!['n']),
  analyses: Number((await knex()('analyses').count('* as n'))[0]!['n']),
});
const lastGuesserInput = () => userDataOf(llm.guesserLlm.requests.at(-1)!.user) as Record<string, string>;

describe('analyze: happy path per channel', () => {
  it('email: the sender resolves by address, the analyst answers, the reply goes back as an email', async () => {
    const username = unique('smirnov');
    await putEmployee(username, {
      email: `${username}@Example.test`,
      department: 'Департамент клиентского сервиса',
      position: 'младший аналитик',
    });
    const text = 'Хочу аналитику по операциям авторизации наших кошельков';
    const res = await analyzeGet(secretary, { channel: 'email', username: `${username}@example.TEST`, request: text });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      is_enough: true,
      request: text,
      action: 'ответить на письмо',
      question: '',
      response: ANSWER,
      'context-response': ANSWER,
    });
    expect(lastGuesserInput()).toEqual({
      username,
      department: 'Департамент клиентского сервиса',
      position: 'младший аналитик',
      request: text,
    });
    expect(userDataOf(llm.analystLlm.requests.at(-1)!.user)).toEqual({ context: CONTEXT, request: text });

    const conversation = await knex()('conversations')
      .where({ sender: `${username}@example.test` })
      .first();
    expect(conversation).toMatchObject({ channel: 'email', status: 'answered', clarification_rounds: 0 });
    const messages = await knex()('messages').where({ conversation_id: conversation.id }).orderBy('id');
    expect(messages.map((m) => [m.role, m.text, m.state])).toEqual([
      ['user', text, 'answered'],
      ['assistant', ANSWER, null],
    ]);
    const analysis = await knex()('analyses').where({ conversation_id: conversation.id }).first();
    expect(analysis).toMatchObject({
      outcome: 'succeeded',
      error_code: null,
      request: text,
      department: 'Департамент клиентского сервиса',
      position: 'младший аналитик',
      guesser_is_enough: true,
      context: CONTEXT,
      analyst_is_enough: true,
      is_enough: true,
      action: 'ответить на письмо',
      response: ANSWER,
    });
    expect(analysis.guesser_ms).toBeGreaterThanOrEqual(0);
    expect(analysis.analyst_ms).toBeGreaterThanOrEqual(0);
    expect(analysis.duration_ms).toBeGreaterThanOrEqual(analysis.guesser_ms);
  });

  it('tg: the sender resolves by Telegram username, a valid analyst action is taken', async () => {
    const username = unique('ivanov');
    await putEmployee(username, { telegram_username: `@${username}_TG`, department: 'Платежи', position: 'инженер' });
    const res = await analyzePost(secretary, {
      channel: 'tg',
      username: `@${username}_tg`,
      request: 'Заведите задачу в jira на выгрузку операций авторизации',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ is_enough: true, action: 'создать jira-task', response: ANSWER, question: '' });
    expect(lastGuesserInput()).toMatchObject({ username, department: 'Платежи', position: 'инженер' });
  });

  it('tg: the sender resolves by numeric Telegram id; no analyst action → the channel default', async () => {
    const username = unique('petrov');
    await putEmployee(username, { telegram_id: '987654321', department: 'Риски', position: 'аналитик' });
    const res = await analyzeGet(secretary, {
      channel: 'tg',
      username: '987654321',
      request: 'Операции авторизации за май',
    });
    expect(res.body).toMatchObject({ is_enough: true, action: 'ответить сообщением' });
    expect(lastGuesserInput()).toMatchObject({ username, department: 'Риски' });
  });

  it('direct: the caller resolves by directory username', async () => {
    const username = unique('sidorov');
    await putEmployee(username, { department: 'ИТ', position: 'архитектор' });
    const res = await analyzeGet(secretary, {
      channel: 'direct',
      username,
      request: 'Статусы авторизации по кошелькам',
    });
    expect(res.body).toMatchObject({ is_enough: true, action: 'ответить сообщением', response: ANSWER });
    expect(lastGuesserInput()).toMatchObject({ username, department: 'ИТ', position: 'архитектор' });
    const metrics = await keyed(secretary.url).get('/metrics');
    expect(metrics.text).toMatch(
      /workemon_analyze_requests_total\{[^}]*channel="direct",action="ответить сообщением",is_enough="true"[^}]*\} [1-9]/,
    );
    for (const target of ['guesser', 'system-analyst'])
      expect(metrics.text).toMatch(
        new RegExp(
          `workemon_upstream_request_duration_seconds_count\\{[^}]*target="${target}",outcome="ok"[^}]*\\} [1-9]`,
        ),
      );
  });

  it('an unknown sender is analysed by default (reply-only), as department and position "unknown"', async () => {
    const res = await analyzeGet(secretary, {
      channel: 'direct',
      username: unique('stranger'),
      request: 'Авторизации',
    });
    expect(res.status).toBe(200);
    expect(lastGuesserInput()).toMatchObject({ department: 'unknown', position: 'unknown' });
  });
});

describe('analyze: conversations', () => {
  it('asks a clarifying question, and the answer continues the conversation with the full text', async () => {
    const username = unique('kuznetsov');
    const first = 'Я хочу получать аналитику о операциях наших кошельков';
    const asked = await analyzeGet(secretary, { channel: 'direct', username, request: first });
    expect(asked.body).toEqual({
      is_enough: false,
      request: first,
      action: 'уточнить',
      question: QUESTION,
      // The seed's example: with is_enough false, `response` explains what is missing (the guesser's answer),
      // and `context-response` (the seed's name) carries the same text.
      response: QUESTION,
      'context-response': QUESTION,
    });
    const guesserCalls = llm.guesserLlm.requests.length;
    const analystCalls = llm.analystLlm.requests.length;

    const reply = 'Меня интересуют операции авторизации';
    const answered = await analyzeGet(secretary, { channel: 'direct', username, request: reply });
    const full = `${first} ${QUESTION} ${reply}`;
    expect(answered.body).toEqual({
      is_enough: true,
      request: full,
      action: 'ответить сообщением',
      question: '',
      response: ANSWER,
      'context-response': ANSWER,
    });
    expect(llm.guesserLlm.requests.length).toBe(guesserCalls + 1);
    expect(lastGuesserInput()['request']).toBe(full);
    expect(llm.analystLlm.requests.length).toBe(analystCalls + 1);

    const conversations = await knex()('conversations').where({ sender: username });
    expect(conversations).toHaveLength(1);
    expect(conversations[0]).toMatchObject({ status: 'answered', clarification_rounds: 1 });
    const detail = await keyed(secretary.url).get(`/conversations/${conversations[0].id}`);
    expect(detail.status).toBe(200);
    expect(openapi.responseProblems('getConversation', 200, detail.body)).toEqual([]);
    expect(detail.body.messages.map((m: { role: string; text: string }) => [m.role, m.text])).toEqual([
      ['user', first],
      ['assistant', QUESTION],
      ['user', reply],
      ['assistant', ANSWER],
    ]);
    expect(detail.body.analyses.map((a: { action: string; request: string }) => [a.action, a.request])).toEqual([
      ['уточнить', first],
      ['ответить сообщением', full],
    ]);
  });

  it('an analyst that needs more asks the question itself; an answer it did not offer falls back to the channel', async () => {
    const username = unique('analystasks');
    llm.analystLlm.reply(() => ({ is_enough: false, response: 'За какой период нужна выгрузка авторизаций?' }));
    const asked = await analyzeGet(secretary, { channel: 'email', username, request: 'Выгрузка авторизаций' });
    expect(asked.body).toEqual({
      is_enough: false,
      request: 'Выгрузка авторизаций',
      action: 'уточнить',
      question: 'За какой период нужна выгрузка авторизаций?',
      response: 'За какой период нужна выгрузка авторизаций?',
      'context-response': 'За какой период нужна выгрузка авторизаций?',
    });
    llm.analystLlm.reply(() => ({ is_enough: true, response: ANSWER, action: 'ответить сообщением' }));
    const answered = await analyzeGet(secretary, { channel: 'email', username, request: 'За май' });
    // A reply action always fits the channel the request came from.
    expect(answered.body).toMatchObject({
      is_enough: true,
      action: 'ответить на письмо',
      request: 'Выгрузка авторизаций За какой период нужна выгрузка авторизаций? За май',
    });
  });

  it('a message on another channel, or after CLARIFICATION_TTL, starts a new conversation', async () => {
    const username = unique('orlov');
    await analyzeGet(secretary, { channel: 'direct', username, request: 'Нужна аналитика' });
    const other = await analyzeGet(secretary, { channel: 'tg', username, request: 'Про авторизации' });
    expect(other.body.request).toBe('Про авторизации');
    await knex()('conversations')
      .where({ sender: username, channel: 'direct' })
      .update({ updated_at: new Date(Date.now() - 25 * 3600_000) });
    const late = await analyzeGet(secretary, { channel: 'direct', username, request: 'Про авторизации' });
    expect(late.body.request).toBe('Про авторизации');
    expect(await knex()('conversations').where({ sender: username })).toHaveLength(3);
  });

  // Under one key: a thread_key is namespaced by the client key that started it (client-key-scope.test.ts).
  it('the same thread_key from the same key continues the conversation whoever the sender string is', async () => {
    const thread = `<${unique('thread')}@mail.example.test>`;
    const first = 'Нужна аналитика кошельков';
    await analyzePost(secretary, { channel: 'email', username: 'a@example.test', request: first, thread_key: thread });
    const res = await analyzePost(secretary, {
      channel: 'email',
      username: 'A.Alias@example.test',
      request: 'По авторизациям',
      thread_key: thread,
    });
    expect(res.body).toMatchObject({ request: `${first} ${QUESTION} По авторизациям`, action: 'ответить на письмо' });
    expect(await knex()('conversations').where({ thread_key: thread })).toHaveLength(1);
  });

  it('after MAX_CLARIFICATIONS rounds the request goes to the department mailing list and the user is told', async () => {
    const username = unique('volkov');
    await putEmployee(username, { department: 'Казначейство' });
    const texts = ['Нужен отчёт', 'Про кошельки', 'За прошлый месяц'];
    let expected = '';
    for (const text of texts) {
      const res = await analyzeGet(secretary, { channel: 'direct', username, request: text });
      expected = expected ? `${expected} ${QUESTION} ${text}` : text;
      expect(res.body).toMatchObject({ action: 'уточнить', request: expected });
    }
    const analystCalls = llm.analystLlm.requests.length;
    const last = await analyzeGet(secretary, { channel: 'direct', username, request: 'По всем' });
    expect(last.body).toMatchObject({
      is_enough: false,
      action: 'написать в рассылку департамента',
      question: '',
      request: `${expected} ${QUESTION} По всем`,
    });
    expect(last.body.response).toMatch(/рассылку департамента «Казначейство»/);
    expect(llm.analystLlm.requests.length).toBe(analystCalls);
    const conversation = await knex()('conversations').where({ sender: username }).first();
    expect(conversation).toMatchObject({ status: 'escalated', clarification_rounds: 3 });
    const analysis = await knex()('analyses').where({ conversation_id: conversation.id }).orderBy('id', 'desc').first();
    expect(analysis).toMatchObject({
      escalated: true,
      action: 'написать в рассылку департамента',
      outcome: 'succeeded',
    });
    // A new message afterwards is a new conversation.
    await analyzeGet(secretary, { channel: 'direct', username, request: 'Новый вопрос' });
    expect(await knex()('conversations').where({ sender: username })).toHaveLength(2);
  });
});

describe('analyze: idempotency', () => {
  it('a repeated message_id returns the stored answer without calling any LLM', async () => {
    const fields = { channel: 'tg', username: unique('rep'), request: 'Авторизации', message_id: unique('upd') };
    const first = await analyzeGet(secretary, fields);
    const calls = [llm.guesserLlm.requests.length, llm.analystLlm.requests.length];
    const second = await analyzePost(secretary, fields);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect([llm.guesserLlm.requests.length, llm.analystLlm.requests.length]).toEqual(calls);
    expect(await knex()('messages').where({ message_id: fields.message_id })).toHaveLength(1);
  });

  it('the same message_id on another channel is another message', async () => {
    const id = unique('same');
    await analyzeGet(secretary, { channel: 'tg', username: unique('x'), request: 'Авторизации', message_id: id });
    await analyzeGet(secretary, { channel: 'email', username: unique('x'), request: 'Авторизации', message_id: id });
    expect(await knex()('messages').where({ message_id: id })).toHaveLength(2);
  });

  it('concurrent duplicates cause one LLM call each for guesser and analyst, and one answer', async () => {
    llm.guesserLlm.delayMs = 300;
    const calls = [llm.guesserLlm.requests.length, llm.analystLlm.requests.length];
    const fields = {
      channel: 'email',
      username: unique('c') + '@example.test',
      request: 'Авторизации',
      message_id: unique('m'),
    };
    const results = await Promise.all(Array.from({ length: 6 }, () => analyzePost(secretary, fields)));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    for (const r of results) expect(r.body).toEqual(results[0]!.body);
    expect([llm.guesserLlm.requests.length, llm.analystLlm.requests.length]).toEqual([calls[0]! + 1, calls[1]! + 1]);
    // Duplicates that lost the insert race leave no conversation behind.
    expect(await knex()('conversations').where({ sender: fields.username })).toHaveLength(1);
    const stored = await knex()('messages').where({ channel: 'email', message_id: fields.message_id });
    expect(stored).toHaveLength(1);
    expect(await knex()('analyses').where({ message_id: stored[0].id })).toMatchObject([{ outcome: 'succeeded' }]);
  });

  it('a failed attempt is recorded with its code and the same message_id can be retried', async () => {
    llm.guesserLlm.reply(() => 'это не JSON');
    const fields = { channel: 'direct', username: unique('retry'), request: 'Авторизации', message_id: unique('r') };
    const failed = await analyzeGet(secretary, fields);
    expect(failed.status).toBe(502);
    expect(failed.body).toEqual({
      error: 'Bad Gateway',
      // The guesser's own explanation is for operators (admin and service keys); a client key gets ours (s27).
      message: "Upstream 'guesser' returned an invalid response",
      statusCode: 502,
    });
    const message = await knex()('messages').where({ message_id: fields.message_id }).first();
    expect(message.state).toBe('failed');
    expect(await knex()('analyses').where({ message_id: message.id })).toMatchObject([
      { outcome: 'failed', error_code: 'upstream_bad_response', request: 'Авторизации' },
    ]);

    llm.guesserLlm.reply(guesserModel);
    const retried = await analyzeGet(secretary, fields);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ is_enough: true, request: 'Авторизации' });
    expect((await knex()('messages').where({ id: message.id }).first()).state).toBe('answered');
    expect((await knex()('analyses').where({ message_id: message.id }).orderBy('id')).map((a) => a.outcome)).toEqual([
      'failed',
      'succeeded',
    ]);
  });
  it("an owner whose lease ran out and was taken over records nothing: one answer, the winner's", async () => {
    // A heartbeat slower than the lease: the owner looks dead (as one stuck on a lost database would).
    const short = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: { attemptLeaseMs: 200, attemptHeartbeatMs: 60_000 },
    });
    extra.push(short);
    const fields = { channel: 'direct', username: unique('lease'), request: 'Авторизации', message_id: unique('l') };
    llm.guesserLlm.delayMs = 800;
    const slow = analyzePost(short, fields);
    await new Promise((resolve) => setTimeout(resolve, 400));
    llm.guesserLlm.delayMs = 0;
    const takeover = await analyzePost(short, fields);
    expect(takeover.status).toBe(200);
    const late = await slow;
    expect(late.status).toBe(200);
    expect(late.body).toEqual(takeover.body);

    const message = await knex()('messages').where({ channel: 'direct', message_id: fields.message_id }).first();
    expect(message.state).toBe('answered');
    const outcomes = await knex()('analyses').where({ message_id: message.id }).orderBy('id').pluck('outcome');
    expect(outcomes.filter((o) => o === 'succeeded')).toHaveLength(1);
    expect(outcomes).not.toContain('pending');
    const replies = await knex()('messages').where({ conversation_id: message.conversation_id, role: 'assistant' });
    expect(replies).toHaveLength(1);
  });
});

describe('analyze: the attempt heartbeat', () => {
  it('a live owner renews its lease while the LLM works: a duplicate waits for its answer, no second LLM call', async () => {
    const short = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: { attemptLeaseMs: 300 },
    });
    extra.push(short);
    const fields = { channel: 'direct', username: unique('beat'), request: 'Авторизации', message_id: unique('b') };
    const before = llm.guesserLlm.requests.length;
    llm.guesserLlm.delayMs = 1200;
    const slow = analyzePost(short, fields);
    await new Promise((resolve) => setTimeout(resolve, 700));
    const duplicate = analyzePost(short, fields);
    const [first, second] = await Promise.all([slow, duplicate]);
    llm.guesserLlm.delayMs = 0;
    expect(first.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(llm.guesserLlm.requests.length - before).toBe(1);
  });
});

describe('analyze: 400 rules change nothing', () => {
  const cases: [string, () => Promise<request.Response>, string][] = [
    [
      'missing channel',
      () => keyed(secretary.url).get('/analyze-request').query({ username: 'u', request: 'r' }),
      "Parameter 'channel' is required",
    ],
    [
      'unknown channel',
      () => keyed(secretary.url).get('/analyze-request').query({ channel: 'fax', username: 'u', request: 'r' }),
      "Parameter 'channel' must be one of: email, tg, direct",
    ],
    [
      'missing username',
      () => keyed(secretary.url).get('/analyze-request').query({ channel: 'tg', request: 'r' }),
      "Parameter 'username' is required",
    ],
    [
      'missing request',
      () => keyed(secretary.url).get('/analyze-request').query({ channel: 'tg', username: 'u' }),
      "Parameter 'request' is required",
    ],
    [
      'empty request',
      () => keyed(secretary.url).get('/analyze-request?channel=tg&username=u&request='),
      "Parameter 'request' is required",
    ],
    [
      'blank request',
      () => keyed(secretary.url).get('/analyze-request').query({ channel: 'tg', username: 'u', request: '   ' }),
      "Parameter 'request' must not be empty",
    ],
    [
      'repeated parameter',
      () => keyed(secretary.url).get('/analyze-request?channel=tg&channel=email&username=u&request=r'),
      "Parameter 'channel' must be given once",
    ],
    [
      'too long request',
      () =>
        keyed(secretary.url)
          .post('/analyze-request')
          .send({ channel: 'direct', username: 'u', request: 'я'.repeat(20001) }),
      "Parameter 'request' must be at most 20000 characters",
    ],
    [
      'unknown body field',
      () =>
        keyed(secretary.url)
          .post('/analyze-request')
          .send({ channel: 'direct', username: 'u', request: 'r', urgent: true }),
      "Parameter 'urgent' is not allowed",
    ],
    [
      'wrong body type',
      () => keyed(secretary.url).post('/analyze-request').send({ channel: 'direct', username: 42, request: 'r' }),
      "Parameter 'username' must be a string",
    ],
    [
      'a line break in thread_key (a header to be)',
      () =>
        keyed(secretary.url)
          .post('/analyze-request')
          .send({ channel: 'email', username: 'a@x.test', request: 'r', thread_key: '<a@b>\r\nBcc: x@evil.example' }),
      "Parameter 'thread_key' must not contain line breaks or other control characters",
    ],
    [
      'a line break in message_id',
      () =>
        keyed(secretary.url)
          .post('/analyze-request')
          .send({ channel: 'direct', username: 'u', request: 'r', message_id: 'id\nX-Injected: 1' }),
      "Parameter 'message_id' must not contain line breaks or other control characters",
    ],
    [
      'body not JSON',
      () => keyed(secretary.url).post('/analyze-request').set('Content-Type', 'application/json').send('{"channel":'),
      'Request body is not valid JSON',
    ],
    [
      'no body',
      () => keyed(secretary.url).post('/analyze-request'),
      'Request body is required (Content-Type: application/json)',
    ],
    [
      'a form-encoded body (curl -d without a Content-Type)',
      () => keyed(secretary.url).post('/analyze-request').type('form').send('channel=direct&username=u&request=r'),
      "Request body must be JSON: send it with Content-Type: application/json (this request's Content-Type is 'application/x-www-form-urlencoded')",
    ],
    [
      'a body nested thousands of levels deep',
      () =>
        keyed(secretary.url)
          .post('/analyze-request')
          .set('Content-Type', 'application/json')
          .send(`{"channel":"direct","username":"u","request":"r","x":${'['.repeat(5000)}${']'.repeat(5000)}}`),
      'Request body is nested more than 64 levels deep',
    ],
    [
      'a __proto__ key smuggling a field in',
      () =>
        keyed(secretary.url)
          .post('/analyze-request')
          .set('Content-Type', 'application/json')
          .send('{"__proto__":{"dry_run":true},"channel":"direct","username":"u","request":"r"}'),
      "Parameter '__proto__' is not allowed",
    ],
    [
      'JSON text sent as text/plain',
      () =>
        keyed(secretary.url)
          .post('/analyze-request')
          .set('Content-Type', 'text/plain; charset=utf-8')
          .send('{"channel":"direct","username":"u","request":"r"}'),
      "Request body must be JSON: send it with Content-Type: application/json (this request's Content-Type is 'text/plain')",
    ],
    [
      'empty message_id',
      () =>
        keyed(secretary.url)
          .post('/analyze-request')
          .send({ channel: 'direct', username: 'u', request: 'r', message_id: '' }),
      "Parameter 'message_id' must not be empty",
    ],
  ];
  it.each(cases)('%s → 400 naming the parameter', async (_name, send, message) => {
    const before = await countRows();
    const callsBefore = llm.guesserLlm.requests.length;
    const res = await send();
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'Bad Request', message, statusCode: 400 });
    expect(openapi.responseProblems('analyzeRequestPost', 400, res.body)).toEqual([]);
    expect(await countRows()).toEqual(before);
    expect(llm.guesserLlm.requests.length).toBe(callsBefore);
  });
});

describe('analyze: auth, policies and upstream failures', () => {
  it('with API_KEYS set a call without or with a wrong key is 401; the key never reaches the log', async () => {
    const guarded = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: {
        auth: createAuthenticator({ client: [{ name: 'guarded', key: 'test-key-secret-0b7d3e91a5c2f468' }] }),
      },
    });
    extra.push(guarded);
    const fields = { channel: 'direct', username: unique('auth'), request: 'Авторизации' };
    const none = await analyzeGet(guarded, fields, {});
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    const wrong = await analyzeGet(guarded, fields, { Authorization: 'Bearer nope-nope' });
    expect(wrong.status).toBe(401);
    expect((await request(guarded.url).get('/employees')).status).toBe(401);
    expect((await request(guarded.url).get('/stats')).status).toBe(401);
    const ok = await analyzeGet(guarded, fields, { Authorization: 'Bearer test-key-secret-0b7d3e91a5c2f468' });
    expect(ok.status).toBe(200);
    expect(await knex()('conversations').where({ sender: fields.username })).toHaveLength(1);
    expect(guarded.logs.lines.join('\n')).not.toContain('test-key-secret-0b7d3e91a5c2f468');
  });

  it('UNKNOWN_USER_POLICY=reject answers an unknown sender 403 politely, with no LLM call and no rows', async () => {
    const strict = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: { unknownUserPolicy: 'reject' },
    });
    extra.push(strict);
    const before = await countRows();
    const calls = llm.guesserLlm.requests.length;
    const res = await analyzeGet(strict, { channel: 'email', username: 'nobody@example.test', request: 'Авторизации' });
    expect(res.status).toBe(403);
    expect(res.body.message).toMatch(/^Извините/);
    expect(llm.guesserLlm.requests.length).toBe(calls);
    expect(await countRows()).toEqual(before);

    const known = unique('known');
    await putEmployee(known, { email: `${known}@example.test` });
    const ok = await analyzeGet(strict, {
      channel: 'email',
      username: `${known}@example.test`,
      request: 'Авторизации',
    });
    expect(ok.status).toBe(200);
  });

  it('a guesser that does not answer in time → 504, recorded as upstream_timeout', async () => {
    const impatient = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      upstreamTimeoutMs: 300,
    });
    extra.push(impatient);
    llm.guesserLlm.delayMs = 1500;
    const username = unique('slow');
    const res = await analyzeGet(impatient, { channel: 'direct', username, request: 'Авторизации' });
    expect(res.status).toBe(504);
    expect(res.body).toEqual({
      error: 'Gateway Timeout',
      message: "Upstream 'guesser' did not answer in time",
      statusCode: 504,
    });
    const conversation = await knex()('conversations').where({ sender: username }).first();
    expect(await knex()('analyses').where({ conversation_id: conversation.id })).toMatchObject([
      { outcome: 'failed', error_code: 'upstream_timeout' },
    ]);
    expect(await knex()('messages').where({ conversation_id: conversation.id })).toMatchObject([
      { role: 'user', state: 'failed' },
    ]);
  });

  it('an analyst that is down → 503, recorded as upstream_unavailable; /health reports it', async () => {
    const deadPort = await getFreePort();
    const orphan = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: `http://127.0.0.1:${deadPort}`,
    });
    extra.push(orphan);
    const username = unique('down');
    const guesserCalls = llm.guesserLlm.requests.length;
    const res = await analyzeGet(orphan, { channel: 'direct', username, request: 'Авторизации' });
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      error: 'Service Unavailable',
      message: "Upstream 'system-analyst' is unavailable",
      statusCode: 503,
    });
    expect(llm.guesserLlm.requests.length).toBe(guesserCalls + 1);
    const conversation = await knex()('conversations').where({ sender: username }).first();
    expect(await knex()('analyses').where({ conversation_id: conversation.id })).toMatchObject([
      { outcome: 'failed', error_code: 'upstream_unavailable', guesser_is_enough: true, context: CONTEXT },
    ]);
    const health = await request(orphan.url).get('/health');
    expect(health.status).toBe(200);
    expect(openapi.responseProblems('getHealth', 200, health.body)).toEqual([]);
    expect(health.body).toMatchObject({
      status: 'degraded',
      checks: { postgres: { status: 'ok' }, guesser: { status: 'ok' }, 'system-analyst': { status: 'down' } },
    });
  });
});

describe("analyze: a guesser that refuses the secretary's service key", () => {
  it("→ 503 naming GUESSER_API_KEY and SERVICE_API_KEYS (not the caller's 401), nothing asked of the model; /health shows it", async () => {
    const logger = createLogger({ service: 'secretary', level: 'error' });
    logger.silent = true;
    const strayKey = { baseURL: llm.guesserUrl, timeoutMs: 5000, maxRetries: 0, logger, metrics: createMetrics('x') };
    const mismatched = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: { guesser: createGuesserClient({ ...strayKey, apiKey: 'not-the-guesser-key-0123456789abcdef' }) },
    });
    extra.push(mismatched);
    const calls = llm.guesserLlm.requests.length;
    // The explanation names configuration keys: for an admin key (a client key gets 'The guesser is unavailable',
    // errors-s27-attacks.test.ts).
    const res = await analyzeGet(
      mismatched,
      { channel: 'direct', username: unique('key'), request: 'Авторизации' },
      bearer('admin'),
    );
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      error: 'Service Unavailable',
      message:
        "The guesser refused the secretary's service key (HTTP 401): the guesser's SERVICE_API_KEYS must hold the key " +
        'the secretary sends it (GUESSER_API_KEY or GUESSER_API_KEY_FILE; unset: the first of SERVICE_API_KEYS)',
      statusCode: 503,
    });
    expect(llm.guesserLlm.requests.length).toBe(calls);
    const health = await request(mismatched.url).get('/health').set(bearer('admin'));
    expect(openapi.responseProblems('getHealth', health.status, health.body)).toEqual([]);
    expect(health.body.checks.guesser).toMatchObject({
      status: 'down',
      detail: expect.stringContaining('SERVICE_API_KEYS') as unknown,
    });
  });
});

describe('analyze: long requests', () => {
  it('decides on a 12,000-character Cyrillic email: the LLM services get it whole in a POST body', async () => {
    const username = `${unique('long')}@example.test`;
    const text = 'Прошу подготовить аналитику по операциям авторизации кошельков за квартал. '
      .repeat(200)
      .slice(0, 12_000);
    expect(text).toHaveLength(12_000);
    const res = await analyzePost(secretary, { channel: 'email', username, request: text });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      is_enough: true,
      request: text,
      action: 'ответить на письмо',
      question: '',
      response: ANSWER,
      'context-response': ANSWER,
    });
    expect(lastGuesserInput()).toMatchObject({ request: text });
    expect(userDataOf(llm.analystLlm.requests.at(-1)!.user)).toEqual({ context: CONTEXT, request: text });
    const conversation = await knex()('conversations').where({ sender: username }).first();
    expect(await knex()('analyses').where({ conversation_id: conversation.id })).toMatchObject([
      { outcome: 'succeeded', request: text, error_code: null },
    ]);
  });

  it('a follow-up whose joined text is over 20,000 characters → 413 request_too_long, recorded, no LLM call', async () => {
    const username = unique('longfollow');
    const first = await analyzePost(secretary, {
      channel: 'tg',
      username,
      request: 'Нужна аналитика по кошелькам. '.repeat(500),
    });
    expect(first.status).toBe(200);
    expect(first.body.action).toBe('уточнить');
    const calls = llm.guesserLlm.requests.length;
    const answer = await analyzePost(secretary, {
      channel: 'tg',
      username,
      request: 'Меня интересуют операции авторизации. '.repeat(160),
    });
    expect(answer.status).toBe(413);
    expect(answer.body.message).toMatch(
      /^The request together with the earlier question is too long: \d+ characters, the limit is 20000; please shorten it$/,
    );
    expect(llm.guesserLlm.requests.length).toBe(calls);
    const conversation = await knex()('conversations').where({ sender: username }).first();
    expect(await knex()('analyses').where({ conversation_id: conversation.id }).orderBy('id')).toMatchObject([
      { outcome: 'succeeded', action: 'уточнить' },
      { outcome: 'failed', error_code: 'request_too_long' },
    ]);
  });

  it("a text over the LLM services' LLM_MAX_INPUT_CHARS → 413 asking to shorten it, recorded as request_too_long", async () => {
    const capped = await startLlmServices({
      guesser: guesserModel,
      analyst: analystModel,
      env: { LLM_MAX_INPUT_CHARS: '3000' },
    });
    extra.push(capped);
    const strict = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: capped.guesserUrl,
      analystUrl: capped.analystUrl,
    });
    extra.push(strict);
    const username = `${unique('capped')}@example.test`;
    const text = 'Длинное письмо про операции авторизации кошельков. '.repeat(80);
    const res = await analyzePost(strict, { channel: 'email', username, request: text });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({
      error: 'Payload Too Large',
      message: 'The request is too long for the guesser; please shorten it',
      statusCode: 413,
    });
    expect(capped.guesserLlm.requests).toHaveLength(0);
    const conversation = await knex()('conversations').where({ sender: username }).first();
    expect(await knex()('analyses').where({ conversation_id: conversation.id })).toMatchObject([
      { outcome: 'failed', error_code: 'request_too_long' },
    ]);
  });
});

describe('analyze: LLM provider, model and tokens', () => {
  const usageOf = (fake: LlmServices['guesserLlm']) => fake.requests.at(-1)!.usage!;

  it("records the model and the tokens of both calls (the LLM services' optional llm metadata)", async () => {
    const username = unique('tokens');
    const res = await analyzePost(secretary, { channel: 'direct', username, request: 'Аналитика авторизаций' });
    expect(res.status).toBe(200);
    const guesser = usageOf(llm.guesserLlm);
    const analyst = usageOf(llm.analystLlm);
    expect(guesser.inputTokens).toBeGreaterThan(0);
    expect(analyst.outputTokens).toBeGreaterThan(0);
    const conversation = await knex()('conversations').where({ sender: username }).first();
    const expected = {
      outcome: 'succeeded',
      provider: 'openai',
      model: llm.analystLlm.model,
      prompt_tokens: guesser.inputTokens + analyst.inputTokens,
      completion_tokens: guesser.outputTokens + analyst.outputTokens,
    };
    expect(await knex()('analyses').where({ conversation_id: conversation.id })).toMatchObject([expected]);
    const history = await keyed(secretary.url).get(`/conversations/${conversation.id}`);
    expect(history.status).toBe(200);
    expect(openapi.responseProblems('getConversation', 200, history.body)).toEqual([]);
    expect(history.body.analyses).toMatchObject([expected]);
  });

  it("a clarifying question records the guesser's call; a failed analyst keeps the guesser's tokens", async () => {
    const username = unique('tokensq');
    const question = await analyzePost(secretary, { channel: 'tg', username, request: 'Хочу аналитику' });
    expect(question.body.action).toBe('уточнить');
    const asked = usageOf(llm.guesserLlm);
    llm.analystLlm.failNext(1, { status: 500 });
    const failed = await analyzePost(secretary, { channel: 'tg', username, request: 'Операции авторизации' });
    expect(failed.status).toBe(503);
    const answered = usageOf(llm.guesserLlm);
    const conversation = await knex()('conversations').where({ sender: username }).first();
    expect(await knex()('analyses').where({ conversation_id: conversation.id }).orderBy('id')).toMatchObject([
      {
        outcome: 'succeeded',
        model: llm.guesserLlm.model,
        prompt_tokens: asked.inputTokens,
        completion_tokens: asked.outputTokens,
      },
      {
        outcome: 'failed',
        model: llm.guesserLlm.model,
        prompt_tokens: answered.inputTokens,
        completion_tokens: answered.outputTokens,
      },
    ]);
  });
});

describe('history and stats', () => {
  it('lists conversations by username and channel, and counts decisions and failures', async () => {
    const username = unique('hist');
    await analyzeGet(secretary, { channel: 'tg', username, request: 'Авторизации' });
    await analyzeGet(secretary, { channel: 'direct', username, request: 'Авторизации' });
    const list = await keyed(secretary.url).get('/conversations').query({ username, channel: 'tg', limit: 10 });
    expect(list.status).toBe(200);
    expect(openapi.responseProblems('listConversations', 200, list.body)).toEqual([]);
    expect(list.body.conversations).toHaveLength(1);
    expect(list.body.conversations[0]).toMatchObject({ channel: 'tg', sender: username, status: 'answered' });

    const bad = await keyed(secretary.url).get('/conversations').query({ limit: 0 });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe("Parameter 'limit' must be >= 1");
    const badId = await keyed(secretary.url).get('/conversations/abc');
    expect(badId.status).toBe(400);
    expect((await keyed(secretary.url).get('/conversations/999999')).status).toBe(404);

    const stats = await keyed(secretary.url).get('/stats');
    expect(stats.status).toBe(200);
    expect(openapi.responseProblems('getStats', 200, stats.body)).toEqual([]);
    expect(stats.body.by_channel.tg).toBeGreaterThanOrEqual(1);
    expect(stats.body.by_action['ответить сообщением']).toBeGreaterThanOrEqual(2);
    expect(stats.body.by_decision.enough).toBeGreaterThanOrEqual(2);
    expect(stats.body.analyses.total).toBe(
      stats.body.analyses.succeeded + stats.body.analyses.failed + stats.body.analyses.pending,
    );
  });
});
