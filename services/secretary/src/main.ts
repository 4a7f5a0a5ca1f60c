import { createLogger, createMetrics, runService, type Closer } from '@workemon/service-kit';
import { createAnalystClient } from './analyst-client.js';
import { SERVICE, VERSION, buildApp } from './app.js';
import { loadConfig } from './config.js';
import { migrateDatabase, openDatabase } from './database.js';
import { importDirectoryFile } from './directory-import.js';
import { createDirectoryRepository } from './directory-repository.js';
import { createGuesserClient } from './guesser-client.js';

const config = loadConfig(process.env);
const logger = createLogger({
  service: SERVICE,
  version: VERSION,
  level: config.LOG_LEVEL,
  secrets: [...config.API_KEYS, config.COMMUNICATOR_API_KEY, config.SECRETARY_API_KEY, config.ELASTICSEARCH_PASSWORD],
});
const metrics = createMetrics(SERVICE);

const db = openDatabase({
  url: config.DATABASE_URL,
  pgliteDir: config.PGLITE_DIR,
  poolMax: config.DATABASE_POOL_MAX,
  logger,
});
try {
  const applied = await migrateDatabase(db);
  logger.info(`database ready (${db.kind}); migrations applied: ${applied.length ? applied.join(', ') : 'none'}`);
  if (config.EMPLOYEES_FILE) {
    const counts = await importDirectoryFile(db.knex, createDirectoryRepository(db.knex), config.EMPLOYEES_FILE);
    logger.info(`imported ${counts.employees} employees and ${counts.departments} departments`);
  }
} catch (err) {
  logger.error('could not prepare the database', { err: err instanceof Error ? err : undefined });
  await db.close();
  process.exit(1);
}

// The LLM services already retry their providers; one retry here covers a restarting instance.
const upstream = { metrics, logger, maxRetries: 1 };
const app = buildApp({
  knex: db.knex,
  guesser: createGuesserClient({ baseURL: config.GUESSER_URL, timeoutMs: config.GUESSER_TIMEOUT, ...upstream }),
  analyst: createAnalystClient({
    baseURL: config.SYSTEM_ANALYST_URL,
    timeoutMs: config.SYSTEM_ANALYST_TIMEOUT,
    ...upstream,
  }),
  logger,
  metrics,
  apiKeys: config.API_KEYS,
  unknownUserPolicy: config.UNKNOWN_USER_POLICY,
  clarificationTtlMs: config.CLARIFICATION_TTL,
  maxClarifications: config.MAX_CLARIFICATIONS,
  // Both upstream deadlines (with the one retry) plus a margin for the database.
  attemptLeaseMs: 2 * (config.GUESSER_TIMEOUT + config.SYSTEM_ANALYST_TIMEOUT) + 5000,
});

const closers: Closer[] = [{ name: 'database', close: () => db.close() }];
await runService({ app, port: config.PORT, logger, closers, handleSignals: true });
