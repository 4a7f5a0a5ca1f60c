import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { z } from 'zod';
import {
  ConfigError,
  env,
  parseApiKeyList,
  parseServiceEnv,
  serviceEnvSchema,
  serviceKeyToSend,
  type ApiKeys,
  type Env,
  type ServiceConfig,
} from '@workemon/service-kit';
import { actionsEnvSchema, toActionSettings, type ActionSettings } from './actions/action-policy.js';
import {
  DEFAULT_ANALYZE_LIMIT_PER_KEY_PER_MINUTE,
  DEFAULT_ANALYZE_LIMIT_PER_USERNAME_PER_HOUR,
} from './rate-limits/analyze-limits.js';
import { DEFAULT_MAX_RESPONSE_LENGTH } from './response-length.js';

export const UNKNOWN_USER_POLICIES = ['reply-only', 'allow', 'reject'] as const;
export type UnknownUserPolicy = (typeof UNKNOWN_USER_POLICIES)[number];

// LOG_LEVEL, ELASTICSEARCH_*, HOST, API_KEYS, ADMIN_API_KEYS, SERVICE_API_KEYS (+ _FILE): serviceEnvSchema; see
// docs/operations.md, "Security".
const schema = serviceEnvSchema({
  PORT: env.port(8000),
  DATABASE_URL: env
    .optionalString('PostgreSQL connection string (postgres:// or postgresql://); unset: embedded PGlite in PGLITE_DIR')
    .refine(
      (v) => v === undefined || /^postgres(ql)?:\/\/[^\s]+$/i.test(v),
      'must be a postgres:// or postgresql:// URL (unset it to use the embedded database in PGLITE_DIR)',
    ),
  DATABASE_URL_FILE: env.optionalString(
    'File holding the PostgreSQL URL (compose: written by keygen with its generated password); DATABASE_URL wins',
  ),
  PGLITE_DIR: env.withDefault('./data/secretary', 'Where the embedded database lives when DATABASE_URL is unset'),
  DATABASE_POOL_MAX: env.int(10, 'Largest number of PostgreSQL connections', { min: 1, max: 200 }),
  DATABASE_QUERY_TIMEOUT: env.durationMs(
    '30s',
    'Longest a statement may run (the server cancels it: statement_timeout); a connection left without any answer ' +
      'a grace longer (a frozen server, a silent network partition) is dropped; 0: never. Migrations are not timed',
  ),
  GUESSER_URL: env.url('http://localhost:8001', 'Base URL of the guesser'),
  SYSTEM_ANALYST_URL: env.url('http://localhost:8002', 'Base URL of the system analyst'),
  COMMUNICATOR_URL: env.url('http://localhost:8003', 'Base URL of the communicator (actions that send messages)'),
  // The LLM services retry their provider within LLM_TIMEOUT_MS (60 s by default): give them room for that.
  GUESSER_TIMEOUT: env.durationMs('90s', 'Deadline of one call to the guesser'),
  SYSTEM_ANALYST_TIMEOUT: env.durationMs('90s', 'Deadline of one call to the system analyst'),
  SECRETARY_API_KEY: env.optionalString('Key the communicator sends to the secretary (not used by the secretary)'),
  COMMUNICATOR_API_KEY: env.optionalString(
    'Key the secretary sends to the communicator; default: the first of SERVICE_API_KEYS (older name, kept)',
  ),
  // The LLM services' own keys (docs/operations.md, "Security"): with them the guesser and the system analyst accept
  // a key the secretary and the communicator do not, so neither LLM service holds a key to a side effect.
  GUESSER_API_KEY: env.optionalString(
    'Key the secretary sends to the guesser; default: the first key of GUESSER_API_KEY_FILE, else the first of SERVICE_API_KEYS',
  ),
  GUESSER_API_KEY_FILE: env.optionalString(
    "File in SERVICE_API_KEYS_FILE's format (the guesser's own key file) whose first key the secretary sends to the guesser",
  ),
  SYSTEM_ANALYST_API_KEY: env.optionalString(
    'Key the secretary sends to the system analyst; default: the first key of SYSTEM_ANALYST_API_KEY_FILE, else the first of SERVICE_API_KEYS',
  ),
  SYSTEM_ANALYST_API_KEY_FILE: env.optionalString(
    "File in SERVICE_API_KEYS_FILE's format (the system analyst's own key file) whose first key the secretary sends to it",
  ),
  APPROVER_TELEGRAM_USER_IDS: env.list(
    'Telegram user ids whose Approve/Reject presses (in APPROVER_TELEGRAM_CHAT_ID) count; unset: none count',
  ),
  EMPLOYEES_FILE: env.optionalString('YAML or CSV file of employees (and departments) imported at start (upsert)'),
  UNKNOWN_USER_POLICY: env.oneOf(
    UNKNOWN_USER_POLICIES,
    'reply-only',
    'Senders not in the directory: reply-only (answered, no side-effect action), allow (actions too), reject (403)',
  ),
  CLIENT_KEY_USERNAMES: env.list(
    'Usernames each client key (API_KEYS name) may vouch for on the direct channel: `name=user1|user2` entries, comma-separated; `name=*` any; a key without an entry vouches for any username (an integration that signs its users in)',
  ),
  COMPANY_DOMAINS: env.list(
    "Mail domains of the company (subdomains included); unset: the domains of the directory employees' emails",
  ),
  CLARIFICATION_TTL: env.durationMs('24h', 'How long a clarifying question waits for its answer', 's'),
  MAX_CLARIFICATIONS: env.int(3, 'Clarifying rounds before a request goes to the department', { min: 0, max: 20 }),
  ANALYSIS_LEASE: env.durationMs(
    '10s',
    'Heartbeat lease of an analysis attempt: one whose process died is taken over after this much silence',
  ),
  // Limits of /analyze-request and the longest answer: see docs/rate-limits.md.
  ANALYZE_RATE_LIMIT_PER_USERNAME_PER_HOUR: env.int(
    DEFAULT_ANALYZE_LIMIT_PER_USERNAME_PER_HOUR,
    '/analyze-request calls per username per hour from client and admin keys (service keys exempt); 0: no limit',
    { min: 0, max: 1_000_000 },
  ),
  ANALYZE_RATE_LIMIT_PER_KEY_PER_MINUTE: env.int(
    DEFAULT_ANALYZE_LIMIT_PER_KEY_PER_MINUTE,
    '/analyze-request calls per client or admin API key per minute (service keys exempt); 0: no limit',
    { min: 0, max: 1_000_000 },
  ),
  MAX_RESPONSE_LENGTH: env.int(
    DEFAULT_MAX_RESPONSE_LENGTH,
    'Longest answer a user receives, in characters; longer ones are cut at a sentence boundary and marked',
    { min: 100, max: 1_000_000 },
  ),
  AUDIT_RETENTION_DAYS: env.int(90, 'Days the audit log (GET /audit) keeps its rows; older ones are deleted', {
    min: 1,
    max: 3650,
  }),
  // Jira, ACTION_POLICY, APPROVER_TELEGRAM_CHAT_ID, the action worker's timing: see docs/actions.md.
  ...actionsEnvSchema,
});

