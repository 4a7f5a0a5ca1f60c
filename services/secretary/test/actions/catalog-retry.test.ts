// Issue 16: the action catalog (GET /actions), the re-run of a failed execution (POST …/retry) against the fake
// Jira, every filter of the execution log with its cursor, unknown filters → 400, and rule statistics per
// window and period.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import request from 'supertest';
import express from 'express';
import { ACTIONS } from '@workemon/contracts';
import { listen, waitFor, type Listening } from '@workemon/testkit';
import { bearer } from '@workemon/testkit/api-keys';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import { catalogSourceFor, type ActionCatalogEntry } from '../../src/actions/action-catalog.js';
import {
  ACTION_JIRA,
  ACTION_MAILING_LIST,
  ACTION_TELEGRAM_EMPLOYEE,
  parseActionPolicy,
  type ActionPolicy,
} from '../../src/actions/action-policy.js';
import { createCommunicatorClient } from '../../src/actions/communicator-client.js';
import {
  createExecutionRepository,
  type ActionExecution,
  type EnqueueInput,
} from '../../src/actions/execution-repository.js';
import { createJiraClient } from '../../src/actions/jira-client.js';
import { createActionWorker } from '../../src/actions/worker.js';
import { loadConfig } from '../../src/config.js';
import {
  buildActionsApp,
  createActionsDatabase,
  expectContract,
  fastWorker,
  keyedApp,
  startFakeCommunicator,
  testLogger,
  type FakeCommunicator,
  type TestDatabase,
} from './actions-harness.js';

let db: TestDatabase;
let jira: FakeJira;
let communicator: FakeCommunicator;
let health: Listening & { checks: Record<string, { status: string; latency_ms: number; detail?: string }> };
let analysisSeq = 5000;

async function startFakeCommunicatorHealth() {
  const checks: Record<string, { status: string; latency_ms: number; detail?: string }> = {};
  const app = express();
  // The communicator's GET /health shape (503 when its secretary check is down, still with the checks).
  app.get('/health', (_req, res) => {
    res.status(503).json({ status: 'down', service: 'communicator', version: 'fake', uptime_s: 1, checks });
  });
  return Object.assign(await listen(app), { checks });
}

beforeAll(async () => {
  db = await createActionsDatabase(inject('postgresUrl'));
  jira = await startFakeJira({ flavor: 'cloud', email: 'bot@x.test', token: 'tok', projects: ['OPS'] });
  communicator = await startFakeCommunicator();
  health = await startFakeCommunicatorHealth();
});
afterAll(async () => {
  await health?.close();
  await communicator?.close();
  await jira?.close();
  await db?.close();
});

const ops = { name: 'Ops', jira_project_key: 'OPS', telegram_contact: '@ops_duty', mailing_list: 'ops@corp.test' };

async function enqueue(overrides: Partial<EnqueueInput> = {}, policy: ActionPolicy = parseActionPolicy('')) {
  const enqueued = await db.knex.transaction((trx) =>
    createExecutionRepository(trx).enqueue({
      analysisId: analysisSeq++,
      requester: 'ivanov',
      channel: 'tg',
      action: ACTION_JIRA,
      request: 'Не работает выгрузка реестра платежей',
      context: 'Платежи: выгрузка реестра',
      analysis: 'Проверить задание выгрузки.',
      department: ops,
      reply: { to: '123' },
      policy,
      jira: { configured: true },
      ...overrides,
    }),
  );
  return enqueued!.execution;
}

function worker(options: { maxAttempts?: number; jiraTimeoutMs?: number } = {}) {
  return createActionWorker({
    db: db.knex,
    executors: {
      jira: createJiraClient({
        baseUrl: jira.url,
        email: 'bot@x.test',
        apiToken: 'tok',
        issueType: 'Task',
        timeoutMs: options.jiraTimeoutMs ?? 2000,
      }),
      communicator: createCommunicatorClient({ baseUrl: communicator.url }),
    },
    communicator: createCommunicatorClient({ baseUrl: communicator.url }),
    settings: { ...fastWorker, maxAttempts: options.maxAttempts ?? fastWorker.maxAttempts },
    logger: testLogger(),
  });
}

