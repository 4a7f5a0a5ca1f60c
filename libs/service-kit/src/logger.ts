import winston from 'winston';
import Transport from 'winston-transport';
import { ecsFields, ecsStringify } from './ecs-format.js';
import { getRequestId } from './request-context.js';
import { untilAborted, withDeadline } from './resilience.js';
import type { ElasticsearchLogOptions } from './elasticsearch-options.js';
import type { WorkemonElasticsearchTransport } from './elasticsearch-transport.js';

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
  /** Also ship every line to Elasticsearch (`elasticsearchFromEnv(config)`); undefined: stdout only. */
  elasticsearch?: ElasticsearchLogOptions;
  /** Where the logger reports its own trouble (Elasticsearch unreachable), rate-limited. Default: stderr. */
  onTransportWarning?: (message: string) => void;
};

const TRANSPORT_WARNING_INTERVAL_MS = 60_000;

/** The namespace of Workemon's own log fields (ECS custom fields): `workemon.imap.uid`, `workemon.llm.provider`. */
export const WORKEMON_NAMESPACE = 'workemon';

/** An entry's fields, or any object inside one. */
type Fields = Record<string, unknown>;

const REDACTED = '[REDACTED]';
// Keys whose values are secrets whatever they hold.
const SECRET_KEY = /(pass(word)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key)$/i;

/**
 * Secret values to scrub, prepared once. A secret of at least `WHOLE_WORD_BELOW` characters is replaced wherever
 * it occurs; a shorter one only as a whole token (not next to a letter, digit, `_` or `-`): replacing `pass` inside
 * `password` would mangle every line and, worse, show where the secret's characters sit in ordinary words.
 */
type SecretMatcher = { long: readonly string[]; short?: RegExp };
const WHOLE_WORD_BELOW = 16;
const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function compileSecrets(secrets: readonly string[]): SecretMatcher {
  const unique = [...new Set(secrets.filter((s) => s.length > 0))].sort((a, b) => b.length - a.length);
  const long = unique.filter((s) => s.length >= WHOLE_WORD_BELOW);
  const short = unique.filter((s) => s.length < WHOLE_WORD_BELOW);
  return {
    long,
    short: short.length
      ? new RegExp(`(?<![\\p{L}\\p{N}_-])(?:${short.map(escapeRegExp).join('|')})(?![\\p{L}\\p{N}_-])`, 'gu')
      : undefined,
  };
}

/**
 * `value` with secrets removed. Copy on write: an object or array without anything to redact is returned as it
 * is, so the usual log entry (no secrets) costs a walk, not a copy. Strings are scrubbed (`redactString`), nesting
 * stops at depth 6, Errors are left to `redactFormat` (ecsFields turns `err` into error.*).
 */
function redactValue(value: unknown, secrets: SecretMatcher, depth: number): unknown {
  if (typeof value === 'string') return redactString(value, secrets);
  if (depth > 6 || value === null || typeof value !== 'object' || value instanceof Error) return value;
  return Array.isArray(value) ? redactArray(value, secrets, depth) : redactObject(value as Fields, secrets, depth);
}

/** An array with each element redacted (copied only when one changes). */
function redactArray(value: readonly unknown[], secrets: SecretMatcher, depth: number): readonly unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    const r = redactValue(v, secrets, depth + 1);
    if (r !== v) (out ??= value.slice())[i] = r;
  }
  return out ?? value;
}

/** Whether a field's value is replaced whole: its key names a secret and it holds something. */
function isSecretField(key: string, value: unknown): boolean {
  return value !== undefined && value !== null && value !== '' && SECRET_KEY.test(key);
}

/** An object's own fields redacted: secret-named fields replaced whole, the others walked (copied on change). */
function redactObject(value: Fields, secrets: SecretMatcher, depth: number): Fields {
  let out: Fields | undefined;
  for (const k in value) {
    if (!Object.prototype.hasOwnProperty.call(value, k)) continue;
    const v = value[k];
    const r = isSecretField(k, v) ? REDACTED : redactValue(v, secrets, depth + 1);
    if (r !== v) (out ??= { ...value })[k] = r;
  }
  return out ?? value;
}

