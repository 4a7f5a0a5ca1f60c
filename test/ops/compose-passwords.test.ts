// No well-known password in the compose stack: keygen (scripts/compose-keygen.mjs) generates the Postgres and
// Grafana admin passwords on the first start, postgres and grafana read them through their *_FILE variables, the
// secretary reaches Postgres through DATABASE_URL_FILE, and Elasticsearch (security off) is not published unless
// the opt-in override file is added. There is no Docker daemon here: the compose file is checked as
// docker-compose resolves it, keygen runs as the plain Node script it is, and a real PostgreSQL is initialised
// the way the postgres image does it (initdb --pwfile with the password file, scram-sha-256 over TCP) for the
// secretary's real main.ts to log in with the URL keygen wrote.
import { execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError } from '@workemon/service-kit';
import { getFreePort, waitFor } from '@workemon/testkit';
import { loadConfig } from '@workemon/secretary';
import { repoPath } from './observability-files.js';

const run = promisify(execFile);

type ComposeService = {
  environment?: Record<string, string | null>;
  volumes?: (string | { source?: string; target: string; read_only?: boolean })[];
  depends_on?: Record<string, { condition: string }>;
  ports?: (string | { host_ip?: string; published?: string | number; target: number })[];
  expose?: (string | number)[];
};
type Compose = { services: Record<string, ComposeService>; volumes?: Record<string, unknown> };

/** The compose file(s) as docker-compose resolves them, with `env` as the only environment (no .env). */
async function resolved(files: string[] = ['docker-compose.yml'], env: Record<string, string> = {}) {
  const { stdout } = await run('docker-compose', [...files.flatMap((f) => ['-f', repoPath(f)]), 'config'], {
    cwd: repoPath('.'),
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
  });
  return { compose: parse(stdout) as Compose, text: stdout };
}

const ports = (s: ComposeService) =>
  (s.ports ?? []).map((p) =>
    typeof p === 'string'
      ? p.replace(/\/tcp$/, '')
      : `${p.host_ip ?? '0.0.0.0'}:${String(p.published)}:${String(p.target)}`,
  );
/** `volume:target` of each mount (docker-compose 1.x prints strings, 2.x objects). */
const mounts = (s: ComposeService) =>
  (s.volumes ?? []).map((v) => (typeof v === 'string' ? v.replace(/:r[ow]$/, '') : `${v.source}:${v.target}`));
/** The volume mounted at the directory holding `file`, in `service`. */
function volumeHolding(service: ComposeService, file: string): string | undefined {
  const dir = file.slice(0, file.lastIndexOf('/'));
  return mounts(service)
    .find((m) => m.endsWith(`:${dir}`))
    ?.split(':')[0];
}

