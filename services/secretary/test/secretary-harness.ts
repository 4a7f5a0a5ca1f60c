// Builds the real secretary (buildApp) on a real database and serves it over HTTP for component tests.
import { createLogger, createMetrics, createOpenApi } from '@workemon/service-kit';
import { loadOpenApiDocument } from '@workemon/contracts';
import { listen, type Listening } from '@workemon/testkit';
import Transport from 'winston-transport';
import { buildApp, type SecretaryDeps } from '../src/app.js';
import { createAnalystClient } from '../src/analyst-client.js';
import { migrateDatabase, openDatabase, type Database } from '../src/database.js';
import { createGuesserClient } from '../src/guesser-client.js';

export const openapi = createOpenApi(loadOpenApiDocument('secretary'));

/** Keeps log lines in memory so tests can check what was (not) logged. */
export class MemoryTransport extends Transport {
  lines: string[] = [];
  override log(info: unknown, next: () => void): void {
    this.lines.push(JSON.stringify(info));
    next();
  }
}

export type Secretary = Listening & { db: Database; logs: MemoryTransport; metrics: ReturnType<typeof createMetrics> };

export async function startSecretary(options: {
  /** PostgreSQL; unset: embedded PGlite in `pgliteDir`. */
  databaseUrl?: string;
  pgliteDir?: string;
  guesserUrl: string;
  analystUrl: string;
  upstreamTimeoutMs?: number;
  overrides?: Partial<SecretaryDeps>;
}): Promise<Secretary> {
  const logs = new MemoryTransport();
  const logger = createLogger({ service: 'secretary', level: 'debug', stdout: logs, secrets: ['test-key-secret'] });
  const db = openDatabase({ url: options.databaseUrl, pgliteDir: options.pgliteDir, poolMax: 10, logger });
  await migrateDatabase(db);
  const metrics = createMetrics('secretary');
  const timeoutMs = options.upstreamTimeoutMs ?? 5000;
  const app = buildApp({
    knex: db.knex,
    guesser: createGuesserClient({ baseURL: options.guesserUrl, timeoutMs, metrics, logger, maxRetries: 0 }),
    analyst: createAnalystClient({ baseURL: options.analystUrl, timeoutMs, metrics, logger, maxRetries: 0 }),
    logger,
    metrics,
    apiKeys: [],
    unknownUserPolicy: 'reply-only',
    clarificationTtlMs: 24 * 3600_000,
    maxClarifications: 3,
    attemptLeaseMs: 2 * timeoutMs + 2000,
    ...options.overrides,
  });
  const served = await listen(app);
  return {
    ...served,
    db,
    logs,
    metrics,
    close: async () => {
      await served.close();
      await db.close();
    },
  };
}
