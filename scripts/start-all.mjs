#!/usr/bin/env node
// `npm start`: runs every service from its TypeScript sources on embedded defaults (no build, no servers
// needed), each with its own port, prefixing their log lines. Ctrl-C stops them all gracefully.
// Security: every service listens on 127.0.0.1 (HOST) and they get keys generated for this run, so they can call
// each other and nobody else can call the guesser, the analyst or the communicator: the secretary and the
// communicator share one service key; the guesser and the system analyst each accept only a key of their own,
// which the secretary sends them (GUESSER_API_KEY, SYSTEM_ANALYST_API_KEY) and nothing else accepts, and they get
// none of the other services' secrets (keysFor). Client and admin routes of the secretary stay open on
// loopback unless API_KEYS / ADMIN_API_KEYS are set (one warning at start says so). A HOST in the environment
// wins; SERVICE_API_KEYS (or its _FILE) there means one key set for every service, as before, nothing generated
// (a GUESSER_API_KEY / SYSTEM_ANALYST_API_KEY set there still gives that service its own).
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

// The LLM services' own keys (docs/operations.md, "Security"): a GUESSER_API_KEY / SYSTEM_ANALYST_API_KEY (or its
// _FILE) in the environment is the one that service accepts and the secretary sends, with or without
// SERVICE_API_KEYS; unset, one is generated unless the environment sets the service keys (then one key set for
// every service, as before).
const ownKeys = !process.env.SERVICE_API_KEYS && !process.env.SERVICE_API_KEYS_FILE;
const LLM_KEY_VARIABLES = ['GUESSER_API_KEY', 'SYSTEM_ANALYST_API_KEY'];
const llmKeys = Object.fromEntries(
  LLM_KEY_VARIABLES.flatMap((k) => {
    if (process.env[k]) return [[k, process.env[k]]];
    if (process.env[`${k}_FILE`] || !ownKeys) return [];
    return [[k, randomBytes(32).toString('base64url')]];
  }),
);
// Credentials of the secretary and the communicator: the LLM services hold their provider's key and nothing else.
const NOT_FOR_LLM_SERVICES =
  /^(API_KEYS|ADMIN_API_KEYS|(SECRETARY|COMMUNICATOR|GUESSER|SYSTEM_ANALYST)_API_KEY)(_FILE)?$|^(DATABASE_URL|JIRA_API_TOKEN|IMAP_PASSWORD|SMTP_PASSWORD|TELEGRAM_BOT_TOKEN|MAILGUN_WEBHOOK_SIGNING_KEY|SENDGRID_WEBHOOK_SECRET|SES_S3_ACCESS_KEY_ID|SES_S3_SECRET_ACCESS_KEY|POSTGRES_PASSWORD|GRAFANA_ADMIN_PASSWORD|EVAL_PSEUDONYM_KEY)$/;

/** One service's environment as far as keys go: the run's keys; an LLM service gets its own key and no secrets. */
function keysFor(name, env) {
  const given = { ...env, ...unsetOf(runEnv) };
  const own = { guesser: 'GUESSER_API_KEY', 'system-analyst': 'SYSTEM_ANALYST_API_KEY' }[name];
  if (!own) return name === 'secretary' ? { ...given, ...llmKeys } : given;
  const kept = Object.fromEntries(
    Object.entries(given).filter(([k]) => !NOT_FOR_LLM_SERVICES.test(k) && !/^SERVICE_API_KEYS(_FILE)?$/.test(k)),
  );
  if (llmKeys[own]) return { ...kept, SERVICE_API_KEYS: `npm-start-${name}:${llmKeys[own]}` };
  // The key file the secretary reads the key from (its first key) is the service's own list.
  if (process.env[`${own}_FILE`]) return { ...kept, SERVICE_API_KEYS_FILE: process.env[`${own}_FILE`] };
  return { ...kept, ...pick(given, ['SERVICE_API_KEYS', 'SERVICE_API_KEYS_FILE']) };
}

/** The entries of `env` named in `names` that are set. */
function pick(env, names) {
  return Object.fromEntries(names.filter((k) => env[k]).map((k) => [k, env[k]]));
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

// Stopping (docs/operations.md, "Stopping npm start"). Each service runs in a process group of its own
// (`detached`: setsid), with the helpers it starts (tsx's esbuild service), so a terminal's Ctrl-C reaches only
// this script, which stops every service the same way whichever signal came and from whom: the signal goes to
// each service's main process (its graceful shutdown), then whatever is left in its group gets SIGTERM and, 2 s
// later, SIGKILL; a service still running STOP_DEADLINE_MS after the signal is killed with its group.
// Each service also watches this script: started with the module below, it sends itself SIGTERM once its parent
// pid changes (this script was SIGKILLed or crashed), so no service outlives `npm start`.
const parentWatch =
  'data:text/javascript,' +
  encodeURIComponent(
    'const parent = process.ppid;' +
      'const t = setInterval(() => { if (process.ppid !== parent) { clearInterval(t); process.kill(process.pid, "SIGTERM"); } }, 500);' +
      't.unref();',
  );

/**
 * How long a service gets between the stop signal and SIGKILL, in ms: the communicator's own shutdown deadline
 * (SHUTDOWN_TIMEOUT, default 30 s, plus 15 s; services/communicator/src/main.ts) and 5 s for its last log lines.
 * The other services give up after 15 s on their own.
 */
const STOP_DEADLINE_MS = durationMs(process.env.SHUTDOWN_TIMEOUT || '30s') + 20_000;
/** Time a service's leftover helpers get between SIGTERM and SIGKILL once the service itself has exited, in ms. */
const LEFTOVER_GRACE_MS = 2000;

/** `250ms`, `30s`, `15m`, `1h`, `1d` (a bare number is ms, as the communicator reads SHUTDOWN_TIMEOUT) in ms; 30 s if unreadable. */
function durationMs(text) {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim());
  if (!m) return 30_000;
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms').toLowerCase()];
}

