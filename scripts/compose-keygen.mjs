#!/usr/bin/env node
// The compose stack's one-shot `keygen` service: on first start it generates a client, an admin and a service
// key (32 random bytes each, base64url) into KEYS_DIR (the `api-keys` volume), one `name:key` file per class,
// readable only by the services' user (uid 1000), and prints the client and admin keys once. On later starts
// it keeps the files and prints only where they are (a file missing from an older volume is generated). The
// services read them through API_KEYS_FILE, ADMIN_API_KEYS_FILE and SERVICE_API_KEYS_FILE (docs/operations.md,
// "Security"). The guesser and the system analyst get a key of their own, llm.keys in LLM_KEYS_DIR (a volume only
// they and the secretary mount): their SERVICE_API_KEYS_FILE, and the secretary's GUESSER_API_KEY_FILE and
// SYSTEM_ANALYST_API_KEY_FILE. The secretary and the communicator do not accept it, and the LLM services never
// see service.keys, so neither LLM service holds a key to the routes that approve, claim mail or send.
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.KEYS_DIR ?? '/keys';
const llmDir = process.env.LLM_KEYS_DIR ?? '/llm-keys';
const owner = process.env.KEYS_OWNER ?? '1000:1000';
const [uid, gid] = owner.split(':').map(Number);
mkdirSync(dir, { recursive: true });
mkdirSync(llmDir, { recursive: true });

const classes = [
  { file: 'client.keys', name: 'client', show: 'client key (Authorization: Bearer <key> on /analyze-request)' },
  { file: 'admin.keys', name: 'admin', show: 'admin key (directory, rules, approvals, history)' },
  { file: 'service.keys', name: 'service' },
  { file: 'llm.keys', name: 'llm-services', dir: llmDir },
];

const created = [];
for (const c of classes) {
  const path = join(c.dir ?? dir, c.file);
  if (existsSync(path)) continue;
  const key = randomBytes(32).toString('base64url');
  // `wx`: never overwrite a file another keygen run wrote meanwhile.
  writeFileSync(path, `${c.name}:${key}\n`, { mode: 0o600, flag: 'wx' });
  if (process.getuid?.() === 0) chownSync(path, uid, gid);
  created.push({ ...c, key });
}

if (created.length === 0) {
  console.log(
    `Workemon API keys already exist in ${dir} (kept). Show them: docker compose run --rm keygen cat ${dir}/admin.keys ${dir}/client.keys`,
  );
} else {
  for (const c of created) {
    if (c.show) console.log(`Workemon ${c.show}: ${c.key}`);
  }
  console.log(
    `Workemon: ${created.map((c) => join(c.dir ?? dir, c.file)).join(', ')} generated; ` +
      `${created.some((c) => c.show) ? 'the keys above are shown this once, ' : ''}kept across restarts.`,
  );
}

/**
 * Passwords of the compose stack's infrastructure, so nothing runs with a well-known one (docs/operations.md,
 * "Development security settings"). Into PASSWORDS_DIR (the `passwords` volume, mounted read-only into postgres
 * and grafana):
 * - `postgres.password`: POSTGRES_PASSWORD when set (an explicit value wins, as before), else kept from an earlier
 *   start, else `workemon` when POSTGRES_DATA_DIR already holds a database (created with that old default before
 *   passwords were generated: the secretary keeps reaching it; a line says how to change it), else 32 random
 *   bytes (base64url). Read by the postgres image through POSTGRES_PASSWORD_FILE (as root), only when it creates
 *   the database.
 * - `grafana-admin.password`: GRAFANA_ADMIN_PASSWORD when set, else kept, else random; owned by GRAFANA_OWNER
 *   (the image's grafana user, 472). Read through GF_SECURITY_ADMIN_PASSWORD__FILE, only when Grafana creates
 *   its database (GRAFANA_DATA_DIR/grafana.db): an older Grafana keeps its admin password, and a line says so.
 * And into KEYS_DIR, for the secretary (DATABASE_URL_FILE, owned by KEYS_OWNER): `database.url`,
 * `postgres://POSTGRES_USER:<password>@POSTGRES_ADDRESS/POSTGRES_DB`, rewritten when the password changes.
 * Every file is mode 0600. A password is printed once, when it is generated.
 */
function generateComposePasswords() {
  const passwordsDir = process.env.PASSWORDS_DIR ?? '/passwords';
  const grafanaOwner = (process.env.GRAFANA_OWNER ?? '472:0').split(':').map(Number);
  mkdirSync(passwordsDir, { recursive: true });
  const asRoot = process.getuid?.() === 0;
  const show = `docker compose run --rm keygen cat ${passwordsDir}/`;

  /** Writes `text` to `path` (mode 0600, owned by `[uid, gid]` when run as root) unless it already holds it. */
  const put = (path, text, [fileUid, fileGid] = [0, 0]) => {
    if (existsSync(path) && readFileSync(path, 'utf8') === text) return;
    writeFileSync(path, text, { mode: 0o600 });
    chmodSync(path, 0o600);
    if (asRoot) chownSync(path, fileUid, fileGid);
  };
  /** The password in `path`, or undefined when there is none yet. */
  const kept = (path) => (existsSync(path) ? readFileSync(path, 'utf8').replace(/\n$/, '') || undefined : undefined);
  const random = () => randomBytes(32).toString('base64url');

  const postgresFile = join(passwordsDir, 'postgres.password');
  const user = process.env.POSTGRES_USER || 'workemon';
  let postgres = process.env.POSTGRES_PASSWORD || kept(postgresFile);
  if (!postgres) {
    const dataDir = process.env.POSTGRES_DATA_DIR;
    if (dataDir && existsSync(join(dataDir, 'PG_VERSION'))) {
      postgres = 'workemon';
      console.log(
        `Workemon: the Postgres database was created before passwords were generated and keeps the password of user ${user}: workemon. ` +
          `Change it: docker compose exec postgres psql -U ${user} -c "\\password ${user}", then put the new one in .env as POSTGRES_PASSWORD.`,
      );
    } else {
      postgres = random();
      console.log(`Workemon Postgres password of user ${user} (generated; ${show}postgres.password): ${postgres}`);
    }
  }
  put(postgresFile, `${postgres}\n`);

  const grafanaFile = join(passwordsDir, 'grafana-admin.password');
  let grafana = process.env.GRAFANA_ADMIN_PASSWORD || kept(grafanaFile);
  if (!grafana) {
    grafana = random();
    const dataDir = process.env.GRAFANA_DATA_DIR;
    if (dataDir && existsSync(join(dataDir, 'grafana.db')))
      console.log(
        'Workemon: Grafana was set up before passwords were generated and keeps its admin password (admin unless changed). ' +
          `Change it: docker compose exec grafana grafana cli admin reset-admin-password '<new password>'`,
      );
    else console.log(`Workemon Grafana admin password (generated; ${show}grafana-admin.password): ${grafana}`);
  }
  put(grafanaFile, `${grafana}\n`, grafanaOwner);

  const address = process.env.POSTGRES_ADDRESS || 'postgres:5432';
  const database = process.env.POSTGRES_DB || 'workemon';
  put(
    join(dir, 'database.url'),
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(postgres)}@${address}/${encodeURIComponent(database)}\n`,
    [uid, gid],
  );
}

generateComposePasswords();
