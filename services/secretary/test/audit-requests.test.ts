// The secretary's own audit rows on a real PostgreSQL: a REST (`direct`) request gets `received` and `decided`
// rows with its request id, a refused or failed one exactly one `skipped` row with the reason, a communicator's
// request only the decision; an action execution records its delivery and the reply to the requester as
// `delivered` or `failed` with a machine reason.
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { getFreePort, listen, waitFor } from '@workemon/testkit';
import { createAuthenticator, createMetrics, createServiceApp } from '@workemon/service-kit';
import { TEST_API_KEYS, TEST_KEY_NAMES, bearer } from '@workemon/testkit/api-keys';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import { userDataOf } from '@workemon/testkit/fake-llm';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { ACTION_JIRA, ACTION_TELEGRAM_EMPLOYEE, DEFAULT_POLICY } from '../src/actions/action-policy.js';
import { createCommunicatorClient } from '../src/actions/communicator-client.js';
import { createExecutionRepository, type EnqueueInput } from '../src/actions/execution-repository.js';
import { createJiraClient } from '../src/actions/jira-client.js';
import { createActionWorker, type ActionWorker } from '../src/actions/worker.js';
import { createActionAudit } from '../src/audit/action-audit.js';
import { createAuditRecorder } from '../src/audit/audit-recorder.js';
import { createAuditRepository } from '../src/audit/audit-repository.js';
import { fastWorker, startFakeCommunicator, testLogger, type FakeCommunicator } from './actions/actions-harness.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

type Row = Record<string, unknown>;

let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let secretary: Secretary;
let upstreamDown: Secretary;

const ANSWER = 'Отчёт по авторизациям лежит в кубе b2c.';

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_audit_requests');
  llm = await startLlmServices({
    guesser: () => ({ is_enough: true, response: 'Аналитика b2c' }),
    analyst: (req: { user: string }) => ({
      is_enough: true,
      response: `${ANSWER} (${(userDataOf(req.user) as { request: string }).request.length})`,
    }),
  });
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl });
  const nowhere = `http://127.0.0.1:${await getFreePort()}`;
  upstreamDown = await startSecretary({ databaseUrl: db.url, guesserUrl: nowhere, analystUrl: nowhere });
});

afterAll(async () => {
  await upstreamDown?.close();
  await secretary?.close();
  await llm?.close();
  await db?.drop();
});

const tag = () => randomBytes(4).toString('hex');

async function auditOf(requestId: string): Promise<Row[]> {
  const res = await keyed(secretary.url).get('/audit').query({ request_id: requestId });
  expect(res.status).toBe(200);
  expect(openapi.responseProblems('listAuditEvents', res.status, res.body)).toEqual([]);
  return res.body.items as Row[];
}