async function settle(w: ReturnType<typeof worker>, id: number): Promise<ActionExecution> {
  const app = buildActionsApp(db.knex);
  return waitFor(
    async () => {
      await w.runOnce();
      const res = await keyedApp(app).get(`/action-executions/${id}`);
      const e = res.body as ActionExecution;
      return ['succeeded', 'failed', 'skipped'].includes(e.status) && e.notification.status !== 'pending'
        ? e
        : undefined;
    },
    { intervalMs: 20, timeoutMs: 15_000, what: `execution ${id} to finish` },
  );
}

describe('GET /actions', () => {
  const byAction = (body: { actions: ActionCatalogEntry[] }) =>
    Object.fromEntries(body.actions.map((a) => [a.action, a]));

  it('without Jira: every contract action, Jira not configured, channels as the communicator reports them', async () => {
    health.checks['telegram'] = { status: 'disabled', latency_ms: 0, detail: 'TELEGRAM_BOT_TOKEN is not set' };
    health.checks['smtp'] = { status: 'ok', latency_ms: 3 };
    const config = loadConfig({ ACTION_POLICY: 'mailing_list=approve', COMMUNICATOR_URL: health.url });
    const app = buildActionsApp(db.knex, {
      catalog: catalogSourceFor(config.actions, { baseUrl: config.communicatorUrl }),
    });
    const res = await keyedApp(app).get('/actions');
    expectContract('listActions', res);
    expect(res.status).toBe(200);
    expect(res.body.actions.map((a: ActionCatalogEntry) => a.action)).toEqual([...ACTIONS]);
    const catalog = byAction(res.body);
    expect(catalog[ACTION_JIRA]).toMatchObject({ key: 'jira', side_effect: true, configured: false, policy: 'auto' });
    expect(catalog[ACTION_JIRA]!.detail).toContain('JIRA_BASE_URL');
    expect(catalog[ACTION_JIRA]!.parameters.map((p) => p.name)).toContain('project');
    expect(catalog[ACTION_TELEGRAM_EMPLOYEE]).toMatchObject({ key: 'telegram', configured: false, policy: 'auto' });
    expect(catalog[ACTION_MAILING_LIST]).toMatchObject({ key: 'mailing_list', configured: true, policy: 'approve' });
    expect(catalog['уточнить']).toMatchObject({ key: 'clarify', side_effect: false, configured: true, policy: 'auto' });
  });

  it('with Jira: configured, its flavor and default project, the policy; no secret in the answer', async () => {
    health.checks['telegram'] = { status: 'ok', latency_ms: 1, detail: '@workemon_bot' };
    const config = loadConfig({
      JIRA_BASE_URL: jira.url,
      JIRA_EMAIL: 'bot@x.test',
      JIRA_API_TOKEN: 'secret-jira-token',
      JIRA_PROJECT_KEY: 'OPS',
      ACTION_POLICY: 'jira=approve,telegram=off',
      COMMUNICATOR_URL: health.url,
    });
    const app = buildActionsApp(db.knex, {
      catalog: catalogSourceFor(config.actions, { baseUrl: config.communicatorUrl }),
    });
    const res = await keyedApp(app).get('/actions');
    expectContract('listActions', res);
    const catalog = byAction(res.body);
    expect(catalog[ACTION_JIRA]).toMatchObject({ configured: true, policy: 'approve' });
    expect(catalog[ACTION_JIRA]!.detail).toBe('Jira Cloud, default project OPS');
    expect(catalog[ACTION_TELEGRAM_EMPLOYEE]).toMatchObject({ configured: true, policy: 'off' });
    expect(JSON.stringify(res.body)).not.toContain('secret-jira-token');
  });

  it('reports channels as not configured when the communicator cannot be reached', async () => {
    const config = loadConfig({ COMMUNICATOR_URL: 'http://127.0.0.1:9' });
    const app = buildActionsApp(db.knex, {
      catalog: catalogSourceFor(config.actions, { baseUrl: config.communicatorUrl }),
    });
    const res = await keyedApp(app).get('/actions');
    expectContract('listActions', res);
    expect(byAction(res.body)[ACTION_MAILING_LIST]!.configured).toBe(false);
    expect(byAction(res.body)[ACTION_MAILING_LIST]!.detail).toMatch(/^communicator not reachable/);
  });

  it('rejects an unknown query parameter', async () => {
    const res = await keyedApp(buildActionsApp(db.knex)).get('/actions').query({ configured: 'true' });
    expectContract('listActions', res);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/^Parameter 'configured' is not a parameter of this operation/);
  });
});

