import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import { waitFor } from '@workemon/testkit';
import type { Action } from '@workemon/contracts';
import { createActionHooks, type DecisionContextLike } from '../../src/actions/action-hooks.js';
import { ACTION_JIRA, ACTION_MAILING_LIST, parseActionPolicy } from '../../src/actions/action-policy.js';
import { createCommunicatorClient } from '../../src/actions/communicator-client.js';
import type { DepartmentTarget } from '../../src/actions/executors.js';
import { createJiraClient } from '../../src/actions/jira-client.js';
import { createActionWorker } from '../../src/actions/worker.js';
import { evaluateRules, type RoutingRule } from '../../src/rules/rules.js';
import {
  buildActionsApp,
  keyedApp,
  createActionsDatabase,
  expectContract,
  fastWorker,
  startFakeCommunicator,
  testLogger,
  type FakeCommunicator,
  type TestDatabase,
} from '../actions/actions-harness.js';

const REPLY: Action = 'ответить сообщением';

function rule(id: number, overrides: Partial<RoutingRule> = {}): RoutingRule {
  return {
    id,
    name: `r${id}`,
    priority: 100,
    enabled: true,
    stop_on_match: false,
    conditions: {},
    effects: {},
    ...overrides,
  };
}
const ctx = {
  channel: 'email' as const,
  department: 'Finance',
  sender: 'faktura@vendor.dk',
  request: 'Faktura 123',
  isEnough: true,
  action: REPLY,
  context: 'Бухгалтерия: счёт поставщика',
};

describe('evaluateRules', () => {
  it('runs by priority then id; the first rule that sets an effect wins; stop_on_match ends', () => {
    const rules = [
      rule(5, { priority: 20, effects: { action: ACTION_MAILING_LIST, department: 'Accounting' } }),
      rule(3, { priority: 10, conditions: { sender_pattern: '@vendor\\.dk$' }, effects: { action: ACTION_JIRA } }),
      rule(4, { priority: 10, effects: { jira_project: 'FIN', require_approval: true }, stop_on_match: true }),
      rule(1, { priority: 30, effects: { action: REPLY } }),
    ];
    expect(evaluateRules(rules, ctx)).toEqual({
      action: ACTION_JIRA,
      actionFromRule: true,
      jiraProject: 'FIN',
      requireApproval: true,
      matchedRuleIds: [3, 4],
    });
    // Without the stop, the later rule still matches and fills the department, but cannot change the action.
    rules[2]!.stop_on_match = false;
    expect(evaluateRules(rules, ctx)).toMatchObject({
      action: ACTION_JIRA,
      department: 'Accounting',
      matchedRuleIds: [3, 4, 5, 1],
    });
  });

  it('matches every condition; disabled rules and non-matching ones are ignored', () => {
    const rules = [
      rule(1, { enabled: false, effects: { action: ACTION_JIRA } }),
      rule(2, { conditions: { channel: 'tg' }, effects: { action: ACTION_JIRA } }),
      rule(3, {
        conditions: { department: 'finance', request_pattern: 'faktura\\s+\\d+', is_enough: true, action: REPLY },
      }),
      rule(4, { conditions: { is_enough: false } }),
      rule(5, { conditions: { action: ACTION_JIRA } }),
    ];
    expect(evaluateRules(rules, ctx)).toEqual({ action: REPLY, requireApproval: false, matchedRuleIds: [3] });
    expect(evaluateRules([], ctx)).toEqual({ action: REPLY, requireApproval: false, matchedRuleIds: [] });
  });
});

let db: TestDatabase;
let jira: FakeJira;
let communicator: FakeCommunicator;

beforeAll(async () => {
  db = await createActionsDatabase(inject('postgresUrl'));
  jira = await startFakeJira({ flavor: 'cloud', email: 'bot@x.test', token: 't', projects: ['OPS', 'FIN'] });
  communicator = await startFakeCommunicator();
});

afterAll(async () => {
  await jira?.close();
  await communicator?.close();
  await db?.close();
});

