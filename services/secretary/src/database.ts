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
  /**
   * Longest a statement may run on a PostgreSQL server, in milliseconds (DATABASE_QUERY_TIMEOUT; default 30 s; 0:
   * never): the server's `statement_timeout`, and a connection without any answer queryDeadlineGraceMs later is
   * dropped. Both lifted while migrations run.
   */
  queryTimeoutMs?: number;
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

/**
 * `text` with every parameter written `cast($n as type)` turned into a scalar subquery, `(select cast($n as type))`,
 * for a statement that must keep one generic plan. PostgreSQL plans each of the first five executions of a prepared
 * statement for its values (a custom plan) and afterwards keeps the generic plan only if that one is estimated no
 * dearer than the custom plans were on average (PostgreSQL documentation, PREPARE, "Notes"). Where parameters are
 * often null (no message_id, no thread, unknown sender keys) a custom plan folds whole branches away and looks far
 * cheaper, so the statement is planned anew on every execution (the lookup: about 0.4 ms of the server's CPU each,
 * 3 × its execution). A scalar subquery is an InitPlan whose value the planner never folds in, and an index
 * condition can still use it, so custom and generic plans are alike and the generic one is kept. Other casts
 * (`::type`, casts of columns, types of more than one word or with a length) are left alone; the text is not
 * parsed, so it must hold no such cast inside a string literal or a comment.
 */
export function withGenericPlan(text: string): string {
  return text.replace(/\bcast\((\$\d+) as ([a-z0-9_]+(?:\[\])?)\)/gi, '(select cast($1 as $2))');
}

// The PGlite instances openDatabase made: their knex "connection" is the instance itself.
const pgliteConnections = new WeakSet<object>();

/** A pooled node-postgres client as knex's pg dialect keeps it (`__knex__disposed`: set on its error or end). */
type PgConnection = {
  query: (query: pg.Query) => unknown;
  __knex__disposed?: unknown;
};
type PgliteConnection = { query: (text: string, values: unknown[]) => Promise<{ rows: unknown[] }> };
type Connection = PgConnection | PgliteConnection;

/** What runPrepared reads of knex's tarn pool (`client.pool`): its state, and its `acquireRequest` event. */
type PoolState = {
  destroyed?: boolean;
  numPendingAcquires(): number;
  numFree(): number;
  on(event: 'acquireRequest', listener: () => void): void;
};

/**
 * How long a connection runPrepared has finished with stays in its hand before it goes back to knex's pool, in
 * milliseconds. Under load the next statement takes it at once, without tarn's acquire (two pending operations,
 * two timers and a dozen promises per acquire: tarn's and knex's acquire and release were about 3 % of the
 * secretary's busy time in a V8 profile, self time only); idle, it is back in the pool within two of these, where
 * knex's own queries and its idle reaping find it.
 */
export const HOT_CONNECTION_IDLE_MS = 100;

/** Connections runPrepared holds between statements, per knex client; the oldest first (see takeHotConnection). */
type HotConnections = {
  client: Knex.Client;
  idle: { connection: PgConnection; since: number }[];
  sweep?: NodeJS.Timeout;
  /** The pool whose `acquireRequest` hands a hot connection back (knex may build a new pool after destroy). */
  watched?: PoolState;
};
const hotConnections = new WeakMap<Knex.Client, HotConnections>();

/** A connection runPrepared finished with lately, if one is still usable; undefined: ask knex's pool. */
function takeHotConnection(client: Knex.Client): PgConnection | undefined {
  const hot = hotConnections.get(client);
  for (let entry = hot?.idle.pop(); entry; entry = hot?.idle.pop()) {
    // Lost meanwhile (the server went away): the pool validates it and destroys it on its next acquire.
    if (!entry.connection.__knex__disposed) return entry.connection;
    void client.releaseConnection(entry.connection);
  }
  return undefined;
}

