import type { TestProject } from 'vitest/node';
import type {} from 'vitest';
import { startPostgresServer, type PostgresServer } from './postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** A PostgreSQL server shared by the test run; each test file creates its own database on it. */
    postgresUrl: string;
  }
}

let server: PostgresServer | undefined;

/** Starts the real servers the test run shares. TEST_POSTGRES_URL reuses an existing server instead. */
export async function setup(project: TestProject): Promise<void> {
  let url = process.env['TEST_POSTGRES_URL'];
  if (!url) {
    server = await startPostgresServer();
    url = server.url;
  }
  project.provide('postgresUrl', url);
}

export async function teardown(): Promise<void> {
  await server?.destroy();
}
