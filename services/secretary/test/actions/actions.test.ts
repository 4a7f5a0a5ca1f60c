import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import request from 'supertest';
import type { Knex } from 'knex';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import { listen, waitFor } from '@workemon/testkit';
import { createCommunicator, loadConfig as loadCommunicatorConfig } from '@workemon/communicator';
import { createAuthenticator, createMetrics } from '@workemon/service-kit';
import { TEST_KEYS, TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import {
  ACTION_JIRA,
  ACTION_MAILING_LIST,
  ACTION_TELEGRAM_EMPLOYEE,
  DEFAULT_POLICY,
  parseActionPolicy,
  type ActionPolicy,
} from '../../src/actions/action-policy.js';
import { createCommunicatorClient } from '../../src/actions/communicator-client.js';
import {
  createExecutionRepository,
  type ActionExecution,
  type EnqueueInput,
} from '../../src/actions/execution-repository.js';
import type { DepartmentTarget } from '../../src/actions/executors.js';
import { createJiraClient, type JiraSettings } from '../../src/actions/jira-client.js';
import { createActionWorker, type ActionWorker } from '../../src/actions/worker.js';
import {
  buildActionsApp,
  keyedApp,
  TELEGRAM_APPROVER_ID,
  createActionsDatabase,
  expectContract,
  fastWorker,
  startFakeCommunicator,
  testLogger,
  type FakeCommunicator,
  type TestDatabase,
} from './actions-harness.js';

const ops: DepartmentTarget = {
  name: 'IT Ops',
  jira_project_key: 'OPS',
  telegram_contact: '@ops_duty',
  mailing_list: 'ops-team@example.test',
};

let db: TestDatabase;
let jiraCloud: FakeJira;
let jiraServer: FakeJira;
let communicator: FakeCommunicator;
const workers: ActionWorker[] = [];
let analysisSeq = 1;

beforeAll(async () => {
  db = await createActionsDatabase(inject('postgresUrl'));
  jiraCloud = await startFakeJira({
    flavor: 'cloud',
    email: 'bot@example.test',
    token: 'cloud-token',
    projects: ['OPS', 'HR'],
  });
  jiraServer = await startFakeJira({ flavor: 'server', token: 'dc-pat', projects: ['OPS', 'SUP'] });
  communicator = await startFakeCommunicator('comm-key');
});

afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
});

afterAll(async () => {
  await jiraCloud?.close();
  await jiraServer?.close();
  await communicator?.close();
  await db?.close();
});

const cloudSettings = (): JiraSettings => ({
  baseUrl: jiraCloud.url,
  email: 'bot@example.test',
  apiToken: 'cloud-token',
  issueType: 'Task',
  timeoutMs: 2000,
});

function makeWorker(options: { jira?: JiraSettings | null; approverChatId?: string; knex?: Knex } = {}) {
  const comm = createCommunicatorClient({ baseUrl: communicator.url, apiKey: 'comm-key', timeoutMs: 2000 });
  const jiraSettings = options.jira === undefined ? cloudSettings() : options.jira;
  const worker = createActionWorker({
    db: options.knex ?? db.knex,
    executors: { jira: jiraSettings ? createJiraClient(jiraSettings) : undefined, communicator: comm },
    communicator: comm,
    settings: fastWorker,
    approverChatId: options.approverChatId,
    logger: testLogger(),
  });
  workers.push(worker);
  return worker;
}

async function enqueue(overrides: Partial<EnqueueInput> = {}, policy: ActionPolicy = DEFAULT_POLICY) {
  const enqueued = await db.knex.transaction((trx) =>
    createExecutionRepository(trx).enqueue({
      analysisId: analysisSeq++,
      requester: 'ivanov',
      channel: 'tg',
      action: ACTION_JIRA,
      request: 'Не работает VPN в офисе на Лесной\nс утра, ошибка 809',
      context: 'Сетевая инфраструктура, удалённый доступ',
      analysis: 'Проверить VPN-шлюз офиса на Лесной и сертификаты клиента.',
      department: ops,
      reply: { to: '@ivanov' },
      policy,
      jira: { configured: true },
      ...overrides,
    }),
  );
  return enqueued!;
}

const finished = (e: ActionExecution | undefined) =>
  e && ['succeeded', 'failed', 'skipped'].includes(e.status) && e.notification.status !== 'pending' ? e : undefined;

