import { resolve } from 'node:path';
import { z } from 'zod';
import { commonEnvSchema, env, parseEnv, type Env } from '@workemon/service-kit';
import { actionsEnvSchema, toActionSettings } from './actions/action-policy.js';

export const UNKNOWN_USER_POLICIES = ['allow', 'reject'] as const;
export type UnknownUserPolicy = (typeof UNKNOWN_USER_POLICIES)[number];

const schema = z.object({
  ...commonEnvSchema,
  PORT: env.port(8000),
  DATABASE_URL: env
    .optionalString('PostgreSQL connection string (postgres:// or postgresql://); unset: embedded PGlite in PGLITE_DIR')
    .refine(
      (v) => v === undefined || /^postgres(ql)?:\/\/[^\s]+$/i.test(v),
      'must be a postgres:// or postgresql:// URL (unset it to use the embedded database in PGLITE_DIR)',
    ),
  PGLITE_DIR: env.withDefault('./data/secretary', 'Where the embedded database lives when DATABASE_URL is unset'),
  DATABASE_POOL_MAX: env.int(10, 'Largest number of PostgreSQL connections', { min: 1, max: 200 }),
  GUESSER_URL: env.url('http://localhost:8001', 'Base URL of the guesser'),
  SYSTEM_ANALYST_URL: env.url('http://localhost:8002', 'Base URL of the system analyst'),
  COMMUNICATOR_URL: env.url('http://localhost:8003', 'Base URL of the communicator (actions that send messages)'),
  // The LLM services retry their provider within LLM_TIMEOUT_MS (60 s by default): give them room for that.
  GUESSER_TIMEOUT: env.durationMs('90s', 'Deadline of one call to the guesser'),
  SYSTEM_ANALYST_TIMEOUT: env.durationMs('90s', 'Deadline of one call to the system analyst'),
  API_KEYS: env.list('Comma-separated keys accepted as Authorization: Bearer <key>; unset: open'),
  SECRETARY_API_KEY: env.optionalString('Key the communicator sends to the secretary (not used by the secretary)'),
  COMMUNICATOR_API_KEY: env.optionalString('Key the secretary sends to the communicator'),
  EMPLOYEES_FILE: env.optionalString('YAML or CSV file of employees (and departments) imported at start (upsert)'),
  UNKNOWN_USER_POLICY: env.oneOf(UNKNOWN_USER_POLICIES, 'allow', 'What to do with senders not in the directory'),
  CLARIFICATION_TTL: env.durationMs('24h', 'How long a clarifying question waits for its answer', 's'),
  MAX_CLARIFICATIONS: env.int(3, 'Clarifying rounds before a request goes to the department', { min: 0, max: 20 }),
  // Jira, ACTION_POLICY, APPROVER_TELEGRAM_CHAT_ID, the action worker's timing: see docs/actions.md.
  ...actionsEnvSchema,
});

type Upstreams = 'GUESSER_URL' | 'SYSTEM_ANALYST_URL' | 'COMMUNICATOR_URL';
// env.url's type admits `undefined` for URLs without a default; these three always have one.
export type Config = Omit<z.output<typeof schema>, Upstreams> & Record<Upstreams, string>;

/** Reads and checks the secretary's configuration; throws ConfigError naming every bad key. */
export function loadConfig(source: Env): Config {
  const config = parseEnv(schema, source) as Config;
  // Keys that are only wrong together (JIRA_BASE_URL without JIRA_API_TOKEN) fail here, at start, too.
  toActionSettings(config);
  // `npm run migrate` runs in services/secretary while `npm start` runs at the repository root: a relative
  // PGLITE_DIR means relative to where npm was invoked (INIT_CWD), so both reach the same database.
  return { ...config, PGLITE_DIR: resolve(source['INIT_CWD'] ?? process.cwd(), config.PGLITE_DIR) };
}
