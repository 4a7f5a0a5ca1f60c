#!/usr/bin/env node
// `npm start`: runs every service from its TypeScript sources on embedded defaults (no build, no servers
// needed), each with its own port, prefixing their log lines. Ctrl-C stops them all gracefully.
// Security: every service listens on 127.0.0.1 (HOST) and they get keys generated for this run, so they can call
// each other and nobody else can call the guesser, the analyst or the communicator: the secretary and the
// communicator share one service key; the guesser and the system analyst each accept only a key of their own,
// which the secretary sends them (GUESSER_API_KEY, SYSTEM_ANALYST_API_KEY) and nothing else accepts, and they get
// none of the other services' secrets (keysFor). Client and admin routes of the secretary stay open on
// loopback unless API_KEYS / ADMIN_API_KEYS are set (one warning at start says so). A HOST in the environment
// wins; SERVICE_API_KEYS (or its _FILE) there means one key set for every service, as before, nothing generated.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';

// One configuration file for `npm start` and compose: ./.env when present (Node's own parser, Node >= 20.12).
// Keys already in the environment win, as in compose.
const envFile = new URL('../.env', import.meta.url);
if (existsSync(envFile)) process.loadEnvFile(envFile);

const runEnv = {
  HOST: '127.0.0.1',
  // One random service key per run: never written anywhere, never printed.
  SERVICE_API_KEYS: `npm-start:${randomBytes(32).toString('base64url')}`,
};

// The LLM services' own keys (docs/operations.md, "Security"), unless the environment sets the service keys: a
// GUESSER_API_KEY / SYSTEM_ANALYST_API_KEY set there is the one that service accepts and the secretary sends.
const ownKeys = !process.env.SERVICE_API_KEYS && !process.env.SERVICE_API_KEYS_FILE;
const llmKeys = ownKeys
  ? Object.fromEntries(
      ['GUESSER_API_KEY', 'SYSTEM_ANALYST_API_KEY'].map((k) => [
        k,
        process.env[k] || randomBytes(32).toString('base64url'),
      ]),
    )
  : {};
// Credentials of the secretary and the communicator: the LLM services hold their provider's key and nothing else.
const NOT_FOR_LLM_SERVICES =
  /^(API_KEYS|ADMIN_API_KEYS|(SECRETARY|COMMUNICATOR|GUESSER|SYSTEM_ANALYST)_API_KEY)(_FILE)?$|^(DATABASE_URL|JIRA_API_TOKEN|IMAP_PASSWORD|SMTP_PASSWORD|TELEGRAM_BOT_TOKEN|MAILGUN_WEBHOOK_SIGNING_KEY|SENDGRID_WEBHOOK_SECRET|SES_S3_ACCESS_KEY_ID|SES_S3_SECRET_ACCESS_KEY|POSTGRES_PASSWORD|GRAFANA_ADMIN_PASSWORD|EVAL_PSEUDONYM_KEY)$/;

/** One service's environment as far as keys go: the run's keys; an LLM service gets its own key and no secrets. */
function keysFor(name, env) {
  const given = { ...env, ...unsetOf(runEnv) };
  const own = { guesser: 'GUESSER_API_KEY', 'system-analyst': 'SYSTEM_ANALYST_API_KEY' }[name];
  if (!own) return name === 'secretary' ? { ...given, ...llmKeys } : given;
  const kept = Object.fromEntries(Object.entries(given).filter(([k]) => !NOT_FOR_LLM_SERVICES.test(k)));
  return ownKeys ? { ...kept, SERVICE_API_KEYS: `npm-start-${name}:${llmKeys[own]}` } : kept;
}

/** The entries of `defaults` whose variable is unset or empty in the environment. */
function unsetOf(defaults) {
  return Object.fromEntries(Object.entries(defaults).filter(([k]) => !process.env[k]));
}

// Each service's port: its *_PORT key (the same as compose's), else the default. A busy port is reported by
// the service itself (its listen), naming the port and this key.
const allServices = [
  { name: 'guesser', port: 8001 },
  { name: 'system-analyst', port: 8002 },
  { name: 'secretary', port: 8000 },
  { name: 'communicator', port: 8003 },
].map((s) => ({ ...s, port: process.env[`${s.name.toUpperCase().replace('-', '_')}_PORT`] || String(s.port) }));
const services = allServices.filter((s) => existsSync(new URL(`../services/${s.name}/src/main.ts`, import.meta.url)));

// Where the services reach each other: the URL keys' defaults name the default ports, so a *_PORT moved here would
// leave the secretary calling a guesser that is not there (or another user's on the same machine). Each URL key
// follows its service's port unless it is set; a HOST of every interface is reached over loopback.
const bindHost = process.env.HOST || runEnv.HOST;
/** Whether `host` is a loopback address (only this machine reaches it). */
const isLoopback = (host) => /^(127\.|localhost$|::1$|\[::1\]$)/.test(host);
const callHost = ['0.0.0.0', '::', '[::]'].includes(bindHost)
  ? '127.0.0.1'
  : bindHost.includes(':') && !bindHost.startsWith('[')
    ? `[${bindHost}]`
    : bindHost;
const upstreamUrls = unsetOf(
  Object.fromEntries(
    allServices.map((s) => [`${s.name.toUpperCase().replace('-', '_')}_URL`, `http://${callHost}:${s.port}`]),
  ),
);

// No provider configured: the LLM services run a small model in process (LLM_PROVIDER=local, docs/llm.md), so
// `npm start` answers with no API key and no model server; the first start downloads it into ./data/models.
const llmDefault = process.env.LLM_PROVIDER ? {} : { LLM_PROVIDER: 'local' };

// V8's old space sized for a service, as in the images (docs/operations.md, "Memory": live heap 30-40 MB; V8's
// default limit of a few GB lets garbage pile up to 200-300 MB). A --max-old-space-size in NODE_OPTIONS wins.
const heapFlags = /--max-old-space-size/.test(process.env.NODE_OPTIONS ?? '') ? [] : ['--max-old-space-size=128'];
// Its young generation capped at 8 MB semi-spaces, as in the images (docs/operations.md, "Memory at start-up").
if (!/--max-semi-space-size/.test(process.env.NODE_OPTIONS ?? '')) heapFlags.push('--max-semi-space-size=8');

const children = services.map((s) => {
  const child = spawn(
    process.execPath,
    [...heapFlags, '--import', 'tsx', '--conditions=@workemon/source', `services/${s.name}/src/main.ts`],
    {
      cwd: new URL('..', import.meta.url),
      env: { ...keysFor(s.name, process.env), ...upstreamUrls, ...llmDefault, PORT: s.port },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  child.on('exit', (code, signal) => {
    console.error(`[start] ${s.name} exited (${signal ?? code})`);
    if (!stopping) stop(code ?? 1);
  });
  return child;
});
console.error(`[start] ${services.map((s) => `${s.name}:${s.port}`).join('  ')}`);
console.error(
  `[start] listening on ${bindHost}; ${ownKeys ? 'service keys generated for this run' : 'SERVICE_API_KEYS as set'}` +
    (process.env.API_KEYS || process.env.API_KEYS_FILE
      ? ''
      : isLoopback(bindHost)
        ? '; /analyze-request is open on this machine (set API_KEYS)'
        : '; beyond loopback the secretary needs API_KEYS and ADMIN_API_KEYS (or HOST=127.0.0.1)'),
);

let stopping = false;
function stop(code = 0) {
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 20_000).unref();
  Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.on('exit', r)) : null))).then(() =>
    process.exit(code),
  );
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