/**
 * Gives a connection back after a statement: kept for the next statement (HOT_CONNECTION_IDLE_MS) unless the pool
 * has a waiter (knex's own queries never wait behind the hot connections), is being destroyed, or the connection
 * is lost; then straight to knex's pool.
 */
function putBackConnection(client: Knex.Client, connection: PgConnection): void {
  const pool = client.pool as unknown as PoolState | undefined;
  if (!pool || pool.destroyed || pool.numPendingAcquires() > 0 || connection.__knex__disposed) {
    void client.releaseConnection(connection);
    return;
  }
  let hot = hotConnections.get(client);
  if (!hot) {
    hot = { client, idle: [] };
    hotConnections.set(client, hot);
  }
  if (hot.watched !== pool) watchPool(hot, pool);
  hot.idle.push({ connection, since: performance.now() });
  hot.sweep ??= setTimeout(sweepHotConnections, HOT_CONNECTION_IDLE_MS, hot);
}

/**
 * Makes every acquire from knex's pool that would find no free connection (knex's own queries and transactions;
 * runPrepared asks the pool only when it holds none) take the oldest hot connection instead of waiting for the
 * sweep: tarn emits `acquireRequest` before it queues the acquire, and a connection released then is free for it.
 */
function watchPool(hot: HotConnections, pool: PoolState): void {
  hot.watched = pool;
  pool.on('acquireRequest', () => {
    if (pool.numFree() > 0 || hot.client.pool !== (pool as unknown)) return;
    const oldest = hot.idle.shift();
    if (oldest) void hot.client.releaseConnection(oldest.connection);
  });
}

/** Returns to knex's pool the hot connections idle for HOT_CONNECTION_IDLE_MS; runs again while any are left. */
function sweepHotConnections(hot: HotConnections): void {
  hot.sweep = undefined;
  const pool = hot.client.pool as unknown as PoolState | undefined;
  // The pool is gone (knex destroyed it, and with it every connection): nothing is left to give back.
  if (!pool) {
    hot.idle.length = 0;
    return;
  }
  const before = pool.destroyed ? Number.POSITIVE_INFINITY : performance.now() - HOT_CONNECTION_IDLE_MS;
  let stale = 0;
  while (stale < hot.idle.length && hot.idle[stale]!.since <= before) stale += 1;
  for (const { connection } of hot.idle.splice(0, stale)) void hot.client.releaseConnection(connection);
  // A timer that keeps the process up for at most one more interval: knex.destroy() waits for these connections.
  if (hot.idle.length > 0) hot.sweep = setTimeout(sweepHotConnections, HOT_CONNECTION_IDLE_MS, hot);
}

/** Hands every connection runPrepared holds back to knex's pool at once (before `knex.destroy()`). */
export function releaseHotConnections(knex: Knex): void {
  const hot = hotConnections.get(knex.client as Knex.Client);
  if (!hot) return;
  clearTimeout(hot.sweep);
  hot.sweep = undefined;
  const kept = hot.idle.splice(0);
  if (hot.client.pool) for (const { connection } of kept) void hot.client.releaseConnection(connection);
}

/**
 * Runs a named statement on a node-postgres client: a `pg.Query` built from the text (pg copies a config object's
 * every property descriptor for each query; a text does not need it), named afterwards, answered by callback.
 */
function queryPg<Row>(connection: PgConnection, statement: PreparedStatement, values: unknown[]): Promise<Row[]> {
  return new Promise<Row[]>((resolve, reject) => {
    const query = new pg.Query<Row & pg.QueryResultRow>(statement.text, values, (err, result) =>
      err ? reject(err) : resolve(result.rows),
    );
    (query as unknown as { name: string }).name = statement.name;
    connection.query(query);
  });
}

/** Whether `db` is a knex transaction (its connection is its own; nothing is pooled or kept). */
const isTransaction = (db: Knex | Knex.Transaction) => (db as { isTransaction?: boolean }).isTransaction === true;