describe('docker-compose.yml: no well-known password', () => {
  it('postgres and grafana read the passwords keygen writes, after it has run; the defaults name none', async () => {
    const { compose, text } = await resolved();
    const { postgres, grafana, keygen, secretary } = compose.services as Record<string, ComposeService>;
    const keygenEnv = keygen!.environment!;
    const passwordsVolume = volumeHolding(keygen!, `${keygenEnv['PASSWORDS_DIR']}/x`);
    expect(passwordsVolume).toBe('passwords');
    expect(Object.keys(compose.volumes ?? {})).toContain('passwords');

    const pgFile = postgres!.environment!['POSTGRES_PASSWORD_FILE']!;
    expect(pgFile).toMatch(/\/postgres\.password$/);
    expect(volumeHolding(postgres!, pgFile)).toBe(passwordsVolume);
    expect(postgres!.environment).not.toHaveProperty('POSTGRES_PASSWORD');
    const grafanaFile = grafana!.environment!['GF_SECURITY_ADMIN_PASSWORD__FILE']!;
    expect(grafanaFile).toMatch(/\/grafana-admin\.password$/);
    expect(volumeHolding(grafana!, grafanaFile)).toBe(passwordsVolume);
    expect(grafana!.environment).not.toHaveProperty('GF_SECURITY_ADMIN_PASSWORD');
    // Anonymous viewers off: a page rebinding a name to 127.0.0.1 gets a login form, not the logs.
    expect(grafana!.environment!['GF_AUTH_ANONYMOUS_ENABLED']).toBe('false');
    for (const [name, service] of Object.entries({ postgres, grafana, secretary }))
      expect(service!.depends_on?.['keygen']?.condition, name).toBe('service_completed_successfully');

    // The secretary: no URL of its own by default, the file keygen writes into the keys volume it mounts.
    expect(secretary!.environment!['DATABASE_URL']).toBe('');
    const urlFile = secretary!.environment!['DATABASE_URL_FILE']!;
    expect(urlFile).toMatch(/\/database\.url$/);
    expect(volumeHolding(secretary!, urlFile)).toBe(volumeHolding(keygen!, `${keygenEnv['KEYS_DIR']}/x`));
    // keygen builds that URL from the same user and database as postgres.
    expect(keygenEnv['POSTGRES_USER']).toBe(postgres!.environment!['POSTGRES_USER']);
    expect(keygenEnv['POSTGRES_DB']).toBe(postgres!.environment!['POSTGRES_DB']);

    expect(text).not.toMatch(/workemon:workemon@|PASSWORD: (workemon|admin)\b/);
  });

  it('explicit POSTGRES_PASSWORD, GRAFANA_ADMIN_PASSWORD and DATABASE_URL still win', async () => {
    const { compose } = await resolved(['docker-compose.yml'], {
      POSTGRES_PASSWORD: 'from-env-1',
      GRAFANA_ADMIN_PASSWORD: 'from-env-2',
      DATABASE_URL: 'postgres://app:secret@db.internal:5432/app',
      GRAFANA_ANONYMOUS: 'true',
    });
    const { postgres, grafana, keygen, secretary } = compose.services as Record<string, ComposeService>;
    // Through keygen, which writes them into the files postgres and grafana read (both set would be refused).
    expect(keygen!.environment).toMatchObject({
      POSTGRES_PASSWORD: 'from-env-1',
      GRAFANA_ADMIN_PASSWORD: 'from-env-2',
    });
    expect(postgres!.environment).not.toHaveProperty('POSTGRES_PASSWORD');
    expect(grafana!.environment).not.toHaveProperty('GF_SECURITY_ADMIN_PASSWORD');
    expect(grafana!.environment!['GF_AUTH_ANONYMOUS_ENABLED']).toBe('true');
    expect(secretary!.environment!['DATABASE_URL']).toBe('postgres://app:secret@db.internal:5432/app');
  });

  it('Elasticsearch is published only with docker-compose.elasticsearch-port.yml, and then on 127.0.0.1', async () => {
    const plain = (await resolved()).compose.services['elasticsearch']!;
    expect(ports(plain)).toEqual([]);
    expect(plain.expose?.map(String)).toEqual(['9200']);
    const withPort = (await resolved(['docker-compose.yml', 'docker-compose.elasticsearch-port.yml'])).compose;
    expect(ports(withPort.services['elasticsearch']!)).toEqual(['127.0.0.1:9200:9200']);
    const moved = (
      await resolved(['docker-compose.yml', 'docker-compose.elasticsearch-port.yml'], { ELASTICSEARCH_PORT: '19200' })
    ).compose;
    expect(ports(moved.services['elasticsearch']!)).toEqual(['127.0.0.1:19200:9200']);
  });
});

type KeygenDirs = { keys: string; passwords: string; postgresData: string; grafanaData: string };

function keygenDirs(root: string): KeygenDirs {
  const dirs = {
    keys: join(root, 'keys'),
    passwords: join(root, 'passwords'),
    postgresData: join(root, 'postgres-data'),
    grafanaData: join(root, 'grafana-data'),
  };
  for (const d of [dirs.postgresData, dirs.grafanaData]) mkdirSync(d, { recursive: true });
  return dirs;
}

async function runKeygen(dirs: KeygenDirs, env: Record<string, string> = {}) {
  const me = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
  const { stdout } = await run(process.execPath, [repoPath('scripts/compose-keygen.mjs')], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      KEYS_DIR: dirs.keys,
      KEYS_OWNER: me,
      PASSWORDS_DIR: dirs.passwords,
      GRAFANA_OWNER: me,
      POSTGRES_DATA_DIR: dirs.postgresData,
      GRAFANA_DATA_DIR: dirs.grafanaData,
      ...env,
    },
  });
  return stdout;
}

const text = (path: string) => readFile(path, 'utf8');

