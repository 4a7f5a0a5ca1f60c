// A message_id is unique per (channel, namespace, message_id) — the namespace is the caller's (a client key's
// `keyId`; the shared one of service keys, admin keys and keyless loopback callers), migration
// `340_message_namespace`. So a client key that posts a real mail's Message-ID (or a guessed `tg:<chat>:<msg>`)
// before the communicator does cannot block the employee's message: the communicator's post is analysed and
// answered, exactly once. The real secretary over HTTP, on a real PostgreSQL, behind the real LLM services (fake
// models); the migration is run on a database that already holds rows.
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createAuthenticator, keyId } from '@workemon/service-kit';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { userDataOf } from '@workemon/testkit/fake-llm';
import { TEST_API_KEYS, TEST_KEYS, bearer } from '@workemon/testkit/api-keys';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';
import { startLlmServices } from './llm-services.js';
import { openDatabase, type Database } from '../src/database.js';
import { migrationSource } from '../src/migrations.js';
import { DATABASE_KINDS, createDatabaseOfKind } from './database-kinds.js';

const unique = (prefix: string) => `${prefix}${randomBytes(4).toString('hex')}`;
const ANSWER = 'Доступ к VPN выдаёт служба ИТ по заявке в портале.';
// A second client key of the same class, as an operator lists one per application.
const OTHER_CLIENT_KEY = `other-client-${randomBytes(16).toString('hex')}`;
const other = { Authorization: `Bearer ${OTHER_CLIENT_KEY}` };
type Headers = Record<string, string>;

let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let secretary: Secretary;

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_message_namespace');
  llm = await startLlmServices({
    guesser: () => ({ is_enough: true, response: 'ИТ, доступы.' }),
    analyst: () => ({ is_enough: true, response: ANSWER }),
  });
  secretary = await startSecretary({
    databaseUrl: db.url,
    guesserUrl: llm.guesserUrl,
    analystUrl: llm.analystUrl,
    overrides: {
      auth: createAuthenticator({
        ...TEST_API_KEYS,
        client: [...TEST_API_KEYS.client, { name: 'other-app', key: OTHER_CLIENT_KEY }],
      }),
    },
  });
});
afterAll(async () => {
  await secretary?.close();
  await llm?.close();
  await db?.drop();
});

async function analyze(target: Secretary, body: Record<string, string>, headers: Headers) {
  const res = await request(target.url).post('/analyze-request').set(headers).send(body);
  expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
  return res;
}
const llmCalls = () => llm.guesserLlm.requests.length + llm.analystLlm.requests.length;
/** How many times the guesser's model was asked about exactly this text. */
const guesserCallsFor = (text: string) =>
  llm.guesserLlm.requests.filter((r) => (userDataOf(r.user) as { request?: string }).request === text).length;
const knex = () => secretary.db.knex;
/** The audit rows (docs/audit.md) the REST intake wrote for a message_id, oldest first. */
const auditRowsOf = async (messageId: string) =>
  (await knex()('audit_events').where({ message_id: messageId }).orderBy('id').select('outcome')) as {
    outcome: string;
  }[];

/** The inbound rows stored under a message_id, with their namespace and the answers stored in their conversation. */
async function storedUnder(channel: string, messageId: string) {
  const rows = (await knex()('messages')
    .where({ channel, message_id: messageId })
    .orderBy('id')
    .select('id', 'conversation_id', 'message_namespace', 'state', 'text')) as {
    id: number;
    conversation_id: number;
    message_namespace: string;
    state: string;
    text: string;
  }[];
  return Promise.all(
    rows.map(async (row) => ({
      ...row,
      analyses: (await knex()('analyses').where({ message_id: row.id }).pluck('outcome')) as string[],
      answers: (await knex()('messages')
        .where({ conversation_id: row.conversation_id, role: 'assistant' })
        .pluck('text')) as string[],
    })),
  );
}

