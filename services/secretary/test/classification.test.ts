// Issue 16 end to end: the real guesser and system analyst over fake LLMs, the real secretary wired as main.ts
// wires it (actions, worker, catalog) on a real Postgres, the fake Jira and a fake communicator. The fake guesser
// LLM classifies by tokens in the request (`cat:<name>`, `conf:<0..1>`), so each test picks its classification.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_CATEGORIES_TEXT } from '@workemon/guesser';
import { createAuthenticator, createLogger, createMetrics } from '@workemon/service-kit';
import { listen, waitFor, type Listening } from '@workemon/testkit';
import { TEST_API_KEYS, bearer } from '@workemon/testkit/api-keys';
import { userDataOf } from '@workemon/testkit/fake-llm';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import { defaultAnalystReply, defaultGuesserReply, type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { catalogSourceFor } from '../src/actions/action-catalog.js';
import { createActions } from '../src/actions/actions-wiring.js';
import { createAnalystClient } from '../src/analyst-client.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { migrateDatabase, openDatabase, type Database } from '../src/database.js';
import { createDirectoryRepository } from '../src/directory-repository.js';
import { createGuesserClient } from '../src/guesser-client.js';
import { startFakeCommunicator, type FakeCommunicator } from './actions/actions-harness.js';
import { MemoryTransport, keyed, openapi } from './secretary-harness.js';

const JIRA = 'создать jira-task';
const CLARIFY = 'уточнить';

// The workflow engine's classifications beside the shipped fintech list.
const SEED_CATEGORIES = [
  'invoice: счета и инвойсы от поставщиков',
  'time_confirmation: подтверждения отработанного времени',
  'freight_note: накладные и уведомления о доставке',
  'bankruptcy: уведомления о банкротстве контрагентов',
  'general: прочие письма',
].join('\n');

const token = (text: string, name: string) => new RegExp(`${name}:(\\S+)`).exec(text)?.[1];
const requestOf = (user: string) => {
  const data = userDataOf(user) as { request?: string } | undefined;
  return data?.request ?? '';
};

/** The guesser's fake LLM: the default decision (5+ words: enough), with the classification the request names. */
function classifyingGuesser(req: { system: string; user: string }) {
  const text = requestOf(req.user);
  const category = token(text, 'cat');
  const confidence = token(text, 'conf');
  return {
    ...(defaultGuesserReply(req) as object),
    ...(category ? { category } : {}),
    ...(confidence ? { confidence: Number(confidence) } : {}),
  };
}

/** The analyst's fake LLM: the default advice, or a clarifying question for `analyst:unclear`. */
function analyst(req: { system: string; user: string }) {
  if (requestOf(req.user).includes('analyst:unclear'))
    return { is_enough: false, response: 'Уточните, пожалуйста, за какой период нужна сверка?' };
  if (requestOf(req.user).includes('analyst:jira')) return { ...(defaultAnalystReply(req) as object), action: JIRA };
  return defaultAnalystReply(req);
}

let llm: LlmServices;
let jira: FakeJira;
let communicator: FakeCommunicator;
let secretary: Listening & { db: Database; logs: MemoryTransport };

beforeAll(async () => {
  llm = await startLlmServices({
    guesser: classifyingGuesser,
    analyst,
    env: { CATEGORIES: `${DEFAULT_CATEGORIES_TEXT}\n${SEED_CATEGORIES}` },
  });
  jira = await startFakeJira({ flavor: 'cloud', email: 'bot@x.test', token: 'tok', projects: ['OPS', 'FIN', 'HW'] });
  communicator = await startFakeCommunicator();
  const dbHandle = await createTestDatabase(inject('postgresUrl'), 'classification');
  const config = loadConfig({
    DATABASE_URL: dbHandle.url,
    GUESSER_URL: llm.guesserUrl,
    SYSTEM_ANALYST_URL: llm.analystUrl,
    COMMUNICATOR_URL: communicator.url,
    JIRA_BASE_URL: jira.url,
    JIRA_EMAIL: 'bot@x.test',
    JIRA_API_TOKEN: 'tok',
    JIRA_PROJECT_KEY: 'OPS',
    ACTION_RETRY_BASE_MS: '20',
    ACTION_RETRY_MAX_MS: '100',
    ACTION_WORKER_INTERVAL_MS: '50',
  });
  const logs = new MemoryTransport();
  const logger = createLogger({ service: 'secretary', level: 'debug', stdout: logs });
  const metrics = createMetrics('secretary');
  const db = openDatabase({ url: config.databaseUrl, poolMax: 5, logger });
  await migrateDatabase(db);
  const directory = createDirectoryRepository(db.knex);
  const settings = config.actions;
  const actions = createActions({
    db: db.knex,
    settings,
    communicator: { baseUrl: config.communicatorUrl },
    resolveDepartment: (name) => directory.getDepartment(name),
    logger,
    metrics,
  });
  const upstream = { timeoutMs: 5000, metrics, logger, maxRetries: 0, apiKey: llm.serviceKey };
  const app = buildApp({
    knex: db.knex,
    guesser: createGuesserClient({ baseURL: config.guesserUrl, ...upstream }),
    analyst: createAnalystClient({ baseURL: config.systemAnalystUrl, ...upstream }),
    logger,
    metrics,
    auth: createAuthenticator(TEST_API_KEYS),
    unknownUserPolicy: 'allow',
    clarificationTtlMs: config.clarificationTtl,
    maxClarifications: config.maxClarifications,
    attemptLeaseMs: 15_000,
    decide: actions.hooks.decide,
    onDecisionRecorded: actions.hooks.onDecisionRecorded,
    nudgeActions: actions.worker.nudge,
    actionCatalog: catalogSourceFor(settings, { baseUrl: config.communicatorUrl }),
  });
  actions.worker.start();
  const served = await listen(app);
  secretary = {
    ...served,
    db,
    logs,
    close: async () => {
      await served.close();
      await actions.worker.stop();
      await db.close();
      await dbHandle.drop();
    },
  };
});

afterAll(async () => {
  await secretary?.close();
  await communicator?.close();
  await jira?.close();
  await llm?.close();
});

type Analysis = {
  is_enough: boolean;
  request: string;
  action: string;
  question: string;
  response: string;
  category?: string;
  confidence?: number;
  no_reply?: boolean;
};

let seq = 0;
/**
 * Asks the way each channel reaches the secretary: mail and Telegram through the communicator (a service key
 * with the sender's proof: a verified signature, the Telegram user id), direct requests with an admin key
 * (which vouches for the username), so the sender trust lets the rules' actions run.
 */
async function analyze(body: Record<string, string>): Promise<Analysis> {
  const proof =
    body['channel'] === 'email'
      ? { sender_authentication: { verified: true, method: 'dkim', reason: 'dkim=pass (test)' } }
      : body['channel'] === 'tg'
        ? { telegram_user_id: `${1000 + seq}` }
        : {};
  const res = await request(secretary.url)
    .post('/analyze-request')
    .set(bearer(body['channel'] === 'direct' ? 'admin' : 'service'))
    .send({ message_id: `msg-${++seq}-${Date.now()}`, ...proof, ...body });
  expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
  expect(res.status).toBe(200);
  return res.body as Analysis;
}

const analysisRow = (text: string) =>
  secretary.db.knex('analyses').where('request', text).orderBy('id', 'desc').first();
const executionsOf = async (text: string) => {
  const row = await analysisRow(text);
  return secretary.db.knex('action_executions').where('analysis_id', row.id);
};

async function createRule(rule: Record<string, unknown>): Promise<number> {
  const res = await keyed(secretary.url).post('/rules').send(rule);
  expect(res.status).toBe(201);
  return res.body.id as number;
}

async function idle(): Promise<void> {
  await waitFor(
    async () => {
      const open = await secretary.db
        .knex('action_executions')
        .where('status', 'pending')
        .orWhere('notify_status', 'pending')
        .count({ n: '*' });
      return Number(open[0]!['n']) === 0;
    },
    { intervalMs: 50, what: 'the action worker to finish' },
  );
}

describe('classification from the LLM to the stored analysis and the response', () => {
  it('asks for category and confidence in the prompt and the schema, stores and returns them, and replays them', async () => {
    const text = 'Хочу видеть операции наших кошельков за март по дням cat:wallets conf:0.91';
    const before = llm.guesserLlm.requests.length;
    const body = { channel: 'direct', username: 'smirnovanton', request: text, message_id: 'classified-1' };
    const res = await keyed(secretary.url).post('/analyze-request').send(body);
    expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ is_enough: true, category: 'wallets', confidence: 0.91 });
    expect(res.body).not.toHaveProperty('no_reply');

    const sent = llm.guesserLlm.requests[before]!;
    expect(sent.system).toContain('- wallets: электронные кошельки');
    expect(sent.system).toContain('- invoice: счета и инвойсы');
    const schema = sent.body.response_format.json_schema.schema;
    expect(schema.properties.category.enum).toEqual(expect.arrayContaining(['wallets', 'marketing', 'invoice']));
    expect(schema.properties.confidence).toMatchObject({ type: 'number', minimum: 0, maximum: 1 });

    const row = await analysisRow(text);
    expect(row).toMatchObject({ category: 'wallets', confidence: 0.91, no_reply: false });
    const conversation = await keyed(secretary.url).get(`/conversations/${row.conversation_id}`);
    expect(openapi.responseProblems('getConversation', 200, conversation.body)).toEqual([]);
    expect(conversation.body.analyses[0]).toMatchObject({ category: 'wallets', confidence: 0.91 });

    // The same message again: the stored answer, classification included, without another LLM call.
    const calls = llm.guesserLlm.requests.length;
    const again = await keyed(secretary.url).post('/analyze-request').send(body);
    expect(again.body).toEqual(res.body);
    expect(llm.guesserLlm.requests.length).toBe(calls);
  });

  it('leaves both out when the model gives none (the seed fields alone)', async () => {
    const text = 'Нужна справка по лимитам корпоративных карт отдела';
    const res = await analyze({ channel: 'tg', username: 'petrov', request: text });
    expect(res).not.toHaveProperty('category');
    expect(res).not.toHaveProperty('confidence');
    expect(await analysisRow(text)).toMatchObject({ category: null, confidence: null });
  });

  it('a no_reply category: no analyst call, no reply, no action even under a catch-all rule, logged as skipped', async () => {
    const catchAll = await createRule({ name: 'everything to Jira', effects: { action: JIRA } });
    try {
      const text = 'Скидки недели на все тарифы для вашей компании cat:marketing conf:0.97';
      const analystCalls = llm.analystLlm.requests.length;
      const res = await analyze({ channel: 'email', username: 'promo@shop.test', request: text, subject: 'Скидки!' });
      expect(res).toMatchObject({
        no_reply: true,
        category: 'marketing',
        confidence: 0.97,
        action: 'ответить на письмо',
        question: '',
        response: '',
      });
      expect(llm.analystLlm.requests.length).toBe(analystCalls);
      expect(await executionsOf(text)).toEqual([]);
      const row = await analysisRow(text);
      expect(row).toMatchObject({ no_reply: true, category: 'marketing' });
      const line = secretary.logs.lines.map((l) => JSON.parse(l)).find((l) => l.workemon?.analysis?.id === row.id);
      expect(line).toMatchObject({
        message: 'request skipped: its category gets no reply',
        workemon: { classification: { category: 'marketing', confidence: 0.97 } },
      });
    } finally {
      await keyed(secretary.url).delete(`/rules/${catchAll}`);
    }
  });
});