describe('/rules', () => {
  it('refuses a rule id that is not a positive integer with 400 naming it, never 500', async () => {
    const app = buildActionsApp(db.knex);
    for (const id of ['abc', '1.5', '99999999999999999999', '-1', '0', '%20']) {
      for (const [method, path] of [
        ['get', `/rules/${id}`],
        ['put', `/rules/${id}`],
        ['delete', `/rules/${id}`],
      ] as const) {
        const agent = keyedApp(app);
        const call = method === 'get' ? agent.get(path) : method === 'put' ? agent.put(path) : agent.delete(path);
        const res = await call.send(method === 'put' ? { name: 'x', conditions: {}, effects: {} } : undefined);
        expect(res.status, `${method} ${path}`).toBe(400);
        expect(res.body.message, `${method} ${path}`).toContain("'id'");
      }
    }
  });

  it('creates, reads, replaces, toggles and deletes a rule', async () => {
    const app = buildActionsApp(db.knex);
    const created = await keyedApp(app)
      .post('/rules')
      .send({
        name: 'Invoices to Jira',
        priority: 10,
        conditions: { channel: 'email', sender_pattern: '@vendor\\.dk$' },
        effects: { action: ACTION_JIRA, jira_project: 'FIN' },
        stop_on_match: true,
      });
    expectContract('createRule', created);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Invoices to Jira', priority: 10, enabled: true, stop_on_match: true });
    const id = created.body.id as number;

    const got = await keyedApp(app).get(`/rules/${id}`);
    expectContract('getRule', got);
    expect(got.body.effects).toEqual({ action: ACTION_JIRA, jira_project: 'FIN' });

    const replaced = await keyedApp(app)
      .put(`/rules/${id}`)
      .send({ name: 'Invoices', priority: 5, effects: { require_approval: true } });
    expectContract('replaceRule', replaced);
    expect(replaced.body).toMatchObject({
      name: 'Invoices',
      priority: 5,
      conditions: {},
      effects: { require_approval: true },
      stop_on_match: false,
    });

    const toggled = await keyedApp(app).post(`/rules/${id}/toggle`);
    expectContract('toggleRule', toggled);
    expect(toggled.body.enabled).toBe(false);
    const enabledOnly = await keyedApp(app).get('/rules').query({ enabled: true });
    expectContract('listRules', enabledOnly);
    expect(enabledOnly.body.rules.map((r: { id: number }) => r.id)).not.toContain(id);

    const deleted = await keyedApp(app).delete(`/rules/${id}`);
    expect(deleted.status).toBe(204);
    const gone = await keyedApp(app).get(`/rules/${id}`);
    expectContract('getRule', gone);
    expect(gone.status).toBe(404);
  });

  it.each([
    [
      { name: 'x', conditions: { sender_pattern: '([a-z' } },
      /^Parameter 'conditions\.sender_pattern' is not a valid regular expression/,
    ],
    [
      { name: 'x', conditions: { request_pattern: '(?<=счёт )\\d+' } },
      /^Parameter 'conditions\.request_pattern' uses what the linear-time matcher \(RE2\) does not run/,
    ],
    [
      { name: 'x', conditions: { request_pattern: 'a'.repeat(301) } },
      /^Parameter 'conditions\.request_pattern' must be at most 300 characters/,
    ],
    [{ name: 'x', effects: { action: 'позвонить' } }, /^Parameter 'effects\.action' must be one of/],
    [{ name: 'x', conditions: { action: 'nope' } }, /^Parameter 'conditions\.action' must be one of/],
    [{ name: 'x', conditions: { channel: 'slack' } }, /^Parameter 'conditions\.channel' must be one of/],
    [
      { name: 'x', effects: { jira_project: 'fin-1' } },
      /^Parameter 'effects\.jira_project' must be a Jira project key/,
    ],
    [{ name: 'x', conditions: { colour: 'red' } }, /^Parameter 'conditions\.colour' is not allowed/],
    [{ priority: 1 }, /^Parameter 'name' is required/],
    [{ name: 'x', priority: 1.5 }, /^Parameter 'priority' must be a whole number/],
  ])('400 naming the field: %j', async (body, message) => {
    const app = buildActionsApp(db.knex);
    const res = await keyedApp(app).post('/rules').send(body);
    expectContract('createRule', res);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
    const put = await keyedApp(app).put('/rules/1').send(body);
    expect(put.status).toBe(400);
  });
});

