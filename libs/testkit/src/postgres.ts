import { spawnSync, execFileSync } from 'node:child_process';
import { mkdtempSync, chownSync, readdirSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { getFreePort } from './ports.js';

export type PostgresServer = {
  url: string;
  port: number;
  /** Stops the server (fast shutdown), keeping its data. */
  stop: () => Promise<void>;
  /** Starts it again on the same port and data. */
  start: () => Promise<void>;
  /** Stops it and removes its data. */
  destroy: () => Promise<void>;
};

function binDir(): string {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) throw new Error('PostgreSQL is not installed: apt-get install -y postgresql (see .ci/run)');
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  if (!versions[0]) throw new Error('no initdb under /usr/lib/postgresql/*/bin');
  return join(base, versions[0], 'bin');
}

// The server refuses to run as root: when we are root it runs as the unprivileged `postgres` user.
function asPostgres(cmd: string, args: string[]): string[] {
  return process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', cmd, ...args] : [cmd, ...args];
}

function run(cmd: string[], allowFail = false): void {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  if (r.status !== 0 && !allowFail) throw new Error(`${cmd.join(' ')} failed: ${r.stderr || r.stdout}`);
}

/** Starts a private PostgreSQL server in a temporary directory on a free port (trust auth, fsync off). */
export async function startPostgresServer(): Promise<PostgresServer> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'workemon-pg-'));
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  const port = await getFreePort();
  run(
    asPostgres(join(bin, 'initdb'), [
      '-D',
      join(dir, 'data'),
      '-U',
      'postgres',
      '--auth=trust',
      '--no-sync',
      '-E',
      'UTF8',
      '--locale=C',
    ]),
  );
  const pgCtl = (action: 'start' | 'stop') =>
    action === 'start'
      ? run(
          asPostgres(join(bin, 'pg_ctl'), [
            '-D',
            join(dir, 'data'),
            '-l',
            join(dir, 'log'),
            '-w',
            '-t',
            '30',
            '-o',
            `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300`,
            'start',
          ]),
        )
      : run(asPostgres(join(bin, 'pg_ctl'), ['-D', join(dir, 'data'), '-m', 'fast', '-w', '-t', '30', 'stop']), true);
  pgCtl('start');
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    stop: async () => pgCtl('stop'),
    start: async () => pgCtl('start'),
    destroy: async () => {
      pgCtl('stop');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Creates an empty database on the server at `serverUrl` and returns its URL (one per test file). */
export async function createTestDatabase(
  serverUrl: string,
  prefix = 'test',
): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: serverUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