describe('REST requests in the audit log', () => {
  it('a direct request gets a received row (with the key’s name) and a decided row, linked by request id', async () => {
    const username = `rest-${tag()}`;
    const res = await request(secretary.url)
      .post('/analyze-request')
      .set(bearer('client'))
      .send({ channel: 'direct', username, request: 'Нужна аналитика по авторизациям', message_id: `m-${tag()}` });
    expect(res.status).toBe(200);
    const requestId = String(res.headers['x-request-id']);
    const rows = await auditOf(requestId);
    expect(rows.map((r) => r['outcome']).sort()).toEqual(['decided', 'received']);
    const conversation = (await secretary.db.knex('conversations').where({ sender: username }).first()) as Row;
    for (const row of rows) {
      expect(row).toMatchObject({
        channel: 'direct',
        direction: 'inbound',
        sender: username,
        request_id: requestId,
        conversation_id: Number(conversation['id']),
        dry_run: false,
      });
    }
    const received = rows.find((r) => r['outcome'] === 'received')!;
    expect(received['detail']).toContain(`client key '${TEST_KEY_NAMES.client}'`);
    const decided = rows.find((r) => r['outcome'] === 'decided')!;
    expect(decided['detail']).toContain(`action: ${res.body.action}`);
    expect(decided['detail']).toContain('is_enough: true');
    // Received before decided in time order (the list is newest first).
    expect(rows.map((r) => r['outcome'])).toEqual(['decided', 'received']);
  });

  it('a request of the communicator (service key, email) gets only its decision: the communicator reports the rest', async () => {
    const sender = `mail-${tag()}@example.test`;
    const messageId = `<${tag()}@mail.example.test>`;
    const res = await request(secretary.url)
      .post('/analyze-request')
      .set(bearer('service'))
      .send({ channel: 'email', username: sender, request: 'Где отчёт по авторизациям?', message_id: messageId });
    expect(res.status).toBe(200);
    const rows = await auditOf(String(res.headers['x-request-id']));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ channel: 'email', outcome: 'decided', sender, message_id: messageId });
  });

  it('a replayed message_id is one skipped row (duplicate); the message keeps its one decision', async () => {
    const messageId = `m-${tag()}`;
    const body = {
      channel: 'direct',
      username: `replay-${tag()}`,
      request: 'Аналитика авторизаций',
      message_id: messageId,
    };
    const first = await request(secretary.url).post('/analyze-request').set(bearer('client')).send(body);
    const second = await request(secretary.url).post('/analyze-request').set(bearer('client')).send(body);
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(second.body).toEqual(first.body);
    // Written once the answer is out.
    const rows = await waitFor(
      async () => {
        const r = await auditOf(String(second.headers['x-request-id']));
        return r.length ? r : undefined;
      },
      { what: 'the replay’s audit row' },
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: 'skipped', reason: 'duplicate', message_id: messageId });
    const decided = await keyed(secretary.url).get('/audit').query({ message_id: messageId, outcome: 'decided' });
    expect(decided.body.items).toHaveLength(1);
  });

  it.each([
    ['no key', {}, { channel: 'direct', username: 'u', request: 'r' }, 401, 'unauthenticated'],
    ['a missing field', bearer('client'), { channel: 'direct', username: 'u' }, 400, 'invalid-request'],
    ['an unknown channel', bearer('client'), { channel: 'fax', username: 'u', request: 'r' }, 400, 'invalid-request'],
    ['a body that is not JSON', bearer('client'), '{"channel": "direct",', 400, 'invalid-request'],
  ])('a refused request (%s) is one skipped row with its reason', async (_what, headers, body, status, reason) => {
    const sent = request(secretary.url)
      .post('/analyze-request')
      .set(headers)
      .set('Content-Type', 'application/json')
      .send(typeof body === 'string' ? body : JSON.stringify(body));
    const res = await sent;
    expect(res.status).toBe(status);
    const rows = await auditOf(String(res.headers['x-request-id']));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ channel: 'direct', direction: 'inbound', outcome: 'skipped', reason });
    expect(rows[0]!['detail']).toContain(`HTTP ${status}`);
  });

  it('control characters in a request reach the audit rows cleaned, answered or refused', async () => {
    const id = tag();
    const ok = await request(secretary.url)
      .post('/analyze-request')
      .set(bearer('client'))
      .send({ channel: 'direct', username: `nul\u0000${id}`, request: 'Аналитика\u0000', message_id: `m\u0000${id}` });
    expect(ok.status).toBe(200);
    const rows = await auditOf(String(ok.headers['x-request-id']));
    expect(rows.map((r) => [r['outcome'], r['sender'], r['message_id']])).toEqual([
      ['decided', `nul${id}`, `m${id}`],
      ['received', `nul${id}`, `m${id}`],
    ]);
    const refused = await request(secretary.url)
      .post('/analyze-request')
      .set(bearer('client'))
      .send({ channel: 'direct', username: `bad\u0000${id}` });
    expect(refused.status).toBe(400);
    const skipped = await auditOf(String(refused.headers['x-request-id']));
    expect(skipped.map((r) => [r['outcome'], r['sender']])).toEqual([['skipped', `bad${id}`]]);
  });

  it('a request that fails upstream is one skipped row (unavailable), no decision', async () => {
    const res = await request(upstreamDown.url)
      .get('/analyze-request')
      .set(bearer('client'))
      .query({ channel: 'direct', username: `down-${tag()}`, request: 'Аналитика' });
    expect(res.status).toBeGreaterThanOrEqual(502);
    const rows = await auditOf(String(res.headers['x-request-id']));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: 'skipped' });
    expect(['unavailable', 'timeout', 'upstream-error']).toContain(rows[0]!['reason']);
  });

  it('/stats counts the REST channel’s rows as the log has them', async () => {
    const stats = await keyed(secretary.url).get('/stats');
    expect(openapi.responseProblems('getStats', stats.status, stats.body)).toEqual([]);
    const direct = stats.body.audit.channels.direct as Record<string, unknown>;
    const count = async (where: Row) =>
      Number(
        (
          await secretary.db
            .knex('audit_events')
            .where({ channel: 'direct', dry_run: false, ...where })
            .count<{ n: string }[]>('* as n')
        )[0]!.n,
      );
    expect(direct['decided']).toBe(await count({ outcome: 'decided' }));
    expect(direct['skipped']).toBe(await count({ outcome: 'skipped' }));
    // Inbound messages: each once, by message id (a replay is the same message), else by request.
    const inbound = (await secretary.db
      .knex('audit_events')
      .where({ channel: 'direct', dry_run: false, direction: 'inbound' })
      .whereIn('outcome', ['received', 'skipped'])
      .select('message_id', 'request_id')) as Row[];
    expect(direct['inbound']).toBe(new Set(inbound.map((r) => r['message_id'] ?? r['request_id'])).size);
    expect(direct['inbound']).toBeLessThan(inbound.length);
    expect((direct['skipped_by_reason'] as Record<string, number>)['unauthenticated']).toBeGreaterThanOrEqual(1);
  });
});