describe('POST /action-executions/{id}/retry', () => {
  it('re-runs a Jira create that failed after Jira made the issue: the label search adopts it, one issue', async () => {
    const before = jira.issues.length;
    // Jira creates the issue but answers after the client's deadline; with one attempt allowed the action fails.
    jira.holdNext(1500);
    const execution = await enqueue();
    const failed = await settle(worker({ maxAttempts: 1, jiraTimeoutMs: 500 }), execution.id);
    expect(failed.status).toBe('failed');
    expect(jira.issues.length).toBe(before + 1);
    expect(communicator.sent.filter((m) => m.idempotency_key === `action-${execution.id}-outcome`)).toHaveLength(1);

    let nudged = 0;
    const app = buildActionsApp(db.knex, { onRetried: () => (nudged += 1) });
    const retried = await keyedApp(app).post(`/action-executions/${execution.id}/retry`);
    expectContract('retryActionExecution', retried);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ id: execution.id, status: 'pending', error: null, retries: 1 });
    expect(nudged).toBe(1);

    const done = await settle(worker({ maxAttempts: 1 }), execution.id);
    expect(done.status).toBe('succeeded');
    expect(done.result).toMatchObject({ issue_key: jira.issues.at(-1)!.key, adopted: true });
    expect(jira.issues.length).toBe(before + 1);
    // The requester hears the new outcome: a message of its own, not swallowed as a repeat of the failure notice.
    const outcome = communicator.sent.find((m) => m.idempotency_key === `action-${execution.id}-outcome-retry1`);
    expect(outcome?.text).toContain(jira.issues.at(-1)!.key);
  });

  it('re-runs a Jira create Jira refused (400) once the cause is fixed: exactly one issue', async () => {
    const before = jira.issues.length;
    jira.failNext({ status: 400, body: { errorMessages: [], errors: { issuetype: 'Specify a valid issue type' } } });
    const execution = await enqueue({ channel: 'direct' });
    const failed = await settle(worker(), execution.id);
    expect(failed).toMatchObject({ status: 'failed', attempts: 1 });
    expect(failed.error).toContain('Specify a valid issue type');

    const app = buildActionsApp(db.knex);
    expect((await keyedApp(app).post(`/action-executions/${execution.id}/retry`)).status).toBe(200);
    const done = await settle(worker(), execution.id);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 2, retries: 1 });
    expect(jira.issues.length).toBe(before + 1);
    // A second retry of a succeeded execution is refused: nothing runs twice.
    const again = await keyedApp(app).post(`/action-executions/${execution.id}/retry`);
    expectContract('retryActionExecution', again);
    expect(again.status).toBe(409);
    expect(again.body.message).toContain('only a failed execution can be retried');
    expect(jira.issues.length).toBe(before + 1);
  });

  it('404 for an unknown execution, 409 for one awaiting approval, 400 for a bad id', async () => {
    const app = buildActionsApp(db.knex);
    const missing = await keyedApp(app).post('/action-executions/999999/retry');
    expectContract('retryActionExecution', missing);
    expect(missing.status).toBe(404);
    const held = await enqueue({}, parseActionPolicy('jira=approve'));
    const conflict = await keyedApp(app).post(`/action-executions/${held.id}/retry`);
    expect(conflict.status).toBe(409);
    expect((await db.knex('action_executions').where('id', held.id).first()).status).toBe('awaiting_approval');
    const bad = await keyedApp(app).post('/action-executions/abc/retry');
    expect(bad.status).toBe(400);
  });

  it('needs an admin key: none is 401, a client key 403', async () => {
    const app = buildActionsApp(db.knex);
    const denied = await request(app).post('/action-executions/1/retry');
    expectContract('retryActionExecution', denied);
    expect(denied.status).toBe(401);
    const wrongClass = await request(app).post('/action-executions/1/retry').set(bearer('client'));
    expectContract('retryActionExecution', wrongClass);
    expect(wrongClass.status).toBe(403);
  });
});

