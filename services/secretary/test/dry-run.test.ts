// Dry runs of /analyze-request: the real secretary with its actions wired as main.ts wires them (routing rules,
// the outbox worker, the Jira client against the fake Jira, the communicator client against a fake /send), the
// real guesser and system analyst over a fake LLM. A request a rule sends to Jira is decided in full, and
// nothing happens: no row anywhere, no Jira call, no /send. The same request for real creates the issue.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ACTION_CLARIFY } from '@workemon/contracts';
import { createLogger, createMetrics } from '@workemon/service-kit';
import { waitFor } from '@workemon/testkit';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { ACTION_JIRA } from '../src/actions/action-policy.js';
import { seesDirectory } from '../src/dry-run.js';
import { createActions, type Actions } from '../src/actions/actions-wiring.js';
import { loadConfig } from '../src/config.js';
import { createDirectoryRepository } from '../src/directory-repository.js';
import { startFakeCommunicator, type FakeCommunicator } from './actions/actions-harness.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

let database: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let jira: FakeJira;
let communicator: FakeCommunicator;
let actions: Actions;
let secretary: Secretary;
let ruleId: number;
const ruleIds: Record<string, number> = {};

// Directory data a client key must not see in a dry run (the department's list, its colleague's Telegram id).
const MAILING_LIST = 'finance-all@corp.test';
const TELEGRAM_CONTACT = '424242';
// No "отчёт" in them: other rules route them to the department's list and to its colleague on Telegram.
const TO_LIST = 'Разошлите всем в департаменте напоминание про сверку';
const TO_COLLEAGUE = 'Передайте коллеге вопрос про сверку платежей';

// No "задач"/"jira" in it: the analyst proposes a reply, the routing rule turns it into a Jira task.
const REQUEST = 'Нужен отчёт по продажам за прошлый месяц для совета директоров';

const TABLES = ['conversations', 'messages', 'analyses', 'analysis_llm_calls', 'action_executions', 'rule_matches'];

async function rowCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES) counts[table] = Number((await secretary.db.knex(table).count({ n: '*' }))[0]!['n']);
  return counts;
}

function expectContract(operationId: string, res: { status: number; body: unknown }) {
  expect(openapi.responseProblems(operationId, res.status, res.body)).toEqual([]);
}

beforeAll(async () => {
  database = await createTestDatabase(inject('postgresUrl'), 'secretary_dry_run');
  llm = await startLlmServices();
  jira = await startFakeJira({ flavor: 'cloud', email: 'bot@corp.test', token: 'jira-token', projects: ['OPS'] });
  communicator = await startFakeCommunicator();
  const config = loadConfig({
    DATABASE_URL: database.url,
    JIRA_BASE_URL: jira.url,
    JIRA_EMAIL: 'bot@corp.test',
    JIRA_API_TOKEN: 'jira-token',
    JIRA_TIMEOUT_MS: '2000',
    ACTION_RETRY_BASE_MS: '20',
    ACTION_RETRY_MAX_MS: '100',
    ACTION_WORKER_INTERVAL_MS: '30',
    COMMUNICATOR_URL: communicator.url,
  });
  const logger = createLogger({ service: 'secretary', level: 'error' });
  logger.silent = true;
  // The secretary's database first (the harness migrates it), then the actions on the same knex.
  secretary = await startSecretary({
    databaseUrl: database.url,
    guesserUrl: llm.guesserUrl,
    analystUrl: llm.analystUrl,
    overrides: {
      decide: (proposal, context) => actions.hooks.decide(proposal, context),
      onDecisionRecorded: (trx, recorded) => actions.hooks.onDecisionRecorded(trx, recorded),
      previewActions: (context) => actions.hooks.preview(context),
      nudgeActions: () => actions?.worker.nudge(),
      maxResponseChars: 4000,
    },
  });
  const directory = createDirectoryRepository(secretary.db.knex);
  actions = createActions({
    db: secretary.db.knex,
    settings: config.actions,
    communicator: { baseUrl: communicator.url },
    resolveDepartment: (name) => directory.getDepartment(name),
    logger,
    metrics: createMetrics('secretary'),
  });
  actions.worker.start();

  const admin = keyed(secretary.url, 'admin');
  expect(
    (
      await admin
        .put('/departments/Finance')
        .send({ jira_project_key: 'OPS', mailing_list: MAILING_LIST, telegram_contact: TELEGRAM_CONTACT })
    ).status,
  ).toBeLessThan(300);
  expect((await admin.put('/departments/Legal').send({})).status).toBeLessThan(300);
  expect((await admin.put('/employees/petr').send({ department: 'Legal', position: 'юрист' })).status).toBeLessThan(
    300,
  );
  expect(
    (await admin.put('/employees/anna').send({ department: 'Finance', position: 'аналитик', email: 'anna@corp.test' }))
      .status,
  ).toBeLessThan(300);
  const rule = await admin.post('/rules').send({
    name: 'Reports → Jira',
    priority: 10,
    conditions: { request_pattern: 'отчёт' },
    effects: { action: ACTION_JIRA, jira_project: 'OPS' },
  });
  expect(rule.status).toBe(201);
  ruleId = rule.body.id as number;
  for (const [name, pattern, action] of [
    ['Reminders → list', 'Разошлите', 'написать в рассылку департамента'],
    ['Questions → colleague', 'коллеге', 'написать в telegram сотруднику'],
  ] as const) {
    const created = await admin
      .post('/rules')
      .send({ name, priority: 20, conditions: { request_pattern: pattern }, effects: { action } });
    expect(created.status).toBe(201);
    ruleIds[name] = created.body.id as number;
  }
});