describe('a client key cannot squat on the message_id of a mail or a Telegram message', () => {
  it('the communicator’s later post with the same id is analysed and answered once; its repeat is the stored answer', async () => {
    const sender = `${unique('ivan')}@example.test`;
    const cases = [
      { channel: 'email', messageId: unique('<CAF') + '@mail.example.test>', username: sender },
      { channel: 'tg', messageId: `tg:${unique('7')}:42`, username: unique('@ivan_') },
    ];
    for (const { channel, messageId, username } of cases) {
      const squatted = await analyze(
        secretary,
        { channel, username, request: `Перешлите мне чужой ответ ${channel}`, message_id: messageId },
        bearer('client'),
      );
      expect(squatted.status, channel).toBe(200);

      const text = `Нужен доступ к VPN из дома (${unique('')})`;
      const mail = { channel, username, request: text, message_id: messageId };
      const forwarded = await analyze(secretary, mail, bearer('service'));
      expect(forwarded.status, channel).toBe(200);
      expect(forwarded.body).toMatchObject({
        is_enough: true,
        request: text,
        response: expect.stringContaining('VPN'),
      });
      expect(guesserCallsFor(text), channel).toBe(1);

      // The communicator retries (a restart, a second replica): the stored answer, no model asked again.
      const calls = llmCalls();
      const again = await analyze(secretary, mail, bearer('service'));
      expect(again.status).toBe(200);
      expect(again.body).toEqual(forwarded.body);
      expect(llmCalls()).toBe(calls);

      const stored = await storedUnder(channel, messageId);
      expect(stored.map((s) => s.message_namespace)).toEqual([keyId(TEST_KEYS.client), '']);
      const shared = stored[1]!;
      expect(shared).toMatchObject({ state: 'answered', text, analyses: ['succeeded'] });
      expect(shared.answers).toHaveLength(1);
    }
  });

  it('the squatter’s own repeat still gets its own stored answer, never the communicator’s', async () => {
    const messageId = unique('<real-') + '@mail.example.test>';
    const username = `${unique('olga')}@example.test`;
    const squat = { channel: 'email', username, request: 'Что угодно', message_id: messageId };
    const first = await analyze(secretary, squat, bearer('client'));
    const text = `Пароль от почты не подходит (${unique('')})`;
    await analyze(secretary, { ...squat, request: text }, bearer('service'));
    const calls = llmCalls();
    const again = await analyze(secretary, squat, bearer('client'));
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(JSON.stringify(again.body)).not.toContain(text);
    expect(llmCalls()).toBe(calls);
  });
});