describe('dry runs in the audit log', () => {
  // Stands in for the dry-run side of /analyze-request (issue 15's interface, built on another branch): the route
  // accepts `dry_run: true`, answers the decision with `dry_run: true` and `would_execute`, and stores nothing —
  // no decision hook runs. The recorder is the real one, mounted as app.ts mounts it.
  it('a dry run gets received and decided rows marked dry_run, which /stats does not count', async () => {
    const knex = secretary.db.knex;
    const repository = createAuditRepository(knex);
    const recorder = createAuditRecorder({ repository, logger: testLogger() });
    const auth = createAuthenticator(TEST_API_KEYS).require(['client', 'admin', 'service']);
    const app = createServiceApp(
      { service: 'secretary', version: 'test', logger: testLogger(), metrics: createMetrics('secretary') },
      (a) => {
        a.use(recorder.track);
        a.post('/analyze-request', auth, (req, res) => {
          res.locals['validated'] = { query: {}, params: {}, body: req.body };
          res.json({ is_enough: true, action: 'ответить сообщением', dry_run: true, would_execute: [] });
        });
        a.use(recorder.captureError);
      },
    );
    const served = await listen(app);
    try {
      const username = `dry-${tag()}`;
      const before = await repository.stats();
      const res = await request(served.url)
        .post('/analyze-request')
        .set(bearer('client'))
        .send({ channel: 'direct', username, request: 'Создай задачу в Jira', dry_run: true });
      expect(res.status).toBe(200);
      const rows = await waitFor(
        async () => {
          const r = await auditOf(String(res.headers['x-request-id']));
          return r.length === 2 ? r : undefined;
        },
        { what: 'the dry run’s audit rows' },
      );
      expect(rows.map((r) => [r['outcome'], r['dry_run'], r['sender']])).toEqual([
        ['decided', true, username],
        ['received', true, username],
      ]);
      expect(rows[0]!['detail']).toContain('action: ответить сообщением');
      const onlyDry = await keyed(secretary.url).get('/audit').query({ sender: username, dry_run: false });
      expect(onlyDry.body.items).toEqual([]);
      expect((await repository.stats()).channels['direct']).toEqual(before.channels['direct']);
    } finally {
      await served.close();
    }
  });
});