async function settle(worker: ActionWorker, id: number): Promise<ActionExecution> {
  return waitFor(
    async () => {
      await worker.runOnce();
      return finished(await createExecutionRepository(db.knex).get(id));
    },
    { intervalMs: 10, timeoutMs: 10_000, what: `execution ${id} to finish` },
  );
}

const sentTo = (to: string) => communicator.sent.filter((m) => m.to === to);

describe('Jira executor', () => {
  it('creates a Cloud issue (v3, Basic, ADF) and tells the requester its key and link', async () => {
    const before = jiraCloud.issues.length;
    const { execution, notice } = await enqueue({ requester: 'petrov', reply: { to: '@petrov' } });
    expect(execution.status).toBe('pending');
    expect(notice).toMatch(/Jira/);
    const done = await settle(makeWorker(), execution.id);

    expect(done.status).toBe('succeeded');
    expect(done.attempts).toBe(1);
    expect(jiraCloud.issues.length).toBe(before + 1);
    const issue = jiraCloud.issues.at(-1)!;
    expect(issue.apiVersion).toBe(3);
    expect(issue.project).toBe('OPS');
    expect(issue.issueType).toBe('Task');
    // The per-execution label lets a retried create find the issue an earlier, timed-out try made.
    expect(issue.labels).toEqual(['workemon', `workemon-action-${execution.id}`]);
    expect(issue.summary).toBe('Не работает VPN в офисе на Лесной с утра, ошибка 809');
    expect((issue.description as { type: string }).type).toBe('doc');
    for (const part of ['ошибка 809', 'Сетевая инфраструктура', 'VPN-шлюз', 'Канал: tg', 'Автор: petrov', 'IT Ops']) {
      expect(issue.descriptionText).toContain(part);
    }
    expect(done.result).toEqual({
      issue_key: issue.key,
      issue_id: issue.id,
      url: `${jiraCloud.url}/browse/${issue.key}`,
    });
    expect(done.target).toEqual({ system: 'jira', project: 'OPS' });

    const told = sentTo('@petrov');
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ channel: 'tg', idempotency_key: `action-${execution.id}-outcome` });
    expect(told[0]!.text).toContain(`${jiraCloud.url}/browse/${issue.key}`);
    expect(done.notification.status).toBe('sent');
  });

  it('creates a Server/DC issue (v2, Bearer, string description) in JIRA_PROJECT_KEY when the department has none', async () => {
    const long = `Прошу настроить доступ к стенду ${'очень '.repeat(40)}срочно`;
    const { execution } = await enqueue({
      request: long,
      department: { ...ops, jira_project_key: null },
      channel: 'direct',
      jira: { configured: true, defaultProjectKey: 'SUP' },
    });
    const worker = makeWorker({
      jira: { baseUrl: jiraServer.url, apiToken: 'dc-pat', projectKey: 'SUP', issueType: 'Task', timeoutMs: 2000 },
    });
    const done = await settle(worker, execution.id);
    expect(done.status).toBe('succeeded');
    const issue = jiraServer.issues.at(-1)!;
    expect(issue.apiVersion).toBe(2);
    expect(issue.project).toBe('SUP');
    expect(typeof issue.description).toBe('string');
    expect(issue.descriptionText).toContain('срочно');
    expect(issue.descriptionText).toContain('Канал: direct');
    expect(issue.summary.length).toBeLessThanOrEqual(120);
    expect(issue.summary).not.toMatch(/\n/);
    expect(issue.summary.endsWith('…')).toBe(true);
    // Direct callers have no channel to be told on: recorded, nothing sent.
    expect(done.notification).toMatchObject({ status: 'not_needed' });
    expect(String(done.notification['message'])).toContain(issue.key);
  });

  it('retries a 503 and creates exactly one issue', async () => {
    const before = jiraCloud.issues.length;
    jiraCloud.failNext({ status: 503, body: { errorMessages: ['Service Unavailable'] } });
    const { execution } = await enqueue();
    const done = await settle(makeWorker(), execution.id);
    expect(done.status).toBe('succeeded');
    expect(done.attempts).toBe(2);
    expect(jiraCloud.issues.length).toBe(before + 1);
  });

  it('a create that timed out after Jira made the issue is adopted on the retry: exactly one issue (Cloud)', async () => {
    const before = jiraCloud.issues.length;
    const searches = jiraCloud.searches.length;
    // Jira creates the issue but answers after the client's 2 s deadline: the worker sees a 504.
    jiraCloud.holdNext(3000);
    const { execution } = await enqueue({ channel: 'direct' });
    const done = await settle(makeWorker(), execution.id);
    expect(done.status).toBe('succeeded');
    expect(done.attempts).toBe(2);
    expect(jiraCloud.issues.length).toBe(before + 1);
    const issue = jiraCloud.issues.at(-1)!;
    expect(done.result).toMatchObject({ issue_key: issue.key, adopted: true });
    expect(jiraCloud.searches.slice(searches)).toEqual([
      {
        path: '/rest/api/3/search/jql',
        jql: `labels = "workemon-action-${execution.id}" ORDER BY created ASC`,
        status: 200,
      },
    ]);
  });

  it('Server/DC: the retry searches /rest/api/2/search, finds nothing after a 503, and creates one issue', async () => {
    const before = jiraServer.issues.length;
    const searches = jiraServer.searches.length;
    jiraServer.failNext({ status: 503 });
    const { execution } = await enqueue({ channel: 'direct' });
    const done = await settle(
      makeWorker({ jira: { baseUrl: jiraServer.url, apiToken: 'dc-pat', issueType: 'Task', timeoutMs: 2000 } }),
      execution.id,
    );
    expect(done.status).toBe('succeeded');
    expect(done.result).not.toHaveProperty('adopted');
    expect(jiraServer.issues.length).toBe(before + 1);
    expect(jiraServer.searches.slice(searches)).toMatchObject([{ path: '/rest/api/2/search', status: 200 }]);
  });

  it('the first try does not search (no earlier create to find)', async () => {
    const searches = jiraCloud.searches.length;
    const { execution } = await enqueue({ channel: 'direct' });
    const done = await settle(makeWorker(), execution.id);
    expect(done.status).toBe('succeeded');
    expect(jiraCloud.searches.length).toBe(searches);
  });

  it('fails on a 400 with Jira’s reason, without retrying, and tells the requester', async () => {
    const before = jiraCloud.issues.length;
    jiraCloud.failNext({
      status: 400,
      body: { errorMessages: [], errors: { components: 'Component/s is required.' } },
    });
    const { execution } = await enqueue({ reply: { to: '@sidorov' } });
    const done = await settle(makeWorker(), execution.id);
    expect(done.status).toBe('failed');
    expect(done.attempts).toBe(1);
    expect(done.error).toContain('components: Component/s is required.');
    expect(done.error).toContain('400');
    expect(jiraCloud.issues.length).toBe(before);
    const told = sentTo('@sidorov');
    expect(told).toHaveLength(1);
    expect(told[0]!.text).toContain('Не удалось создать задачу в Jira');
    // Jira's own words are the operator's (done.error above), never the requester's.
    expect(told[0]!.text).not.toContain('Component/s');
    expect(told[0]!.text).not.toContain('400');
  });

  it('fails at once on bad credentials (401)', async () => {
    const { execution } = await enqueue({ channel: 'direct' });
    const done = await settle(makeWorker({ jira: { ...cloudSettings(), apiToken: 'wrong' } }), execution.id);
    expect(done.status).toBe('failed');
    expect(done.attempts).toBe(1);
    expect(done.error).toMatch(/401.*not authenticated/);
  });

  it('gives up after the last attempt when Jira stays down', async () => {
    jiraCloud.failNext({ status: 503 }, fastWorker.maxAttempts);
    const { execution } = await enqueue({ channel: 'direct' });
    const done = await settle(makeWorker(), execution.id);
    expect(done.status).toBe('failed');
    expect(done.attempts).toBe(fastWorker.maxAttempts);
    expect(done.error).toMatch(/^gave up after 4 attempts/);
  });
});