type Upstreams = 'GUESSER_URL' | 'SYSTEM_ANALYST_URL' | 'COMMUNICATOR_URL';
/**
 * The parsed environment, keyed by env names (loadConfig reads it; nothing else does). env.url's type admits
 * `undefined` for URLs without a default; the three upstream URLs always have one.
 */
type ParsedEnv = Omit<z.output<typeof schema>, Upstreams> & Record<Upstreams, string>;

/**
 * The secretary's configuration: every env key of the schema as a camelCase field (`CLARIFICATION_TTL` →
 * `clarificationTtl`, durations in ms as parsed), the key lists folded into `apiKeys` and the action keys
 * checked and gathered in `actions`.
 */
export type Config = ServiceConfig<ParsedEnv> & {
  /**
   * The keys sent to the guesser and the system analyst, resolved: GUESSER_API_KEY / SYSTEM_ANALYST_API_KEY, else
   * the first key of their `_FILE`, else the first of SERVICE_API_KEYS; undefined when none is set (loopback, open).
   */
  guesserApiKey?: string;
  systemAnalystApiKey?: string;
  /** Jira, ACTION_POLICY, the approver chat and the action worker's timing (actions/action-policy.ts). */
  actions: ActionSettings;
  /** CLIENT_KEY_USERNAMES, parsed (clientKeyUsernamesOf). */
  clientKeyBindings: ClientKeyUsernames;
};

