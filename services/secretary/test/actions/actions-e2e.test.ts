// End to end: the real secretary (buildApp wired as main.ts wires it, from a config, on a real Postgres), the
// real guesser and system analyst over a fake LLM, the REAL communicator (its createCommunicator from a config)
// on real Dovecot, a real SMTP listener and the fake Bot API, and the fake Jira. Requests come in by Telegram and
// email as a user would send them; assertions are on what people and systems receive.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCommunicator, loadConfig as loadCommunicatorConfig, type Communicator } from '@workemon/communicator';
import { createLogger, createMetrics } from '@workemon/service-kit';
import { getFreePort, listen, waitFor, type Listening } from '@workemon/testkit';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import { startFakeTelegram, type FakeTelegram, type SentMessage } from '@workemon/testkit/fake-telegram';
import { startLlmServices, type LlmServices } from '@workemon/testkit/llm-stack';
import { createTestDatabase } from '@workemon/testkit/postgres';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import type {} from '@workemon/testkit/global-setup';
import { toActionSettings } from '../../src/actions/action-policy.js';
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
  const db = openDatabase({ url: config.DATABASE_URL, poolMax: 5, logger });
  await migrateDatabase(db);
  const directory = createDirectoryRepository(db.knex);
  const actions = createActions({
    db: db.knex,
    settings: toActionSettings(config),
    communicator: { baseUrl: config.COMMUNICATOR_URL, apiKey: config.COMMUNICATOR_API_KEY },
    resolveDepartment: (name) => directory.getDepartment(name),
    logger,
    metrics,
  });
  const app = buildApp({
    knex: db.knex,
    guesser: createGuesserClient({ baseURL: config.GUESSER_URL, timeoutMs: 5000, metrics, logger, maxRetries: 0 }),
    analyst: createAnalystClient({
      baseURL: config.SYSTEM_ANALYST_URL,
      timeoutMs: 5000,
      metrics,
      logger,
      maxRetries: 0,
    }),
    logger,
    metrics,
    apiKeys: config.API_KEYS,
    unknownUserPolicy: config.UNKNOWN_USER_POLICY,
    clarificationTtlMs: config.CLARIFICATION_TTL,
    maxClarifications: config.MAX_CLARIFICATIONS,
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
    SECRETARY_API_KEY: 'secretary-key',
    API_KEYS: 'communicator-key',
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
    SMTP_TIMEOUT: '3s',
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: tg.url,
    TELEGRAM_POLL_TIMEOUT_S: '1',
    TELEGRAM_CONFLICT_WAIT: '300ms',
    TELEGRAM_HANDLER_TIMEOUT: '15s',
    APPROVER_TELEGRAM_CHAT_ID: APPROVER_CHAT,
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
      API_KEYS: 'secretary-key',
      COMMUNICATOR_URL: communicator.http.url,
      COMMUNICATOR_API_KEY: 'communicator-key',
      JIRA_BASE_URL: jira.url,
      JIRA_EMAIL: 'bot@example.test',
      JIRA_API_TOKEN: 'jira-token',
      APPROVER_TELEGRAM_CHAT_ID: APPROVER_CHAT,
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

const auth = { Authorization: 'Bearer secretary-key' };
let userSeq = 0;

/** A Telegram user of the IT Ops department (a fresh id per test, so the per-sender rate limit never bites). */
function tgUser() {
  userSeq += 1;
  return { id: 70_000 + userSeq, username: 'ivanov_tg' };
}

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
    const user = tgUser();
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

  it('a request for a colleague reaches the department’s Telegram contact; the user is told who has it', async () => {
    const since = await lastId();
    const user = tgUser();
    tg.pushMessage({ text: 'Передайте сотруднику сетевой группы: сломался коммутатор на третьем этаже', from: user });
    const forwarded = await waitForTelegram(
      OPS_DUTY_CHAT,
      'сломался коммутатор на третьем этаже',
      'the contact message',
    );
    expect(forwarded.text).toContain('Запрос от ivanov (tg) через Workemon');
    await waitForTelegram(
      user.id,
      `передан сотруднику департамента «IT Ops» в Telegram (${OPS_DUTY_CHAT})`,
      'the user told',
    );
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
    expect(toList.parsed.subject).toMatch(/^\[Workemon\] Прошу отправить в рассылку/);
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
    const user = { id: 79_001, username: 'petrov_tg' };
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
    const bare = await startSecretaryStack({
      name: 'actions_e2e_nojira',
      env: { COMMUNICATOR_URL: communicator.http.url },
    });
    try {
      const res = await request(bare.url).post('/analyze-request').send({
        channel: 'direct',
        username: 'someone',
        request: 'Создайте задачу в Jira: обновить сертификат на портале',
      });
      expectContract('analyzeRequestPost', res);
      expect(res.body.action).toBe('создать jira-task');
      expect(res.body.response).toContain('Jira не подключена к Workemon');
      const list = await request(bare.url).get('/action-executions');
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
    const user = tgUser();
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
    expect(approved.body).toMatchObject({ status: 'pending', decision: 'approved', decided_by: 'api:admin' });
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
    await waitForTelegram(APPROVER_CHAT, `Действие №${held.id} одобрено (telegram:@boss)`, 'the approver told');
    const done = await waitForExecution(held.id - 1, (e) => e.id === held.id && e.status === 'succeeded', 'the run');
    expect(done).toMatchObject({ decision: 'approved', decided_by: 'telegram:@boss' });
    expect(jira.issues.length).toBe(before + 1);
    expect(tg.callsOf('editMessageReplyMarkup').at(-1)!.params).toMatchObject({ message_id: ask.message_id });
  });

  it('reject: nothing is executed and the requester is told who rejected it and why', async () => {
    const before = jira.issues.length;
    const { held, user } = await holdOne('Создайте задачу: постоянный доступ к проду для подрядчика');
    const rejected = await request(secretary.url)
      .post(`/action-executions/${held.id}/reject`)
      .set(auth)
      .send({ by: 'api:security', reason: 'подрядчикам не положено' });
    expectContract('rejectActionExecution', rejected);
    const told = await waitForTelegram(user.id, 'отклонено', 'the requester told');
    expect(told.text).toContain('(api:security): подрядчикам не положено');
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
      const user = { id: 79_002, username: 'petrov_tg' }; // Finance has no list: the rule routes to IT Ops
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