describe('action deliveries in the audit log', () => {
  let jira: FakeJira;
  let communicator: FakeCommunicator;
  const workers: ActionWorker[] = [];
  const ops = { name: 'IT Ops', jira_project_key: 'OPS', telegram_contact: '@ops_duty', mailing_list: null };

  beforeAll(async () => {
    jira = await startFakeJira({ flavor: 'server', token: 'dc-pat', projects: ['OPS'] });
    communicator = await startFakeCommunicator('comm-key');
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
  });
  afterAll(async () => {
    await jira?.close();
    await communicator?.close();
  });

  function worker() {
    const knex = secretary.db.knex;
    const comm = createCommunicatorClient({ baseUrl: communicator.url, apiKey: 'comm-key', timeoutMs: 2000 });
    const w = createActionWorker({
      db: knex,
      executors: {
        jira: createJiraClient({ baseUrl: jira.url, apiToken: 'dc-pat', issueType: 'Task', timeoutMs: 2000 }),
        communicator: comm,
      },
      communicator: comm,
      settings: fastWorker,
      logger: testLogger(),
      audit: createActionAudit({ repository: createAuditRepository(knex) }),
    });
    workers.push(w);
    return w;
  }

  async function run(overrides: Partial<EnqueueInput>) {
    const { execution } = (await secretary.db.knex.transaction((trx) =>
      createExecutionRepository(trx).enqueue({
        requester: 'ivanov',
        channel: 'tg',
        action: ACTION_JIRA,
        request: 'Не работает VPN',
        context: 'Удалённый доступ',
        analysis: 'Проверить шлюз',
        department: ops,
        policy: DEFAULT_POLICY,
        jira: { configured: true },
        ...overrides,
      }),
    ))!;
    const w = worker();
    await waitFor(
      async () => {
        await w.runOnce();
        const e = await createExecutionRepository(secretary.db.knex).get(execution.id);
        return e && ['succeeded', 'failed', 'skipped'].includes(e.status) && e.notification.status !== 'pending'
          ? e
          : undefined;
      },
      { intervalMs: 10, timeoutMs: 10_000, what: `execution ${execution.id}` },
    );
    const rows = (await secretary.db
      .knex('audit_events')
      .where('event_id', 'like', `action:${execution.id}%`)
      .orderBy('id')) as Row[];
    return { id: execution.id, rows };
  }

  it('a Jira issue created and the requester told: two delivered rows, the notice counted as the reply', async () => {
    const { id, rows } = await run({ reply: { to: '@ivanov' } });
    expect(rows.map((r) => [r['event_id'], r['outcome'], r['recipient']])).toEqual([
      [`action:${id}:execution`, 'delivered', 'jira:OPS'],
      [`action:${id}:reply`, 'delivered', '@ivanov'],
    ]);
    expect(rows.every((r) => r['channel'] === 'telegram' && r['direction'] === 'outbound')).toBe(true);
  });

  it('Jira refuses the issue: the execution failed (jira-rejected, with Jira’s reason), the notice still delivered', async () => {
    jira.failNext({ status: 400, body: { errorMessages: [], errors: { components: 'Component/s is required.' } } });
    const { rows } = await run({ reply: { to: '@petrov' } });
    expect(rows.map((r) => [r['outcome'], r['reason']])).toEqual([
      ['failed', 'jira-rejected'],
      ['delivered', null],
    ]);
    expect(rows[0]!['detail']).toContain('Component/s is required.');
  });

  it('the notice to the requester refused by the communicator: a failed reply row (telegram-rejected)', async () => {
    communicator.failTo('@sidorov', 400);
    const { rows } = await run({ action: ACTION_TELEGRAM_EMPLOYEE, reply: { to: '@sidorov' } });
    expect(rows.map((r) => [r['outcome'], r['reason'], r['recipient']])).toEqual([
      ['delivered', null, '@ops_duty'],
      ['failed', 'telegram-rejected', '@sidorov'],
    ]);
  });

  it('an email requester’s reply delivered is counted as replied in /stats (telegram notify is a delivery)', async () => {
    const before = (await keyed(secretary.url).get('/stats')).body.audit.channels.email ?? { replied: 0, delivered: 0 };
    await run({
      channel: 'email',
      action: ACTION_TELEGRAM_EMPLOYEE,
      reply: { to: 'kuz@example.test', subject: 'VPN' },
    });
    const after = (await keyed(secretary.url).get('/stats')).body.audit.channels.email;
    expect(after.replied).toBe(before.replied + 1);
    expect(after.delivered).toBe(before.delivered + 2);
  });
});