describe('GET /action-executions filters', () => {
  it('filters by rule_id, status, action, requester (and employee), analysis_id and time; pages with a cursor', async () => {
    const [ruleA, ruleB] = (await db
      .knex('routing_rules')
      .insert([{ name: 'log A' }, { name: 'log B' }])
      .returning('id')) as { id: number }[];
    const who = `log-user-${Date.now()}`;
    const t0 = new Date(Date.now() - 1000).toISOString();
    const e1 = await enqueue({ requester: who, matchedRuleIds: [ruleA!.id] }, parseActionPolicy('jira=approve'));
    const e2 = await enqueue(
      { requester: who, action: ACTION_MAILING_LIST, matchedRuleIds: [ruleA!.id, ruleB!.id] },
      parseActionPolicy('mailing_list=off'),
    );
    const e3 = await enqueue(
      { requester: who.toUpperCase(), matchedRuleIds: [ruleB!.id] },
      parseActionPolicy('jira=approve'),
    );
    const app = buildActionsApp(db.knex);
    const ids = async (query: Record<string, string | number>) => {
      const res = await keyedApp(app).get('/action-executions').query(query);
      expectContract('listActionExecutions', res);
      expect(res.status).toBe(200);
      return res.body.executions.map((e: ActionExecution) => e.id);
    };
    expect(await ids({ requester: who })).toEqual([e3.id, e2.id, e1.id]);
    expect(await ids({ employee: who })).toEqual([e3.id, e2.id, e1.id]);
    expect(await ids({ rule_id: ruleA!.id })).toEqual([e2.id, e1.id]);
    expect(await ids({ rule_id: ruleB!.id, requester: who })).toEqual([e3.id, e2.id]);
    expect(await ids({ requester: who, status: 'skipped' })).toEqual([e2.id]);
    expect(await ids({ requester: who, action: ACTION_JIRA })).toEqual([e3.id, e1.id]);
    expect(await ids({ analysis_id: e2.analysis_id! })).toEqual([e2.id]);
    expect(await ids({ requester: who, from: t0 })).toEqual([e3.id, e2.id, e1.id]);
    expect(await ids({ requester: who, since: t0 })).toEqual([e3.id, e2.id, e1.id]);
    expect(await ids({ requester: who, from: '2999-01-01T00:00:00Z' })).toEqual([]);
    expect(await ids({ requester: who, to: t0 })).toEqual([]);
    expect(await ids({ requester: who, from: t0, to: '2999-01-01T00:00:00Z' })).toEqual([e3.id, e2.id, e1.id]);

    const first = await keyedApp(app).get('/action-executions').query({ requester: who, limit: 2 });
    expectContract('listActionExecutions', first);
    expect(first.body.executions.map((e: ActionExecution) => e.id)).toEqual([e3.id, e2.id]);
    expect(first.body.next_cursor).toBe(String(e2.id));
    const second = await keyedApp(app)
      .get('/action-executions')
      .query({ requester: who, limit: 2, cursor: first.body.next_cursor });
    expect(second.body.executions.map((e: ActionExecution) => e.id)).toEqual([e1.id]);
    expect(second.body.next_cursor).toBeNull();
  });

  const bad: Array<[Record<string, string>, string]> = [
    [{ workflow_id: '1' }, "Parameter 'workflow_id' is not a parameter of this operation"],
    [{ rule: '1' }, "Parameter 'rule' is not a parameter of this operation"],
    [{ rule_id: 'x' }, "Parameter 'rule_id' must be a whole number"],
    [{ status: 'done' }, "Parameter 'status' must be one of"],
    [{ from: 'yesterday' }, "Parameter 'from' must be a valid date-time"],
    [{ from: '2026-01-02T00:00:00Z', to: '2026-01-01T00:00:00Z' }, "Parameter 'to' must be later than 'from'"],
    [{ cursor: '-1' }, "Parameter 'cursor' has an invalid format"],
    [{ limit: '0' }, "Parameter 'limit' must be >= 1"],
  ];
  for (const [query, message] of bad) {
    it(`400: ${JSON.stringify(query)}`, async () => {
      const res = await keyedApp(buildActionsApp(db.knex)).get('/action-executions').query(query);
      expectContract('listActionExecutions', res);
      expect(res.status).toBe(400);
      expect(res.body.message).toContain(message);
    });
  }
});