/** Sends `signal` to process group `pgid`; false when the group has no process left (ESRCH). */
function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Resolves once process group `pgid` (a service that has exited, and the helpers it left) is empty: SIGTERM at
 * once, SIGKILL after LEFTOVER_GRACE_MS, and gives up waiting 1 s after that (an orphan left as a zombie where
 * nothing reaps it still answers kill(2)).
 */
async function reapGroup(pgid) {
  const started = Date.now();
  if (!signalGroup(pgid, 'SIGTERM')) return;
  let killed = false;
  while (signalGroup(pgid, 0)) {
    const waited = Date.now() - started;
    if (!killed && waited >= LEFTOVER_GRACE_MS) {
      signalGroup(pgid, 'SIGKILL');
      killed = true;
    }
    if (waited >= LEFTOVER_GRACE_MS + 1000) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** How a child ended, for one line of the operator's terminal. */
const howEnded = (code, signal) => (signal ? `was killed by ${signal}` : `exited with code ${code}`);

const children = services.map((s) => {
  const child = spawn(
    process.execPath,
    [
      ...heapFlags,
      '--import',
      parentWatch,
      '--import',
      'tsx',
      '--conditions=@workemon/source',
      `services/${s.name}/src/main.ts`,
    ],
    {
      cwd: new URL('..', import.meta.url),
      env: { ...keysFor(s.name, process.env), ...upstreamUrls, ...llmDefault, PORT: s.port },
      stdio: ['ignore', 'inherit', 'inherit'],
      detached: true,
    },
  );
  // Resolves once the service has exited and its process group is empty.
  const done = new Promise((resolve) => {
    // Not started at all (spawn failed: no process, nothing to reap).
    child.on('error', (err) => {
      if (child.pid !== undefined) return;
      console.error(`[start] ${s.name} could not be started: ${err.message}; stopping the other services`);
      void stop(1);
      resolve();
    });
    child.on('exit', (code, signal) => {
      if (!stopping) {
        // On its own: a crash, a port in use, a bad setting (the service printed why just above).
        console.error(`[start] ${s.name} ${howEnded(code, signal)} on its own; stopping the other services`);
        void stop(signal || code ? 1 : 0);
      } else if ((signal && signal !== stopSignal) || code) {
        console.error(`[start] ${s.name} ${howEnded(code, signal)} while stopping`);
        exitCode ||= 1;
      }
      void reapGroup(child.pid).then(resolve);
    });
  });
  return { ...s, child, done };
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
let exitCode = 0;
/** The signal the services were sent to stop: ending by it (no handler for it) is stopping as asked. */
let stopSignal;
/**
 * Stops every service and exits with `code` (0 after a stop signal, 1 when a service ended on its own), or 1
 * when a service ended badly while stopping or had to be killed. `signal` is what the services' main processes
 * get: the one this script received (SIGINT, SIGTERM), SIGTERM otherwise. Repeated calls do nothing.
 */
async function stop(code = 0, signal = 'SIGTERM') {
  if (stopping) return;
  stopping = true;
  exitCode = code;
  stopSignal = signal;
  const running = (c) => c.child.exitCode === null && c.child.signalCode === null;
  for (const c of children) if (running(c)) c.child.kill(signal);
  const deadline = setTimeout(() => {
    for (const c of children) {
      if (!running(c)) continue;
      console.error(
        `[start] ${c.name} did not stop within ${STOP_DEADLINE_MS / 1000} s of ${signal}; killing it (SIGKILL)`,
      );
      signalGroup(c.child.pid, 'SIGKILL');
    }
  }, STOP_DEADLINE_MS);
  await Promise.all(children.map((c) => c.done));
  clearTimeout(deadline);
  process.exit(exitCode);
}
process.on('SIGINT', () => void stop(0, 'SIGINT'));
process.on('SIGTERM', () => void stop(0, 'SIGTERM'));
// The terminal closed: the services would have got SIGHUP with it when they shared its process group.
process.on('SIGHUP', () => void stop(0, 'SIGTERM'));

// Run by npm (`npm start`): npm forwards SIGINT and SIGTERM to the script's shell, which passes them on only when it
// has exec'd this script (package.json's `exec node …`). If the process above this one is gone anyway (npm or its
// shell killed), stop the services rather than leave them running unattended.
if (process.env.npm_lifecycle_event) {
  const parent = process.ppid;
  const watch = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(watch);
    console.error(`[start] npm (pid ${parent}) is gone; stopping the services`);
    void stop(0, 'SIGTERM');
  }, 500);
  watch.unref();
}
