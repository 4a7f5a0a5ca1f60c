// Issue 9, "Hostile text": control characters and broken UTF-16 in what users send and in what models answer are
// cleaned at the edge (the service kit's request validation, the LLM client's answer parsing) and never turn into
// a 5xx (PostgreSQL refuses U+0000 in text); a model's off-contract action or runaway answer still gives a 200.
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { ANSWER_CUT_MARKER } from '@workemon/llm';
import { defaultAnalystReply, defaultGuesserReply, type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { userDataOf } from '@workemon/testkit/fake-llm';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { QUESTION_CUT_MARKER } from '../src/history-write-repository.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let secretary: Secretary;

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_hostile');
  llm = await startLlmServices();
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl });
  // A known employee, so that the guesser sees a department and position.
  const res = await keyed(secretary.url)
    .put('/employees/nulloff')
    .send({ department: 'ИТ', position: 'инженер', email: 'null.off@example.test' });
  expect(res.status).toBe(201);
});

afterAll(async () => {
  await secretary?.close();
  await llm?.close();
  await db?.drop();
});

beforeEach(() => {
  llm.guesserLlm.reply(defaultGuesserReply);
  llm.analystLlm.reply(defaultAnalystReply);
});

// eslint-disable-next-line no-control-regex -- looking for control characters is the point
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F]/;
const knex = () => secretary.db.knex;

async function storedUserMessage(messageId: string) {
  return (await knex()('messages as m')
    .join('conversations as c', 'c.id', 'm.conversation_id')
    .where('m.message_id', messageId)
    .first('m.text', 'c.sender', 'c.thread_key')) as { text: string; sender: string; thread_key: string | null };
}

describe('NUL and other control characters in requests', () => {
  it('in the query of GET /analyze-request → 200, removed from what is answered and stored', async () => {
    const res = await keyed(secretary.url).get('/analyze-request').query({
      channel: 'direct',
      username: 'null\u0000off',
      request: 'Нужна выгрузка\u0000 операций авторизации\u0007 за май\r\nпо кошелькам',
      message_id: 'hostile-get\u0000-1',
    });
    expect(openapi.responseProblems('analyzeRequestGet', res.status, res.body)).toEqual([]);
    expect(res.status).toBe(200);
    expect(res.body.request).toBe('Нужна выгрузка операций авторизации за май\nпо кошелькам');
    expect(JSON.stringify(res.body)).not.toMatch(CONTROL);
    const stored = await storedUserMessage('hostile-get-1');
    expect(stored).toMatchObject({ text: res.body.request, sender: 'nulloff' });
    // The username without its NUL is the directory's: the guesser saw the employee, not "unknown".
    expect(userDataOf(llm.guesserLlm.requests.at(-1)!.user)).toMatchObject({ username: 'nulloff', department: 'ИТ' });
  });

  it('in a JSON body (request, username, message_id, thread_key) → 200, removed; lone surrogates → U+FFFD', async () => {
    const res = await keyed(secretary.url).post('/analyze-request').send({
      channel: 'email',
      username: 'Null.Off@example.test\u0000',
      request: 'Сделайте \u0000отчёт по операциям \uD800авторизации за неделю, пожалуйста\u001F',
      message_id: '<hostile\u0000-post-1@example.test>',
      thread_key: '<thread\u0000-1@example.test>',
    });
    expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
    expect(res.status).toBe(200);
    expect(res.body.request).toBe('Сделайте отчёт по операциям \uFFFDавторизации за неделю, пожалуйста');
    const stored = await storedUserMessage('<hostile-post-1@example.test>');
    expect(stored).toMatchObject({
      text: res.body.request,
      sender: 'null.off@example.test',
      thread_key: '<thread-1@example.test>',
    });
  });

  it('a request that is nothing but control characters is empty: 400 naming it, nothing stored', async () => {
    const before = Number((await knex()('messages').count('* as n'))[0]!['n']);
    const res = await keyed(secretary.url)
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'nulloff', request: '\u0000\u0001\u0002' });
    expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
    expect(res.status).toBe(400);
    expect(res.body.message).toBe("Parameter 'request' must not be empty");
    expect(Number((await knex()('messages').count('* as n'))[0]!['n'])).toBe(before);
  });
});