function redactString(text: string, secrets: SecretMatcher): string {
  let out = text;
  for (const s of secrets.long) if (out.includes(s)) out = out.split(s).join(REDACTED);
  if (secrets.short) out = out.replace(secrets.short, REDACTED);
  // Credentials in URLs and bearer headers that slipped into a message (the regular expressions run only on a
  // string that can hold one).
  if (out.includes('@')) out = out.replace(/(\/\/[^/\s:@]+:)[^@\s/]+@/g, `$1${REDACTED}@`);
  if (out.includes('Bearer') || out.includes('Api-Key') || out.includes('Basic'))
    out = out.replace(/\b(Bearer|Api-Key|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/g, `$1 ${REDACTED}`);
  return out;
}

/**
 * Removes secrets from every field of a log entry (keys that name a secret, and known secret values: long ones
 * anywhere, short ones as whole tokens). Options: `{secrets: string[]}`.
 */
export const redactFormat = winston.format((info, opts) => {
  const options = opts as { secrets: readonly string[]; matcher?: SecretMatcher };
  options.matcher ??= compileSecrets(options.secrets ?? []);
  const secrets = options.matcher;
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

/**
 * Top-level names a log entry may use as they are: ECS 8 field sets (docs/DEVELOPING.md, "Logs"), winston's own keys, and the inputs ecsFields converts (`err`, `req`, `res`).
 */
const ECS_ROOTS = new Set([
  // ECS field sets and root fields.
  ...['@timestamp', 'message', 'labels', 'tags', 'agent', 'client', 'cloud', 'container', 'data_stream'],
  ...['destination', 'dns', 'ecs', 'email', 'error', 'event', 'file', 'group', 'host', 'http', 'log'],
  ...['network', 'observer', 'orchestrator', 'organization', 'process', 'related', 'server', 'service'],
  ...['source', 'span', 'trace', 'transaction', 'url', 'user', 'user_agent'],
  // winston and ecsFields.
  ...['level', 'err', 'req', 'res'],
  // Ours.
  WORKEMON_NAMESPACE,
]);

const isPlainObject = (value: unknown): value is Fields =>
  !!value && typeof value === 'object' && !Array.isArray(value) && !(value instanceof Error);
// What a caller put under `error` beside an `err`: ecsFields replaces `error` with the Error's fields.
const ERROR_EXTRAS = Symbol('workemon.error-extras');

/**
 * ECS placement of a Workemon entry: fields outside ECS move under `workemon.*` (`{ imap: { uid } }` is logged as
 * `workemon.imap.uid`), `details` and `cause` go once under `error.*` (`error.details`, `error.cause`), and what
 * the caller put under `error` (e.g. `error.code`) survives beside an `err` that ecsFields turns into `error.*`.
 * Durations: the logged event's own duration is ECS `event.duration` in nanoseconds; any other span is a
 * `*_ms` field in milliseconds (docs/DEVELOPING.md, "Logs").
 */
export const workemonFieldsFormat = winston.format((info) => {
  const entry = info as Fields;
  // `{ error: someError }` is the same as `{ err: someError }` (ecsFields reads either).
  if (entry['error'] instanceof Error && !(entry['err'] instanceof Error)) {
    entry['err'] = entry['error'];
    delete entry['error'];
  }
  const custom: Fields = {};
  const error: Fields = isPlainObject(entry['error']) ? { ...entry['error'] } : {};
  for (const key of Object.keys(entry)) {
    if (key === 'details' || key === 'cause') {
      if (entry[key] !== undefined) error[key] = entry[key];
      delete entry[key];
    } else if (!ECS_ROOTS.has(key)) {
      if (entry[key] !== undefined) custom[key] = entry[key];
      delete entry[key];
    }
  }
  if (Object.keys(custom).length > 0) {
    const existing = entry[WORKEMON_NAMESPACE];
    entry[WORKEMON_NAMESPACE] = isPlainObject(existing) ? { ...custom, ...existing } : custom;
  }
  if (entry['err'] instanceof Error) {
    (entry as Record<symbol, unknown>)[ERROR_EXTRAS] = error;
    delete entry['error'];
  } else if (Object.keys(error).length > 0) entry['error'] = error;
  return info;
});

/** Puts back what `workemonFieldsFormat` set aside under `error` once ecsFields has written `error.*`. */
const errorExtrasFormat = winston.format((info) => {
  const extras = (info as Record<symbol, unknown>)[ERROR_EXTRAS] as Fields | undefined;
  if (extras) {
    delete (info as Record<symbol, unknown>)[ERROR_EXTRAS];
    const entry = info as Fields;
    entry['error'] = { ...extras, ...(isPlainObject(entry['error']) ? entry['error'] : {}) };
  }
  return info;
});

/** The ECS fields every Workemon log line carries (service.name, log.level, @timestamp, trace.id). */
export function ecsLogFormat(options: Pick<LoggerOptions, 'service' | 'version' | 'secrets'>): winston.Logform.Format {
  const secrets = (options.secrets ?? []).filter((s): s is string => typeof s === 'string' && s.length > 0);
  return winston.format.combine(
    redactFormat({ secrets }),
    traceFormat(),
    workemonFieldsFormat(),
    ecsFields({ serviceName: options.service, serviceVersion: options.version }),
    errorExtrasFormat(),
  );
}

/**
 * A winston logger writing one ECS JSON document per line to stdout, to Elasticsearch when `elasticsearch` is
 * given, and to any extra transports. Trouble with Elasticsearch never reaches callers: lines are buffered up to
 * a bound, and the problem is reported on stderr at most once a minute.
 */
export function createLogger(options: LoggerOptions): Logger {
  const stdout = options.stdout ?? new winston.transports.Console({ format: ecsStringify() });
  const es = options.elasticsearch;
  const secrets = es?.password ? [...(options.secrets ?? []), es.password] : options.secrets;
  const report = options.onTransportWarning ?? ((message: string) => writeStderrLine(options, message));
  let lastReportAt = 0;
  const warn = (problem: unknown) => {
    const now = Date.now();
    if (now - lastReportAt < TRANSPORT_WARNING_INTERVAL_MS) return;
    lastReportAt = now;
    const text = problem instanceof Error ? problem.message : String(problem);
    report(`log shipping to Elasticsearch is failing (lines are buffered, newest dropped when full): ${text}`);
  };
  const transports: Transport[] = [stdout, ...(options.transports ?? [])];
  const pending = es
    ? new PendingTransport(options.level ?? 'info', es.bufferLimit ?? DEFAULT_BUFFER_LIMIT)
    : undefined;
  if (pending) transports.push(pending);
  // winston runs the logger's format before its transports filter by level; this gate drops a disabled level's
  // entry first, so a debug line costs nothing in production.
  const levelGate = winston.format((info) => (logger.isLevelEnabled(info.level) ? info : false));
  const logger: Logger = winston.createLogger({
    level: options.level ?? 'info',
    format: winston.format.combine(levelGate(), ecsLogFormat({ ...options, secrets })),
    defaultMeta: {},
    transports,
    exitOnError: false,
  });
  // winston rethrows a transport's unhandled 'error': logging must never take the service down.
  logger.on('error', warn);
  if (es && pending) {
    elasticsearchLoads.set(
      logger,
      attachElasticsearch(logger, pending, {
        ...es,
        level: options.level ?? 'info',
        onWarning: (problem) => {
          es.onWarning?.(problem);
          warn(problem);
        },
      }).catch((err: unknown) => {
        logger.remove(pending);
        warn(new Error(`the Elasticsearch transport could not be loaded: ${String(err)}`));
        return undefined;
      }),
    );
  }
  return logger;
}

/** The library's default (winston-elasticsearch `bufferLimit`) and ours: documents held while loading or down. */
const DEFAULT_BUFFER_LIMIT = 5000;

/** A logger's Elasticsearch transport being loaded (or loaded): `flushLogger` and tests wait for it. */
const elasticsearchLoads = new WeakMap<Logger, Promise<WorkemonElasticsearchTransport | undefined>>();

/**
 * Holds the entries logged while the Elasticsearch transport is being imported (a few hundred ms at start),
 * up to the transport's own buffer limit, so the first lines of a service (its start) reach Elasticsearch too.
 */
class PendingTransport extends Transport {
  readonly held: unknown[] = [];
  constructor(
    level: string,
    private readonly limit: number,
  ) {
    super({ level });
  }
  override log(info: unknown, next: () => void): void {
    if (this.held.length < this.limit) this.held.push(info);
    next();
  }
}

/**
 * Imports winston-elasticsearch (and with it the Elasticsearch client) only now that ELASTICSEARCH_URL is set:
 * without it a service never loads that module graph (about 1,800 files). Entries held meanwhile are handed
 * to the transport in order before it joins the logger.
 */
async function attachElasticsearch(
  logger: Logger,
  pending: PendingTransport,
  options: ElasticsearchLogOptions & { level: string },
): Promise<WorkemonElasticsearchTransport> {
  const { WorkemonElasticsearchTransport } = await import('./elasticsearch-transport.js');
  const transport = new WorkemonElasticsearchTransport(options);
  // Added first: piping sets the levels the transport filters by; then what was held, in order.
  logger.remove(pending);
  logger.add(transport);
  for (const info of pending.held.splice(0)) transport.write(info);
  return transport;
}

/**
 * The logger's Elasticsearch transport once it is loaded; undefined without ELASTICSEARCH_URL (or when it
 * could not be loaded, which was reported as a transport warning).
 */
export async function elasticsearchTransportOf(logger: Logger): Promise<WorkemonElasticsearchTransport | undefined> {
  return elasticsearchLoads.get(logger);
}

function writeStderrLine(options: Pick<LoggerOptions, 'service'>, message: string): void {
  const line = {
    '@timestamp': new Date().toISOString(),
    'log.level': 'warn',
    message,
    service: { name: options.service },
  };
  process.stderr.write(`${JSON.stringify(line)}\n`);
}

/** Waits until every transport has written what it holds (stdout, Elasticsearch), or the deadline passes. */
export async function flushLogger(logger: Logger, timeoutMs = 5000): Promise<void> {
  // winston's stream is readable-stream 3, which has no `writableFinished`.
  // The Elasticsearch transport must be in place before the stream ends, or what it holds is never sent.
  const loading = elasticsearchLoads.get(logger);
  if (loading) await waitAtMost(timeoutMs, loading);
  const state = (logger as unknown as { _writableState?: { finished?: boolean; ended?: boolean } })._writableState;
  if (state?.finished) return;
  const done = new Promise<void>((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
  });
  await waitAtMost(timeoutMs, done);
}

/** Waits for `work` at most `ms` (the deadline's timer cleared either way); a late or failed `work` is dropped. */
async function waitAtMost(ms: number, work: Promise<unknown>): Promise<void> {
  await withDeadline(ms, (signal) => untilAborted(work, signal)).catch(() => undefined);
}