describe('client keys do not share message_ids', () => {
  it('another client key re-using a message_id gets its own fresh request, not a 403 and not the first answer', async () => {
    const messageId = unique('<app-') + '@app.example.test>';
    const secret = `Выгрузка зарплат, пароль от архива ${unique('')}`;
    const body = { channel: 'direct', username: 'galina', request: secret, message_id: messageId };
    const first = await analyze(secretary, body, bearer('client'));
    expect(first.status).toBe(200);

    const text = `Доступ к VPN для подрядчика (${unique('')})`;
    const second = await analyze(secretary, { ...body, request: text }, other);
    expect(second.status).toBe(200);
    expect(second.body.request).toBe(text);
    expect(JSON.stringify(second.body)).not.toContain(secret);
    expect(guesserCallsFor(text)).toBe(1);

    // Each key's repeat answers from its own stored decision, with no model call.
    const calls = llmCalls();
    expect((await analyze(secretary, body, bearer('client'))).body).toEqual(first.body);
    expect((await analyze(secretary, { ...body, request: text }, other)).body).toEqual(second.body);
    expect(llmCalls()).toBe(calls);
    expect((await storedUnder('direct', messageId)).map((s) => s.message_namespace)).toEqual([
      keyId(TEST_KEYS.client),
      keyId(OTHER_CLIENT_KEY),
    ]);
  });

  it('/stats counts the same message_id from two client keys as two inbound messages, a replay as none', async () => {
    const direct = async () => {
      const res = await keyed(secretary.url).get('/stats');
      expect(openapi.responseProblems('getStats', res.status, res.body)).toEqual([]);
      const counts = (res.body.audit.channels.direct ?? {}) as Record<string, number>;
      return { inbound: counts['inbound'] ?? 0, decided: counts['decided'] ?? 0 };
    };
    const before = await direct();
    // Two applications numbering their requests alike: both use message_id "1".
    const messageId = unique('seq-');
    const body = { channel: 'direct', username: 'yuri', message_id: messageId };
    const first = { ...body, request: `Заявка на пропуск (${unique('')})` };
    const second = { ...body, request: `Заявка на ноутбук (${unique('')})` };
    expect((await analyze(secretary, first, bearer('client'))).status).toBe(200);
    expect((await analyze(secretary, second, other)).status).toBe(200);
    // A replay of the first key's message is the same message: no new inbound one.
    expect((await analyze(secretary, first, bearer('client'))).status).toBe(200);
    // The replay's `skipped` row is written once its answer is out.
    await vi.waitFor(async () => expect((await auditRowsOf(messageId)).length).toBe(5));
    expect(await direct()).toEqual({ inbound: before.inbound + 2, decided: before.decided + 2 });
  });

  it('within one namespace a message_id stays its sender’s: another sender’s use is still 403 and changes nothing', async () => {
    for (const headers of [bearer('client'), bearer('service')]) {
      const messageId = unique('<own-') + '@mail.example.test>';
      const secret = `Пароль от архива ${unique('')}`;
      await analyze(
        secretary,
        { channel: 'email', username: `${unique('a')}@example.test`, request: secret, message_id: messageId },
        headers,
      );
      const calls = llmCalls();
      const rows = await knex()('messages').count<{ count: string }[]>('* as count');
      const intruder = await analyze(
        secretary,
        { channel: 'email', username: `${unique('b')}@example.test`, request: 'ну что там', message_id: messageId },
        headers,
      );
      expect(intruder.status).toBe(403);
      expect(intruder.body).toMatchObject({ error: 'Forbidden', statusCode: 403 });
      expect(JSON.stringify(intruder.body)).not.toContain(secret);
      expect(llmCalls()).toBe(calls);
      expect(await knex()('messages').count<{ count: string }[]>('* as count')).toEqual(rows);
    }
  });
});

describe('concurrent duplicates', () => {
  it('in one namespace are one analysis; the same id in two namespaces at once is one analysis each', async () => {
    llm.guesserLlm.delayMs = 300;
    try {
      for (const headers of [bearer('client'), bearer('service')]) {
        const text = `Принтер на 3 этаже не печатает (${unique('')})`;
        const body = { channel: 'email', username: `${unique('p')}@example.test`, request: text };
        const mail = { ...body, message_id: unique('<dup-') + '@mail.example.test>' };
        const results = await Promise.all(Array.from({ length: 5 }, () => analyze(secretary, mail, headers)));
        expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
        for (const r of results) expect(r.body).toEqual(results[0]!.body);
        expect(guesserCallsFor(text)).toBe(1);
        const stored = await storedUnder('email', mail.message_id);
        expect(stored).toHaveLength(1);
        expect(stored[0]).toMatchObject({ state: 'answered', analyses: ['succeeded'] });
        expect(stored[0]!.answers).toHaveLength(1);
      }

      const messageId = unique('<race-') + '@mail.example.test>';
      const username = `${unique('r')}@example.test`;
      const squat = { channel: 'email', username, request: `Сквоттер (${unique('')})`, message_id: messageId };
      const real = { channel: 'email', username, request: `Настоящее письмо (${unique('')})`, message_id: messageId };
      const results = await Promise.all([
        ...Array.from({ length: 3 }, () => analyze(secretary, squat, bearer('client'))),
        ...Array.from({ length: 3 }, () => analyze(secretary, real, bearer('service'))),
      ]);
      expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
      for (const r of results.slice(0, 3)) expect(r.body.request).toBe(squat.request);
      for (const r of results.slice(3)) expect(r.body.request).toBe(real.request);
      expect([guesserCallsFor(squat.request), guesserCallsFor(real.request)]).toEqual([1, 1]);
      const stored = await storedUnder('email', messageId);
      expect(stored.map((s) => s.message_namespace).sort()).toEqual(['', keyId(TEST_KEYS.client)]);
      for (const s of stored) expect([s.state, s.analyses, s.answers.length]).toEqual(['answered', ['succeeded'], 1]);
    } finally {
      llm.guesserLlm.delayMs = 0;
    }
  });
});

