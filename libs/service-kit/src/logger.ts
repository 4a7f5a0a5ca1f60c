import winston from 'winston';
import type Transport from 'winston-transport';
import { ecsFields, ecsStringify } from '@elastic/ecs-winston-format';
import { getRequestId } from './request-context.js';

export type Logger = winston.Logger;

export type LoggerOptions = {
  service: string;
  version?: string;
  level?: string;
  /** Secret values (API keys, passwords) that must never appear in a log line, whatever field holds them. */
  secrets?: readonly (string | undefined)[];
  /** Where lines go besides stdout (the Elasticsearch transport, a test sink). */
  transports?: Transport[];
  /** Replace stdout (tests); default: the console. */
  stdout?: Transport;
};

const REDACTED = '[REDACTED]';
// Keys whose values are secrets whatever they hold.
const SECRET_KEY = /(pass(word)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key)$/i;

function redactValue(value: unknown, secrets: readonly string[], depth: number): unknown {
  if (typeof value === 'string') return redactString(value, secrets);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return value; // ecsFields turns `err` into error.*; messages are scrubbed below.
  if (Array.isArray(value)) return value.map((v) => redactValue(v, secrets, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      SECRET_KEY.test(k) && v !== undefined && v !== null && v !== '' ? REDACTED : redactValue(v, secrets, depth + 1);
  }
  return out;
}

function redactString(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join(REDACTED);
  // Credentials in URLs and bearer headers that slipped into a message.
  return out
    .replace(/(\/\/[^/\s:@]+:)[^@\s/]+@/g, `$1${REDACTED}@`)
    .replace(/\b(Bearer|Api-Key|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/g, `$1 ${REDACTED}`);
}

/** Removes secrets from every field of a log entry (keys that name a secret, and known secret values). */
export const redactFormat = winston.format((info, opts) => {
  const secrets = (opts as { secrets: readonly string[] }).secrets;
  for (const key of Object.keys(info)) {
    const value = (info as Record<string, unknown>)[key];
    if (key === 'level') continue;
    if (SECRET_KEY.test(key) && value) (info as Record<string, unknown>)[key] = REDACTED;
    else if (key === 'err' || key === 'error') {
      const err = value as { message?: unknown; stack?: unknown } | undefined;
      if (err instanceof Error) {
        err.message = redactString(err.message, secrets);
        if (err.stack) err.stack = redactString(err.stack, secrets);
      } else (info as Record<string, unknown>)[key] = redactValue(value, secrets, 0);
    } else (info as Record<string, unknown>)[key] = redactValue(value, secrets, 0);
  }
  return info;
});

/** Adds the current request id as ECS `trace.id`. */
const traceFormat = winston.format((info) => {
  const requestId = getRequestId();
  if (requestId && !(info as Record<string, unknown>)['trace'])
    (info as Record<string, unknown>)['trace'] = { id: requestId };
  return info;
});

/** The ECS fields every Workemon log line carries (service.name, log.level, @timestamp, trace.id). */
export function ecsLogFormat(options: Pick<LoggerOptions, 'service' | 'version' | 'secrets'>): winston.Logform.Format {
  const secrets = (options.secrets ?? []).filter((s): s is string => typeof s === 'string' && s.length >= 4);
  return winston.format.combine(
    redactFormat({ secrets }),
    traceFormat(),
    ecsFields({
      serviceName: options.service,
      serviceVersion: options.version,
      apmIntegration: false,
      convertReqRes: false,
    }),
  );
}

/** A winston logger writing one ECS JSON document per line to stdout (and to any extra transports). */
export function createLogger(options: LoggerOptions): Logger {
  const stdout = options.stdout ?? new winston.transports.Console({ format: ecsStringify() });
  return winston.createLogger({
    level: options.level ?? 'info',
    format: ecsLogFormat(options),
    defaultMeta: {},
    transports: [stdout, ...(options.transports ?? [])],
    exitOnError: false,
  });
}

/** Waits until every transport has written what it holds (stdout, Elasticsearch), or the deadline passes. */
export async function flushLogger(logger: Logger, timeoutMs = 5000): Promise<void> {
  const done = new Promise<void>((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
  });
  await Promise.race([done, new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())]);
}
