// The two databases the secretary runs on: a PostgreSQL server (DATABASE_URL) and the embedded PGlite (`npm
// start`'s default). Repository suites run once per kind (`describe.each(DATABASE_KINDS)`), so row counts,
// RETURNING, locks and errors are checked to agree on both.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { openDatabase, type Database } from '../src/database.js';

export const DATABASE_KINDS = ['postgres', 'pglite'] as const;
export type DatabaseKind = (typeof DATABASE_KINDS)[number];

export type TestDatabaseOfKind = {
  kind: DatabaseKind;
  /** What `startSecretary` and `openDatabase` take: a URL, or a PGlite directory. */
  location: { databaseUrl?: string; pgliteDir?: string };
  /** Opens it (PGlite: one open at a time, close before the next). */
  open: (poolMax?: number) => Database;
  /** Drops the database / removes the directory. */
  remove: () => Promise<void>;
};

/** A fresh, empty database of `kind` (a database on the run's PostgreSQL server, or a temporary PGlite dir). */
export async function createDatabaseOfKind(kind: DatabaseKind, prefix: string): Promise<TestDatabaseOfKind> {
  if (kind === 'postgres') {
    const db = await createTestDatabase(inject('postgresUrl'), prefix);
    return {
      kind,
      location: { databaseUrl: db.url },
      open: (poolMax = 10) => openDatabase({ url: db.url, poolMax }),
      remove: db.drop,
    };
  }
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-pglite-`));
  return {
    kind,
    location: { pgliteDir: dir },
    open: () => openDatabase({ pgliteDir: dir }),
    remove: async () => rmSync(dir, { recursive: true, force: true }),
  };
}
