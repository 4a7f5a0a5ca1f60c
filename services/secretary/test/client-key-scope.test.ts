// A conversation started through a client key (API_KEYS) belongs to that key: another client key that names its
// thread_key, its sender or its message_id neither reads nor extends it. Service keys (the communicator's mail and
// Telegram threads), admin keys and the keyless loopback mode share one namespace, as before.
// The real secretary over HTTP, on a real PostgreSQL, behind the real LLM services (fake models).
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createAuthenticator } from '@workemon/service-kit';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { userDataOf } from '@workemon/testkit/fake-llm';
import { TEST_API_KEYS, TEST_KEYS, bearer } from '@workemon/testkit/api-keys';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { openapi, startSecretary, type Secretary } from './secretary-harness.js';
import { startLlmServices } from './llm-services.js';

const unique = (prefix: string) => `${prefix}${randomBytes(4).toString('hex')}`;
const QUESTION = 'Уточните, за какой период нужна выгрузка?';
const ANSWER = 'Выгрузку делает отдел кадров в 1С.';
// What the first client wrote: no other client may ever see it.
const SECRET = 'Выгрузка зарплат отдела, пароль от архива 7731';
// A second client key of the same class, as an operator lists one per application.
const OTHER_CLIENT_KEY = `other-client-${randomBytes(16).toString('hex')}`;
const other = { Authorization: `Bearer ${OTHER_CLIENT_KEY}` };

let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let secretary: Secretary;
let open: Secretary;

/** Asks a question unless the text says which month. */
const guesserModel = (req: { user: string }) =>
  /май|октябр/i.test((userDataOf(req.user) as { request: string }).request)
    ? { is_enough: true, response: 'Кадры, выгрузка.' }
    : { is_enough: false, response: QUESTION };

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_client_key_scope');
  llm = await startLlmServices({ guesser: guesserModel, analyst: () => ({ is_enough: true, response: ANSWER }) });
  const urls = { databaseUrl: db.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl };
  secretary = await startSecretary({
    ...urls,
    overrides: {
      auth: createAuthenticator({
        ...TEST_API_KEYS,
        client: [...TEST_API_KEYS.client, { name: 'other-app', key: OTHER_CLIENT_KEY }],
      }),
    },
  });
  // No keys at all, loopback: every class open to anonymous callers (npm start without keys).
  open = await startSecretary({
    ...urls,
    overrides: { auth: createAuthenticator({}, { open: ['client', 'admin', 'service'] }) },
  });
});
afterAll(async () => {
  await open?.close();
  await secretary?.close();
  await llm?.close();
  await db?.drop();
});

async function analyze(body: Record<string, string>, headers: Record<string, string>, target = secretary) {
  const res = await request(target.url).post('/analyze-request').set(headers).send(body);
  expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
  return res;
}
const llmCalls = () => llm.guesserLlm.requests.length + llm.analystLlm.requests.length;
const guesserInputs = () => llm.guesserLlm.requests.map((r) => JSON.stringify(userDataOf(r.user)));
const knex = () => secretary.db.knex;