describe('a classification the model is not sure of (NO_REPLY_MIN_CONFIDENCE, ACTION_MIN_CONFIDENCE: 0.7)', () => {
  it('a no_reply category below the threshold is answered like any request, not dropped in silence', async () => {
    const text = 'Коллеги, срочно нужен доступ к платёжной системе для новой сотрудницы cat:marketing conf:0.05';
    const analystCalls = llm.analystLlm.requests.length;
    const res = await analyze({ channel: 'email', username: 'anna@corp.test', request: text, subject: 'Доступ' });
    expect(res).toMatchObject({ category: 'marketing', confidence: 0.05 });
    expect(res.no_reply).toBeUndefined();
    expect(res.response).not.toBe('');
    expect(llm.analystLlm.requests.length).toBe(analystCalls + 1);
  });

  it('an action the analyst proposed waits for approval below the threshold and runs above it', async () => {
    const unsure = 'Нужно завести задачу на выгрузку авторизаций за октябрь analyst:jira cat:data_exports conf:0.2';
    const sure = 'Нужно завести задачу на выгрузку авторизаций за ноябрь analyst:jira cat:data_exports conf:0.9';
    for (const text of [unsure, sure]) await analyze({ channel: 'email', username: 'anna@corp.test', request: text });
    await idle();
    expect((await executionsOf(unsure)).map((e) => [e.action, e.status])).toEqual([[JIRA, 'awaiting_approval']]);
    expect((await executionsOf(sure)).map((e) => [e.action, e.status])).toEqual([[JIRA, 'succeeded']]);
  });

  it('is held also when a rule matched without setting the action, or the model gave a category but no confidence', async () => {
    // A rule that routes every mail to a project sets no action: the analyst's Jira still waits (s35 review).
    const rule = await createRule({
      name: 'mail to FIN',
      conditions: { channel: 'email' },
      effects: { jira_project: 'FIN' },
    });
    try {
      const routed = 'Заведите задачу на сверку комиссий за октябрь analyst:jira cat:payments conf:0.1';
      const unsure = 'Заведите задачу на сверку комиссий за ноябрь analyst:jira cat:payments';
      for (const text of [routed, unsure])
        await analyze({ channel: 'email', username: 'anna@corp.test', request: text });
      await idle();
      for (const text of [routed, unsure])
        expect(
          (await executionsOf(text)).map((e) => [e.action, e.status]),
          text,
        ).toEqual([[JIRA, 'awaiting_approval']]);
    } finally {
      await keyed(secretary.url).delete(`/rules/${rule}`);
    }
  });

  it('a routing rule’s own min_confidence decides for the actions it sets', async () => {
    const rule = await createRule({
      name: 'exports to Jira from 0.5',
      conditions: { category: 'data_exports', min_confidence: 0.5 },
      effects: { action: JIRA, jira_project: 'OPS' },
    });
    try {
      const text = 'Выгрузка авторизаций кошельков за сентябрь по дням, пожалуйста cat:data_exports conf:0.6';
      await analyze({ channel: 'email', username: 'anna@corp.test', request: text });
      await idle();
      expect((await executionsOf(text)).map((e) => [e.action, e.status])).toEqual([[JIRA, 'succeeded']]);
    } finally {
      await keyed(secretary.url).delete(`/rules/${rule}`);
    }
  });
});

