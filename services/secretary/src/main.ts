import { runService, serviceKeyToSend, startService, type Closer } from '@workemon/service-kit';
import { createActions } from './actions/actions-wiring.js';
import { catalogSourceFor } from './actions/action-catalog.js';
import { createAnalystClient } from './analyst-client.js';
import { SECRETARY_KEY_CLASSES, SERVICE, VERSION, buildApp } from './app.js';
import { loadConfig } from './config.js';
import { DatabaseInUseError, migrateDatabase, openDatabase, type Database } from './database.js';
import { describeDatabaseStartFailure } from './database-start-failure.js';
import { createDirectoryRepository } from './directory-repository.js';
import { createGuesserClient } from './guesser-client.js';

// Beyond loopback every key class needs keys: refuse before touching the database.
const { config, auth, logger, metrics } = startService({
  service: SERVICE,
  version: VERSION,
  loadConfig: () => loadConfig(process.env),
  served: SECRETARY_KEY_CLASSES,
  secrets: (c) => [c.communicatorApiKey, c.secretaryApiKey, c.guesserApiKey, c.systemAnalystApiKey, c.jiraApiToken],
});
// The key sent to the communicator. The guesser and the system analyst get their own (config.ts, keyForLlmService).
const serviceKey = serviceKeyToSend(config.apiKeys);

const actionSettings = config.actions;

let db: Database;
try {
  db = openDatabase({
    url: config.databaseUrl,
    pgliteDir: config.pgliteDir,
    poolMax: config.databasePoolMax,
    queryTimeoutMs: config.databaseQueryTimeout,
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
  if (config.employeesFile) {
    // Loaded only for EMPLOYEES_FILE: its YAML and CSV parsers cost every other start memory (docs/operations.md).
    const { importDirectoryFile } = await import('./directory-import.js');
    const counts = await importDirectoryFile(db.knex, directory, config.employeesFile);
    logger.info(`imported ${counts.employees} employees and ${counts.departments} departments`);
  }
} catch (err) {
  // An unreachable server, a refused login or a missing database: one line saying what to do, no stack trace.
  // (A bad EMPLOYEES_FILE's message names the file and the row, never a value: directory-import.ts.)
  const plain =
    err instanceof Error && err.name === 'DirectoryFileError'
      ? err.message
      : describeDatabaseStartFailure(err, config.databaseUrl);
  if (plain) {
    logger.error(`could not prepare the database: ${plain}`);
    process.stderr.write(`${SERVICE}: ${plain}\n`);
  } else logger.error('could not prepare the database', { err: err instanceof Error ? err : undefined });
  await db.close();
  process.exit(1);
}

const actions = createActions({
  db: db.knex,
  settings: actionSettings,
  communicator: { baseUrl: config.communicatorUrl, apiKey: config.communicatorApiKey ?? serviceKey },
  resolveDepartment: (name) => directory.getDepartment(name),
  logger,
  metrics,
  auditRetentionDays: config.auditRetentionDays,
});
logger.info(
  `actions: jira ${actions.jira ? `on (${actions.jira.flavor})` : 'off'}, approvals by ${
    actionSettings.approverChatId ? 'API and Telegram' : 'API'
  }`,
);

// A client key without a CLIENT_KEY_USERNAMES entry vouches for every username on the direct channel: right for an
// integration that signs its users in, wrong for a key handed to a person. Said once, by name (never the key).
const unbound = config.apiKeys.client.map((e) => e.name).filter((name) => !config.clientKeyBindings.has(name));
if (unbound.length)
  logger.warn(
    `client keys ${unbound.join(', ')} may act in any employee's name on the direct channel (no CLIENT_KEY_USERNAMES ` +
      'entry): bind a key given to a person to its usernames, e.g. CLIENT_KEY_USERNAMES=bob=ivanov',
  );

// The LLM services already retry their providers; one retry here covers a restarting instance.
const upstream = { metrics, logger, maxRetries: 1 };
const app = buildApp({
  knex: db.knex,
  guesser: createGuesserClient({
    baseURL: config.guesserUrl,
    timeoutMs: config.guesserTimeout,
    apiKey: config.guesserApiKey,
    ...upstream,
  }),
  analyst: createAnalystClient({
    baseURL: config.systemAnalystUrl,
    timeoutMs: config.systemAnalystTimeout,
    apiKey: config.systemAnalystApiKey,
    ...upstream,
  }),
  logger,
  metrics,
  auth,
  approverTelegramUserIds: config.approverTelegramUserIds,
  unknownUserPolicy: config.unknownUserPolicy,
  clientKeyUsernames: config.clientKeyBindings,
  companyDomains: config.companyDomains,
  clarificationTtlMs: config.clarificationTtl,
  maxClarifications: config.maxClarifications,
  // A short lease renewed while the LLM calls run: a crashed owner is taken over within seconds.
  attemptLeaseMs: config.analysisLease,
  // A duplicate waits for a live attempt as long as both upstream deadlines (with the one retry) take.
  duplicateWaitMs: 2 * (config.guesserTimeout + config.systemAnalystTimeout) + 5000,
  decide: actions.hooks.decide,
  onDecisionRecorded: actions.hooks.onDecisionRecorded,
  nudgeActions: actions.worker.nudge,
  previewActions: actions.hooks.preview,
  analyzeLimits: {
    perUsernamePerHour: config.analyzeRateLimitPerUsernamePerHour,
    perKeyPerMinute: config.analyzeRateLimitPerKeyPerMinute,
  },
  maxResponseChars: config.maxResponseLength,
  auditRetentionDays: config.auditRetentionDays,
  actionCatalog: catalogSourceFor(
    actionSettings,
    { baseUrl: config.communicatorUrl, apiKey: config.communicatorApiKey ?? serviceKey },
    { metrics, logger },
  ),
});

// The worker finishes the rows in hand (and releases their leases) before the database goes away.
const closers: Closer[] = [
  { name: 'action worker', close: () => actions.worker.stop() },
  { name: 'database', close: () => db.close() },
];
actions.worker.start();
await runService({ app, port: config.port, host: config.host, logger, closers, handleSignals: true, service: SERVICE });
