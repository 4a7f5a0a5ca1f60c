import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
// Types only (erased): the modules themselves are required lazily below.
import type KnexPgLiteClient from 'knex-pglite';
import type { PGlite as PGliteClass } from '@electric-sql/pglite';
import { AppError, errors, retry, type Logger } from '@workemon/service-kit';
import { migrationSource } from './migrations.js';

const requireCjs = createRequire(import.meta.url);

// int8 (counts, sums) arrive from pg as strings to protect precision; ours are small counters.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export type Database = {
  knex: Knex;
  /** `postgres` (a server) or `pglite` (embedded, one connection). */
  kind: 'postgres' | 'pglite';
  close: () => Promise<void>;
};

export type DatabaseOptions = {
  /** PostgreSQL URL; unset: embedded PGlite in `pgliteDir`. */
  url?: string;
  pgliteDir?: string;
  poolMax?: number;
  /** Where knex's own warnings go (lost connections); default: knex prints them to the console. */
  logger?: Pick<Logger, 'warn' | 'error' | 'debug'>;
};

function knexLog(logger: DatabaseOptions['logger']): Knex.Config['log'] {
  if (!logger) return undefined;
  const text = (message: unknown) => (message instanceof Error ? message.message : String(message));
  return {
    warn: (m: unknown) => logger.warn(`database: ${text(m)}`),
    error: (m: unknown) => logger.error(`database: ${text(m)}`),
    deprecate: (m: unknown) => logger.debug(`database: ${text(m)}`),
    debug: (m: unknown) => logger.debug(`database: ${text(m)}`),
  };
}

// knex's query builder methods whose statement is not their name in upper case.
const PG_COMMANDS: Record<string, string> = { first: 'SELECT', pluck: 'SELECT', del: 'DELETE', counter: 'UPDATE' };
let pgliteClientClass: typeof KnexPgLiteClient | undefined;

/**
 * knex-pglite with its command tag fixed. knex's Postgres dialect returns the affected row count for a result
 * whose `command` is `UPDATE` or `DELETE` (pg's command tag); knex-pglite derives the tag from the builder
 * method in upper case, so `.delete()` (method `del`) came back as `DEL` and knex answered the whole result
 * object instead of the count: every delete looked successful to `if (!deleted)` and failed to `deleted > 0`.
 * Here the tag is the statement's, as pg reports it, and the count is PGlite's `affectedRows`.
 */
function pgliteClient(): typeof KnexPgLiteClient {
  if (pgliteClientClass) return pgliteClientClass;
  const Base = requireCjs('knex-pglite') as typeof KnexPgLiteClient;
  const PgDialect = requireCjs('knex/lib/dialects/postgres/index.js') as {
    prototype: { processResponse: (obj: unknown, runner: unknown) => unknown };
  };
  type QueryObject = { method?: string; response: { affectedRows?: number } };
  class ClientPgLiteWithCommandTags extends (Base as unknown as new (config: unknown) => object) {
    processResponse(obj: QueryObject, runner: unknown): unknown {
      const method = obj.method ?? '';
      const command = PG_COMMANDS[method] ?? method.toUpperCase();
      const response = { ...obj.response, rowCount: obj.response.affectedRows, command };
      return PgDialect.prototype.processResponse.call(this, { ...obj, response }, runner);
    }
  }
  pgliteClientClass = ClientPgLiteWithCommandTags as unknown as typeof KnexPgLiteClient;
  return pgliteClientClass;
}

/**
 * A statement of the request path with a fixed name and text: on a PostgreSQL server it is parsed and planned
 * once per pooled connection (a named prepared statement) and afterwards only bound and executed. Texts use
 * `$1…$n` placeholders with explicit casts, so the same text runs on PGlite, which infers no parameter types.
 */
export type PreparedStatement = { readonly name: string; readonly text: string };

// The PGlite instances openDatabase made: their knex "connection" is the instance itself.
const pgliteConnections = new WeakSet<object>();

type PgConnection = {
  query: (config: { name: string; text: string; values: unknown[] }) => Promise<{ rows: unknown[] }>;
};
type PgliteConnection = { query: (text: string, values: unknown[]) => Promise<{ rows: unknown[] }> };

