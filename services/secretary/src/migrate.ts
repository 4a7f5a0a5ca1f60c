// `npm run migrate`: brings the secretary's database (DATABASE_URL, or the embedded one) up to date and exits.
import { createLogger, loadConfigOrExit } from '@workemon/service-kit';
import { loadConfig } from './config.js';
import { migrateDatabase, openDatabase } from './database.js';

const config = loadConfigOrExit(() => loadConfig(process.env));
const logger = createLogger({ service: 'secretary-migrate', level: config.LOG_LEVEL });
const db = openDatabase({ url: config.DATABASE_URL, pgliteDir: config.PGLITE_DIR, logger });
try {
  const applied = await migrateDatabase(db);
  logger.info(`migrations applied (${db.kind}): ${applied.length ? applied.join(', ') : 'none, already up to date'}`);
} catch (err) {
  logger.error('migration failed', { err: err instanceof Error ? err : undefined });
  process.exitCode = 1;
} finally {
  await db.close();
}