describe('rule conditions through the whole stack', () => {
  it('category with the default threshold and subject_pattern with stop_on_match pick the Jira project', async () => {
    const payments = await createRule({
      name: 'Payments to FIN',
      priority: 10,
      conditions: { category: 'payments' },
      effects: { action: JIRA, jira_project: 'FIN' },
    });
    const incidents = await createRule({
      name: 'Incident subjects to HW',
      priority: 5,
      stop_on_match: true,
      conditions: { subject_pattern: '^\\[Инцидент\\]', channel: 'email' },
      effects: { action: JIRA, jira_project: 'HW' },
    });
    const issues = jira.issues.length;
    const bySubject = 'Упала выгрузка реестра платежей сегодня утром cat:payments conf:0.9';
    const byCategory = 'Не проходит платёж по счёту сорок два cat:payments conf:0.9';
    const lowConfidence = 'Не проходит платёж по счёту сорок три cat:payments conf:0.6';
    const otherCategory = 'Не проходит оплата картой в кафе сегодня cat:cards conf:0.95';
    const incidentSubjectOnTelegram = 'Упала выгрузка реестра карт сегодня утром cat:cards conf:0.9';
    expect(
      (await analyze({ channel: 'email', username: 'a@corp.test', request: bySubject, subject: '[Инцидент] выгрузка' }))
        .action,
    ).toBe(JIRA);
    expect((await analyze({ channel: 'direct', username: 'anna', request: byCategory })).action).toBe(JIRA);
    expect((await analyze({ channel: 'direct', username: 'anna', request: lowConfidence })).action).not.toBe(JIRA);
    expect((await analyze({ channel: 'tg', username: 'oleg', request: otherCategory })).action).not.toBe(JIRA);
    expect(
      (
        await analyze({
          channel: 'direct',
          username: 'oleg',
          request: incidentSubjectOnTelegram,
          subject: '[Инцидент] карты',
        })
      ).action,
    ).not.toBe(JIRA);
    await idle();
    expect(jira.issues.slice(issues).map((i) => i.project)).toEqual(['HW', 'FIN']);
    expect((await executionsOf(bySubject))[0]).toMatchObject({ status: 'succeeded', matched_rule_ids: [incidents] });
    expect((await executionsOf(byCategory))[0]).toMatchObject({ status: 'succeeded', matched_rule_ids: [payments] });
    for (const text of [lowConfidence, otherCategory, incidentSubjectOnTelegram])
      expect(await executionsOf(text)).toEqual([]);

    const log = await keyed(secretary.url).get('/action-executions').query({ rule_id: payments });
    expect(log.body.executions.map((e: { request: string }) => e.request)).toEqual([byCategory]);
    for (const id of [payments, incidents]) await keyed(secretary.url).delete(`/rules/${id}`);
  });
});

