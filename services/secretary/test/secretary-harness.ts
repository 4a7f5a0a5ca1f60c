// Builds the real secretary (buildApp) on a real database and serves it over HTTP for component tests.
import type { Express } from 'express';
import request from 'supertest';
import { createAuthenticator, createLogger, createMetrics, createOpenApi, type KeyClass } from '@workemon/service-kit';
import { TEST_API_KEYS, TEST_KEYS, bearer } from '@workemon/testkit/api-keys';
import { loadOpenApiDocument } from '@workemon/contracts';
import { listen, type Listening } from '@workemon/testkit';
import Transport from 'winston-transport';
import { buildApp, type SecretaryDeps } from '../src/app.js';
import { createAnalystClient } from '../src/analyst-client.js';
import { migrateDatabase, openDatabase, type Database } from '../src/database.js';
import { createGuesserClient } from '../src/guesser-client.js';

export const openapi = createOpenApi(loadOpenApiDocument('secretary'));

/**
 * A supertest agent for `url` that sends a test key of `keyClass` on every request (admin by default: it may
 * call every route but the service-only ones). The harness's secretary accepts the keys of `TEST_API_KEYS`.
 */
export function keyed(url: string, keyClass: KeyClass = 'admin') {
  return request.agent(url).set(bearer(keyClass));
}

/**
 * POST /analyze-request on `url` as Telegram user `username` asking for the wallet authorisations export, with
 * `message_id`; checks the response against the contract (whatever its status) and answers it.
 */
export async function askExport(url: string, username: string, message_id: string) {
  const res = await keyed(url).post('/analyze-request').send({
    channel: 'tg',
    username,
    request: 'Нужна выгрузка операций авторизации по кошелькам за май',
    message_id,
  });
  if (openapi.responseProblems('analyzeRequestPost', res.status, res.body).length)
    throw new Error(`/analyze-request answered outside its contract: ${res.status} ${JSON.stringify(res.body)}`);
  return res;
}

/** Keeps log lines in memory so tests can check what was (not) logged. */
export class MemoryTransport extends Transport {
  lines: string[] = [];
  override log(info: unknown, next: () => void): void {
    this.lines.push(JSON.stringify(info));
    next();
  }
}

export type Secretary = Listening & {
  db: Database;
  logs: MemoryTransport;
  metrics: ReturnType<typeof createMetrics>;
  /** The app itself (for checks of its routes). */
  app: Express;
};

export async function startSecretary(options: {
  /** PostgreSQL; unset: embedded PGlite in `pgliteDir`. */
  databaseUrl?: string;
  pgliteDir?: string;
  guesserUrl: string;
  analystUrl: string;
  upstreamTimeoutMs?: number;
  /** DATABASE_QUERY_TIMEOUT in milliseconds; default the secretary's. */
  databaseQueryTimeoutMs?: number;
  overrides?: Partial<SecretaryDeps>;
}): Promise<Secretary> {
  const logs = new MemoryTransport();
  const logger = createLogger({
    service: 'secretary',
    level: 'debug',
    stdout: logs,
    secrets: ['test-key-secret-0b7d3e91a5c2f468', ...Object.values(TEST_KEYS)],
  });
  const db = openDatabase({
    url: options.databaseUrl,
    pgliteDir: options.pgliteDir,
    poolMax: 10,
    logger,
    queryTimeoutMs: options.databaseQueryTimeoutMs,
  });
  await migrateDatabase(db);
  const metrics = createMetrics('secretary');
  const timeoutMs = options.upstreamTimeoutMs ?? 5000;
  const apiKey = TEST_KEYS.service;
  const app = buildApp({
    knex: db.knex,
    // The LLM services of the test world take the test service key (libs/testkit/src/llm-stack.ts).
    guesser: createGuesserClient({ baseURL: options.guesserUrl, timeoutMs, metrics, logger, maxRetries: 0, apiKey }),
    analyst: createAnalystClient({ baseURL: options.analystUrl, timeoutMs, metrics, logger, maxRetries: 0, apiKey }),
    logger,
    metrics,
    auth: createAuthenticator(TEST_API_KEYS),
    approverTelegramUserIds: ['31337'],
    unknownUserPolicy: 'reply-only',
    clarificationTtlMs: 24 * 3600_000,
    maxClarifications: 3,
    attemptLeaseMs: 2 * timeoutMs + 2000,
    ...options.overrides,
  });
  const served = await listen(app);
  return {
    ...served,
    app,
    db,
    logs,
    metrics,
    close: async () => {
      await served.close();
      await db.close();
    },
  };
}
