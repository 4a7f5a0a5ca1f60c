// The secretary as main.ts wires it (routing rules and action hooks included, the action worker not started) on
// a PostgreSQL database, for the request-path tests: round trips per request, rules seen across replicas.
import { createAuthenticator, createLogger, createMetrics } from '@workemon/service-kit';
import { TEST_API_KEYS, TEST_KEYS } from '@workemon/testkit/api-keys';
import { listen, type Listening } from '@workemon/testkit';
import { createActions } from '../src/actions/actions-wiring.js';
import { createAnalystClient } from '../src/analyst-client.js';
import { buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { migrateDatabase, openDatabase, type Database } from '../src/database.js';
import { createDirectoryRepository } from '../src/directory-repository.js';
import { createGuesserClient } from '../src/guesser-client.js';
import type { AnalyzeLimits } from '../src/rate-limits/analyze-limits.js';

/** The secretary's logger is silent; tests may spy on its methods (`vi.spyOn(secretary.logger, 'warn')`). */
export type WiredSecretary = Listening & { db: Database; logger: ReturnType<typeof createLogger> };

/** A secretary on `databaseUrl` (a server URL, or a proxy's) with the LLM services at the given URLs. */
export async function startWiredSecretary(options: {
  databaseUrl: string;
  guesserUrl: string;
  analystUrl: string;
  /** The /analyze-request limits, as main.ts passes them; absent: none. */
  analyzeLimits?: AnalyzeLimits;
}): Promise<WiredSecretary> {
  const config = loadConfig({
    DATABASE_URL: options.databaseUrl,
    GUESSER_URL: options.guesserUrl,
    SYSTEM_ANALYST_URL: options.analystUrl,
  });
  const logger = createLogger({ service: 'secretary', level: 'error' });
  logger.silent = true;
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
  const upstream = { timeoutMs: 5000, metrics, logger, maxRetries: 0, apiKey: TEST_KEYS.service };
  const served = await listen(
    buildApp({
      knex: db.knex,
      guesser: createGuesserClient({ baseURL: config.guesserUrl, ...upstream }),
      analyst: createAnalystClient({ baseURL: config.systemAnalystUrl, ...upstream }),
      logger,
      metrics,
      auth: createAuthenticator(TEST_API_KEYS),
      unknownUserPolicy: config.unknownUserPolicy,
      clarificationTtlMs: config.clarificationTtl,
      maxClarifications: config.maxClarifications,
      attemptLeaseMs: 60_000,
      decide: actions.hooks.decide,
      onDecisionRecorded: actions.hooks.onDecisionRecorded,
      nudgeActions: actions.worker.nudge,
      ...(options.analyzeLimits ? { analyzeLimits: options.analyzeLimits } : {}),
    }),
  );
  return {
    ...served,
    db,
    logger,
    close: async () => {
      await served.close();
      await actions.worker.stop();
      await db.close();
    },
  };
}