describe('Telegram and mailing-list executors', () => {
  it('forwards the request to the department’s Telegram contact and tells an email requester who has it', async () => {
    const { execution } = await enqueue({
      action: ACTION_TELEGRAM_EMPLOYEE,
      channel: 'email',
      requester: 'kuznetsova',
      reply: { to: 'kuznetsova@example.test', subject: 'VPN', in_reply_to: '<m1@example.test>' },
    });
    const before = sentTo('@ops_duty').length;
    const done = await settle(makeWorker(), execution.id);
    expect(done.status).toBe('succeeded');
    expect(done.target).toEqual({ system: 'telegram', to: '@ops_duty', department: 'IT Ops' });
    const forwarded = sentTo('@ops_duty').slice(before);
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]).toMatchObject({ channel: 'tg', idempotency_key: `action-${execution.id}-telegram` });
    expect(forwarded[0]!.text).toContain('ошибка 809');
    expect(forwarded[0]!.text).toContain('kuznetsova');
    const told = sentTo('kuznetsova@example.test');
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ channel: 'email', subject: 'Re: VPN', in_reply_to: '<m1@example.test>' });
    expect(told[0]!.text).toContain('@ops_duty');
  });

  it('writes to the department’s mailing list and tells the requester', async () => {
    const { execution } = await enqueue({ action: ACTION_MAILING_LIST, reply: { to: '@smirnov' } });
    const before = sentTo('ops-team@example.test').length;
    const done = await settle(makeWorker(), execution.id);
    expect(done.status).toBe('succeeded');
    const mails = sentTo('ops-team@example.test').slice(before);
    expect(mails).toHaveLength(1);
    expect(mails[0]).toMatchObject({
      channel: 'email',
      subject: '[Workemon] Не работает VPN в офисе на Лесной с утра, ошибка 809',
    });
    expect(mails[0]!.text).toContain('Сетевая инфраструктура');
    expect(sentTo('@smirnov')[0]!.text).toContain('ops-team@example.test');
  });

  it('retries a communicator outage without sending twice', async () => {
    communicator.failTo('@ops_duty', 503);
    const before = sentTo('@ops_duty').length;
    const { execution } = await enqueue({ action: ACTION_TELEGRAM_EMPLOYEE, channel: 'direct' });
    const done = await settle(makeWorker(), execution.id);
    expect(done.status).toBe('succeeded');
    expect(done.attempts).toBe(2);
    expect(sentTo('@ops_duty').length).toBe(before + 1);
  });
});