/**
 * Runs `statement` with `values` on a connection of `db`'s pool (or, for a transaction, on its connection) and
 * answers its rows. knex cannot name statements and builds and parses each one anew, so the request path's few
 * statements go to the driver directly: pg's named statements on a server, PGlite's `query` on the embedded
 * database. Taking the connection from knex's pool keeps one pool (DATABASE_POOL_MAX) and, on PGlite, its single
 * connection serialised with knex's own queries and transactions; on a server the connection a statement used is
 * kept for the next one for HOT_CONNECTION_IDLE_MS unless the pool has a waiter. Errors are the driver's (SQLSTATE
 * in `code`), as knex's are.
 */
export async function runPrepared<Row>(
  db: Knex | Knex.Transaction,
  statement: PreparedStatement,
  values: readonly unknown[],
): Promise<Row[]> {
  const client = db.client as Knex.Client;
  const pooled = !isTransaction(db);
  const connection = ((pooled && takeHotConnection(client)) || (await client.acquireConnection())) as Connection;
  if (pgliteConnections.has(connection)) {
    try {
      return (await (connection as PgliteConnection).query(statement.text, [...values])).rows as Row[];
    } finally {
      await client.releaseConnection(connection);
    }
  }
  try {
    return await queryPg<Row>(connection as PgConnection, statement, values as unknown[]);
  } finally {
    if (pooled) putBackConnection(client, connection as PgConnection);
    else await client.releaseConnection(connection);
  }
}

/** The default of DatabaseOptions.queryTimeoutMs (DATABASE_QUERY_TIMEOUT), in milliseconds. */
export const DEFAULT_QUERY_TIMEOUT_MS = 30_000;

/**
 * How long past DATABASE_QUERY_TIMEOUT a connection waits for the server's own answer before it is dropped, in
 * milliseconds: the server enforces the timeout itself (`statement_timeout`: the statement is cancelled and its
 * transaction rolled back, SQLSTATE 57014), so only a server or link that answers nothing reaches the drop. Half
 * the timeout, at most 5 s.
 */
export const queryDeadlineGraceMs = (timeoutMs: number): number => Math.min(5000, Math.ceil(timeoutMs / 2));

/**
 * A statement PostgreSQL did not answer within DATABASE_QUERY_TIMEOUT: its connection was dropped. `code` is
 * `ETIMEDOUT`, so isDatabaseUnavailable counts it as a lost database (503 `dependency_unavailable`, retried where
 * a lost database is retried).
 */
export class DatabaseQueryTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(timeoutMs: number) {
    super(`PostgreSQL did not answer a statement within ${timeoutMs / 1000} s; its connection was dropped`);
    this.name = 'DatabaseQueryTimeoutError';
  }
}

/**
 * The query deadline of one pool. A database that stops answering without closing the connection (a silent
 * network partition, a frozen server or VM, a middlebox that dropped the flow) leaves pg's statement waiting for
 * as long as the kernel retransmits, about 15 minutes on Linux (`tcp_retries2`), and TCP keepalive does not help
 * while data is unacknowledged; every connection of the pool ends up there and the secretary answers nothing.
 * node-postgres' own `query_timeout` fails the caller but leaves the statement active on the connection, so the
 * next statement queues behind it. Here a connection with a statement unanswered for `ms` (the timeout, which a
 * live server enforces first with `statement_timeout`, and queryDeadlineGraceMs) is destroyed: its statement fails
 * with DatabaseQueryTimeoutError, knex disposes of the connection, and the next one is opened anew. Destroying does
 * not stop the statement on the server, hence the server's own timeout; a COMMIT whose answer was lost is found by
 * the caller (history-write-repository.ts DECISION_RECORDED).
 */