describe('keygen: the Postgres and Grafana passwords', () => {
  let root: string;
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'keygen-passwords-'));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('generates both once, prints each once, keeps them, and writes the secretary a matching URL', async () => {
    const dirs = keygenDirs(join(root, 'fresh'));
    const first = await runKeygen(dirs);
    const postgres = (await text(join(dirs.passwords, 'postgres.password'))).trim();
    const grafana = (await text(join(dirs.passwords, 'grafana-admin.password'))).trim();
    for (const password of [postgres, grafana]) {
      expect(password).toMatch(/^[\w-]{43}$/);
      expect(first.split(password)).toHaveLength(2);
    }
    expect(postgres).not.toBe(grafana);
    expect(first).toContain(`Workemon Postgres password of user workemon (generated; `);
    expect(first).toContain('Workemon Grafana admin password (generated; ');
    expect(await text(join(dirs.keys, 'database.url'))).toBe(
      `postgres://workemon:${postgres}@postgres:5432/workemon\n`,
    );
    for (const file of [
      join(dirs.passwords, 'postgres.password'),
      join(dirs.passwords, 'grafana-admin.password'),
      join(dirs.keys, 'database.url'),
    ])
      expect((await stat(file)).mode & 0o777, file).toBe(0o600);

    const second = await runKeygen(dirs);
    expect(second).not.toContain(postgres);
    expect(second).not.toContain(grafana);
    expect((await text(join(dirs.passwords, 'postgres.password'))).trim()).toBe(postgres);
    expect((await text(join(dirs.passwords, 'grafana-admin.password'))).trim()).toBe(grafana);
  });

  it('an explicit POSTGRES_PASSWORD / GRAFANA_ADMIN_PASSWORD wins, unprinted, and the URL encodes it', async () => {
    const dirs = keygenDirs(join(root, 'explicit'));
    await runKeygen(dirs);
    const out = await runKeygen(dirs, {
      POSTGRES_PASSWORD: 'p@ss:w/rd%1',
      GRAFANA_ADMIN_PASSWORD: 'grafana-from-env',
      POSTGRES_USER: 'app',
      POSTGRES_DB: 'app_db',
    });
    expect(out).not.toContain('p@ss');
    expect(out).not.toContain('grafana-from-env');
    expect(await text(join(dirs.passwords, 'postgres.password'))).toBe('p@ss:w/rd%1\n');
    expect(await text(join(dirs.passwords, 'grafana-admin.password'))).toBe('grafana-from-env\n');
    const url = new URL((await text(join(dirs.keys, 'database.url'))).trim());
    expect([url.username, decodeURIComponent(url.password), url.host, url.pathname]).toEqual([
      'app',
      'p@ss:w/rd%1',
      'postgres:5432',
      '/app_db',
    ]);
  });

  it('a Postgres or Grafana created before generated passwords keeps its old one, and a line says how to change it', async () => {
    const dirs = keygenDirs(join(root, 'upgrade'));
    writeFileSync(join(dirs.postgresData, 'PG_VERSION'), '16\n');
    writeFileSync(join(dirs.grafanaData, 'grafana.db'), '');
    const out = await runKeygen(dirs);
    // The secretary keeps reaching the database it was reaching.
    expect(await text(join(dirs.keys, 'database.url'))).toBe('postgres://workemon:workemon@postgres:5432/workemon\n');
    expect(out).toContain('the Postgres database was created before passwords were generated');
    expect(out).toContain('\\password workemon');
    expect(out).toContain('Grafana was set up before passwords were generated and keeps its admin password');
    expect(out).not.toContain('Grafana admin password (generated');
    expect(out).toMatch(/Workemon client key/);
  });
});

/** The newest PostgreSQL's bin directory (Debian's layout). */
function pgBin(): string {
  const base = '/usr/lib/postgresql';
  const version = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))[0]!;
  return join(base, version, 'bin');
}