describe('not configured → skipped', () => {
  it.each([
    ['no Jira', ACTION_JIRA, ops, false, /Jira is not configured/, /Jira не подключена/],
    ['no project', ACTION_JIRA, { ...ops, jira_project_key: null }, true, /no Jira project/, /не указан проект Jira/],
    [
      'no contact',
      ACTION_TELEGRAM_EMPLOYEE,
      { ...ops, telegram_contact: null },
      true,
      /no Telegram contact/,
      /не указан контакт/,
    ],
    ['no list', ACTION_MAILING_LIST, { ...ops, mailing_list: null }, true, /no mailing list/, /адрес рассылки/],
    ['no department', ACTION_MAILING_LIST, null, true, /no department/, /не указан/],
  ] as const)('%s', async (_name, action, department, jiraConfigured, reason, userText) => {
    const calls = communicator.calls;
    const { execution, notice } = await enqueue({ action, department, jira: { configured: jiraConfigured } });
    expect(execution.status).toBe('skipped');
    expect(execution.error).toMatch(reason);
    expect(notice).toMatch(userText);
    expect(execution.notification.status).toBe('not_needed');
    expect(execution.finished_at).not.toBeNull();
    await makeWorker().runOnce();
    expect((await createExecutionRepository(db.knex).get(execution.id))!.status).toBe('skipped');
    expect(communicator.calls).toBe(calls);
  });

  it.each([
    [ACTION_TELEGRAM_EMPLOYEE, "communicator: Channel 'tg' is not configured: set TELEGRAM_BOT_TOKEN", 'Telegram'],
    [ACTION_MAILING_LIST, "communicator: Channel 'email' is not configured: set IMAP_USER", 'почта'],
  ] as const)(
    '%s to a channel the real communicator has not configured: skipped at the first attempt, with its reason',
    async (action, reason, channelWord) => {
      // The real communicator with no channel credentials: /send (service keys) answers 501 for both channels.
      const real = createCommunicator(
        loadCommunicatorConfig({ SECRETARY_URL: 'http://127.0.0.1:9', ...TEST_KEY_ENV }),
        {
          logger: testLogger(),
          metrics: createMetrics('communicator'),
        },
      );
      const served = await listen(real.app);
      try {
        const comm = createCommunicatorClient({ baseUrl: served.url, apiKey: TEST_KEYS.service, timeoutMs: 2000 });
        const worker = createActionWorker({
          db: db.knex,
          executors: { communicator: comm },
          communicator: comm,
          settings: fastWorker,
          logger: testLogger(),
        });
        workers.push(worker);
        const { execution } = await enqueue({ action, channel: 'direct' });
        expect(execution.status).toBe('pending');
        const done = await settle(worker, execution.id);
        expect(done.status).toBe('skipped');
        expect(done.attempts).toBe(1);
        expect(done.error).toContain(reason);
        expect(done.notification.message).toContain(`канал «${channelWord}» не подключён`);
      } finally {
        await served.close();
        for (const closer of real.closers) await closer.close();
      }
    },
  );

  it('reply and clarify need no execution', async () => {
    expect(
      await db.knex.transaction((trx) =>
        createExecutionRepository(trx).enqueue({
          requester: 'ivanov',
          channel: 'tg',
          action: 'ответить сообщением',
          request: 'x',
          policy: DEFAULT_POLICY,
          jira: { configured: true },
        }),
      ),
    ).toBeNull();
  });
});