afterAll(async () => {
  await actions?.worker.stop();
  await secretary?.close();
  await communicator?.close();
  await jira?.close();
  await llm?.close();
  await database?.drop();
});

describe('dry_run on /analyze-request', () => {
  it('returns the whole decision and what would run to an admin key, and does nothing at all', async () => {
    const before = await rowCounts();
    const statsBefore = (await keyed(secretary.url, 'admin').get('/stats')).body;
    const res = await keyed(secretary.url, 'admin')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'anna', request: REQUEST, dry_run: true });
    expect(res.status).toBe(200);
    expectContract('analyzeRequestPost', res);
    expect(res.body).toMatchObject({ dry_run: true, is_enough: true, action: ACTION_JIRA, request: REQUEST });
    expect(res.body.response).toMatch(/Выполняю: создать задачу в Jira/);
    expect(res.body.would_execute).toEqual([
      {
        action: ACTION_JIRA,
        status: 'pending',
        rules: [{ id: ruleId, name: 'Reports → Jira' }],
        target: 'OPS',
        reason: null,
        text: null,
      },
      {
        action: 'ответить сообщением',
        status: 'pending',
        rules: [],
        target: 'anna',
        reason: null,
        text: res.body.response,
      },
    ]);

    // Give a worker every chance to pick something up: there is nothing to pick up.
    for (let i = 0; i < 5; i += 1) await actions.worker.runOnce();
    await new Promise((r) => setTimeout(r, 200));
    expect(await rowCounts()).toEqual(before);
    expect(jira.requests).toHaveLength(0);
    expect(jira.issues).toHaveLength(0);
    expect(communicator.calls).toBe(0);
    expect((await keyed(secretary.url, 'admin').get('/stats')).body).toEqual(statsBefore);
  });

  it('shows a client key the action and the kind of target only: no Jira project, list address, Telegram id, rule', async () => {
    const dry = (key: 'client' | 'admin', username: string, text: string) =>
      keyed(secretary.url, key)
        .post('/analyze-request')
        .send({ channel: 'direct', username, request: text, dry_run: true });
    const cases = [
      { username: 'anna', text: REQUEST, action: ACTION_JIRA, status: 'pending', target: 'Jira project' },
      {
        username: 'anna',
        text: TO_LIST,
        action: 'написать в рассылку департамента',
        status: 'pending',
        target: 'department mailing list',
      },
      {
        username: 'anna',
        text: TO_COLLEAGUE,
        action: 'написать в telegram сотруднику',
        status: 'pending',
        target: 'responsible colleague (Telegram)',
      },
    ];
    for (const c of cases) {
      const res = await dry('client', c.username, c.text);
      expect(res.status, c.text).toBe(200);
      expectContract('analyzeRequestPost', res);
      expect(res.body.action, c.text).toBe(c.action);
      expect(res.body.would_execute[0], c.text).toEqual({
        action: c.action,
        status: c.status,
        rules: [],
        target: c.target,
        reason: null,
        text: null,
      });
      // The reply goes back to the caller's own sender: that target is the caller's input, shown as is.
      expect(res.body.would_execute[1]).toMatchObject({ target: c.username, rules: [] });
      const shown = JSON.stringify(res.body);
      for (const secret of ['OPS', MAILING_LIST, TELEGRAM_CONTACT, 'Reports → Jira', 'Reminders', 'Questions'])
        expect(shown, c.text).not.toContain(secret);
    }
    // An admin key sees the same plans in full.
    const list = await dry('admin', 'anna', TO_LIST);
    expect(list.body.would_execute[0]).toMatchObject({
      target: MAILING_LIST,
      rules: [{ id: ruleIds['Reminders → list'], name: 'Reminders → list' }],
    });
    const colleague = await dry('admin', 'anna', TO_COLLEAGUE);
    expect(colleague.body.would_execute[0]).toMatchObject({ target: TELEGRAM_CONTACT });
  });

  it("tells a client key that an action would be skipped, not the operator's reason", async () => {
    // Legal has no Telegram contact: the action would be skipped, for a reason that names the directory.
    const admin = await keyed(secretary.url, 'admin')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'petr', request: TO_COLLEAGUE, dry_run: true });
    expect(admin.body.would_execute[0]).toMatchObject({ status: 'skipped', reason: expect.any(String) });
    const operatorReason = admin.body.would_execute[0].reason as string;
    const client = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'petr', request: TO_COLLEAGUE, dry_run: true });
    expect(client.status).toBe(200);
    expectContract('analyzeRequestPost', client);
    expect(client.body.would_execute[0]).toMatchObject({ status: 'skipped', rules: [], target: null });
    expect(client.body.would_execute[0].reason).toMatch(/would not be carried out/);
    expect(client.body.would_execute[0].reason).not.toBe(operatorReason);
  });

  it('the same request for real creates the Jira issue (the dry run above would have)', async () => {
    const res = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'anna', request: REQUEST });
    expect(res.status).toBe(200);
    expect(res.body.dry_run).toBeUndefined();
    expect(res.body.would_execute).toBeUndefined();
    expect(res.body.action).toBe(ACTION_JIRA);
    await waitFor(() => jira.issues.length === 1, { what: 'the Jira issue' });
    expect(jira.issues[0]!.project).toBe('OPS');
    expect((await rowCounts())['action_executions']).toBe(1);
  });

  it('stores no conversation a later real request could continue', async () => {
    // A short request makes the guesser ask a question (a real one would leave the conversation awaiting an answer).
    const dry = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'boris', request: 'отчёт', dry_run: true });
    expect(dry.status).toBe(200);
    expect(dry.body.action).toBe(ACTION_CLARIFY);
    expect(dry.body.would_execute).toEqual([
      { action: ACTION_CLARIFY, status: 'pending', rules: [], target: 'boris', reason: null, text: dry.body.question },
    ]);
    // The answer to that question, sent for real, is a new request on its own, not a follow-up.
    const answer = 'по продажам';
    const real = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'boris', request: answer });
    expect(real.status).toBe(200);
    expect(real.body.request).toBe(answer);
    const conversations = await secretary.db.knex('conversations').where({ sender: 'boris' });
    expect(conversations).toHaveLength(1);
  });

  it('takes dry_run=true in the query of GET too', async () => {
    const before = await rowCounts();
    const res = await keyed(secretary.url, 'client')
      .get('/analyze-request')
      .query({ channel: 'direct', username: 'anna', request: REQUEST, dry_run: 'true' });
    expect(res.status).toBe(200);
    expectContract('analyzeRequestGet', res);
    expect(res.body).toMatchObject({ dry_run: true, action: ACTION_JIRA });
    expect(res.body.would_execute[0]).toMatchObject({ action: ACTION_JIRA, target: 'Jira project' });
    expect(await rowCounts()).toEqual(before);
    expect(jira.requests).toHaveLength(1);
  });

  it('refuses a dry_run that is not a boolean with 400, changing nothing', async () => {
    const before = await rowCounts();
    const res = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'anna', request: REQUEST, dry_run: 'yes' });
    expect(res.status).toBe(400);
    expectContract('analyzeRequestPost', res);
    expect(res.body.message).toMatch(/dry_run/);
    expect(await rowCounts()).toEqual(before);
  });
});

describe('who sees the directory in a dry run (seesDirectory)', () => {
  it('admin and service keys do, client keys do not; a keyless caller only while admin routes are open too', () => {
    const keyed = (keyClass: 'client' | 'admin' | 'service') => ({ keyClass, name: keyClass, keyId: 'sha256:0' });
    expect(seesDirectory(keyed('admin'), [])).toBe(true);
    expect(seesDirectory(keyed('service'), [])).toBe(true);
    expect(seesDirectory(keyed('client'), [])).toBe(false);
    const anonymous = { keyClass: 'client' as const, name: 'anonymous', anonymous: true as const };
    expect(seesDirectory(anonymous, ['client', 'admin', 'service'])).toBe(true);
    expect(seesDirectory(anonymous, ['client'])).toBe(false);
    expect(seesDirectory(undefined, ['client', 'admin'])).toBe(false);
  });
});
