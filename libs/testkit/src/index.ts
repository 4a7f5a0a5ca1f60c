export { getFreePort, isListening, listen, waitFor, type Listening } from './ports.js';
export { startPostgresServer, createTestDatabase, type PostgresServer } from './postgres.js';
