import {
  allKeys,
  authForStart,
  createLogger,
  createMetrics,
  elasticsearchFromEnv,
  loadConfigOrExit,
  runService,
  serviceKeyToSend,
  type Closer,
} from '@workemon/service-kit';
import { toActionSettings } from './actions/action-policy.js';
import { createActions } from './actions/actions-wiring.js';
import { catalogSourceFor } from './actions/action-catalog.js';
import { createAnalystClient } from './analyst-client.js';
import { SECRETARY_KEY_CLASSES, SERVICE, VERSION, buildApp } from './app.js';
import { loadConfig } from './config.js';
import { DatabaseInUseError, migrateDatabase, openDatabase, type Database } from './database.js';
import { importDirectoryFile } from './directory-import.js';
import { createDirectoryRepository } from './directory-repository.js';
import { createGuesserClient } from './guesser-client.js';

const config = loadConfigOrExit(() => loadConfig(process.env));
// Beyond loopback every key class needs keys: refuse before touching the database.
const startAuth = loadConfigOrExit(() =>
  authForStart({ host: config.HOST, keys: config.apiKeys, served: SECRETARY_KEY_CLASSES }),
);
// The key sent to the guesser, the system analyst and the communicator.
const serviceKey = serviceKeyToSend(config.apiKeys);
const logger = createLogger({
  service: SERVICE,
  version: VERSION,
  level: config.LOG_LEVEL,
  elasticsearch: elasticsearchFromEnv(config),
  secrets: [
    ...allKeys(config.apiKeys),
    config.COMMUNICATOR_API_KEY,
    config.SECRETARY_API_KEY,
    config.ELASTICSEARCH_PASSWORD,
    config.JIRA_API_TOKEN,
  ],
});
const metrics = createMetrics(SERVICE);
if (startAuth.warning) logger.warn(startAuth.warning);

const actionSettings = toActionSettings(config);

let db: Database;
try {
  db = openDatabase({
    url: config.DATABASE_URL,
    pgliteDir: config.PGLITE_DIR,
    poolMax: config.DATABASE_POOL_MAX,
    logger,
  });
} catch (err) {
  if (!(err instanceof DatabaseInUseError)) throw err;
  process.stderr.write(`${SERVICE}: ${err.message}\n`);
  process.exit(1);
}
const directory = createDirectoryRepository(db.knex);
try {
  const applied = await migrateDatabase(db);
  logger.info(`database ready (${db.kind}); migrations applied: ${applied.length ? applied.join(', ') : 'none'}`);
  if (config.EMPLOYEES_FILE) {
    const counts = await importDirectoryFile(db.knex, directory, config.EMPLOYEES_FILE);
    logger.info(`imported ${counts.employees} employees and ${counts.departments} departments`);
  }
} catch (err) {
  logger.error('could not prepare the database', { err: err instanceof Error ? err : undefined });
  await db.close();
  process.exit(1);
}

const actions = createActions({
  db: db.knex,
  settings: actionSettings,
  communicator: { baseUrl: config.COMMUNICATOR_URL, apiKey: config.COMMUNICATOR_API_KEY ?? serviceKey },
  resolveDepartment: (name) => directory.getDepartment(name),
  logger,
  metrics,
  auditRetentionDays: config.AUDIT_RETENTION_DAYS,
});
logger.info(
  `actions: jira ${actions.jira ? `on (${actions.jira.flavor})` : 'off'}, approvals by ${
    actionSettings.approverChatId ? 'API and Telegram' : 'API'
  }`,
);

// The LLM services already retry their providers; one retry here covers a restarting instance.
const upstream = { metrics, logger, maxRetries: 1, apiKey: serviceKey };
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
  auth: startAuth.auth,
  approverTelegramUserIds: config.APPROVER_TELEGRAM_USER_IDS,
  unknownUserPolicy: config.UNKNOWN_USER_POLICY,
  companyDomains: config.COMPANY_DOMAINS,
  clarificationTtlMs: config.CLARIFICATION_TTL,
  maxClarifications: config.MAX_CLARIFICATIONS,
  // A short lease renewed while the LLM calls run: a crashed owner is taken over within seconds.
  attemptLeaseMs: config.ANALYSIS_LEASE,
  // A duplicate waits for a live attempt as long as both upstream deadlines (with the one retry) take.
  duplicateWaitMs: 2 * (config.GUESSER_TIMEOUT + config.SYSTEM_ANALYST_TIMEOUT) + 5000,
  decide: actions.hooks.decide,
  onDecisionRecorded: actions.hooks.onDecisionRecorded,
  nudgeActions: actions.worker.nudge,
  previewActions: actions.hooks.preview,
  analyzeLimits: {
    perUsernamePerHour: config.ANALYZE_RATE_LIMIT_PER_USERNAME_PER_HOUR,
    perKeyPerMinute: config.ANALYZE_RATE_LIMIT_PER_KEY_PER_MINUTE,
  },
  maxResponseChars: config.MAX_RESPONSE_LENGTH,
  auditRetentionDays: config.AUDIT_RETENTION_DAYS,
  actionCatalog: catalogSourceFor(
    actionSettings,
    { baseUrl: config.COMMUNICATOR_URL, apiKey: config.COMMUNICATOR_API_KEY ?? serviceKey },
    { metrics, logger },
  ),
});

// The worker finishes the rows in hand (and releases their leases) before the database goes away.
const closers: Closer[] = [
  { name: 'action worker', close: () => actions.worker.stop() },
  { name: 'database', close: () => db.close() },
];
actions.worker.start();
await runService({ app, port: config.PORT, host: config.HOST, logger, closers, handleSignals: true, service: SERVICE });