type QueryDeadline = {
  readonly ms: number;
  /** Migration runs in progress: their statements (index builds, lock waits) are not timed. */
  suspended: number;
  /** Live connections with the time their oldest unanswered statement was sent (performance.now(); 0: none). */
  readonly connections: Map<WireConnection, number>;
  sweep?: NodeJS.Timeout;
};

/** What the deadline uses of node-postgres' wire connection (`pg.Client#connection`). */
type WireConnection = {
  stream: { destroy(error?: Error): void };
  on(event: 'readyForQuery' | 'end', listener: () => void): unknown;
  query(...args: unknown[]): unknown;
  sync(...args: unknown[]): unknown;
};

const queryDeadlines = new WeakMap<Knex.Client, QueryDeadline>();

/**
 * Times every request a pooled connection sends that ends in ReadyForQuery (PostgreSQL protocol, "Message
 * Flow"): a simple Query, and Sync after an extended-protocol statement (not Flush: a cursor's page gets no
 * ReadyForQuery). One sweep per pool, every quarter of the deadline (at most 1 s), so a statement costs a clock
 * read, not a timer.
 */
function watchQueryDeadline(deadline: QueryDeadline, client: pg.Client): void {
  const wire = (client as unknown as { connection: WireConnection }).connection;
  const sent = () => {
    if (deadline.suspended === 0 && deadline.connections.get(wire) === 0)
      deadline.connections.set(wire, performance.now());
  };
  for (const method of ['query', 'sync'] as const) {
    const send = wire[method].bind(wire);
    wire[method] = (...args: unknown[]) => {
      sent();
      return send(...args);
    };
  }
  deadline.connections.set(wire, 0);
  wire.on('readyForQuery', () => {
    if (deadline.connections.has(wire)) deadline.connections.set(wire, 0);
  });
  wire.on('end', () => {
    deadline.connections.delete(wire);
    if (deadline.connections.size === 0) {
      clearInterval(deadline.sweep);
      deadline.sweep = undefined;
    }
  });
  deadline.sweep ??= setInterval(sweepQueryDeadline, Math.min(1000, deadline.ms / 4), deadline).unref();
}

/** Destroys the connections whose unanswered statement is older than the deadline. */
function sweepQueryDeadline(deadline: QueryDeadline): void {
  const before = performance.now() - deadline.ms;
  for (const [wire, since] of deadline.connections) {
    if (since === 0 || since > before) continue;
    deadline.connections.delete(wire);
    wire.stream.destroy(new DatabaseQueryTimeoutError(deadline.ms));
  }
}

/** Runs `work` with `db`'s query deadline suspended (migrations: index builds and lock waits take their time). */
async function withoutQueryDeadline<T>(db: Database, work: () => Promise<T>): Promise<T> {
  const deadline = queryDeadlines.get(db.knex.client as Knex.Client);
  if (!deadline) return work();
  deadline.suspended += 1;
  try {
    return await work();
  } finally {
    deadline.suspended -= 1;
  }
}

