// End to end: the real secretary (buildApp wired as main.ts wires it, from a config, on a real Postgres), the
// real guesser and system analyst over a fake LLM, the REAL communicator (its createCommunicator from a config)
// on real Dovecot, a real SMTP listener and the fake Bot API, and the fake Jira. Requests come in by Telegram and
// email as a user would send them; assertions are on what people and systems receive.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCommunicator, loadConfig as loadCommunicatorConfig, type Communicator } from '@workemon/communicator';
import { createAuthenticator, createLogger, createMetrics, serviceKeyToSend } from '@workemon/service-kit';
import { TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import { getFreePort, listen, waitFor, type Listening } from '@workemon/testkit';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import { startFakeTelegram, type FakeTelegram, type SentMessage } from '@workemon/testkit/fake-telegram';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from '../llm-services.js';
import { createTestDatabase } from '@workemon/testkit/postgres';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import type {} from '@workemon/testkit/global-setup';
import { createActions } from '../../src/actions/actions-wiring.js';
import type { ActionExecution } from '../../src/actions/execution-repository.js';
import { createAnalystClient } from '../../src/analyst-client.js';
import { buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { migrateDatabase, openDatabase, type Database } from '../../src/database.js';
import { createDirectoryRepository } from '../../src/directory-repository.js';
import { createGuesserClient } from '../../src/guesser-client.js';
import { expectContract } from './actions-harness.js';

const APPROVER_CHAT = '-1001234';
// The one person allowed to press Approve/Reject (APPROVER_TELEGRAM_USER_IDS on both services).
const APPROVER_USER = '4242';

type SecretaryStack = Listening & { db: Database };

const quiet = (service: string) => {
  const logger = createLogger({ service, level: process.env['TEST_LOG_LEVEL'] ?? 'error' });
  logger.silent = !process.env['TEST_LOG_LEVEL'];
  return logger;
};

/** The secretary as main.ts builds it: config → actions (Jira, communicator, worker, hooks) → buildApp. */
async function startSecretaryStack(options: {
  name: string;
  env: Record<string, string>;
  port?: number;
}): Promise<SecretaryStack> {
  const dbHandle = await createTestDatabase(inject('postgresUrl'), options.name);
  const config = loadConfig({
    DATABASE_URL: dbHandle.url,
    GUESSER_URL: llm.guesserUrl,
    SYSTEM_ANALYST_URL: llm.analystUrl,
    ACTION_RETRY_BASE_MS: '20',
    ACTION_RETRY_MAX_MS: '100',
    ACTION_WORKER_INTERVAL_MS: '50',
    ACTION_LEASE_MS: '5000',
    JIRA_TIMEOUT_MS: '2000',
    ...options.env,
  });
  const logger = quiet('secretary');
  const metrics = createMetrics('secretary');
  const db = openDatabase({ url: config.databaseUrl, poolMax: 5, logger });
  await migrateDatabase(db);
  const directory = createDirectoryRepository(db.knex);
  const serviceKey = serviceKeyToSend(config.apiKeys);
  const actions = createActions({
    db: db.knex,
    settings: config.actions,
    // As main.ts: the service key goes to the communicator and the LLM services.
    communicator: { baseUrl: config.communicatorUrl, apiKey: config.communicatorApiKey ?? serviceKey },
    resolveDepartment: (name) => directory.getDepartment(name),
    logger,
    metrics,
  });
  const app = buildApp({
    knex: db.knex,
    guesser: createGuesserClient({
      baseURL: config.guesserUrl,
      timeoutMs: 5000,
      metrics,
      logger,
      maxRetries: 0,
      apiKey: serviceKey,
    }),
    analyst: createAnalystClient({
      baseURL: config.systemAnalystUrl,
      timeoutMs: 5000,
      metrics,
      logger,
      maxRetries: 0,
      apiKey: serviceKey,
    }),
    logger,
    metrics,
    auth: createAuthenticator(config.apiKeys),
    approverTelegramUserIds: config.approverTelegramUserIds,
    unknownUserPolicy: config.unknownUserPolicy,
    clientKeyUsernames: config.clientKeyBindings,
    companyDomains: config.companyDomains,
    clarificationTtlMs: config.clarificationTtl,
    maxClarifications: config.maxClarifications,
    attemptLeaseMs: 15_000,
    decide: actions.hooks.decide,
    onDecisionRecorded: actions.hooks.onDecisionRecorded,
    nudgeActions: actions.worker.nudge,
  });
  actions.worker.start();
  const served = await listen(app, options.port);
  return {
    ...served,
    db,
    close: async () => {
      await served.close();
      await actions.worker.stop();
      await db.close();
      await dbHandle.drop();
    },
  };
}

let llm: LlmServices;
let jira: FakeJira;
let tg: FakeTelegram;
let sink: SmtpSink;
let dovecot: DovecotServer;
let communicator: Communicator & { http: Listening };
let secretary: SecretaryStack;

beforeAll(async () => {
  // The analyst's fake LLM picks the action from the request's words ("задач" → Jira, "сотрудник"/"коллег" →
  // Telegram, "рассылк" → mailing list), so each test chooses its action by what the user writes.
  llm = await startLlmServices();
  jira = await startFakeJira({ flavor: 'cloud', email: 'bot@example.test', token: 'jira-token', projects: ['OPS'] });
  tg = await startFakeTelegram();
  sink = await startSmtpSink();
  dovecot = await startDovecot();

  // Each side needs the other's URL: the secretary's port is reserved first.
  const secretaryPort = await getFreePort();
  const mailbox = dovecot.users[0]!;
  const commConfig = loadCommunicatorConfig({
    SECRETARY_URL: `http://127.0.0.1:${secretaryPort}`,
    // The new scheme: one service key both ways (the communicator sends the first of SERVICE_API_KEYS).
    SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS,
    TRUSTED_AUTHSERV_ID: 'mx.workemon.test',
    RATE_LIMIT_PER_HOUR: '1000',
    SECRETARY_TIMEOUT: '10s',
    RETRY_BASE_DELAY: '200ms',
    SHUTDOWN_TIMEOUT: '5s',
    IMAP_HOST: '127.0.0.1',
    IMAP_PORT: String(dovecot.port),
    IMAP_SECURE: 'false',
    IMAP_USER: mailbox.user,
    IMAP_PASSWORD: mailbox.password,
    IMAP_SWEEP_INTERVAL_S: '1',
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(sink.port),
    SMTP_SECURE: 'false',
    SMTP_TIMEOUT: '30s', // longer than a loaded worker's stall: see smtpSinkEnv
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: tg.url,
    TELEGRAM_POLL_TIMEOUT_S: '1',
    TELEGRAM_CONFLICT_WAIT: '300ms',
    TELEGRAM_HANDLER_TIMEOUT: '15s',
    APPROVER_TELEGRAM_CHAT_ID: APPROVER_CHAT,
    APPROVER_TELEGRAM_USER_IDS: APPROVER_USER,
  });
  const comm = createCommunicator(commConfig, {
    logger: quiet('communicator'),
    metrics: createMetrics('communicator'),
    imapReconnectBaseDelayMs: 200,
    telegramErrorBaseDelayMs: 100,
  });
  communicator = { ...comm, http: await listen(comm.app) };

  secretary = await startSecretaryStack({
    name: 'actions_e2e',
    port: secretaryPort,
    env: {
      // Admin keys named `admin` and `security`: approvals record the name of the key that decided.
      ADMIN_API_KEYS: 'admin:secretary-admin-key-3f9a1c7e5b2d4a60,security:security-admin-key-8c2e4a6f1b3d5e79',
      SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS,
      // Two client keys: `bob` may vouch for ivanov alone, `portal` (an integration) for anyone.
      API_KEYS: `bob:${BOB_KEY},portal:portal-client-key-1c3e5a7f9b2d4f60`,
      CLIENT_KEY_USERNAMES: 'bob=ivanov',
      COMMUNICATOR_URL: communicator.http.url,
      JIRA_BASE_URL: jira.url,
      JIRA_EMAIL: 'bot@example.test',
      JIRA_API_TOKEN: 'jira-token',
      APPROVER_TELEGRAM_CHAT_ID: APPROVER_CHAT,
      APPROVER_TELEGRAM_USER_IDS: APPROVER_USER,
    },
  });
  const directory = createDirectoryRepository(secretary.db.knex);
  // The duty engineer's @username resolves to their chat id when the department is saved (the Bot API cannot
  // message a person by username).
  await directory.upsertEmployee('duty', { telegram_username: '@ops_duty', telegram_id: OPS_DUTY_CHAT });
  await directory.upsertDepartment('IT Ops', {
    jira_project_key: 'OPS',
    telegram_contact: '@ops_duty',
    mailing_list: 'ops-team@example.test',
  });
  await directory.upsertDepartment('Finance', {});
  await directory.upsertEmployee('ivanov', {
    department: 'IT Ops',
    position: 'инженер',
    telegram_username: 'ivanov_tg',
    email: 'ivan@client.test',
  });
  await directory.upsertEmployee('petrov', {
    department: 'Finance',
    position: 'бухгалтер',
    telegram_username: 'petrov_tg',
  });
  communicator.start();
}, 60_000);

afterAll(async () => {
  await communicator?.http.close();
  for (const closer of communicator?.closers ?? []) await closer.close();
  await secretary?.close();
  await dovecot?.destroy();
  await sink?.close();
  await tg?.close();
  await jira?.close();
  await llm?.close();
});

const auth = { Authorization: 'Bearer secretary-admin-key-3f9a1c7e5b2d4a60' };
let userSeq = 0;

/**
 * A Telegram user of the IT Ops department: a fresh id per test (so each test's chat holds only its own
 * messages), written to the directory as ivanov's telegram_id, since actions run only for an authenticated sender.
 */
async function tgUser() {
  userSeq += 1;
  return tgAccount('ivanov', 70_000 + userSeq);
}

async function tgAccount(username: 'ivanov' | 'petrov', id: number) {
  const directory = createDirectoryRepository(secretary.db.knex);
  const employee = (await directory.getEmployee(username))!;
  await directory.upsertEmployee(username, { ...employee, telegram_id: String(id) });
  return { id, username: employee.telegram_username! };
}

const BOB_KEY = 'bob-client-key-5e1a9c3f7b2d4e68';
const OPS_DUTY_CHAT = '700500300';
const sentTo = (chat: number | string) => tg.sent.filter((m) => String(m.chat_id) === String(chat));

function waitForTelegram(chat: number | string, match: RegExp | string, what: string): Promise<SentMessage> {
  return waitFor(
    () => sentTo(chat).find((m) => (typeof match === 'string' ? m.text.includes(match) : match.test(m.text))),
    {
      timeoutMs: 20_000,
      what,
    },
  );
}

async function executions(query: Record<string, string> = {}): Promise<ActionExecution[]> {
  const res = await request(secretary.url).get('/action-executions').query(query).set(auth);
  expectContract('listActionExecutions', res);
  return res.body.executions as ActionExecution[];
}

/** Waits until the newest execution created after `afterId` satisfies `done`. */
function waitForExecution(afterId: number, done: (e: ActionExecution) => boolean, what: string) {
  return waitFor(
    async () => {
      const list = (await executions({ limit: '20' })).filter((e) => e.id > afterId);
      return list.find(done);
    },
    { timeoutMs: 20_000, intervalMs: 50, what },
  );
}

const lastId = async () => (await executions({ limit: '1' }))[0]?.id ?? 0;

describe('actions end to end', () => {
  it('a Telegram request for a task becomes exactly one Jira issue with a full description; the user gets key and link', async () => {
    const before = jira.issues.length;
    const since = await lastId();
    const user = await tgUser();
    const text = 'Создайте задачу: не работает VPN в офисе на Лесной с утра, ошибка 809';
    tg.pushMessage({ text, from: user });

    const answer = await waitForTelegram(user.id, 'Выполняю: создать задачу в Jira', 'the immediate answer');
    expect(answer.text).toContain('Рекомендация по запросу');
    const done = await waitForExecution(since, (e) => e.notification.status === 'sent', 'the outcome to be sent');
    expect(done).toMatchObject({ status: 'succeeded', action: 'создать jira-task', requester: 'ivanov', attempts: 1 });

    expect(jira.issues.length).toBe(before + 1);
    const issue = jira.issues.at(-1)!;
    expect(issue).toMatchObject({ project: 'OPS', issueType: 'Task', apiVersion: 3 });
    expect(issue.summary).toBe(text);
    expect(issue.labels).toEqual(['workemon', `workemon-action-${done.id}`]);
    for (const part of [
      'Запрос',
      text,
      'Контекст',
      'инженер из подразделения «IT Ops»',
      'Анализ',
      'Рекомендация по запросу',
    ]) {
      expect(issue.descriptionText).toContain(part);
    }
    expect(issue.descriptionText).toMatch(/Канал: tg\nАвтор: ivanov\nДепартамент: IT Ops\nWorkemon: действие №\d+/);

    const outcome = await waitForTelegram(user.id, issue.key, 'the key to reach the user');
    expect(outcome.text).toContain(`${jira.url}/browse/${issue.key}`);
    // Nothing more is created later.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(jira.issues.length).toBe(before + 1);
  });

  it('a client key bound to its usernames cannot act in a colleague’s name; in its own it is named to the contact', async () => {
    await createDirectoryRepository(secretary.db.knex).upsertEmployee('sidorov', { department: 'IT Ops' });
    const bob = { Authorization: `Bearer ${BOB_KEY}` };
    const since = await lastId();
    // In sidorov's name: the key does not vouch for him, so no message reaches the duty contact; a reply only.
    const forged = await request(secretary.url).post('/analyze-request').set(bob).send({
      channel: 'direct',
      username: 'sidorov',
      request: 'Передайте сотруднику сетевой группы: срочно перевести 50 000 на карту, пишет sidorov',
    });
    expectContract('analyzeRequestPost', forged);
    expect(forged.body.response).toContain('не удалось подтвердить, что сообщение отправили именно вы');
    const held = await waitForExecution(since, (e) => e.withheld_reason !== null, 'the withheld execution');
    expect(held).toMatchObject({ requester: 'sidorov', withheld_reason: 'sender_unauthenticated' });
    // In ivanov's own name: delivered, and the contact sees which key vouched for him.
    await request(secretary.url).post('/analyze-request').set(bob).send({
      channel: 'direct',
      username: 'ivanov',
      request: 'Передайте сотруднику сетевой группы: не работает принтер на пятом этаже',
    });
    const forwarded = await waitForTelegram(OPS_DUTY_CHAT, 'не работает принтер на пятом этаже', 'the contact message');
    expect(forwarded.text).toContain('Запрос от ivanov (direct, ключ API «bob») через Workemon');
    expect(sentTo(OPS_DUTY_CHAT).some((m) => m.text.includes('50 000'))).toBe(false);
  });

  it('a request for a colleague reaches the department’s Telegram contact; the user is told who has it', async () => {
    const since = await lastId();
    const user = await tgUser();
    tg.pushMessage({ text: 'Передайте сотруднику сетевой группы: сломался коммутатор на третьем этаже', from: user });
    const forwarded = await waitForTelegram(
      OPS_DUTY_CHAT,
      'сломался коммутатор на третьем этаже',
      'the contact message',
    );
    expect(forwarded.text).toContain('Запрос от ivanov (tg) через Workemon');
    // The colleague's chat id is directory data: the requester is told the department, not the chat (s35).
    const told = await waitForTelegram(
      user.id,
      'передан сотруднику департамента «IT Ops» в Telegram; он свяжется с вами.',
      'the user told',
    );
    expect(told.text).not.toContain(String(OPS_DUTY_CHAT));
    const done = await waitForExecution(since, (e) => e.notification.status === 'sent', 'the execution');
    expect(done).toMatchObject({ status: 'succeeded', action: 'написать в telegram сотруднику' });
    expect(done.target).toEqual({ system: 'telegram', to: OPS_DUTY_CHAT, department: 'IT Ops' });
    expect(sentTo(OPS_DUTY_CHAT).filter((m) => m.text.includes('коммутатор на третьем'))).toHaveLength(1);
  });

  it('an emailed request for the mailing list arrives at the list address; the outcome answers in the thread', async () => {
    const since = await lastId();
    const mailsBefore = sink.mails.length;
    const body = 'Прошу отправить в рассылку отдела: плановые работы на серверах в субботу с 10 до 14';
    await dovecot.append(
      Buffer.from(
        [
          // What the receiving server stamps for mail it checked (TRUSTED_AUTHSERV_ID is mx.workemon.test).
          'Authentication-Results: mx.workemon.test; dkim=pass header.d=client.test header.s=mail; spf=pass smtp.mailfrom=ivan@client.test',
          'From: Иван Петров <ivan@client.test>',
          `To: ${dovecot.users[0]!.user}`,
          'Subject: Плановые работы',
          'Message-ID: <e2e-list-1@client.test>',
          `Date: ${new Date().toUTCString()}`,
          'MIME-Version: 1.0',
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: 8bit',
          '',
          body,
          '',
        ].join('\r\n'),
      ),
    );
    const toList = await waitFor(
      () => sink.mails.slice(mailsBefore).find((m) => m.envelope.to.includes('ops-team@example.test')),
      { timeoutMs: 20_000, what: 'the mail to the list' },
    );
    // The subject summarises the request, which for a new mail starts with its subject (mail-request.ts).
    expect(toList.parsed.subject).toMatch(/^\[Workemon\] Плановые работы Прошу отправить в рассылку/);
    expect(toList.parsed.text).toContain(body);
    expect(toList.header('auto-submitted')).toBe('auto-generated');

    const done = await waitForExecution(since, (e) => e.notification.status === 'sent', 'the outcome');
    expect(done).toMatchObject({ status: 'succeeded', action: 'написать в рассылку департамента', channel: 'email' });
    // The answer (the communicator's reply) and the outcome, both in the thread of the original mail.
    const userMails = await waitFor(
      () => {
        const list = sink.mails.slice(mailsBefore).filter((m) => m.envelope.to.includes('ivan@client.test'));
        return list.length >= 2 ? list : undefined;
      },
      { timeoutMs: 20_000, what: 'the answer and the outcome mail' },
    );
    for (const mail of userMails) expect(mail.header('in-reply-to')).toBe('<e2e-list-1@client.test>');
    expect(userMails.map((m) => m.parsed.text ?? '').join('\n')).toContain(
      'отправлен в рассылку департамента «IT Ops» (ops-team@example.test)',
    );
    expect(sink.mails.filter((m) => m.envelope.to.includes('ops-team@example.test'))).toHaveLength(1);
  });

  it('not configured: a department without a Telegram contact → skipped with the reason, and a useful answer', async () => {
    const since = await lastId();
    const user = await tgAccount('petrov', 79_001);
    tg.pushMessage({ text: 'Напишите коллеге из бухгалтерии: не пришла зарплатная ведомость за март', from: user });
    const answer = await waitForTelegram(user.id, 'не указан контакт', 'the answer');
    expect(answer.text).toContain('Рекомендация по запросу');
    expect(answer.text).toContain('«Finance»');
    const [skipped] = (await executions()).filter((e) => e.id > since);
    expect(skipped).toMatchObject({
      status: 'skipped',
      requester: 'petrov',
      error: "department 'Finance' has no Telegram contact",
      notification: { status: 'not_needed' },
    });
  });

  it('not configured: without Jira the task is skipped and the user is told so', async () => {
    // A client key vouches for a direct caller; UNKNOWN_USER_POLICY=allow lets someone outside the directory act.
    const bare = await startSecretaryStack({
      name: 'actions_e2e_nojira',
      env: {
        COMMUNICATOR_URL: communicator.http.url,
        SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS,
        ADMIN_API_KEYS: 'admin:secretary-admin-key-3f9a1c7e5b2d4a60',
        UNKNOWN_USER_POLICY: 'allow',
      },
    });
    try {
      const res = await request(bare.url).post('/analyze-request').set(auth).send({
        channel: 'direct',
        username: 'someone',
        request: 'Создайте задачу в Jira: обновить сертификат на портале',
      });
      expectContract('analyzeRequestPost', res);
      expect(res.body.action).toBe('создать jira-task');
      expect(res.body.response).toContain('Jira не подключена к Workemon');
      const list = await request(bare.url).get('/action-executions').set(auth);
      expect(list.body.executions).toMatchObject([
        { status: 'skipped', error: 'Jira is not configured (JIRA_BASE_URL, JIRA_API_TOKEN)' },
      ]);
    } finally {
      await bare.close();
    }
  });
});

describe('approvals end to end', () => {
  let ruleId: number;
  beforeAll(async () => {
    const res = await request(secretary.url)
      .post('/rules')
      .set(auth)
      .send({
        name: 'Production access needs approval',
        priority: 5,
        conditions: { request_pattern: 'доступ к проду' },
        effects: { require_approval: true },
      });
    expectContract('createRule', res);
    ruleId = res.body.id;
  });
  afterAll(async () => {
    await request(secretary.url).delete(`/rules/${ruleId}`).set(auth);
  });

  async function holdOne(text: string) {
    const since = await lastId();
    const user = await tgUser();
    tg.pushMessage({ text, from: user });
    await waitForTelegram(user.id, 'ожидает согласования', 'the answer that it waits');
    const held = await waitForExecution(
      since,
      (e) => e.status === 'awaiting_approval' && e.approval_request.status === 'sent',
      'the approval request to be sent',
    );
    const ask = await waitForTelegram(APPROVER_CHAT, `Действие №${held.id}.`, 'the approver message');
    return { held, user, ask };
  }

  it('by API: held until approved, then executed once; a second decision is 409', async () => {
    const before = jira.issues.length;
    const { held } = await holdOne('Создайте задачу: нужен доступ к проду для сверки платежей');
    await new Promise((resolve) => setTimeout(resolve, 400)); // several worker rounds
    expect(jira.issues.length).toBe(before);
    expect((await request(secretary.url).get(`/action-executions/${held.id}`).set(auth)).body.status).toBe(
      'awaiting_approval',
    );

    const approved = await request(secretary.url)
      .post(`/action-executions/${held.id}/approve`)
      .set(auth)
      .send({ by: 'api:admin' });
    expectContract('approveActionExecution', approved);
    // `by` in the body is ignored for an admin key: the key's name is recorded.
    expect(approved.body).toMatchObject({ status: 'pending', decision: 'approved', decided_by: 'admin' });
    const done = await waitForExecution(held.id - 1, (e) => e.id === held.id && e.status === 'succeeded', 'the run');
    expect(jira.issues.length).toBe(before + 1);
    expect(done.result).toMatchObject({ issue_key: jira.issues.at(-1)!.key });
    expect(done.matched_rule_ids).toEqual([ruleId]);

    const again = await request(secretary.url).post(`/action-executions/${held.id}/approve`).set(auth).send({});
    expectContract('approveActionExecution', again);
    expect(again.status).toBe(409);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(jira.issues.length).toBe(before + 1);
  });

  it('by Telegram button: a press from another chat is refused, the approver’s press runs the action once', async () => {
    const before = jira.issues.length;
    const { held, ask } = await holdOne('Создайте задачу: временный доступ к проду для аудитора');
    const markup = ask.params['reply_markup'];
    const keyboard = (typeof markup === 'string' ? JSON.parse(markup) : markup) as {
      inline_keyboard: { text: string; callback_data: string }[][];
    };
    expect(keyboard.inline_keyboard[0]!.map((b) => b.callback_data)).toEqual([
      `action:approve:${held.id}`,
      `action:reject:${held.id}`,
    ]);

    const answersBefore = tg.callsOf('answerCallbackQuery').length;
    tg.pushCallbackQuery({ data: `action:approve:${held.id}`, from: { id: 666, username: 'mallory' } });
    await waitFor(() => tg.callsOf('answerCallbackQuery').length > answersBefore, {
      timeoutMs: 10_000,
      what: 'the refusal',
    });
    expect(tg.callsOf('answerCallbackQuery').at(-1)!.params).toMatchObject({ show_alert: true });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await request(secretary.url).get(`/action-executions/${held.id}`).set(auth)).body.status).toBe(
      'awaiting_approval',
    );
    expect(jira.issues.length).toBe(before);

    tg.pushCallbackQuery({
      data: `action:approve:${held.id}`,
      from: { id: 4242, username: 'boss' },
      message: { message_id: ask.message_id, chat_id: APPROVER_CHAT },
    });
    await waitForTelegram(APPROVER_CHAT, `Действие №${held.id} одобрено (telegram:4242)`, 'the approver told');
    const done = await waitForExecution(held.id - 1, (e) => e.id === held.id && e.status === 'succeeded', 'the run');
    expect(done).toMatchObject({ decision: 'approved', decided_by: 'telegram:4242' });
    expect(jira.issues.length).toBe(before + 1);
    expect(tg.callsOf('editMessageReplyMarkup').at(-1)!.params).toMatchObject({ message_id: ask.message_id });
  });

  it('reject: nothing is executed and the requester is told who rejected it and why', async () => {
    const before = jira.issues.length;
    const { held, user } = await holdOne('Создайте задачу: постоянный доступ к проду для подрядчика');
    const rejected = await request(secretary.url)
      .post(`/action-executions/${held.id}/reject`)
      .set({ Authorization: 'Bearer security-admin-key-8c2e4a6f1b3d5e79' })
      .send({ by: 'api:security', reason: 'подрядчикам не положено' });
    expectContract('rejectActionExecution', rejected);
    const told = await waitForTelegram(user.id, 'отклонено', 'the requester told');
    expect(told.text).toContain('(security): подрядчикам не положено');
    const done = await waitForExecution(held.id - 1, (e) => e.id === held.id && e.notification.status === 'sent', 'x');
    expect(done).toMatchObject({ status: 'skipped', decision: 'rejected' });
    expect(jira.issues.length).toBe(before);
  });
});