describe('migration 340_message_namespace on a database that already holds messages', () => {
  const MIGRATION = '340_message_namespace';
  const CLIENT = keyId(TEST_KEYS.client);
  const migrations = { migrationSource, tableName: 'knex_migrations' };
  let old: { url: string; drop: () => Promise<void> };
  let database: Database;

  beforeAll(async () => {
    old = await createTestDatabase(inject('postgresUrl'), 'secretary_namespace_migration');
    database = openDatabase({ url: old.url, poolMax: 2 });
  });
  afterAll(async () => {
    await database?.close();
    await old?.drop();
  });

  /** The unique indexes on `messages`, as PostgreSQL describes them. */
  const uniqueIndexes = async () =>
    (
      (await database.knex.raw(
        `select indexdef from pg_indexes where tablename = 'messages' and indexdef like 'CREATE UNIQUE INDEX%'
          and indexname <> 'messages_pkey' order by indexname`,
      )) as { rows: { indexdef: string }[] }
    ).rows.map((r) => r.indexdef.replace(/^.* USING btree /, ''));

  /** Messages whose namespace is not their conversation's (`coalesce(client_key_id, '')`). */
  const mismatchedNamespaces = async () =>
    (
      (await database.knex.raw(
        `select count(*)::int as n from messages m join conversations c on c.id = m.conversation_id
          where m.message_namespace <> coalesce(c.client_key_id, '')`,
      )) as { rows: { n: number }[] }
    ).rows[0]!.n;

  it('backfills the namespace from the conversation, replaces the index, keeps replays working and reverses', async () => {
    const k = database.knex;
    // Up to the migration before it, as a deployed secretary's database is.
    for (;;) {
      const [, applied] = (await k.migrate.up(migrations)) as [number, string[]];
      if (applied.includes('330_webhook_tokens')) break;
      expect(applied).toHaveLength(1);
    }
    const addConversation = async (clientKeyId: string | null, sender: string) =>
      (
        (await k('conversations')
          .insert({ channel: 'email', sender, status: 'answered', client_key_id: clientKeyId })
          .returning('id')) as { id: number }[]
      )[0]!.id;
    const shared = await addConversation(null, 'anna@example.test');
    const owned = await addConversation(CLIENT, 'boris@example.test');
    const addExchange = async (conversationId: number, messageId: string, response: string) => {
      const [msg] = (await k('messages')
        .insert({
          conversation_id: conversationId,
          channel: 'email',
          role: 'user',
          text: `Вопрос ${messageId}`,
          message_id: messageId,
          state: 'answered',
        })
        .returning('id')) as { id: number }[];
      await k('analyses').insert({
        conversation_id: conversationId,
        message_id: msg!.id,
        channel: 'email',
        request: `Вопрос ${messageId}`,
        outcome: 'succeeded',
        is_enough: true,
        action: 'ответить на письмо',
        question: '',
        response,
      });
      await k('messages').insert({
        conversation_id: conversationId,
        channel: 'email',
        role: 'assistant',
        text: response,
      });
    };
    await addExchange(shared, '<old-shared@mail.example.test>', 'Старый ответ коммуникатору');
    await addExchange(owned, '<old-client@app.example.test>', 'Старый ответ клиенту');
    expect(await uniqueIndexes()).toEqual(['(channel, message_id)']);

    const [, applied] = (await k.migrate.up(migrations)) as [number, string[]];
    expect(applied).toEqual([MIGRATION]);
    const rows = (await k('messages').orderBy('id').select('conversation_id', 'role', 'message_namespace')) as {
      conversation_id: number;
      role: string;
      message_namespace: string;
    }[];
    expect(rows).toEqual([
      { conversation_id: shared, role: 'user', message_namespace: '' },
      { conversation_id: shared, role: 'assistant', message_namespace: '' },
      { conversation_id: owned, role: 'user', message_namespace: CLIENT },
      { conversation_id: owned, role: 'assistant', message_namespace: CLIENT },
    ]);
    expect(await uniqueIndexes()).toEqual(['(channel, message_namespace, message_id)']);

    // The secretary on that database: the rows written before the migration replay in their own namespace.
    const llmHere = await startLlmServices({
      guesser: () => ({ is_enough: true, response: 'ИТ.' }),
      analyst: () => ({ is_enough: true, response: ANSWER }),
    });
    const app = await startSecretary({
      databaseUrl: old.url,
      guesserUrl: llmHere.guesserUrl,
      analystUrl: llmHere.analystUrl,
    });
    try {
      const replay = async (messageId: string, username: string, headers: Headers) =>
        analyze(app, { channel: 'email', username, request: 'повтор', message_id: messageId }, headers);
      const sharedReplay = await replay('<old-shared@mail.example.test>', 'anna@example.test', bearer('service'));
      expect(sharedReplay.body).toMatchObject({
        request: 'Вопрос <old-shared@mail.example.test>',
        response: 'Старый ответ коммуникатору',
      });
      const clientReplay = await replay('<old-client@app.example.test>', 'boris@example.test', bearer('client'));
      expect(clientReplay.body).toMatchObject({ response: 'Старый ответ клиенту' });
      expect(llmHere.guesserLlm.requests).toHaveLength(0);
      // The client key re-using the communicator's old id: a request of its own, stored beside it.
      const fresh = await replay('<old-shared@mail.example.test>', 'anna@example.test', bearer('client'));
      expect(fresh.status).toBe(200);
      expect(fresh.body.request).toBe('повтор');
      expect(llmHere.guesserLlm.requests).toHaveLength(1);
    } finally {
      await app.close();
      await llmHere.close();
    }

    // What the secretary wrote (requests and answers, in both namespaces) carries its conversation's namespace.
    expect(await k('messages').where({ message_namespace: CLIENT, role: 'assistant' })).toHaveLength(2);
    expect(await mismatchedNamespaces()).toBe(0);

    // Down refuses while one (channel, message_id) is held in two namespaces: nothing is changed or lost.
    await expect(k.migrate.down({ ...migrations, name: MIGRATION })).rejects.toThrow(
      /340_message_namespace.*message_id.*more than one namespace/s,
    );
    expect(await uniqueIndexes()).toEqual(['(channel, message_namespace, message_id)']);
    expect(await k('messages').where({ message_id: '<old-shared@mail.example.test>' })).toHaveLength(2);

    await k('messages').where({ message_id: '<old-shared@mail.example.test>', message_namespace: CLIENT }).delete();
    await k.migrate.down({ ...migrations, name: MIGRATION });
    expect(await uniqueIndexes()).toEqual(['(channel, message_id)']);
    expect(await k.schema.hasColumn('messages', 'message_namespace')).toBe(false);
    const [, again] = (await k.migrate.up(migrations)) as [number, string[]];
    expect(again).toEqual([MIGRATION]);
    expect(await k('messages').where({ conversation_id: owned }).pluck('message_namespace')).toEqual([CLIENT, CLIENT]);
    expect(await mismatchedNamespaces()).toBe(0);
  });
});