describe('rules in the decision, and their statistics', () => {
  it('records matches per analysis and counts executions and success per rule', async () => {
    const app = buildActionsApp(db.knex);
    const create = async (body: object) => (await keyedApp(app).post('/rules').send(body)).body.id as number;
    const invoices = await create({
      name: 'Vendor invoices → FIN Jira',
      priority: 10,
      conditions: { sender_pattern: '@vendor\\.dk$', request_pattern: 'faktura' },
      effects: { action: ACTION_JIRA, jira_project: 'FIN' },
      stop_on_match: true,
    });
    const urgent = await create({
      name: 'Urgent → approval',
      priority: 20,
      conditions: { request_pattern: 'срочно' },
      effects: { require_approval: true },
    });
    const tagAll = await create({ name: 'Email seen', priority: 30, conditions: { channel: 'email' } });

    const departments: Record<string, DepartmentTarget> = {
      Accounting: { name: 'Accounting', jira_project_key: 'OPS', mailing_list: 'acc@x.test' },
    };
    const hooks = createActionHooks({
      db: db.knex,
      policy: parseActionPolicy(''),
      jira: { configured: true },
      resolveDepartment: async (name) => departments[name],
    });
    let analysisId = 1000;
    const decideOne = async (channel: 'email' | 'tg', sender: string, text: string, action: Action) => {
      const context: DecisionContextLike = {
        channel,
        sender,
        employee: {
          employee: { username: sender, department: 'Accounting' },
          departmentRecord: departments['Accounting']!,
        },
        conversationId: 1,
        analysisId: analysisId++,
        context: 'Бухгалтерия',
      };
      const decision = await hooks.decide(
        { is_enough: true, request: text, action, question: '', response: 'Ответ.' },
        context,
      );
      await db.knex.transaction((trx) => hooks.onDecisionRecorded(trx, { decision, context }));
      return { decision, context };
    };

    const worker = createActionWorker({
      db: db.knex,
      executors: {
        jira: createJiraClient({
          baseUrl: jira.url,
          email: 'bot@x.test',
          apiToken: 't',
          issueType: 'Task',
          timeoutMs: 2000,
        }),
        communicator: createCommunicatorClient({ baseUrl: communicator.url }),
      },
      communicator: createCommunicatorClient({ baseUrl: communicator.url }),
      settings: fastWorker,
      logger: testLogger(),
    });
    jira.failNext({ status: 400, body: { errorMessages: ['Issue type is wrong'], errors: {} } });
    const first = await decideOne('email', 'bill@vendor.dk', 'Faktura 1', REPLY); // invoices (stop) → Jira, fails (400)
    expect(first.decision.action).toBe(ACTION_JIRA);
    expect(first.decision.response).toMatch(/^Ответ\.\n\nВыполняю: создать задачу в Jira/);
    // The failure is for this execution: settle it before the next one exists (the worker runs rows concurrently,
    // and the fake Jira fails whichever create reaches it first).
    await waitFor(
      async () => {
        await worker.runOnce();
        const row = await db.knex('action_executions').where('analysis_id', first.context.analysisId).first();
        return row?.status === 'failed';
      },
      { intervalMs: 10, what: 'the first execution to fail' },
    );
    await decideOne('email', 'bill@vendor.dk', 'Faktura 2', REPLY); // invoices → Jira, succeeds
    const held = await decideOne('email', 'anna@corp.test', 'срочно нужен доступ', ACTION_MAILING_LIST); // urgent + tagAll
    expect(held.decision.response).toMatch(/ожидает согласования/);
    await decideOne('tg', 'anna', 'просто вопрос', REPLY); // no rule, no execution

    await waitFor(
      async () => {
        await worker.runOnce();
        const open = await db
          .knex('action_executions')
          .where('status', 'pending')
          .orWhere('notify_status', 'pending')
          .count({ n: '*' });
        return Number(open[0]!['n']) === 0;
      },
      { intervalMs: 10, what: 'actions to finish' },
    );
    expect(jira.issues.map((i) => i.project)).toEqual(['FIN']);

    const matches = await db.knex('rule_matches').where('analysis_id', first.context.analysisId).pluck('rule_id');
    expect(matches).toEqual([invoices]);
    const heldRow = await db.knex('action_executions').where('analysis_id', held.context.analysisId).first();
    expect(heldRow).toMatchObject({
      status: 'awaiting_approval',
      action: ACTION_MAILING_LIST,
      matched_rule_ids: [urgent, tagAll],
    });

    const stats = await keyedApp(app).get('/rules/stats');
    expectContract('getRuleStats', stats);
    const byId = Object.fromEntries(stats.body.rules.map((r: { rule_id: number }) => [r.rule_id, r]));
    expect(byId[invoices]).toMatchObject({
      matches: 2,
      executions: 2,
      succeeded: 1,
      failed: 1,
      skipped: 0,
      in_progress: 0,
      success_rate: 0.5,
    });
    expect(byId[urgent]).toMatchObject({
      matches: 1,
      executions: 1,
      succeeded: 0,
      failed: 0,
      in_progress: 1,
      success_rate: null,
    });
    expect(byId[tagAll]).toMatchObject({ matches: 1, executions: 1, in_progress: 1 });
    expect(byId[tagAll].last_matched_at).toBeTruthy();

    const log = await keyedApp(app).get('/action-executions').query({ analysis_id: first.context.analysisId });
    expectContract('listActionExecutions', log);
    expect(log.body.executions[0]).toMatchObject({ status: 'failed', matched_rule_ids: [invoices] });
    expect(log.body.executions[0].error).toContain('Issue type is wrong');
  });
});