/**
 * Runs `statement` with `values` on a connection of `db`'s pool (or, for a transaction, on its connection) and
 * answers its rows. knex cannot name statements and builds and parses each one anew, so the request path's few
 * statements go to the driver directly: pg's `{name, text, values}` on a server, PGlite's `query` on the
 * embedded database. Taking the connection from knex's pool keeps one pool (DATABASE_POOL_MAX) and, on
 * PGlite, its single connection serialised with knex's own queries and transactions. Errors are the driver's
 * (SQLSTATE in `code`), as knex's are.
 */
export async function runPrepared<Row>(
  db: Knex | Knex.Transaction,
  statement: PreparedStatement,
  values: readonly unknown[],
): Promise<Row[]> {
  const client = db.client as Knex.Client;
  const connection = (await client.acquireConnection()) as PgConnection | PgliteConnection;
  try {
    const result = pgliteConnections.has(connection)
      ? await (connection as PgliteConnection).query(statement.text, [...values])
      : await (connection as PgConnection).query({ name: statement.name, text: statement.text, values: [...values] });
    return result.rows as Row[];
  } finally {
    await client.releaseConnection(connection);
  }
}

/** Opens the secretary's database: a pg pool on a server, or PGlite persisted on disk when no URL is given. */
export function openDatabase(options: DatabaseOptions): Database {
  if (options.url) {
    const knex = knexFactory({
      client: 'pg',
      connection: { connectionString: options.url, connectionTimeoutMillis: 3000 },
      // Small acquire timeout: with the server down a request should fail fast with 503, not hang.
      pool: { min: 0, max: options.poolMax ?? 10, idleTimeoutMillis: 30_000 },
      acquireConnectionTimeout: 5000,
      log: knexLog(options.logger),
    });
    return { knex, kind: 'postgres', close: () => knex.destroy() };
  }
  // Loaded only when used (synchronously, so openDatabase stays synchronous for its callers): PGlite brings a
  // whole Postgres compiled to WebAssembly, about 50 MB of RSS a server-backed secretary should not carry.
  const ClientPgLite = pgliteClient();
  const { PGlite } = requireCjs('@electric-sql/pglite') as { PGlite: typeof PGliteClass };
  const dir = resolve(options.pgliteDir ?? './data/secretary');
  mkdirSync(dir, { recursive: true });
  const releaseLock = lockPgliteDir(dir);
  // Postgres' default 128 MB of shared buffers lives in the WebAssembly heap, i.e. in our RSS; a one-process
  // embedded database does well with far less (measured: ~290 MB → ~180 MB RSS).
  const pglite = new PGlite(dir, { postgresqlconf: ['shared_buffers=16MB', 'maintenance_work_mem=16MB'] });
  pgliteConnections.add(pglite);
  const knex = knexFactory({
    client: ClientPgLite,
    dialect: 'postgres',
    // knex's connection type does not know knex-pglite's `pglite` field (an instance we configured).
    connection: { pglite } as never,
    log: knexLog(options.logger),
  });
  return {
    knex,
    kind: 'pglite',
    close: async () => {
      try {
        await knex.destroy();
      } finally {
        releaseLock();
      }
    },
  };
}

