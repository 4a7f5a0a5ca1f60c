export { buildApp, SERVICE, VERSION, type SecretaryDeps } from './app.js';
export { loadConfig, type Config } from './config.js';
export { openDatabase, migrateDatabase, DatabaseInUseError, type Database } from './database.js';
export { createGuesserClient, type GuesserClient } from './guesser-client.js';
export { createAnalystClient, type AnalystClient } from './analyst-client.js';
export { createDirectoryRepository } from './directory-repository.js';
export { importDirectoryFile, parseDirectoryFile } from './directory-import.js';
export { createHistoryRepository } from './history-repository.js';
export type { Decision, DecisionContext, DecideStep, DecisionRecordedHook } from './decision.js';
