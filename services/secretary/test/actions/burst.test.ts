import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import { waitFor } from '@workemon/testkit';
import { ACTION_JIRA, ACTION_TELEGRAM_EMPLOYEE, DEFAULT_POLICY } from '../../src/actions/action-policy.js';
import { createCommunicatorClient } from '../../src/actions/communicator-client.js';
import { createExecutionRepository } from '../../src/actions/execution-repository.js';
import { createJiraClient } from '../../src/actions/jira-client.js';
import { createActionWorker, type ActionWorker } from '../../src/actions/worker.js';
import {
  createActionsDatabase,
  fastWorker,
  startFakeCommunicator,
  testLogger,
  type FakeCommunicator,
  type TestDatabase,
} from './actions-harness.js';

let db: TestDatabase;
let jira: FakeJira;
let communicator: FakeCommunicator;
const workers: ActionWorker[] = [];

beforeAll(async () => {
  db = await createActionsDatabase(inject('postgresUrl'));
  jira = await startFakeJira({ flavor: 'server', token: 'pat', projects: ['OPS'] });
  communicator = await startFakeCommunicator();
});

afterAll(async () => {
  for (const w of workers) await w.stop();
  await jira?.close();
  await communicator?.close();
  await db?.close();
});

// Two secretary replicas: each its own knex pool on the same database, each its own worker.
function replica() {
  const comm = createCommunicatorClient({ baseUrl: communicator.url, timeoutMs: 2000 });
  const worker = createActionWorker({
    db: db.open(),
    executors: {
      jira: createJiraClient({ baseUrl: jira.url, apiToken: 'pat', issueType: 'Task', timeoutMs: 2000 }),
      communicator: comm,
    },
    communicator: comm,
    settings: { ...fastWorker, batchSize: 5, pollIntervalMs: 5 },
    logger: testLogger(),
  });
  workers.push(worker);
  return worker;
}

it('two workers on one database execute a burst of 50 actions exactly once each', async () => {
  const a = replica();
  const b = replica();
  // A few transient failures so retries interleave with the other replica's claims.
  jira.failNext({ status: 503 }, 3);
  const ids: number[] = [];
  await db.knex.transaction(async (trx) => {
    for (let i = 0; i < 50; i += 1) {
      const enqueued = await createExecutionRepository(trx).enqueue({
        analysisId: i + 1,
        requester: `user${i}`,
        channel: 'tg',
        action: i % 2 ? ACTION_TELEGRAM_EMPLOYEE : ACTION_JIRA,
        request: `Запрос номер ${i}`,
        department: { name: 'Ops', jira_project_key: 'OPS', telegram_contact: '@duty' },
        reply: { to: `@user${i}` },
        policy: DEFAULT_POLICY,
        jira: { configured: true },
      });
      ids.push(enqueued!.execution.id);
    }
  });
  a.start();
  b.start();
  const rows = await waitFor(
    async () => {
      const r = await db
        .knex('action_executions')
        .whereIn('id', ids)
        .select('id', 'status', 'notify_status', 'attempts');
      return r.every((x) => x.status === 'succeeded' && x.notify_status === 'sent') ? r : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 50, what: 'the burst to finish' },
  );
  await Promise.all([a.stop(), b.stop()]);

  expect(rows).toHaveLength(50);
  const summaries = jira.issues.map((i) => i.summary).sort();
  expect(summaries).toEqual([...new Set(summaries)]);
  expect(jira.issues).toHaveLength(25);
  const forwarded = communicator.sent.filter((m) => m.to === '@duty');
  expect(forwarded).toHaveLength(25);
  expect(new Set(forwarded.map((m) => m.idempotency_key)).size).toBe(25);
  // Each requester told once; no send repeated (the fake would have answered duplicate: true).
  for (let i = 0; i < 50; i += 1) expect(communicator.sent.filter((m) => m.to === `@user${i}`)).toHaveLength(1);
  expect(communicator.calls).toBe(75); // 25 forwards + 50 outcomes
  expect(rows.reduce((n, r) => n + Number(r.attempts), 0)).toBe(53);
});