describe('hostile model answers', () => {
  it('NUL in the LLM answers → 200 with the NUL removed, and the analysis is stored', async () => {
    llm.guesserLlm.reply(
      () => '{"is_enough": true, "response": "Контекст\\u0000: инженер ИТ\\u0000, выгрузка\\u001b[31m операций"}',
    );
    llm.analystLlm.reply(
      () =>
        '{"is_enough": true, "response": "Выгрузите\\u0000 данные из витрины операций", "action": "ответить сообщением"}',
    );
    const res = await keyed(secretary.url).post('/analyze-request').send({
      channel: 'direct',
      username: 'nulloff',
      request: 'Выгрузка операций авторизации за май',
      message_id: 'llm-nul-1',
    });
    expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
    expect(res.status).toBe(200);
    expect(res.body.response).toBe('Выгрузите данные из витрины операций');
    const analysis = (await knex()('analyses as a')
      .join('messages as m', 'm.id', 'a.message_id')
      .where('m.message_id', 'llm-nul-1')
      .first('a.outcome', 'a.context', 'a.response')) as { outcome: string; context: string; response: string };
    expect(analysis).toEqual({
      outcome: 'succeeded',
      context: 'Контекст: инженер ИТ, выгрузка[31m операций',
      response: 'Выгрузите данные из витрины операций',
    });
  });

  it("an action outside the contract's enum → the channel's reply action, not a 502", async () => {
    llm.analystLlm.reply(() => ({ is_enough: true, response: 'Позвоните в поддержку', action: 'позвонить директору' }));
    const direct = await keyed(secretary.url)
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'nulloff', request: 'Кому звонить по поводу сбоя авторизации?' });
    expect(openapi.responseProblems('analyzeRequestPost', direct.status, direct.body)).toEqual([]);
    expect(direct.status).toBe(200);
    expect(direct.body).toMatchObject({ action: 'ответить сообщением', response: 'Позвоните в поддержку' });
    const email = await keyed(secretary.url)
      .post('/analyze-request')
      .send({ channel: 'email', username: 'null.off@example.test', request: 'Кому звонить по поводу сбоя шлюза?' });
    expect(email.status).toBe(200);
    expect(email.body.action).toBe('ответить на письмо');
  });

  it('a runaway answer is cut to the answer limit with a marker: a short message never gets 413', async () => {
    // 60,000 characters of "context" would be over the analyst's LLM_MAX_INPUT_CHARS (32,000) if passed on whole.
    llm.guesserLlm.reply(() => ({ is_enough: true, response: 'Контекст обращения. '.repeat(3_000) }));
    llm.analystLlm.reply(() => ({ is_enough: true, response: 'Шаг рекомендации. '.repeat(3_000) }));
    const res = await keyed(secretary.url)
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'nulloff', request: 'Коротко: где взять операции?' });
    expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
    expect(res.status).toBe(200);
    expect(res.body.response.startsWith('Шаг рекомендации. Шаг рекомендации.')).toBe(true);
    expect(res.body.response.endsWith(ANSWER_CUT_MARKER)).toBe(true);
    expect(res.body.response.length).toBeLessThanOrEqual(8_000);
    const context = userDataOf(llm.analystLlm.requests.at(-1)!.user) as { context: string };
    expect(context.context.endsWith(ANSWER_CUT_MARKER)).toBe(true);
    expect(context.context.length).toBeLessThanOrEqual(8_000);
  });

  it('a long clarifying question is shortened in the follow-up, so a short answer never gets 413', async () => {
    const question = `${'Уточните, пожалуйста, детали. '.repeat(260)}Какие операции?`; // ~7,800 characters
    llm.guesserLlm.reply(({ user }) => {
      const text = (userDataOf(user) as { request: string }).request;
      return /авторизац/.test(text)
        ? { is_enough: true, response: 'Контекст' }
        : { is_enough: false, response: question };
    });
    const earlier = 'Нужна аналитика по кошелькам. '.repeat(430); // ~12,900 characters
    const first = await keyed(secretary.url)
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'nulloff', request: earlier });
    expect(first.body).toMatchObject({ action: 'уточнить', question });
    const answer = 'Операции авторизации за май';
    const res = await keyed(secretary.url)
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'nulloff', request: answer });
    expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
    expect(res.status).toBe(200);
    expect(res.body.request.length).toBeLessThanOrEqual(20_000);
    expect(res.body.request.startsWith(earlier.trim())).toBe(true);
    expect(res.body.request.endsWith(`${QUESTION_CUT_MARKER} ${answer}`)).toBe(true);
  });
});