describe('ACTION_POLICY', () => {
  it('parses modes per action and names a bad entry', () => {
    expect(parseActionPolicy('jira=approve, telegram=auto,mailing_list=off')).toEqual({
      [ACTION_JIRA]: 'approve',
      [ACTION_TELEGRAM_EMPLOYEE]: 'auto',
      [ACTION_MAILING_LIST]: 'off',
    });
    expect(parseActionPolicy(undefined)).toEqual(DEFAULT_POLICY);
    expect(() => parseActionPolicy('slack=auto')).toThrow(/unknown action 'slack'/);
    expect(() => parseActionPolicy('jira=maybe')).toThrow(/'jira=maybe' must be/);
  });

  it('off → skipped "disabled by policy", nothing sent', async () => {
    const calls = communicator.calls;
    const { execution, notice } = await enqueue({ action: ACTION_MAILING_LIST }, parseActionPolicy('mailing_list=off'));
    expect(execution).toMatchObject({ status: 'skipped', error: 'disabled by policy' });
    expect(notice).toMatch(/отключено администратором/);
    await makeWorker().runOnce();
    expect(communicator.calls).toBe(calls);
  });
});

describe('approvals', () => {
  const app = () => buildActionsApp(db.knex);

  it('holds a jira=approve action, asks the approver with buttons, and runs it once approved', async () => {
    const before = jiraCloud.issues.length;
    const { execution, notice } = await enqueue({ reply: { to: '@orlov' } }, parseActionPolicy('jira=approve'));
    expect(execution.status).toBe('awaiting_approval');
    expect(notice).toMatch(/ожидает согласования/);
    const worker = makeWorker({ approverChatId: '-100500' });
    await worker.runOnce();
    const ask = sentTo('-100500').find((m) => m.idempotency_key === `action-${execution.id}-approval`)!;
    expect(ask.channel).toBe('tg');
    expect(ask.buttons).toEqual([
      { text: 'Одобрить', callback_data: `action:approve:${execution.id}` },
      { text: 'Отклонить', callback_data: `action:reject:${execution.id}` },
    ]);
    await worker.runOnce();
    expect(jiraCloud.issues.length).toBe(before);
    const held = await keyedApp(app()).get(`/action-executions/${execution.id}`);
    expectContract('getActionExecution', held);
    expect(held.body).toMatchObject({ status: 'awaiting_approval', approval_request: { status: 'sent' } });

    // The communicator passes a button press on with its service key, naming the Telegram approver by user id.
    const approved = await keyedApp(app(), 'service')
      .post(`/action-executions/${execution.id}/approve`)
      .send({ by: `telegram:${TELEGRAM_APPROVER_ID}` });
    expectContract('approveActionExecution', approved);
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({ status: 'pending', decision: 'approved', decided_by: 'telegram:31337' });
    expect(approved.body.decided_at).toBeTruthy();

    const done = await settle(worker, execution.id);
    expect(done.status).toBe('succeeded');
    expect(jiraCloud.issues.length).toBe(before + 1);
    expect(sentTo('@orlov')[0]!.text).toContain(jiraCloud.issues.at(-1)!.key);

    const again = await keyedApp(app()).post(`/action-executions/${execution.id}/approve`).send({});
    expectContract('approveActionExecution', again);
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/not awaiting approval \(status: succeeded, decided by telegram:31337\)/);
  });

  it('rejects: skipped with who and why, nothing executed, the requester told', async () => {
    const before = jiraCloud.issues.length;
    const { execution } = await enqueue({ requireApproval: true, reply: { to: '@lebedev' } });
    expect(execution.status).toBe('awaiting_approval');
    // An admin key: `by` is the key's name (boss), whatever the body says.
    const rejected = await keyedApp(app())
      .post(`/action-executions/${execution.id}/reject`)
      .send({ by: 'mallory', reason: 'дубликат OPS-1' });
    expectContract('rejectActionExecution', rejected);
    expect(rejected.body).toMatchObject({
      status: 'skipped',
      decision: 'rejected',
      decided_by: 'boss',
      decision_reason: 'дубликат OPS-1',
      error: 'rejected by boss: дубликат OPS-1',
    });
    const done = await settle(makeWorker(), execution.id);
    expect(done.status).toBe('skipped');
    expect(jiraCloud.issues.length).toBe(before);
    const told = sentTo('@lebedev');
    expect(told).toHaveLength(1);
    expect(told[0]!.text).toMatch(/отклонено \(boss\): дубликат OPS-1/);
  });

  it('records that no approver chat is configured', async () => {
    const { execution } = await enqueue({ channel: 'direct' }, parseActionPolicy('jira=approve'));
    await makeWorker().runOnce();
    const row = await createExecutionRepository(db.knex).get(execution.id);
    expect(row!.approval_request).toMatchObject({
      status: 'not_needed',
      reason: expect.stringMatching(/APPROVER_TELEGRAM_CHAT_ID/),
    });
    expect(row!.status).toBe('awaiting_approval');
  });

  it('404 for an unknown execution, 400 for a bad id', async () => {
    const missing = await keyedApp(app()).post('/action-executions/999999/approve').send({ by: 'x' });
    expectContract('approveActionExecution', missing);
    expect(missing.status).toBe(404);
    const bad = await keyedApp(app()).get('/action-executions/abc');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/'id'/);
  });
});

