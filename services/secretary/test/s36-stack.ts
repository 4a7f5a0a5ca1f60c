// The secretary as main.ts wires it (actions, worker, audit) on a real Postgres, behind the real guesser and system
// analyst over fake LLMs, with the fake Jira and a fake communicator (its POST /send over real HTTP), for the s36
// checks. `guesser` picks the classification each request gets; the analyst's fake LLM proposes the action from the
// request's words (libs/testkit llm-stack: "задач" → Jira, "коллег" → Telegram, "рассылк" → mailing list).
import { inject } from 'vitest';
import request from 'supertest';
import { createAuthenticator, createLogger, createMetrics } from '@workemon/service-kit';
import { listen, waitFor, type Listening } from '@workemon/testkit';
import { TEST_API_KEYS, bearer } from '@workemon/testkit/api-keys';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import type { LlmServices } from '@workemon/testkit/llm-stack';
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
import { startLlmServices } from './llm-services.js';
import { openapi } from './secretary-harness.js';

export type S36Stack = Listening & {
  db: Database;
  llm: LlmServices;
  jira: FakeJira;
  communicator: FakeCommunicator;
  /** Waits until no action or notice is pending. */
  idle: () => Promise<void>;
  close: () => Promise<void>;
};

type Handler = (req: { system: string; user: string }) => unknown;

/** Starts the stack; `env` overrides the secretary's configuration (e.g. ACTION_MIN_CONFIDENCE). */
export async function startS36Stack(options: {
  name: string;
  guesser: Handler;
  env?: Record<string, string>;
}): Promise<S36Stack> {
  const llm = await startLlmServices({ guesser: options.guesser });
  const jira = await startFakeJira({ flavor: 'cloud', email: 'bot@x.test', token: 'tok', projects: ['OPS'] });
  const communicator = await startFakeCommunicator();
  const dbHandle = await createTestDatabase(inject('postgresUrl'), options.name);
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
    ...options.env,
  });
  const logger = Object.assign(createLogger({ service: 'secretary', level: 'error' }), { silent: true });
  const metrics = createMetrics('secretary');
  const db = openDatabase({ url: config.databaseUrl, poolMax: 5, logger });
  await migrateDatabase(db);
  const directory = createDirectoryRepository(db.knex);
  const actions = createActions({
    db: db.knex,
    settings: config.actions,
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
    actionCatalog: catalogSourceFor(config.actions, { baseUrl: config.communicatorUrl }),
  });
  actions.worker.start();
  const served = await listen(app);
  const idle = async () => {
    await waitFor(
      async () => {
        const open = await db
          .knex('action_executions')
          .whereIn('status', ['pending'])
          .orWhere('notify_status', 'pending')
          .count({ n: '*' });
        return Number(open[0]!['n']) === 0;
      },
      { what: 'the action worker to finish', timeoutMs: 15_000 },
    );
  };
  return {
    ...served,
    db,
    llm,
    jira,
    communicator,
    idle,
    close: async () => {
      await served.close();
      await actions.worker.stop();
      await db.close();
      await dbHandle.drop();
      await communicator.close();
      await jira.close();
      await llm.close();
    },
  };
}

let seq = 0;

/**
 * POST /analyze-request as each caller reaches the secretary: `service` is the communicator (with the sender's
 * proof: a verified signature for mail, the Telegram user id), `admin` a REST caller vouching for the username.
 * Returns the response (validated against the contract) and the message id it was sent with.
 */
export async function analyze(
  stack: Listening,
  body: Record<string, unknown>,
  keyClass: 'service' | 'admin' | 'client' = body['channel'] === 'direct' ? 'admin' : 'service',
) {
  const messageId = `<s36-${++seq}-${Date.now()}@client.test>`;
  const proof =
    body['channel'] === 'email'
      ? { sender_authentication: { verified: true, method: 'dkim', reason: 'dkim=pass (test)' } }
      : body['channel'] === 'tg'
        ? { telegram_user_id: `${5000 + seq}` }
        : {};
  const res = await request(stack.url)
    .post('/analyze-request')
    .set(bearer(keyClass))
    .send({ message_id: messageId, ...proof, ...body });
  const problems = openapi.responseProblems('analyzeRequestPost', res.status, res.body);
  return { res, messageId, problems };
}
