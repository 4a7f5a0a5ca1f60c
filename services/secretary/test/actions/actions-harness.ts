// Shared pieces of the actions and rules tests: a database with the actions migration, a fake communicator
// that speaks the communicator's POST /send contract, and a small app serving the actions and rules routes.
import knexFactory, { type Knex } from 'knex';
import { loadOpenApiDocument, type SendRequest } from '@workemon/contracts';
import {
  AppError,
  createLogger,
  createMetrics,
  createOpenApi,
  createServiceApp,
  createAuthenticator,
  validated,
  type Authenticator,
  type KeyClass,
} from '@workemon/service-kit';
import request from 'supertest';
import { TEST_API_KEYS, TEST_KEYS, bearer } from '@workemon/testkit/api-keys';
import { listen, type Listening } from '@workemon/testkit';
import { createTestDatabase } from '@workemon/testkit/postgres';
import Transport from 'winston-transport';
import { actionsAndRulesMigration } from '../../src/migrations/100_actions_and_rules.js';
import { actionRetriesMigration } from '../../src/migrations/220_action_retries.js';
import type { ActionCatalogSource } from '../../src/actions/action-catalog.js';
import { createActionRoutes } from '../../src/actions/action-routes.js';
import { createExecutionRepository } from '../../src/actions/execution-repository.js';
import { createRuleRoutes } from '../../src/rules/rule-routes.js';
import { createRuleRepository } from '../../src/rules/rule-repository.js';
import type { WorkerSettings } from '../../src/actions/action-policy.js';

export const openapi = createOpenApi(loadOpenApiDocument('secretary'));

export class MemoryTransport extends Transport {
  lines: string[] = [];
  override log(info: unknown, next: () => void): void {
    this.lines.push(JSON.stringify(info));
    next();
  }
}

export function testLogger() {
  return createLogger({ service: 'secretary', level: 'debug', stdout: new MemoryTransport() });
}

export const fastWorker: WorkerSettings = {
  maxAttempts: 4,
  retryBaseMs: 10,
  retryMaxMs: 40,
  pollIntervalMs: 20,
  leaseMs: 10_000,
};

export type TestDatabase = { knex: Knex; url: string; open: () => Knex; close: () => Promise<void> };

/** A fresh database with only the actions migrations (the feature does not need the directory tables). */
export async function createActionsDatabase(serverUrl: string): Promise<TestDatabase> {
  const { url, drop } = await createTestDatabase(serverUrl, 'actions');
  const opened: Knex[] = [];
  const open = () => {
    const k = knexFactory({ client: 'pg', connection: url, pool: { min: 0, max: 5 } });
    opened.push(k);
    return k;
  };
  const knex = open();
  await knex.migrate.latest({
    migrationSource: {
      getMigrations: async () => [actionsAndRulesMigration, actionRetriesMigration],
      getMigrationName: (m: typeof actionsAndRulesMigration) => m.name,
      getMigration: async (m: typeof actionsAndRulesMigration) => m,
    },
  });
  return {
    knex,
    url,
    open,
    close: async () => {
      for (const k of opened) await k.destroy();
      await drop();
    },
  };
}

export type SentMessage = SendRequest & {
  idempotency_key?: string;
  buttons?: { text: string; callback_data: string }[];
};

export type FakeCommunicator = Listening & {
  /** Messages delivered (a repeated idempotency key is not delivered again). */
  sent: SentMessage[];
  /** Every POST /send that reached the fake. */
  calls: number;
  failNext(status: number, times?: number): void;
  /** Only for the given channel (`to`): the next `times` sends there fail. */
  failTo(to: string, status: number, times?: number): void;
};

/**
 * Stands in for the communicator (the real one runs in actions-e2e.test.ts): validates POST /send against its
 * OpenAPI document (with `buttons` for approval messages), answers like it (`{delivered, channel, message_id,
 * duplicate}`), honours idempotency keys, and can be told to fail.
 */
