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
 * The entry's fields are reordered so the line starts with `@timestamp`, `log.level`, `message`.
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
  const out: Info = {
    '@timestamp': new Date().toISOString(),
    'log.level': entry.level,
    message: entry.message,
    level: entry.level,
  } as Info;
  for (const key of Object.keys(entry)) if (!(key in out)) out[key] = entry[key];
  // Symbols winston and its transports read (level filtering, splat, the line once formatted).
  for (const key of Object.getOwnPropertySymbols(entry)) out[key] = entry[key];
  if (err) out['error'] = { ...(out['error'] as object | undefined), ...errorFields(err) };
  out['ecs.version'] = ECS_VERSION;
  out['service.name'] = options.serviceName;
  if (options.serviceVersion) out['service.version'] = options.serviceVersion;
  out['event.dataset'] = options.serviceName;
  return out;
});

/**
 * A winston format serializing the entry as one ECS JSON document (`info[MESSAGE]`), without winston's `level`
 * (ECS has `log.level`).
 */
export const ecsStringify = winston.format((info) => {
  const { level: _level, ...rest } = info as Info;
  (info as Info)[MESSAGE] = stringify(rest);
  return info;
});
