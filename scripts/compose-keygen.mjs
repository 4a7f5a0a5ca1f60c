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
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
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