describe('unclear requests', () => {
  it('on every channel the answer is the clarifying question and no action runs, whatever the rules say', async () => {
    const rules = [
      await createRule({ name: 'catch-all', priority: 1, effects: { action: JIRA } }),
      await createRule({
        name: 'payments',
        priority: 2,
        conditions: { category: 'payments' },
        effects: { action: JIRA },
      }),
      await createRule({
        name: 'opted in',
        priority: 3,
        conditions: { when_unclear: true },
        effects: { action: JIRA },
      }),
    ];
    const issues = jira.issues.length;
    const sent = communicator.sent.length;
    for (const [channel, username] of [
      ['email', 'anna@corp.test'],
      ['tg', 'anna_tg'],
      ['direct', 'anna'],
    ] as const) {
      const text = `Платёж ${channel} cat:payments conf:0.99`; // under 5 words: the guesser asks
      const res = await analyze({
        channel,
        username,
        request: text,
        ...(channel === 'email' ? { subject: 'Платёж' } : {}),
      });
      expect(res).toMatchObject({ is_enough: false, action: CLARIFY, question: expect.stringMatching(/^Уточните/) });
      expect(res.response).toBe(res.question); // the explanation is the question (the seed's example)
      expect(await executionsOf(text)).toEqual([]);
      const row = await analysisRow(text);
      expect(await secretary.db.knex('rule_matches').where('analysis_id', row.id)).toEqual([]);
    }
    await idle();
    expect(jira.issues.length).toBe(issues);
    expect(communicator.sent.length).toBe(sent);

    // A rule that opted in acts when there is a context: the guesser understood, only the analyst asked.
    const understood = 'Нужна сверка операций по кошелькам analyst:unclear cat:wallets conf:0.8';
    const res = await analyze({ channel: 'direct', username: 'anna', request: understood });
    expect(res).toMatchObject({ is_enough: false, action: JIRA });
    await idle();
    expect(jira.issues.length).toBe(issues + 1);
    expect(jira.issues.at(-1)!.descriptionText).toContain('кошельк');
    for (const id of rules) await keyed(secretary.url).delete(`/rules/${id}`);
  });
});

