import { createRequire } from 'node:module';
import winston from 'winston';
import { configure } from 'safe-stable-stringify';

/** ECS `ecs.version` of our documents: the version @elastic/ecs-helpers (CommonJS, untyped) follows. */
const ECS_VERSION = (createRequire(import.meta.url)('@elastic/ecs-helpers') as { version: string }).version;

// winston's info symbols (triple-beam): the formatted line, and the extra arguments of a log call.
const MESSAGE = Symbol.for('message');
const SPLAT = Symbol.for('splat');

/**
 * JSON for one log line: never throws (circular references become "[Circular]", BigInts numbers), keys in the
 * order they were set (ecsFields sets `@timestamp`, `log.level`, `message` first, as ECS logging recommends)
 * rather than sorted, which costs a sort per object of every line.
 */
const stringify = configure({ deterministic: false });

export type EcsFieldsOptions = {
  /** ECS `service.name`. */
  serviceName: string;
  /** ECS `service.version`. */
  serviceVersion?: string;
};

type Info = winston.Logform.TransformableInfo & Record<string | symbol, unknown>;

/** ECS `error.*` of an Error (ECS error fields: type, message, stack_trace; cause as text). */
function errorFields(err: Error): Record<string, unknown> {
  const cause = (err as { cause?: unknown }).cause;
  return {
    ...err,
    type: err.constructor?.name ?? err.name,
    message: err.message,
    stack_trace: err.stack,
    ...(cause === undefined || cause === null
      ? {}
      : { cause: cause instanceof Error ? cause.stack : String(cause as string) }),
  };
}

/**
 * A winston format adding the ECS logging fields to every entry: `@timestamp`, `log.level`, `ecs.version`,
 * `service.name`, `service.version`, `event.dataset` (the service name), and `error.*` for an Error passed as
 * `{err}`, as the second argument or as the message. It is what `@elastic/ecs-winston-format`'s `ecsFields`
 * does with `apmIntegration: false, convertReqRes: false`, without that package's `require('elastic-apm-node')`
 * at load time, which pulled the whole APM agent (and OpenTelemetry) into every service that merely logs.
 * `ecsStringify` writes the line starting with `@timestamp`, `log.level`, `message`.
 */
export const ecsFields = winston.format((info, opts) => {
  const options = opts as EcsFieldsOptions;
  const entry = info as Info;
  let err: Error | undefined;
  const splat0 = (entry[SPLAT] as unknown[] | undefined)?.[0];
  if (splat0 instanceof Error) {
    // `log.warn('text', err)`: winston copied the error's enumerable properties (and stack) onto the entry.
    err = splat0;
    delete entry['stack'];
    for (const key of Object.keys(err)) delete entry[key];
  } else if (entry['message'] instanceof Error) {
    // `log.warn(err, {...})`.
    err = entry['message'];
    entry['message'] = err.message;
  } else if (entry['err'] instanceof Error) {
    // `log.warn('text', { err })`.
    err = entry['err'];
    delete entry['err'];
  }
  // Set in place (the entry is winston's own copy): no second object per line.
  entry['@timestamp'] = new Date().toISOString();
  entry['log.level'] = entry.level;
  if (err) entry['error'] = { ...(entry['error'] as object | undefined), ...errorFields(err) };
  entry['ecs.version'] = ECS_VERSION;
  entry['service.name'] = options.serviceName;
  if (options.serviceVersion) entry['service.version'] = options.serviceVersion;
  entry['event.dataset'] = options.serviceName;
  return entry;
});

/**
 * A winston format serializing the entry as one ECS JSON document (`info[MESSAGE]`) that starts with
 * `@timestamp`, `log.level`, `message` (ECS logging's recommended order), without winston's `level` (ECS has
 * `log.level`).
 */
export const ecsStringify = winston.format((info) => {
  const entry = info as Info;
  const doc: Record<string, unknown> = {
    '@timestamp': entry['@timestamp'],
    'log.level': entry['log.level'],
    message: entry.message,
  };
  for (const key in entry) if (key !== 'level' && !(key in doc)) doc[key] = entry[key];
  entry[MESSAGE] = stringify(doc);
  return info;
});