describe('GET /rules/stats per window and period', () => {
  it('counts executions, successes, failures, success rate and last run per rule, per window and per day', async () => {
    const [rule] = (await db.knex('routing_rules').insert({ name: 'stats' }).returning('id')) as { id: number }[];
    const id = rule!.id;
    const old = await enqueue({ matchedRuleIds: [id], channel: 'direct' });
    const recentOk = await enqueue({ matchedRuleIds: [id], channel: 'direct' });
    const recentFailed = await enqueue({ matchedRuleIds: [id], channel: 'direct' });
    await db.knex('action_executions').where('id', old.id).update({
      status: 'failed',
      created_at: '2026-01-10T10:00:00Z',
      started_at: '2026-01-10T10:00:01Z',
    });
    await db
      .knex('action_executions')
      .where('id', recentOk.id)
      .update({ status: 'succeeded', started_at: db.knex.fn.now() });
    await db.knex('action_executions').where('id', recentFailed.id).update({ status: 'failed' });
    await db.knex('rule_matches').insert([
      { analysis_id: old.analysis_id, rule_id: id, matched_at: '2026-01-10T10:00:00Z' },
      { analysis_id: recentOk.analysis_id, rule_id: id },
      { analysis_id: recentFailed.analysis_id, rule_id: id },
    ]);
    const app = buildActionsApp(db.knex);
    const statsOf = async (query: Record<string, string>) => {
      const res = await keyedApp(app).get('/rules/stats').query(query);
      expectContract('getRuleStats', res);
      expect(res.status).toBe(200);
      return res.body.rules.find((r: { rule_id: number }) => r.rule_id === id);
    };
    const all = await statsOf({});
    expect(all).toMatchObject({ matches: 3, executions: 3, succeeded: 1, failed: 2, success_rate: 1 / 3 });
    expect(Date.parse(all.last_run_at)).toBeGreaterThan(Date.parse('2026-01-11T00:00:00Z'));
    expect(all).not.toHaveProperty('periods');

    const january = await statsOf({ from: '2026-01-10T00:00:00Z', to: '2026-01-11T00:00:00Z' });
    expect(january).toMatchObject({ matches: 1, executions: 1, succeeded: 0, failed: 1, success_rate: 0 });
    expect(january.last_run_at).toBe('2026-01-10T10:00:01.000Z');

    const daily = await statsOf({ period: 'day' });
    expect(daily.periods.at(-1)).toEqual({
      start: '2026-01-10T00:00:00.000Z',
      matches: 1,
      executions: 1,
      succeeded: 0,
      failed: 1,
      skipped: 0,
      in_progress: 0,
      success_rate: 0,
    });
    expect(daily.periods[0]).toMatchObject({ matches: 2, executions: 2, succeeded: 1, failed: 1, success_rate: 0.5 });
    const monthly = await statsOf({ period: 'month', from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' });
    expect(monthly.periods).toEqual([expect.objectContaining({ start: '2026-01-01T00:00:00.000Z', executions: 1 })]);

    for (const [query, message] of [
      [{ period: 'year' }, "Parameter 'period' must be one of: day, week, month"],
      [{ rule_id: String(id) }, "Parameter 'rule_id' is not a parameter of this operation"],
      [{ from: '2026-02-01T00:00:00Z', to: '2026-01-01T00:00:00Z' }, "Parameter 'to' must be later than 'from'"],
    ] as const) {
      const res = await keyedApp(app).get('/rules/stats').query(query);
      expectContract('getRuleStats', res);
      expect(res.status).toBe(400);
      expect(res.body.message).toContain(message);
    }
  });
});
