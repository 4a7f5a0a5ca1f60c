// The REAL secretary for the communicator's end-to-end checks: its buildApp on a fresh database of the test
// PostgreSQL server, migrated, with the real guesser and system-analyst apps behind it (startLlmServices: a fake
// LLM under each), served on an ephemeral loopback port and keyed with the test world's keys (TEST_API_KEYS).
import type { Express } from 'express';
import { createAuthenticator, createLogger, createMetrics } from '@workemon/service-kit';
import { TEST_API_KEYS } from '@workemon/testkit/api-keys';
import { listen, type Listening } from '@workemon/testkit';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import { createTestDatabase } from '@workemon/testkit/postgres';
import {
  buildApp as buildSecretary,
  createAnalystClient,
  createGuesserClient,
  migrateDatabase,
  openDatabase,
  type Database,
} from '@workemon/secretary';
import { startLlmServices } from '../../services/secretary/test/llm-services.js';

export type RealSecretary = {
  /** The secretary's app, to serve again on the same port after `listening.close()` (a secretary that comes back). */
  app: Express;
  listening: Listening;
  database: Database;
  llm: LlmServices;
  /** Stops the server (if still listening), the LLM services and the pool, and drops the database. */
  close: () => Promise<void>;
};

/**
 * Starts the real secretary on database `databaseName` of the PostgreSQL server at `postgresUrl` (created here,
 * dropped by `close`). Unknown senders are allowed (UNKNOWN_USER_POLICY=allow), a clarification stays open 24 h,
 * three rounds at most, attempts are leased for 15 s; upstream calls time out after 5 s and are not retried.
 */
export async function startRealSecretary(postgresUrl: string, databaseName: string): Promise<RealSecretary> {
  const db = await createTestDatabase(postgresUrl, databaseName);
  const llm = await startLlmServices();
  const logger = createLogger({ service: 'secretary', level: 'error' });
  logger.silent = true;
  const metrics = createMetrics('secretary');
  const database = openDatabase({ url: db.url, poolMax: 5, logger });
  await migrateDatabase(database);
  const upstream = { timeoutMs: 5000, metrics, logger, maxRetries: 0, apiKey: llm.serviceKey };
  const app = buildSecretary({
    knex: database.knex,
    guesser: createGuesserClient({ ...upstream, baseURL: llm.guesserUrl }),
    analyst: createAnalystClient({ ...upstream, baseURL: llm.analystUrl }),
    logger,
    metrics,
    // The real keys: the communicator's calls carry the service key (TEST_KEY_ENV in its harness).
    auth: createAuthenticator(TEST_API_KEYS),
    unknownUserPolicy: 'allow',
    clarificationTtlMs: 24 * 3_600_000,
    maxClarifications: 3,
    attemptLeaseMs: 15_000,
  });
  const real: RealSecretary = {
    app,
    listening: await listen(app),
    database,
    llm,
    close: async () => {
      await real.listening.close().catch(() => undefined);
      await database.close();
      await llm.close();
      await db.drop();
    },
  };
  return real;
}