/**
 * The usernames a client key (its API_KEYS name) may vouch for on the direct channel, lower case, or `*` for any.
 * A key with no entry vouches for any username (docs/actions.md, "Who may trigger an action").
 */
export type ClientKeyUsernames = ReadonlyMap<string, ReadonlySet<string> | '*'>;

/**
 * CLIENT_KEY_USERNAMES entries (`name=user1|user2`, `name=*`) to a map; each problem (a malformed entry, a name twice,
 * a name no API_KEYS entry has: a typo would leave the key unbound) goes to `problems`, naming the key and entry.
 */
export function clientKeyUsernamesOf(
  entries: readonly string[],
  clientKeyNames: readonly string[],
  problems: string[],
): ClientKeyUsernames {
  const bound = new Map<string, ReadonlySet<string> | '*'>();
  for (const [i, entry] of entries.entries()) {
    const match = /^([^=\s]+)=(.+)$/.exec(entry.trim());
    const usernames = match?.[2]!.split('|').map((u) => u.trim().toLowerCase()) ?? [];
    const where = `CLIENT_KEY_USERNAMES: entry ${i + 1}`;
    if (!match || usernames.some((u) => !u)) problems.push(`${where} must be name=user1|user2 or name=*`);
    else if (bound.has(match[1]!)) problems.push(`${where} names the key '${match[1]}' a second time`);
    else if (!clientKeyNames.includes(match[1]!)) problems.push(`${where}: no API_KEYS entry is named '${match[1]}'`);
    else bound.set(match[1]!, usernames.includes('*') ? '*' : new Set(usernames));
  }
  return bound;
}

/** RFC 6750 §2.1 `b64token`: what a bearer key may hold. */
const BEARER_TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The variables naming the key the secretary sends to each LLM service (`<VARIABLE>` and `<VARIABLE>_FILE`). */
type LlmServiceKeyVariable = 'GUESSER_API_KEY' | 'SYSTEM_ANALYST_API_KEY';

/**
 * The key the secretary sends to one LLM service: `<VARIABLE>` as given; else the first key of `<VARIABLE>_FILE`,
 * read in the SERVICE_API_KEYS_FILE format (`key` or `name:key` lines, `#` comments) so that the LLM service's own
 * key file serves both sides; else the first of SERVICE_API_KEYS (one key for every service, as before these
 * variables existed). A key that is also one of the secretary's client or admin keys, or (set explicitly) one of
 * its service keys or COMMUNICATOR_API_KEY, would hand the LLM service those routes (ARCHITECTURE.md: the LLM
 * services hold no credentials but their provider's key): a problem, as are an unreadable or keyless file. Problems name the variable and the file, never a key.
 */
