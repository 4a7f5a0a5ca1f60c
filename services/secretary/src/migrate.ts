// `npm run migrate`: brings the secretary's database (DATABASE_URL, or the embedded one) up to date and exits.
import { createLogger, loadConfigOrExit } from '@workemon/service-kit';
import { loadConfig } from './config.js';
import { DatabaseInUseError, migrateDatabase, openDatabase, type Database } from './database.js';
import { describeDatabaseStartFailure } from './database-start-failure.js';

const config = loadConfigOrExit(() => loadConfig(process.env));
const logger = createLogger({ service: 'secretary-migrate', level: config.logLevel });
let db: Database;
try {
  db = openDatabase({ url: config.databaseUrl, pgliteDir: config.pgliteDir, logger });
} catch (err) {
  if (!(err instanceof DatabaseInUseError)) throw err;
  // One line for the operator; nothing was opened.
  process.stderr.write(`npm run migrate: ${err.message}\n`);
  process.exit(1);
}
try {
  const applied = await migrateDatabase(db);
  logger.info(`migrations applied (${db.kind}): ${applied.length ? applied.join(', ') : 'none, already up to date'}`);
} catch (err) {
  const plain = describeDatabaseStartFailure(err, config.databaseUrl);
  if (plain) process.stderr.write(`npm run migrate: ${plain}\n`);
  else logger.error('migration failed', { err: err instanceof Error ? err : undefined });
  process.exitCode = 1;
} finally {
  await db.close();
}