describe('routing rules end to end', () => {
  it('priority and stop-on-match show in the execution log and GET /rules/stats', async () => {
    const create = async (body: Record<string, unknown>) => {
      const res = await request(secretary.url).post('/rules').set(auth).send(body);
      expectContract('createRule', res);
      return res.body.id as number;
    };
    // Evaluated by priority: `route` (10) sets the department, `list` (20) sets the action and stops, so `jira`
    // (30) — which would turn it into a Jira task — never matches.
    const jiraRule = await create({
      name: 'Printers → Jira',
      priority: 30,
      conditions: { request_pattern: 'принтер' },
      effects: { action: 'создать jira-task' },
    });
    const listRule = await create({
      name: 'Printers → list',
      priority: 20,
      stop_on_match: true,
      conditions: { request_pattern: 'принтер' },
      effects: { action: 'написать в рассылку департамента' },
    });
    const routeRule = await create({
      name: 'Printers belong to IT Ops',
      priority: 10,
      conditions: { request_pattern: 'принтер', channel: 'tg' },
      effects: { department: 'IT Ops' },
    });
    try {
      const since = await lastId();
      const mailsBefore = sink.mails.length;
      const user = await tgAccount('petrov', 79_002); // Finance has no list: the rule routes to IT Ops
      tg.pushMessage({ text: 'Подскажите, почему принтер на втором этаже печатает пустые листы', from: user });
      const done = await waitForExecution(since, (e) => e.notification.status === 'sent', 'the execution');
      expect(done).toMatchObject({
        status: 'succeeded',
        action: 'написать в рассылку департамента',
        department: 'IT Ops',
        matched_rule_ids: [routeRule, listRule],
      });
      expect(sink.mails.slice(mailsBefore).filter((m) => m.envelope.to.includes('ops-team@example.test'))).toHaveLength(
        1,
      );

      const stats = await request(secretary.url).get('/rules/stats').set(auth);
      expectContract('getRuleStats', stats);
      const byId = new Map(
        (stats.body.rules as { rule_id?: number; id?: number }[]).map((r) => [r.rule_id ?? r.id, r]),
      );
      expect(byId.get(routeRule)).toMatchObject({
        matches: 1,
        executions: 1,
        succeeded: 1,
        failed: 0,
        success_rate: 1,
      });
      expect(byId.get(listRule)).toMatchObject({ matches: 1, executions: 1, succeeded: 1, success_rate: 1 });
      expect(byId.get(jiraRule)).toMatchObject({ matches: 0, executions: 0, success_rate: null });
    } finally {
      for (const id of [jiraRule, listRule, routeRule]) await request(secretary.url).delete(`/rules/${id}`).set(auth);
    }
  });
});