/** Opens the secretary's database: a pg pool on a server, or PGlite persisted on disk when no URL is given. */
export function openDatabase(options: DatabaseOptions): Database {
  if (options.url) {
    const timeoutMs = options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
    const deadline: QueryDeadline | undefined =
      timeoutMs > 0
        ? { ms: timeoutMs + queryDeadlineGraceMs(timeoutMs), suspended: 0, connections: new Map() }
        : undefined;
    const knex = knexFactory({
      client: 'pg',
      // keepAlive: a pooled connection whose peer vanished while it sat idle is found dead by the kernel.
      connection: {
        connectionString: options.url,
        connectionTimeoutMillis: 3000,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        // The server cancels a statement past the timeout itself (a lock wait, a slow plan): it rolls back there,
        // not later behind a caller told it failed. Migrations lift it (`set local statement_timeout = 0`).
        ...(timeoutMs > 0 && { statement_timeout: timeoutMs }),
      },
      // Small acquire timeout: with the server down a request should fail fast with 503, not hang.
      pool: {
        min: 0,
        max: options.poolMax ?? 10,
        idleTimeoutMillis: 30_000,
        afterCreate: (connection: pg.Client, done: (err: Error | null, connection: pg.Client) => void) => {
          if (deadline) watchQueryDeadline(deadline, connection);
          done(null, connection);
        },
      },
      acquireConnectionTimeout: 5000,
      log: knexLog(options.logger),
    });
    if (deadline) queryDeadlines.set(knex.client as Knex.Client, deadline);
    return {
      knex,
      kind: 'postgres',
      close: () => {
        releaseHotConnections(knex);
        if (deadline) clearInterval(deadline.sweep);
        return knex.destroy();
      },
    };
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
 * Options of migrateDatabase: how long to wait for another instance's migration lock (ms, default 60 s), and the
 * migrations (default: the secretary's, migrations.ts).
 */
export type MigrateOptions = { lockWaitMs?: number; source?: Knex.MigrationSource<unknown> };

/**
 * Brings the schema up to date under knex's migration lock, so concurrent starts run each migration once. knex
 * fails fast when another instance holds the lock; this waits for that instance instead (then finds nothing
 * left to do), so replicas starting together all come up.
 */
export async function migrateDatabase(db: Database, options: MigrateOptions = {}): Promise<string[]> {
  if (db.kind === 'pglite') return migrateUnderKnexLock(db, options);
  // knex creates its own bookkeeping tables before it takes its lock, and two instances racing there fail with
  // "relation knex_migrations already exists": a transaction-scoped advisory lock on another pooled
  // connection serialises whole runs (PGlite has one connection and one process, so it needs none).
  return withoutQueryDeadline(db, () =>
    db.knex.transaction(async (trx) => {
      // Another instance may be migrating for longer than DATABASE_QUERY_TIMEOUT.
      await trx.raw('set local statement_timeout = 0');
      await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATION_ADVISORY_LOCK]);
      return migrateUnderKnexLock(db, options);
    }),
  );
}

// An arbitrary constant naming "secretary migrations" among the database's advisory locks.
const MIGRATION_ADVISORY_LOCK = 7_140_003;

/** knex's "Migration table is already locked": another instance is migrating right now. */
function isMigrationLocked(err: unknown): boolean {
  return (err as { name?: string } | undefined)?.name === 'MigrationLocked';
}

/** Runs knex's migrations; while another instance holds knex's lock, tries again every 250 ms until `lockWaitMs`. */
async function migrateUnderKnexLock(db: Database, options: MigrateOptions): Promise<string[]> {
  const until = Date.now() + (options.lockWaitMs ?? 60_000);
  const source = options.source ?? migrationSource;
  return retry(
    async () => {
      const [, applied] = (await db.knex.migrate.latest({ migrationSource: source, tableName: 'knex_migrations' })) as [
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
// 57014 query_canceled: DATABASE_QUERY_TIMEOUT's statement_timeout (or an operator's pg_cancel_backend).
const CONNECTION_SQLSTATES = /^(08|57P0[1-3]|53300|57014)/;

export function isDatabaseUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | undefined;
  if (!e || typeof e !== 'object') return false;
  const code = typeof e.code === 'string' ? e.code : '';
  if (CONNECTION_CODES.has(code) || CONNECTION_SQLSTATES.test(code)) return true;
  const message = typeof e.message === 'string' ? e.message : '';
  return (
    e.name === 'KnexTimeoutError' ||
    // "timeout expired": pg's connectionTimeoutMillis ran out (a server or link that accepts nothing).
    /Connection terminated|Client has encountered a connection error|connection is closed|timeout expired/i.test(
      message,
    )
  );
}

/** Turns a lost database into the catalogue's 503; everything else passes through unchanged. */
export function toDatabaseError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  return isDatabaseUnavailable(err) ? errors.dependencyUnavailable('postgres', err) : err;
}