describe('a client key owns the conversations it starts', () => {
  it("another client key naming the thread_key gets a fresh conversation of its own, never the first one's text", async () => {
    const thread = unique('<thread-') + '@app.example.test>';
    const first = await analyze(
      { channel: 'direct', username: 'anna', request: SECRET, thread_key: thread },
      bearer('client'),
    );
    expect(first.body).toMatchObject({ action: 'уточнить', question: QUESTION });

    const seen = guesserInputs().length;
    const intruder = await analyze(
      { channel: 'direct', username: 'anna', request: 'За май', thread_key: thread },
      other,
    );
    expect(intruder.status).toBe(200);
    // Decided on its own text: not the first client's request joined with the question.
    expect(intruder.body.request).toBe('За май');
    expect(JSON.stringify(intruder.body)).not.toContain('7731');
    expect(guesserInputs().slice(seen).join('\n')).not.toContain('7731');

    // The owner still continues its own conversation, untouched by the other key's message.
    const owner = await analyze(
      { channel: 'direct', username: 'anna', request: 'За октябрь', thread_key: thread },
      bearer('client'),
    );
    expect(owner.body.request).toBe(`${SECRET} ${QUESTION} За октябрь`);

    const rows = (await knex()('conversations').where({ thread_key: thread }).orderBy('id')) as Record<
      string,
      unknown
    >[];
    expect(rows).toHaveLength(2);
    const owners = rows.map((r) => r['client_key_id']);
    expect(owners[0]).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(owners[1]).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(owners[0]).not.toBe(owners[1]);
    // A fingerprint, never the key.
    expect(JSON.stringify(rows)).not.toContain(TEST_KEYS.client);
    expect(JSON.stringify(rows)).not.toContain(OTHER_CLIENT_KEY);
  });

  it("another client key writing as the same sender does not answer the first key's open question", async () => {
    const username = unique('boris');
    await analyze({ channel: 'direct', username, request: SECRET }, bearer('client'));
    const intruder = await analyze({ channel: 'direct', username, request: 'За май' }, other);
    expect(intruder.body.request).toBe('За май');
    const owner = await analyze({ channel: 'direct', username, request: 'За май' }, bearer('client'));
    expect(owner.body.request).toBe(`${SECRET} ${QUESTION} За май`);
  });

  it("a client key cannot join the communicator's mail thread (service key) by its thread_key", async () => {
    const thread = unique('<mail-') + '@mail.example.test>';
    const sender = `${unique('vera')}@example.test`;
    await analyze({ channel: 'email', username: sender, request: SECRET, thread_key: thread }, bearer('service'));
    const intruder = await analyze(
      { channel: 'email', username: sender, request: 'За май', thread_key: thread },
      bearer('client'),
    );
    expect(intruder.body.request).toBe('За май');
    expect(JSON.stringify(intruder.body)).not.toContain('7731');
    // The communicator's next mail in the thread continues it, as before.
    const reply = await analyze(
      { channel: 'email', username: sender, request: 'За май', thread_key: thread },
      bearer('service'),
    );
    expect(reply.body.request).toBe(`${SECRET} ${QUESTION} За май`);
  });

  it('another client key re-using a message_id gets a fresh request of its own that reveals nothing, even under the same sender', async () => {
    const messageId = unique('<msg-') + '@app.example.test>';
    const body = { channel: 'direct', username: 'galina', request: SECRET, message_id: messageId };
    const first = await analyze(body, bearer('client'));
    expect(first.status).toBe(200);

    // Not a 403: that would tell the other key the id is in use, as a 403 for a thread_key would (migration
    // 340_message_namespace: message_ids are unique per namespace).
    const seen = guesserInputs().length;
    const intruder = await analyze({ ...body, request: 'За май' }, other);
    expect(intruder.status).toBe(200);
    expect(intruder.body.request).toBe('За май');
    expect(JSON.stringify(intruder.body)).not.toContain('7731');
    expect(guesserInputs().slice(seen).join('\n')).not.toContain('7731');
    expect(guesserInputs().slice(seen)).toHaveLength(1);

    // Each key's repeat gets its own stored answer, with no new model call.
    const calls = llmCalls();
    const again = await analyze(body, bearer('client'));
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect((await analyze({ ...body, request: 'За май' }, other)).body).toEqual(intruder.body);
    expect(llmCalls()).toBe(calls);
  });

  it("a client key's message_id does not block the communicator's message with that id: the namespaces do not mix", async () => {
    const messageId = unique('<planted-') + '@mail.example.test>';
    const sender = `${unique('dina')}@example.test`;
    const body = { channel: 'email', username: sender, request: SECRET, message_id: messageId };
    expect((await analyze({ ...body, request: 'Что-нибудь' }, bearer('client'))).status).toBe(200);
    const seen = guesserInputs().length;
    const forwarded = await analyze(body, bearer('service'));
    expect(forwarded.status).toBe(200);
    expect(forwarded.body.request).toBe(SECRET);
    expect(guesserInputs().slice(seen)).toHaveLength(1);
  });
});

describe('service keys, admin keys and the keyless mode share one namespace, as before', () => {
  it('an admin key continues a thread the communicator started', async () => {
    const thread = unique('<mail-') + '@mail.example.test>';
    const sender = `${unique('elena')}@example.test`;
    await analyze({ channel: 'email', username: sender, request: SECRET, thread_key: thread }, bearer('service'));
    const admin = await analyze(
      { channel: 'email', username: sender, request: 'За май', thread_key: thread },
      bearer('admin'),
    );
    expect(admin.body.request).toBe(`${SECRET} ${QUESTION} За май`);
    expect(await knex()('conversations').where({ thread_key: thread }).whereNull('client_key_id')).toHaveLength(1);
  });

  it('without keys (loopback) a thread_key continues its conversation whoever calls', async () => {
    const thread = unique('<open-') + '@app.example.test>';
    await analyze({ channel: 'direct', username: 'fedor', request: SECRET, thread_key: thread }, {}, open);
    const next = await analyze(
      { channel: 'direct', username: 'fedor2', request: 'За май', thread_key: thread },
      {},
      open,
    );
    expect(next.body.request).toBe(`${SECRET} ${QUESTION} За май`);
  });
});
