import { z } from 'zod';

/** A service with invalid configuration refuses to start and names every bad key at once. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

export type Env = Record<string, string | undefined>;

/**
 * Parses the environment against `schema` (one entry per key, each with a description and a safe default).
 * Empty strings count as unset, as `${VAR:-}` in compose files produces them. Error messages name the key and
 * never echo the value (it may be a secret).
 */
export function parseEnv<S extends z.ZodObject>(schema: S, env: Env): z.output<S> {
  const clean: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') clean[key] = value.trim();
  }
  const parsed = schema.safeParse(clean);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.join('.') : '(config)';
    return `${key}: ${issue.message}`;
  });
  throw new ConfigError(problems);
}

/**
 * An environment variable name as a camelCase field name: `IMAP_SWEEP_INTERVAL_S` → `imapSweepIntervalS`,
 * `PORT` → `port` (issue 11 point 5: config objects use camelCase fields mapped from env names). Each
 * `_`-separated word is lower-cased and every word after the first capitalized; `camelCaseName` is its runtime twin.
 */
export type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}`
  ? `${Lowercase<Head>}${Capitalize<CamelCase<Tail>>}`
  : Lowercase<S>;

/** `T` with every string key renamed by `CamelCase` (values and optionality kept): the shape `camelCaseKeys` returns. */
export type CamelCaseKeys<T> = { [K in keyof T as K extends string ? CamelCase<K> : K]: T[K] };

/** Runtime twin of `CamelCase<>`: `SES_S3_TIMEOUT` → `sesS3Timeout`. */
export function camelCaseName<S extends string>(name: S): CamelCase<S> {
  return name.toLowerCase().replace(/_+([a-z0-9])/g, (_, c: string) => c.toUpperCase()) as CamelCase<S>;
}

/**
 * A parsed environment (`parseEnv`'s result, keyed by env names) as a config object keyed by camelCase
 * names (`{ EMAIL_CONCURRENCY: 4 }` → `{ emailConcurrency: 4 }`), less the keys in `omit` (inputs folded into
 * another field, such as `API_KEY_ENV_NAMES` into `apiKeys`). Values are kept as they are. Every service's
 * `loadConfig` returns this shape; env names stay the contract of `.env.example` and the docs.
 */
export function camelCaseKeys<T extends Record<string, unknown>, O extends keyof T & string = never>(
  record: T,
  omit: readonly O[] = [],
): CamelCaseKeys<Omit<T, O>> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    if (!(omit as readonly string[]).includes(key)) out[camelCaseName(key)] = value;
  }
  return out as CamelCaseKeys<Omit<T, O>>;
}

/**
 * The `authEnvSchema` keys that `readApiKeys` folds into one `apiKeys: ApiKeys` field: a service's camelCase
 * config leaves them out (`camelCaseKeys(parsed, API_KEY_ENV_NAMES)`) and carries `apiKeys` instead.
 */
export const API_KEY_ENV_NAMES = [
  'API_KEYS',
  'API_KEYS_FILE',
  'ADMIN_API_KEYS',
  'ADMIN_API_KEYS_FILE',
  'SERVICE_API_KEYS',
  'SERVICE_API_KEYS_FILE',
] as const;

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `250ms`, `30s`, `15m`, `24h`, `7d`; a bare number is in `bareUnit`. */
export function parseDurationMs(text: string, bareUnit: keyof typeof UNIT_MS = 'ms'): number | undefined {
  const m = DURATION.exec(text.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * UNIT_MS[(m[2] ?? bareUnit).toLowerCase()]!);
}

/** Zod builders for environment values (all arrive as strings). */
export const env = {
  string: (description: string) => z.string().describe(description),
  optionalString: (description: string) => z.string().optional().describe(description),
  withDefault: (fallback: string, description: string) => z.string().default(fallback).describe(description),
  int: (fallback: number, description: string, opts: { min?: number; max?: number } = {}) =>
    z
      .string()
      .regex(/^-?\d+$/, 'must be a whole number')
      .transform(Number)
      .pipe(
        z
          .number()
          .min(opts.min ?? Number.MIN_SAFE_INTEGER, `must be at least ${opts.min}`)
          .max(opts.max ?? Number.MAX_SAFE_INTEGER, `must be at most ${opts.max}`),
      )
      .default(fallback)
      .describe(description),
  /** A share or a probability: a decimal number from 0 to 1 (`0.7`), e.g. a classification confidence. */
  fraction: (fallback: number, description: string) =>
    z
      .string()
      .regex(/^(0(\.\d+)?|1(\.0+)?|\.\d+)$/, 'must be a number from 0 to 1')
      .transform(Number)
      .default(fallback)
      .describe(description),
  port: (fallback: number, description = 'TCP port to listen on') =>
    z
      .string()
      .regex(/^\d+$/, 'must be a port number')
      .transform(Number)
      .pipe(z.number().min(0, 'must be a port number').max(65535, 'must be a port number'))
      .default(fallback)
      .describe(description),
  bool: (fallback: boolean, description: string) =>
    z
      .string()
      .regex(/^(true|false|1|0|yes|no|on|off)$/i, 'must be true or false')
      .transform((v) => /^(true|1|yes|on)$/i.test(v))
      .default(fallback)
      .describe(description),
  url: (fallback: string | undefined, description: string) => {
    const base = z.string().refine((v) => {
      try {
        const u = new URL(v);
        return u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        return false;
      }
    }, 'must be an http(s) URL');
    return (fallback === undefined ? base.optional() : base.default(fallback)).describe(description);
  },
  oneOf: <const T extends readonly [string, ...string[]]>(values: T, fallback: T[number], description: string) =>
    z
      .enum(values, { error: `must be one of: ${values.join(', ')}` })
      .default(fallback as never)
      .describe(description),
  durationMs: (fallback: string, description: string, bareUnit: keyof typeof UNIT_MS = 'ms') =>
    z
      .string()
      .default(fallback)
      .transform((v, ctx) => {
        const ms = parseDurationMs(v, bareUnit);
        if (ms === undefined) {
          ctx.addIssue({ code: 'custom', message: 'must be a duration such as 500ms, 30s, 15m, 24h' });
          return z.NEVER;
        }
        return ms;
      })
      .describe(description),
  list: (description: string) =>
    z
      .string()
      .optional()
      .transform((v) =>
        v
          ? v
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : [],
      )
      .describe(description),
  logLevel: () =>
    z
      .enum(['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'], {
        error: 'must be one of: error, warn, info, debug',
      })
      .default('info')
      .describe('Log level'),
};

/** Keys every service reads. */
export const commonEnvSchema = {
  LOG_LEVEL: env.logLevel(),
  ELASTICSEARCH_URL: env.url(undefined, 'Elasticsearch to ship logs to; unset: stdout only'),
  ELASTICSEARCH_USERNAME: env.optionalString('Elasticsearch user'),
  ELASTICSEARCH_PASSWORD: env.optionalString('Elasticsearch password'),
};

/**
 * Keys every service reads for authentication (see auth.ts): the bind address and the three key classes, each
 * as a list and as a file. `readApiKeys(config)` turns them into `ApiKeys`.
 */
export const authEnvSchema = {
  HOST: env.withDefault(
    '0.0.0.0',
    'Address to listen on; beyond loopback every key class the service serves must have keys (npm start: 127.0.0.1)',
  ),
  API_KEYS: env.list('Client keys (/analyze-request): comma-separated, each `key` or `name:key`'),
  API_KEYS_FILE: env.optionalString('File with more client keys, one per line (# comments)'),
  ADMIN_API_KEYS: env.list('Admin keys (directory, rules, approvals, history): `name:key`, comma-separated'),
  ADMIN_API_KEYS_FILE: env.optionalString('File with more admin keys, one per line'),
  SERVICE_API_KEYS: env.list('Service-to-service keys; the first one is also the key this service sends'),
  SERVICE_API_KEYS_FILE: env.optionalString('File with more service keys, one per line'),
};

/**
 * A service's env schema: `commonEnvSchema` (LOG_LEVEL, ELASTICSEARCH_*) and `authEnvSchema` (HOST and the key
 * classes, docs/operations.md "Security") first, then the service's own keys (`shape`, built with `env.*`).
 */
export function serviceEnvSchema<S extends z.ZodRawShape>(shape: S) {
  return z.object({ ...commonEnvSchema, ...authEnvSchema, ...shape });
}

/**
 * main.ts: runs `load` (a service's loadConfig) and, on a ConfigError, prints its message (every bad key, no
 * stack trace) to stderr and ends the process with status 1. Other errors propagate.
 */
export function loadConfigOrExit<T>(load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
}