describe.each(DATABASE_KINDS)('upgrading a %s database whose messages were cut off before 340', (kind) => {
  it('resumes a pending (crashed) and a failed message in its own namespace, exactly once', async () => {
    const CLIENT = keyId(TEST_KEYS.client);
    const migrations = { migrationSource, tableName: 'knex_migrations' };
    const store = await createDatabaseOfKind(kind, 'secretary_namespace_resume');
    let app: Secretary | undefined;
    try {
      const database = store.open(2);
      const k = database.knex;
      try {
        for (;;) {
          const [, applied] = (await k.migrate.up(migrations)) as [number, string[]];
          if (applied.includes('330_webhook_tokens')) break;
          expect(applied).toHaveLength(1);
        }
        // As 330's code left them: an attempt whose process was killed (pending, its heartbeat an hour old) in the
        // shared namespace, and a client key's message whose attempt failed (the analyst was down).
        const cutOff = async (clientKeyId: string | null, sender: string, messageId: string, failed: boolean) => {
          const [conv] = (await k('conversations')
            .insert({ channel: 'email', sender, status: 'open', client_key_id: clientKeyId })
            .returning('id')) as { id: number }[];
          const [msg] = (await k('messages')
            .insert({
              conversation_id: conv!.id,
              channel: 'email',
              role: 'user',
              text: `Исходный текст ${messageId}`,
              message_id: messageId,
              state: failed ? 'failed' : 'pending',
              claimed_at: k.raw(`now() - interval '1 hour'`),
            })
            .returning('id')) as { id: number }[];
          await k('analyses').insert({
            conversation_id: conv!.id,
            message_id: msg!.id,
            channel: 'email',
            request: `Исходный текст ${messageId}`,
            outcome: failed ? 'failed' : 'pending',
            ...(failed ? { error_code: 'upstream_unavailable' } : {}),
          });
        };
        await cutOff(null, 'anna@example.test', '<crashed@mail.example.test>', false);
        await cutOff(CLIENT, 'boris@example.test', '<failed@app.example.test>', true);
        const [, applied] = (await k.migrate.up(migrations)) as [number, string[]];
        expect(applied).toEqual(['340_message_namespace']);
      } finally {
        await database.close();
      }

      app = await startSecretary({
        ...store.location,
        guesserUrl: llm.guesserUrl,
        analystUrl: llm.analystUrl,
        overrides: { attemptLeaseMs: 1000 },
      });
      const retries = [
        { messageId: '<crashed@mail.example.test>', username: 'anna@example.test', headers: bearer('service') },
        { messageId: '<failed@app.example.test>', username: 'boris@example.test', headers: bearer('client') },
      ];
      for (const { messageId, username, headers } of retries) {
        const body = { channel: 'email', username, request: 'повтор', message_id: messageId };
        const calls = llmCalls();
        const res = await analyze(app, body, headers);
        expect(res.status, messageId).toBe(200);
        // The stored request is decided on, not the retry's text.
        expect(res.body).toMatchObject({ request: `Исходный текст ${messageId}`, response: ANSWER });
        expect(llmCalls()).toBeGreaterThan(calls);
        // Its repeat is the stored answer.
        const after = llmCalls();
        expect((await analyze(app, body, headers)).body).toEqual(res.body);
        expect(llmCalls()).toBe(after);
        const rows = (await app.db
          .knex('messages')
          .where({ channel: 'email', message_id: messageId })
          .select('state', 'attempts', 'message_namespace')) as Record<string, unknown>[];
        expect(rows, messageId).toEqual([
          { state: 'answered', attempts: 2, message_namespace: headers === retries[1]!.headers ? CLIENT : '' },
        ]);
      }
    } finally {
      await app?.close();
      await store.remove();
    }
  });
});