/** The embedded database's directory is open in another process (a running secretary, say). */
export class DatabaseInUseError extends Error {
  readonly pid: number;
  constructor(dir: string, pid: number) {
    super(
      `The embedded database in ${dir} is in use by process ${pid} (a running secretary?): PGlite allows one ` +
        'process at a time. Stop that process first (a running secretary migrates at start anyway), or set ' +
        'DATABASE_URL to use a PostgreSQL server.',
    );
    this.name = 'DatabaseInUseError';
    this.pid = pid;
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Creates `lockFile` holding our pid; false when it exists already (other errors are thrown). */
function createLockFile(lockFile: string): boolean {
  try {
    writeFileSync(lockFile, `${process.pid}\n`, { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'EEXIST') return false;
    throw err;
  }
}

/** The pid in a lock file; undefined when it is unreadable, gone or holds no pid. */
function lockOwner(lockFile: string): number | undefined {
  try {
    const owner = Number.parseInt(readFileSync(lockFile, 'utf8'), 10);
    return Number.isInteger(owner) && owner > 0 ? owner : undefined;
  } catch {
    return undefined;
  }
}

/**
 * PGlite is one process's database: a second process opening the same directory (`npm run migrate` beside a
 * running secretary) would corrupt it. A lock file beside the directory (`<dir>.lock`) holds the owner's pid;
 * one whose process is gone (killed, crashed) is stale and taken over. Returns the release function.
 */
function lockPgliteDir(dir: string): () => void {
  const lockFile = join(dirname(dir), `${basename(dir)}.lock`);
  if (!createLockFile(lockFile)) {
    const owner = lockOwner(lockFile);
    if (owner !== undefined && processAlive(owner)) throw new DatabaseInUseError(dir, owner);
    // Its owner is gone (killed, crashed): the stale lock is taken over, once.
    rmSync(lockFile, { force: true });
    if (!createLockFile(lockFile)) throw new DatabaseInUseError(dir, lockOwner(lockFile) ?? Number.NaN);
  }
  let released = false;
  return () => {
    if (released) return;
    released = true;
    try {
      if (readFileSync(lockFile, 'utf8').trim() === String(process.pid)) rmSync(lockFile, { force: true });
    } catch {
      // Already gone.
    }
  };
}

/**
 * Brings the schema up to date under knex's migration lock, so concurrent starts run each migration once. knex
 * fails fast when another instance holds the lock; this waits for that instance instead (then finds nothing
 * left to do), so replicas starting together all come up.
 */
export async function migrateDatabase(db: Database, options: { lockWaitMs?: number } = {}): Promise<string[]> {
  if (db.kind === 'pglite') return migrateUnderKnexLock(db, options);
  // knex creates its own bookkeeping tables before it takes its lock, and two instances racing there fail with
  // "relation knex_migrations already exists": a transaction-scoped advisory lock on another pooled
  // connection serialises whole runs (PGlite has one connection and one process, so it needs none).
  return db.knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATION_ADVISORY_LOCK]);
    return migrateUnderKnexLock(db, options);
  });
}

// An arbitrary constant naming "secretary migrations" among the database's advisory locks.
const MIGRATION_ADVISORY_LOCK = 7_140_003;

/** knex's "Migration table is already locked": another instance is migrating right now. */
function isMigrationLocked(err: unknown): boolean {
  return (err as { name?: string } | undefined)?.name === 'MigrationLocked';
}

/** Runs knex's migrations; while another instance holds knex's lock, tries again every 250 ms until `lockWaitMs`. */
async function migrateUnderKnexLock(db: Database, options: { lockWaitMs?: number }): Promise<string[]> {
  const until = Date.now() + (options.lockWaitMs ?? 60_000);
  return retry(
    async () => {
      const [, applied] = (await db.knex.migrate.latest({ migrationSource, tableName: 'knex_migrations' })) as [
        number,
        string[],
      ];
      return applied;
    },
    {
      maxRetries: Number.POSITIVE_INFINITY,
      shouldRetry: (err) => isMigrationLocked(err) && Date.now() <= until,
      delayMs: () => MIGRATION_LOCK_POLL_MS,
    },
  );
}

// How often a start waiting for another instance's migrations looks again.
const MIGRATION_LOCK_POLL_MS = 250;

// SQLSTATE classes and driver codes that mean "the database is not reachable right now" (not a bug of ours).
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);
const CONNECTION_SQLSTATES = /^(08|57P0[1-3]|53300)/;

export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | undefined;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (CONNECTION_CODES.has(code) || CONNECTION_SQLSTATES.test(code)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return (
    e.name === 'KnexTimeoutError' ||
    /Connection terminated|Client has encountered a connection error|connection is closed/i.test(message)
  );
}

/** Turns a lost database into the catalogue's 503; everything else passes through unchanged. */
export function toDatabaseError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  return isDatabaseUnavailable(err) ? errors.dependencyUnavailable('postgres', err) : err;
}
