// The start-up block every service's main.ts shares: configuration, the key check beyond loopback, the logger
// (with every secret redacted) and the metrics registry, in that order.
import {
  allKeys,
  authForStart,
  readApiKeys,
  type ApiKeys,
  type AuthEnv,
  type Authenticator,
  type KeyClass,
} from './auth.js';
import {
  API_KEY_ENV_NAMES,
  camelCaseKeys,
  loadConfigOrExit,
  parseEnv,
  type CamelCaseKeys,
  type Env,
} from './config.js';
import type { z } from 'zod';
import { elasticsearchFromEnv, type ElasticsearchEnv } from './elasticsearch-options.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';

/** The fields of a service's camelCase config that start-up reads (`HOST`, `LOG_LEVEL`, the keys, `ELASTICSEARCH_*`). */
export type StartableConfig = ElasticsearchEnv & { host: string; logLevel: string; apiKeys: ApiKeys };

/** A parsed environment as a service's config: camelCase fields, the key lists and files folded into `apiKeys`. */
export type ServiceConfig<T> = CamelCaseKeys<Omit<T, (typeof API_KEY_ENV_NAMES)[number]>> & {
  /** The three key classes, read from the lists and their files. */
  apiKeys: ApiKeys;
};

/**
 * Every service's loadConfig ends here: `parsed` (`parseEnv`'s result over a schema with `authEnvSchema`,
 * keyed by env names) becomes camelCase fields (`camelCaseKeys`), and `API_KEYS`/`ADMIN_API_KEYS`/
 * `SERVICE_API_KEYS` and their `_FILE`s become `apiKeys` (`readApiKeys`; throws ConfigError on a bad entry).
 */
export function toServiceConfig<T extends AuthEnv & Record<string, unknown>>(parsed: T): ServiceConfig<T> {
  return { ...camelCaseKeys(parsed, API_KEY_ENV_NAMES), apiKeys: readApiKeys(parsed) } as ServiceConfig<T>;
}

/**
 * `parseEnv` then `toServiceConfig`: `parsed` keyed by env names (for the checks of keys that are only wrong
 * together, which name env keys) and `config`, the camelCase service config. Throws ConfigError naming every
 * bad key.
 */
export function parseServiceEnv<S extends z.ZodObject>(
  schema: S,
  source: Env,
): { parsed: z.output<S>; config: ServiceConfig<z.output<S>> } {
  const parsed = parseEnv(schema, source);
  return { parsed, config: toServiceConfig(parsed as z.output<S> & AuthEnv) };
}

/** What `startService` hands main.ts: the loaded config and the parts every app is built from. */
export type ServiceStart<C> = {
  config: C;
  /** The authenticator `authForStart` built (every class without keys closed). */
  auth: Authenticator;
  logger: Logger;
  metrics: Metrics;
};

/**
 * Loads the config (a ConfigError ends the process with status 1 and every bad key named: `loadConfigOrExit`),
 * refuses to start beyond loopback while a served key class has no keys (`authForStart`), creates the logger
 * (stdout, plus Elasticsearch when ELASTICSEARCH_URL is set) redacting every API key and the service's own
 * `secrets(config)`, logs `authForStart`'s warning, and creates the metrics registry named after `service`.
 */
export function startService<C extends StartableConfig>(options: {
  service: string;
  version: string;
  /** The service's loadConfig, bound to its environment: `() => loadConfig(process.env)`. */
  loadConfig: () => C;
  /** The key classes the service serves: each needs keys before it listens beyond loopback. */
  served: readonly KeyClass[];
  /** Secret values besides the API keys (passwords, tokens) that never appear in a log line. */
  secrets: (config: C) => readonly (string | undefined)[];
}): ServiceStart<C> {
  const config = loadConfigOrExit(options.loadConfig);
  const startAuth = loadConfigOrExit(() =>
    authForStart({ host: config.host, keys: config.apiKeys, served: options.served }),
  );
  const logger = createLogger({
    service: options.service,
    version: options.version,
    level: config.logLevel,
    elasticsearch: elasticsearchFromEnv(config),
    secrets: [...allKeys(config.apiKeys), config.elasticsearchPassword, ...options.secrets(config)],
  });
  if (startAuth.warning) logger.warn(startAuth.warning);
  return { config, auth: startAuth.auth, logger, metrics: createMetrics(options.service) };
}