export async function startFakeCommunicator(apiKey?: string): Promise<FakeCommunicator> {
  const contract = createOpenApi(loadOpenApiDocument('communicator'));
  const sent: SentMessage[] = [];
  const seen = new Map<string, string>();
  const failures: number[] = [];
  const targeted = new Map<string, number[]>();
  let calls = 0;
  let nextId = 1;
  const app = createServiceApp(
    { service: 'communicator', version: 'fake', logger: testLogger(), metrics: createMetrics('communicator') },
    (a) => {
      a.post(
        '/send',
        (_req, _res, next) => {
          calls += 1;
          next();
        },
        // Like the communicator: a service key; with none configured the fake is open (as on loopback).
        createAuthenticator(apiKey ? { service: [{ name: 'secretary', key: apiKey }] } : {}, {
          open: ['service'],
        }).require(['service']),
        contract.validate('send'),
        (_req, res) => {
          const body = validated<{ body: SentMessage }>(res).body;
          const failure = targeted.get(body.to)?.shift() ?? failures.shift();
          if (failure) throw new AppError('scripted', failure, `scripted ${failure}`);
          const key = body.idempotency_key;
          if (key && seen.has(key)) {
            res.json({ delivered: true, channel: body.channel, message_id: seen.get(key), duplicate: true });
            return;
          }
          const messageId = `m${nextId++}`;
          if (key) seen.set(key, messageId);
          sent.push(body);
          res.json({ delivered: true, channel: body.channel, message_id: messageId });
        },
      );
    },
  );
  const served = await listen(app);
  return {
    ...served,
    sent,
    get calls() {
      return calls;
    },
    failNext(status, times = 1) {
      for (let i = 0; i < times; i += 1) failures.push(status);
    },
    failTo(to, status, times = 1) {
      const list = targeted.get(to) ?? [];
      for (let i = 0; i < times; i += 1) list.push(status);
      targeted.set(to, list);
    },
  };
}

/** The name of the admin key `buildActionsApp` accepts by default: approvals by it record `decided_by: 'boss'`. */
export const ADMIN_KEY_NAME = 'boss';
/** The Telegram approver `buildActionsApp` lets the communicator (a service key) decide for. */
export const TELEGRAM_APPROVER_ID = '31337';

/**
 * A service app with the actions and rules routes, as the secretary mounts them. Default keys: the test world's
 * (`TEST_API_KEYS`), the admin one named `boss`; APPROVER_TELEGRAM_USER_IDS = [TELEGRAM_APPROVER_ID].
 */
export function buildActionsApp(
  db: Knex,
  options: {
    auth?: Authenticator;
    approverTelegramUserIds?: string[];
    onApproved?: () => void;
    onRetried?: () => void;
    catalog?: ActionCatalogSource;
  } = {},
) {
  const logger = testLogger();
  const auth =
    options.auth ?? createAuthenticator({ ...TEST_API_KEYS, admin: [{ name: ADMIN_KEY_NAME, key: TEST_KEYS.admin }] });
  const approverTelegramUserIds = options.approverTelegramUserIds ?? [TELEGRAM_APPROVER_ID];
  return createServiceApp(
    { service: 'secretary', version: 'test', logger, metrics: createMetrics('secretary'), openapi: openapi.document },
    (app) => {
      app.use(
        createActionRoutes({
          executions: createExecutionRepository(db),
          openapi,
          auth,
          approverTelegramUserIds,
          onApproved: options.onApproved,
          onRetried: options.onRetried,
          catalog: options.catalog,
        }),
      );
      app.use(createRuleRoutes({ rules: createRuleRepository(db), openapi, auth }));
    },
  );
}

/** A supertest agent for an app that sends the test key of `keyClass` (admin by default) on every request. */
export function keyedApp(app: Parameters<typeof request.agent>[0], keyClass: KeyClass = 'admin') {
  return request.agent(app).set(bearer(keyClass));
}

/** Asserts a response matches the secretary's OpenAPI document. */
export function expectContract(operationId: string, res: { status: number; body: unknown }): void {
  const problems = openapi.responseProblems(operationId, res.status, res.body);
  if (problems.length) throw new Error(`${operationId} ${res.status} breaks the contract: ${problems.join('; ')}`);
}
