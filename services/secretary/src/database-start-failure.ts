// What an operator reads when the secretary (or `npm run migrate`) cannot open its PostgreSQL server at start: one
// line naming the server, the key and what to do, instead of a driver's stack trace.

const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'the connection was refused (is PostgreSQL running and listening on that port?)',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ECONNRESET: 'the server closed the connection',
};

/** `host:port/database` and the user of a postgres:// URL; never the password. */
function serverOf(databaseUrl: string): { where: string; user: string; database: string } {
  try {
    const url = new URL(databaseUrl);
    const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || decodeURIComponent(url.username);
    return {
      where: `${url.hostname || 'localhost'}:${url.port || '5432'}/${database}`,
      user: decodeURIComponent(url.username),
      database,
    };
  } catch {
    return { where: 'DATABASE_URL', user: '', database: '' };
  }
}

/**
 * The plain-words line for a failure to open or migrate the PostgreSQL database at `databaseUrl` at start, or
 * `undefined` when the failure is not one of the operator's (unreachable server, refused login, missing
 * database, server starting up: node-postgres's `code`, a Node network code or a SQLSTATE, PostgreSQL docs,
 * appendix A) or the database is the embedded one (`databaseUrl` unset). Never contains the password.
 */
export function describeDatabaseStartFailure(err: unknown, databaseUrl: string | undefined): string | undefined {
  if (!databaseUrl || !err || typeof err !== 'object') return undefined;
  const e = err as { code?: unknown; name?: unknown };
  const code = typeof e.code === 'string' ? e.code : e.name === 'KnexTimeoutError' ? 'ETIMEDOUT' : '';
  const { where, user, database } = serverOf(databaseUrl);
  const embedded = 'or unset DATABASE_URL to use the embedded database in PGLITE_DIR';
  if (UNREACHABLE[code]) {
    return (
      `cannot reach PostgreSQL at ${where} (DATABASE_URL): ${UNREACHABLE[code]}. Start PostgreSQL or correct ` +
      `the host and port in DATABASE_URL, ${embedded}.`
    );
  }
  if (code === '28P01' || code === '28000') {
    return (
      `PostgreSQL at ${where} (DATABASE_URL) refused the login of user '${user}': wrong password, or the role ` +
      'may not log in from here (pg_hba.conf). Correct the user and password in DATABASE_URL.'
    );
  }
  if (code === '3D000') {
    return (
      `PostgreSQL at ${where} (DATABASE_URL) has no database '${database}': create it (createdb ${database}) ` +
      `or name an existing one in DATABASE_URL, ${embedded}.`
    );
  }
  if (code === '57P03')
    return `PostgreSQL at ${where} (DATABASE_URL) is starting up: start the secretary again shortly.`;
  return undefined;
}
