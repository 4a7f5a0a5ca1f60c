// A message_id is an idempotency key, not a read handle: a caller that sends the message_id of someone else's
// message must not receive that message's stored answer (its request text, the expert answer), nor take over its
// failed attempt. Within one namespace that is a 403; another namespace's use of the id is another message
// (message-id-namespace.test.ts). The real secretary over HTTP, on a real PostgreSQL, behind the real LLM services
// (fake models).
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { bearer } from '@workemon/testkit/api-keys';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { openapi, startSecretary, type Secretary } from './secretary-harness.js';
import { startLlmServices } from './llm-services.js';

const unique = (prefix: string) => `${prefix}${randomBytes(4).toString('hex')}`;
const SECRET_REQUEST = 'Нужна выгрузка зарплат отдела за октябрь, пароль от архива 7731';
const ANSWER = 'Выгрузку делает отдел кадров в 1С: отчёт «Зарплата по сотрудникам».';

let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let secretary: Secretary;

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_message_id_scope');
  llm = await startLlmServices({
    guesser: () => ({ is_enough: true, response: 'Кадры, выгрузка зарплат.' }),
    analyst: () => ({ is_enough: true, response: ANSWER }),
  });
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl });
});
afterAll(async () => {
  await secretary?.close();
  await llm?.close();
  await db?.drop();
});

async function analyze(body: Record<string, string>, keyClass: 'client' | 'service' | 'admin' = 'client') {
  const res = await request(secretary.url).post('/analyze-request').set(bearer(keyClass)).send(body);
  expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
  return res;
}

const knex = () => secretary.db.knex;

describe('message_id belongs to its sender', () => {
  it("refuses another sender's message_id in the same namespace with 403 and reveals nothing of the stored answer", async () => {
    for (const channel of ['direct', 'email', 'tg']) {
      const messageId = unique(`<victim-${channel}-`) + '@mail.example.test>';
      const victim = await analyze(
        { channel, username: unique('victim'), request: SECRET_REQUEST, message_id: messageId },
        'service',
      );
      expect(victim.status).toBe(200);
      expect(victim.body.request).toBe(SECRET_REQUEST);
      const calls = llm.guesserLlm.requests.length + llm.analystLlm.requests.length;
      const rows = await knex()('messages').count<{ count: string }[]>('* as count');

      // An admin key shares the service keys' namespace (docs/secretary.md, "Conversations belong to their client key").
      const attacker = await analyze(
        { channel, username: 'attacker', request: 'ну что там', message_id: messageId },
        'admin',
      );
      expect(attacker.status, channel).toBe(403);
      expect(attacker.body).toMatchObject({ error: 'Forbidden', statusCode: 403 });
      expect(JSON.stringify(attacker.body)).not.toContain('7731');
      expect(JSON.stringify(attacker.body)).not.toContain(ANSWER);
      // Nothing stored, no model asked.
      expect(llm.guesserLlm.requests.length + llm.analystLlm.requests.length).toBe(calls);
      expect(await knex()('messages').count<{ count: string }[]>('* as count')).toEqual(rows);
    }
  });

  it("a client key naming that message_id gets a request of its own: never the stored answer, never the owner's attempt", async () => {
    for (const channel of ['direct', 'email', 'tg']) {
      const messageId = unique(`<victim-${channel}-`) + '@mail.example.test>';
      await analyze({ channel, username: unique('victim'), request: SECRET_REQUEST, message_id: messageId }, 'service');
      const attacker = await analyze({ channel, username: 'attacker', request: 'ну что там', message_id: messageId });
      expect(attacker.status, channel).toBe(200);
      expect(attacker.body.request).toBe('ну что там');
      expect(JSON.stringify(attacker.body)).not.toContain('7731');
      // The owner's message is untouched: still answered, one analysis.
      const [owned] = await knex()('messages').where({ channel, message_id: messageId, message_namespace: '' });
      expect(owned).toMatchObject({ state: 'answered', attempts: 1 });
      expect(await knex()('analyses').where({ message_id: owned.id })).toHaveLength(1);
    }
  });

  it('still answers the sender’s own repeat (any case of the address) from the stored decision', async () => {
    const messageId = unique('<own-') + '@mail.example.test>';
    const username = `${unique('Owner')}@Example.test`;
    const first = await analyze({ channel: 'email', username, request: SECRET_REQUEST, message_id: messageId });
    expect(first.status).toBe(200);
    const calls = llm.guesserLlm.requests.length + llm.analystLlm.requests.length;
    const again = await analyze({
      channel: 'email',
      username: username.toLowerCase(),
      request: SECRET_REQUEST,
      message_id: messageId,
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(llm.guesserLlm.requests.length + llm.analystLlm.requests.length).toBe(calls);
  });

  it('answers a repeat from an alias in the same mail thread (the thread is shared by design)', async () => {
    const thread = unique('<thread-') + '@mail.example.test>';
    const messageId = unique('<alias-') + '@mail.example.test>';
    // The communicator (service key) forwards every mail of a thread. A thread a client key started is that
    // key's own and is not shared with the communicator (client-key-scope.test.ts).
    await analyze(
      { channel: 'email', username: 'a@example.test', request: 'Первое письмо', thread_key: thread },
      'service',
    );
    const reply = { channel: 'email', request: SECRET_REQUEST, message_id: messageId, thread_key: thread };
    const first = await analyze({ ...reply, username: 'a.alias@example.test' }, 'service');
    expect(first.status).toBe(200);
    const again = await analyze({ ...reply, username: 'a.alias@example.test' }, 'service');
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
  });
});