function keyForLlmService(
  variable: LlmServiceKeyVariable,
  parsed: Partial<Record<LlmServiceKeyVariable | `${LlmServiceKeyVariable}_FILE` | 'COMMUNICATOR_API_KEY', string>>,
  apiKeys: ApiKeys,
  problems: string[],
): string | undefined {
  let key = parsed[variable];
  let from: string = variable;
  // The same value is the LLM service's SERVICE_API_KEYS entry (compose, Kubernetes): a `:`, `,` or space would be
  // read there as a name or a second key. RFC 6750 §2.1's b64token has none of them.
  if (key && !BEARER_TOKEN.test(key)) {
    problems.push(
      `${variable}: not a bearer token (RFC 6750: letters, digits and - . _ ~ + /, then = padding; no : , or spaces)`,
    );
    return undefined;
  }
  const file = parsed[`${variable}_FILE`];
  if (!key && file) {
    from = `${variable}_FILE`;
    try {
      const listed = parseApiKeyList(readFileSync(file, 'utf8'), `${from} (${file})`);
      problems.push(...listed.problems);
      key = listed.keys[0]?.key;
      if (!key && !listed.problems.length) problems.push(`${from}: ${file} holds no key`);
    } catch (err) {
      problems.push(`${from}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (!key) return serviceKeyToSend(apiKeys);
  // Set explicitly, the key is the LLM service's own: a service key would hand it the routes service keys open
  // (webhook tokens, deliveries, rate limits) and the sender claims they vouch for; the default above stays allowed.
  for (const [keyClass, listVariable, named] of [
    ['client', 'API_KEYS', 'a client'],
    ['admin', 'ADMIN_API_KEYS', 'an admin'],
    ['service', 'SERVICE_API_KEYS', 'a service'],
  ] as const) {
    if (apiKeys[keyClass].some((e) => e.key === key))
      problems.push(
        `${from}: the key is also one of the secretary's ${listVariable}; the LLM service would hold ${named} key: give it its own`,
      );
  }
  if (key === parsed.COMMUNICATOR_API_KEY)
    problems.push(
      `${from}: the key is also COMMUNICATOR_API_KEY, which the communicator accepts: give the LLM service its own`,
    );
  return key;
}

/** Reads and checks the secretary's configuration; throws ConfigError naming every bad key. */
export function loadConfig(source: Env): Config {
  const { parsed, config } = parseServiceEnv(schema, source);
  const problems: string[] = [];
  const guesserApiKey = keyForLlmService('GUESSER_API_KEY', parsed, config.apiKeys, problems);
  const systemAnalystApiKey = keyForLlmService('SYSTEM_ANALYST_API_KEY', parsed, config.apiKeys, problems);
  // Keys that are only wrong together (JIRA_BASE_URL without JIRA_API_TOKEN) fail here, at start, too.
  let actions: ActionSettings | undefined;
  try {
    actions = toActionSettings(parsed);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  const clientKeyBindings = clientKeyUsernamesOf(
    parsed.CLIENT_KEY_USERNAMES,
    config.apiKeys.client.map((e) => e.name),
    problems,
  );
  if (problems.length || !actions) throw new ConfigError(problems);
  // `npm run migrate` runs in services/secretary while `npm start` runs at the repository root: a relative
  // PGLITE_DIR means relative to where npm was invoked (INIT_CWD), so both reach the same database.
  const pgliteDir = resolve(source['INIT_CWD'] ?? process.cwd(), parsed.PGLITE_DIR);
  const databaseUrl = parsed.DATABASE_URL ?? readDatabaseUrlFile(parsed.DATABASE_URL_FILE);
  return {
    ...(config as ServiceConfig<ParsedEnv>),
    actions,
    pgliteDir,
    databaseUrl,
    guesserApiKey,
    systemAnalystApiKey,
    clientKeyBindings,
  };
}

/**
 * The PostgreSQL URL in DATABASE_URL_FILE (one line; surrounding whitespace ignored), for a password kept out of
 * the environment (compose's keygen writes `postgres://workemon:<generated>@postgres:5432/workemon`); undefined
 * when the key is unset. Throws ConfigError naming the key and the file, never the content, when the file cannot
 * be read or does not hold a postgres:// or postgresql:// URL.
 */
function readDatabaseUrlFile(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new ConfigError([
      `DATABASE_URL_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
    ]);
  }
  if (!/^postgres(ql)?:\/\/[^\s]+$/i.test(text))
    throw new ConfigError([`DATABASE_URL_FILE: ${file} must hold one postgres:// or postgresql:// URL`]);
  return text;
}