describe('GET /action-executions', () => {
  it('filters by status, action, employee and since', async () => {
    const since = new Date(Date.now() - 1000).toISOString();
    const a = await enqueue(
      { requester: 'filter-user', action: ACTION_MAILING_LIST },
      parseActionPolicy('mailing_list=off'),
    );
    const b = await enqueue({ requester: 'filter-user', action: ACTION_JIRA }, parseActionPolicy('jira=approve'));
    await enqueue({ requester: 'someone-else', action: ACTION_JIRA }, parseActionPolicy('jira=approve'));
    const app = buildActionsApp(db.knex);

    const all = await keyedApp(app).get('/action-executions').query({ employee: 'filter-user', since });
    expectContract('listActionExecutions', all);
    expect(all.body.executions.map((e: ActionExecution) => e.id)).toEqual([b.execution.id, a.execution.id]);
    const held = await keyedApp(app)
      .get('/action-executions')
      .query({ employee: 'filter-user', status: 'awaiting_approval' });
    expect(held.body.executions.map((e: ActionExecution) => e.id)).toEqual([b.execution.id]);
    const lists = await keyedApp(app)
      .get('/action-executions')
      .query({ employee: 'filter-user', action: ACTION_MAILING_LIST });
    expect(lists.body.executions.map((e: ActionExecution) => e.id)).toEqual([a.execution.id]);
    const future = await keyedApp(app).get('/action-executions').query({ since: '2999-01-01T00:00:00Z' });
    expect(future.body.executions).toEqual([]);

    const bad = await keyedApp(app).get('/action-executions').query({ status: 'done' });
    expectContract('listActionExecutions', bad);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/^Parameter 'status' must be one of/);
  });

  it('needs the API key when API_KEYS is set', async () => {
    const app = buildActionsApp(db.knex, {
      auth: createAuthenticator({ admin: [{ name: 'k', key: 'admin-key-5e1c9b7a3d2f40681' }] }),
    });
    const denied = await request(app).get('/action-executions');
    expectContract('listActionExecutions', denied);
    expect(denied.status).toBe(401);
    const denied2 = await request(app).post('/action-executions/1/approve').send({});
    expect(denied2.status).toBe(401);
    const ok = await request(app).get('/action-executions').set('Authorization', 'Bearer admin-key-5e1c9b7a3d2f40681');
    expect(ok.status).toBe(200);
  });
});