describe('the workflow engine’s pre-configured workflows as rules, on a labelled set of mails', () => {
  it('runs each rule on the mails it should, per the seed’s thresholds, priorities and stop_on_match', async () => {
    const ids = {
      bankruptcy: await createRule({
        name: 'Bankruptcy Alert',
        priority: 5,
        stop_on_match: true,
        conditions: { category: 'bankruptcy', min_confidence: 0.8 },
        effects: { action: JIRA, jira_project: 'OPS', require_approval: true },
      }),
      invoice: await createRule({
        name: 'Invoice Processing',
        priority: 10,
        conditions: { category: 'invoice' },
        effects: { action: JIRA, jira_project: 'FIN' },
      }),
      time: await createRule({
        name: 'Time Confirmation',
        priority: 20,
        conditions: { category: 'time_confirmation', min_confidence: 0.65 },
        effects: { action: JIRA, jira_project: 'OPS' },
      }),
      freight: await createRule({
        name: 'Freight Note Processing',
        priority: 30,
        conditions: { category: 'freight_note', min_confidence: 0.7 },
        effects: { action: JIRA, jira_project: 'HW' },
      }),
      general: await createRule({
        name: 'Low Confidence Review',
        priority: 90,
        conditions: { category: 'general', min_confidence: 0.5 },
        effects: { action: JIRA, jira_project: 'OPS', require_approval: true },
      }),
    };
    const from = new Date(Date.now() - 1000).toISOString();
    const labelled: Array<[string, string, keyof typeof ids | null]> = [
      ['Счёт номер 1001 от поставщика оборудования', 'cat:invoice conf:0.95', 'invoice'],
      ['Счёт номер 1002 от поставщика канцелярии', 'cat:invoice conf:0.65', null],
      ['Счёт номер 1003 за аренду офиса', 'cat:invoice conf:0.70', 'invoice'],
      ['Подтверждаю часы работы за прошлую неделю', 'cat:time_confirmation conf:0.66', 'time'],
      ['Подтверждаю часы работы за эту неделю', 'cat:time_confirmation conf:0.60', null],
      ['Накладная на доставку серверов в офис', 'cat:freight_note conf:0.71', 'freight'],
      ['Контрагент объявлен банкротом решением суда', 'cat:bankruptcy conf:0.85', 'bankruptcy'],
      ['Возможное банкротство контрагента по слухам', 'cat:bankruptcy conf:0.75', null],
      ['Письмо без особой темы от партнёра', 'cat:general conf:0.55', 'general'],
      ['Ещё одно письмо без особой темы', 'cat:general conf:0.40', null],
    ];
    for (const [i, [text, labels]] of labelled.entries()) {
      await analyze({
        channel: 'email',
        username: `vendor${i}@partner.test`,
        request: `${text} ${labels}`,
        subject: text,
      });
    }
    await idle();
    const stats = await keyed(secretary.url).get('/rules/stats').query({ from });
    expect(openapi.responseProblems('getRuleStats', 200, stats.body)).toEqual([]);
    const byId = Object.fromEntries(stats.body.rules.map((r: { rule_id: number }) => [r.rule_id, r]));
    for (const [name, id] of Object.entries(ids)) {
      const expected = labelled.filter(([, , rule]) => rule === name).length;
      expect(byId[id], name).toMatchObject({ matches: expected, executions: expected });
    }
    expect(byId[ids.invoice]).toMatchObject({ succeeded: 2, failed: 0, success_rate: 1 });
    expect(byId[ids.bankruptcy]).toMatchObject({ in_progress: 1, success_rate: null });
  });
});