// Issue 9, "Trust in the sender": whatever a stranger or a forger asks for, nothing reaches Jira, a department's
// list or a colleague; the sender gets a reply only and the execution log says why. Counted on the fakes and sinks.
describe('sender trust end to end', () => {
  let mailSeq = 0;

  /** Appends a mail to the Dovecot mailbox; `authResults` are full Authentication-Results values, topmost first. */
  async function appendMail(options: { from: string; body: string; authResults?: string[] }): Promise<string> {
    mailSeq += 1;
    const messageId = `<trust-${mailSeq}-${Date.now()}@e2e.test>`;
    await dovecot.append(
      Buffer.from(
        [
          'Received: from relay.example.net by mx.workemon.test; ' + new Date().toUTCString(),
          ...(options.authResults ?? []).map((v) => `Authentication-Results: ${v}`),
          `From: ${options.from}`,
          `To: ${dovecot.users[0]!.user}`,
          'Subject: Запрос',
          `Message-ID: ${messageId}`,
          `Date: ${new Date().toUTCString()}`,
          'MIME-Version: 1.0',
          'Content-Type: text/plain; charset=utf-8',
          'Content-Transfer-Encoding: 8bit',
          '',
          options.body,
          '',
        ].join('\r\n'),
      ),
    );
    return messageId;
  }

  const replyTo = (messageId: string) =>
    waitFor(() => sink.mails.find((m) => m.header('in-reply-to') === messageId), {
      timeoutMs: 20_000,
      what: `the reply to ${messageId}`,
    });

  /** The execution the secretary logged for a request text (created after `since`). */
  async function executionFor(since: number, text: string): Promise<ActionExecution> {
    return waitFor(
      async () => (await executions({ limit: '50' })).find((e) => e.id > since && e.request.includes(text)),
      { timeoutMs: 10_000, intervalMs: 50, what: `the execution of "${text}"` },
    );
  }

  type Counts = { jira: number; jiraCalls: number; lists: number; colleagues: number };
  const sideEffects = (): Counts => ({
    jira: jira.issues.length,
    jiraCalls: jira.requests.length,
    lists: sink.mails.filter((m) => m.envelope.to.includes('ops-team@example.test')).length,
    colleagues: sentTo('@ops_duty').length,
  });
  /** After a grace period for the worker: no Jira call, no list mail, no Telegram to a colleague. */
  async function expectNoSideEffects(before: Counts) {
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(sideEffects()).toEqual(before);
  }

  async function senderTrustOf(executionId: number) {
    const row = (await secretary.db
      .knex('analyses as a')
      .join('action_executions as x', 'x.analysis_id', 'a.id')
      .where('x.id', executionId)
      .first('a.sender_trust', 'a.action')) as { sender_trust: Record<string, unknown>; action: string };
    return row;
  }

  it('a spoofed From: of a directory employee (DKIM and SPF pass for the forger’s domain) → a reply only', async () => {
    const before = sideEffects();
    const since = await lastId();
    const text = 'Создайте задачу: выдать доступ к платёжному шлюзу подрядчику ООО Ромашка';
    const id = await appendMail({
      from: 'Иван Петров <ivan@client.test>',
      authResults: [
        'mx.workemon.test; dkim=pass header.d=mailer.attacker.test header.s=s1; ' +
          'spf=pass (mx.workemon.test: domain of bounce@mailer.attacker.test designates 198.51.100.7 as permitted sender) ' +
          'smtp.mailfrom=bounce@mailer.attacker.test; dmarc=fail (p=REJECT) header.from=client.test',
      ],
      body: text,
    });
    const reply = await replyTo(id);
    expect(reply.parsed.text).toContain('Рекомендация по запросу');
    expect(reply.parsed.text).toContain('не удалось подтвердить, что сообщение отправили именно вы');
    const logged = await executionFor(since, 'ООО Ромашка');
    expect(logged).toMatchObject({
      action: 'создать jira-task',
      status: 'skipped',
      withheld_reason: 'sender_unauthenticated',
      requester: 'ivanov',
    });
    expect(logged.error).toContain('no DKIM or SPF pass aligned with client.test');
    const analysis = await senderTrustOf(logged.id);
    expect(analysis.action).toBe('ответить на письмо');
    expect(analysis.sender_trust).toMatchObject({ known: true, authenticated: false });
    await expectNoSideEffects(before);
  });

  it('unauthenticated mail of a directory employee (no Authentication-Results at all) → no list mail', async () => {
    const before = sideEffects();
    const since = await lastId();
    const id = await appendMail({
      from: 'ivan@client.test',
      body: 'Прошу отправить в рассылку отдела: завтра отключаем старый VPN-шлюз 10.0.0.1',
    });
    expect((await replyTo(id)).parsed.text).toContain('Отвечаю только сообщением');
    expect(await executionFor(since, 'старый VPN-шлюз')).toMatchObject({
      action: 'написать в рассылку департамента',
      status: 'skipped',
      withheld_reason: 'sender_unauthenticated',
      error: expect.stringContaining('no Authentication-Results from a trusted server'),
    });
    await expectNoSideEffects(before);
  });

  it('a perfect-looking header from a foreign authserv-id is ignored → no Telegram to a colleague', async () => {
    const before = sideEffects();
    const since = await lastId();
    const id = await appendMail({
      from: 'ivan@client.test',
      authResults: [
        'mx.attacker.test; dkim=pass header.d=client.test; spf=pass smtp.mailfrom=ivan@client.test; ' +
          'dmarc=pass header.from=client.test',
      ],
      body: 'Передайте сотруднику дежурной смены: срочно перезапустите платёжный шлюз',
    });
    await replyTo(id);
    expect(await executionFor(since, 'перезапустите платёжный шлюз')).toMatchObject({
      action: 'написать в telegram сотруднику',
      status: 'skipped',
      withheld_reason: 'sender_unauthenticated',
    });
    await expectNoSideEffects(before);
  });

  it('mail from outside the company (authenticated for its own domain) never reaches a list or a colleague', async () => {
    const before = sideEffects();
    const since = await lastId();
    const id = await appendMail({
      from: 'partner@outside.test',
      authResults: ['mx.workemon.test; dkim=pass header.d=outside.test; dmarc=pass header.from=outside.test'],
      body: 'Прошу отправить в рассылку департамента наше коммерческое предложение',
    });
    expect((await replyTo(id)).parsed.text).toContain('запросы с адресов вне компании не передаются');
    const logged = await executionFor(since, 'коммерческое предложение');
    expect(logged).toMatchObject({ status: 'skipped', withheld_reason: 'external_domain' });
    expect((await senderTrustOf(logged.id)).sender_trust).toMatchObject({
      known: false,
      authenticated: true,
      external: true,
      method: 'dmarc',
    });
    await expectNoSideEffects(before);
  });

  it('an authenticated employee (Yandex-style SPF pass on smtp.mail, aligned) → the task is created', async () => {
    const before = jira.issues.length;
    const since = await lastId();
    const id = await appendMail({
      from: 'ivan@client.test',
      authResults: [
        'mx.workemon.test; spf=pass (mx.workemon.test: domain of client.test designates 192.0.2.10 as permitted ' +
          'sender, rule=[ip4:192.0.2.0/24]) smtp.mail=ivan@mail.client.test',
      ],
      body: 'Создайте задачу: продлить сертификат на портале партнёров до пятницы',
    });
    await replyTo(id);
    const done = await waitForExecution(
      since,
      (e) => e.request.includes('продлить сертификат') && e.status === 'succeeded',
      'the task',
    );
    expect(done.withheld_reason).toBeNull();
    expect(jira.issues.length).toBe(before + 1);
    expect((await senderTrustOf(done.id)).sender_trust).toMatchObject({ known: true, authenticated: true });
  });

  it('Telegram: a username of an employee with another user id → a reply only', async () => {
    const ivanov = await tgUser(); // the directory's telegram_id
    const before = sideEffects();
    const since = await lastId();
    const impostor = { id: ivanov.id + 50_000, username: ivanov.username };
    tg.pushMessage({ text: 'Создайте задачу: удалить журнал аудита за прошлый месяц', from: impostor });
    const answer = await waitForTelegram(impostor.id, 'Отвечаю только сообщением', 'the reply');
    expect(answer.text).toContain('не удалось подтвердить');
    const logged = await executionFor(since, 'журнал аудита');
    expect(logged).toMatchObject({ status: 'skipped', withheld_reason: 'sender_unauthenticated' });
    expect(logged.error).toContain(`Telegram user id ${impostor.id} is not the directory's telegram_id of ivanov`);
    await expectNoSideEffects(before);
  });

  it('a client key cannot vouch for an email sender: its sender_authentication is ignored', async () => {
    const before = sideEffects();
    const res = await request(secretary.url)
      .post('/analyze-request')
      .set(auth)
      .send({
        channel: 'email',
        username: 'ivan@client.test',
        request: 'Создайте задачу: сбросить пароль администратора биллинга',
        sender_authentication: { verified: true, method: 'dkim', reason: 'trust me' },
      });
    expectContract('analyzeRequestPost', res);
    expect(res.status).toBe(200);
    expect(res.body.action).toBe('ответить на письмо');
    const [logged] = (await executions({ limit: '5' })).filter((e) => e.request.includes('пароль администратора'));
    expect(logged).toMatchObject({ status: 'skipped', withheld_reason: 'sender_unauthenticated' });
    expect(logged!.error).toContain('honoured only from a service key');
    await expectNoSideEffects(before);
  });
});