describe('the secretary on a Postgres initialised with the generated password', () => {
  let root: string;
  let dataDir: string;
  let port: number;
  let dirs: KeygenDirs;
  const asRoot = process.getuid?.() === 0;
  // The server refuses to run as root: then it runs as Debian's `postgres` user.
  const asPostgres = (cmd: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  const pgRun = (cmd: string, args: string[]) => {
    const [c, a] = asPostgres(join(pgBin(), cmd), args);
    const r = spawnSync(c, a, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`);
  };

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'keygen-postgres-'));
    // The server's own user must get through to its directory below.
    chmodSync(root, 0o711);
    port = await getFreePort();
    dirs = keygenDirs(join(root, 'volumes'));
    await runKeygen(dirs, { POSTGRES_ADDRESS: `127.0.0.1:${port}` });
    // As the image's entrypoint: initdb --username=$POSTGRES_USER --pwfile=<the password>, password
    // authentication (scram-sha-256) for every TCP connection, then CREATE DATABASE $POSTGRES_DB.
    const server = join(root, 'server');
    mkdirSync(server);
    const pwfile = join(server, 'pwfile');
    copyFileSync(join(dirs.passwords, 'postgres.password'), pwfile);
    if (asRoot) {
      const [uid, gid] = ['-u', '-g'].map((f) => Number(execFileSync('id', [f, 'postgres'], { encoding: 'utf8' })));
      chownSync(server, uid!, gid!);
      chownSync(pwfile, uid!, gid!);
    }
    dataDir = join(server, 'data');
    pgRun('initdb', [
      '-D',
      dataDir,
      '--username=workemon',
      `--pwfile=${pwfile}`,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '--no-sync',
      '-E',
      'UTF8',
      '--locale=C',
    ]);
    pgRun('pg_ctl', [
      '-D',
      dataDir,
      '-l',
      join(server, 'log'),
      '-w',
      '-t',
      '30',
      '-o',
      `-p ${port} -k ${server} -c listen_addresses=127.0.0.1 -c fsync=off`,
      'start',
    ]);
    pgRun('psql', [
      '-h',
      server,
      '-p',
      String(port),
      '-U',
      'workemon',
      '-d',
      'postgres',
      '-c',
      'CREATE DATABASE workemon',
    ]);
  }, 90_000);
  afterAll(() => {
    if (dataDir) spawnSync(...asPostgres(join(pgBin(), 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']));
    rmSync(root, { recursive: true, force: true });
  });

  it('the server refuses another password over TCP (the check below is not trust)', async () => {
    const client = new pg.Client({ connectionString: `postgres://workemon:workemon@127.0.0.1:${port}/workemon` });
    await expect(client.connect()).rejects.toMatchObject({ code: '28P01' });
  });

  it(
    'main.ts with DATABASE_URL_FILE logs in, migrates and reports Postgres ok on /health',
    { timeout: 120_000 },
    async () => {
      const httpPort = await getFreePort();
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', '--conditions=@workemon/source', repoPath('services/secretary/src/main.ts')],
        {
          cwd: repoPath('.'),
          env: {
            PATH: process.env['PATH'] ?? '/usr/bin:/bin',
            HOST: '127.0.0.1',
            PORT: String(httpPort),
            LOG_LEVEL: 'warn',
            DATABASE_URL_FILE: join(dirs.keys, 'database.url'),
            GUESSER_URL: 'http://127.0.0.1:9',
            SYSTEM_ANALYST_URL: 'http://127.0.0.1:9',
            COMMUNICATOR_URL: 'http://127.0.0.1:9',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let output = '';
      child.stdout.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr.on('data', (c: Buffer) => (output += c.toString()));
      const exited = new Promise((resolve) => child.on('exit', resolve));
      try {
        const health = await waitFor(
          async () => {
            if (child.exitCode !== null) throw new Error(`secretary exited: ${output}`);
            const r = await fetch(`http://127.0.0.1:${httpPort}/health`).catch(() => undefined);
            return r ? ((await r.json()) as { checks: Record<string, { status: string }> }) : undefined;
          },
          { what: 'the secretary up', timeoutMs: 100_000, intervalMs: 250 },
        );
        expect(
          Object.entries(health.checks).find(([name]) => /postgres|database/i.test(name))?.[1].status,
          output,
        ).toBe('ok');
        const password = (await text(join(dirs.passwords, 'postgres.password'))).trim();
        expect(output).not.toContain(password);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    },
  );
});

describe('the secretary: DATABASE_URL_FILE', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'database-url-file-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env);
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
    return [];
  };

  it('reads the URL from the file; DATABASE_URL wins when both are set', () => {
    const file = join(dir, 'database.url');
    writeFileSync(file, 'postgres://workemon:s3cret@postgres:5432/workemon\n');
    expect(loadConfig({ DATABASE_URL_FILE: file }).databaseUrl).toBe(
      'postgres://workemon:s3cret@postgres:5432/workemon',
    );
    expect(loadConfig({ DATABASE_URL_FILE: file, DATABASE_URL: 'postgres://other@db/x' }).databaseUrl).toBe(
      'postgres://other@db/x',
    );
    expect(loadConfig({ DATABASE_URL_FILE: file, DATABASE_URL: '' }).databaseUrl).toBe(
      'postgres://workemon:s3cret@postgres:5432/workemon',
    );
  });

  it('a missing file or one without a postgres:// URL: one problem naming the key and the file, not the content', () => {
    const missing = join(dir, 'absent.url');
    expect(problems({ DATABASE_URL_FILE: missing })).toEqual([`DATABASE_URL_FILE: cannot read ${missing} (ENOENT)`]);
    const bad = join(dir, 'bad.url');
    writeFileSync(bad, 'mysql://root:hunter2@db/x\n');
    const found = problems({ DATABASE_URL_FILE: bad });
    expect(found).toEqual([`DATABASE_URL_FILE: ${bad} must hold one postgres:// or postgresql:// URL`]);
    expect(found.join()).not.toContain('hunter2');
  });
});
