import express, { type Express, type ErrorRequestHandler } from 'express';
import type { OpenApiDocument } from '@workemon/contracts';
import { AppError, ERROR_CODE_HEADER, RETRYABLE_HEADER, errorBody, errors, isAppError } from './errors.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { runHealthChecks, type HealthCheck, type HealthReport } from './health.js';
import { KEY_CLASSES, principalOf, type Authenticator, type KeyClass } from './auth.js';
import { deferBodyErrors, jsonBodyParser } from './json-body.js';
import { getRequestId } from './request-context.js';
import { installLeanJson } from './json-response.js';
import { ACCESS_LOG_FIELDS, requestEntry } from './request-observer.js';
import { routeHomeHint } from './route-home.js';

export type ServiceAppOptions = {
  service: string;
  version: string;
  logger: Logger;
  metrics: Metrics;
  /** Served at /openapi.json. */
  openapi?: OpenApiDocument;
  /** The checks behind GET /health (a function, so checks can depend on state that changes). */
  healthChecks?: readonly HealthCheck[] | (() => readonly HealthCheck[]);
  /** Largest JSON body accepted (express/body-parser syntax). Default 1mb. */
  bodyLimit?: string;
  /**
   * The service's authenticator. GET /health stays open, but shows each check's `detail` (error texts of
   * dependencies: host names, URLs, configuration keys) only to a caller `auth.allows` for `HEALTH_DETAIL_CLASSES`;
   * everyone else gets each dependency's status alone. Without it no HTTP caller sees the details. Either way every
   * change of a check's status is logged with its detail (`logHealthChanges`).
   */
  auth?: Authenticator;
  /**
   * Whether every route of this service that takes a body needs a key (true for the secretary and the LLM
   * services; not for the communicator, whose webhooks carry their providers' signatures instead). Then a request
   * that `auth` would let through no route (no key, an unknown key, several Authorization fields) has its body
   * discarded unread: the route's key check answers 401, and a caller without a key cannot make the service
   * buffer and parse up to `bodyLimit` per request. Needs `auth`.
   */
  bodyNeedsKey?: boolean;
};

/** Key classes that see the details of GET /health: operators and the other services (the secretary reads them). */
export const HEALTH_DETAIL_CLASSES: readonly KeyClass[] = ['admin', 'service'];

/** A health report as a caller without an admin or service key gets it: each check's status and latency, no detail. */
export function healthSummary(report: HealthReport): HealthReport {
  const checks: HealthReport['checks'] = {};
  for (const [name, { status, latency_ms }] of Object.entries(report.checks)) checks[name] = { status, latency_ms };
  return { ...report, checks };
}

/**
 * Logs each check whose status changed since the last /health of this app (`last` keeps them): `warn` with the
 * detail when it turns down or degraded, `info` when it is ok again. A check first seen ok or disabled is not
 * logged; a detail that changes while the status stays (a counter of seconds) is not logged again.
 */
function logHealthChanges(logger: Logger, last: Map<string, string>, report: HealthReport): void {
  for (const [name, check] of Object.entries(report.checks)) {
    const before = last.get(name);
    last.set(name, check.status);
    if (before === check.status || (before === undefined && (check.status === 'ok' || check.status === 'disabled')))
      continue;
    const fields = { workemon: { health: { check: name, status: check.status, previous_status: before ?? null } } };
    if (check.status === 'down' || check.status === 'degraded')
      logger.warn(`health check ${name} is ${check.status}${check.detail ? `: ${check.detail}` : ''}`, fields);
    else logger.info(`health check ${name} is ${check.status}${check.detail ? `: ${check.detail}` : ''}`, fields);
  }
}

/**
 * Adds fields to the one access-log line of the current request (written when the response finishes), instead of
 * a second line per request: e.g. `{ llm: { provider, latency_ms }, decision: { is_enough } }`. Field names
 * follow the logger's rules (ECS, or Workemon's own under `workemon.*`); later calls add to earlier ones.
 */
export function addAccessLogFields(res: express.Response, fields: Record<string, unknown>): void {
  const locals = res.locals as Record<string, unknown>;
  const own = locals[ACCESS_LOG_FIELDS] as Record<string, unknown> | undefined;
  // The first call copies `fields` into an object of the request's own; later calls add to that one in place.
  if (own) Object.assign(own, fields);
  else locals[ACCESS_LOG_FIELDS] = { ...fields };
}

/**
 * Builds an Express app with everything a Workemon service shares: request id in async context, access logs,
 * `http_request_duration_seconds`, JSON body parsing with a size limit, `/health`, `/metrics`, `/openapi.json`,
 * then the service's own routes (`mountRoutes`), then 404 and the error handler in the contract's shape.
 * It never listens.
 */
export function createServiceApp(options: ServiceAppOptions, mountRoutes: (app: Express) => void): Express {
  const { logger, metrics } = options;
  const startedAt = Date.now();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  // Request id, metrics and the access-log line, then the JSON body: one router layer (request-observer.ts).
  // A body error waits for the route's key check (json-body.ts deferBodyErrors): no key is 401 whatever the body.
  // With `bodyNeedsKey`, only a caller with a key of some class (or from this machine while a class is open) is read.
  const jsonBody = deferBodyErrors(jsonBodyParser({ limit: options.bodyLimit ?? '1mb' }));
  const auth = options.bodyNeedsKey ? options.auth : undefined;
  if (options.bodyNeedsKey && !auth) throw new Error('createServiceApp: bodyNeedsKey needs auth');
  const body: express.RequestHandler = auth
    ? (req, res, next) => (auth.allows(req, KEY_CLASSES) ? jsonBody(req, res, next) : next())
    : jsonBody;
  app.use(requestEntry(logger, metrics, body));
  installLeanJson(app);

  const healthSeen = new Map<string, string>();
  app.get('/health', async (req, res) => {
    const checks = typeof options.healthChecks === 'function' ? options.healthChecks() : (options.healthChecks ?? []);
    const { httpStatus, report } = await runHealthChecks(checks, {
      service: options.service,
      version: options.version,
      startedAt,
      metrics,
    });
    logHealthChanges(logger, healthSeen, report);
    // One URL, two views: a cache between caller and service must not hand the keyed view to another caller.
    res.setHeader('Vary', 'Authorization');
    res.setHeader('Cache-Control', 'no-store');
    const detailed = options.auth?.allows(req, HEALTH_DETAIL_CLASSES) ?? false;
    res.status(httpStatus).json(detailed ? report : healthSummary(report));
  });

  app.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  });

  if (options.openapi) {
    const doc = options.openapi;
    app.get('/openapi.json', (_req, res) => {
      res.json(doc);
    });
  }

  mountRoutes(app);

  app.use((req) => {
    // A call on the wrong port, or with the wrong method, says where the route is (route-home.ts).
    const hint = routeHomeHint(options.service, req.method, req.path);
    throw errors.notFound(`No route for ${req.method} ${req.path}${hint ? ` on the ${options.service}${hint}` : ''}`);
  });

  const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
    const appError = toAppError(err);
    if (appError.status === 501) {
      // Not implemented here: a feature this installation has not configured (an unconfigured webhook provider).
      // The operator's state, not a fault: a warning without a stack trace, so posts from anyone on the network to
      // such a route cannot fill the error log with traces.
      logger.warn(appError.message, { error: { code: appError.code }, url: { path: req.path } });
    } else if (appError.status >= 500) {
      logger.error(appError.status === 500 ? 'unhandled error' : appError.message, {
        // An Error's own fields (an AppError's details and cause among them) become error.* once (logger.ts).
        err: err instanceof Error ? err : undefined,
        error: {
          code: appError.code,
          ...(err instanceof Error ? {} : { message: String(err), details: appError.details }),
        },
        url: { path: req.path },
      });
    } else {
      logger.info(`rejected: ${appError.message}`, { error: { code: appError.code }, url: { path: req.path } });
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const [k, v] of Object.entries(appError.headers ?? {})) res.setHeader(k, v);
    // The error's code and retry verdict for callers that are ours (http-client.ts): they survive the hop.
    res.setHeader(ERROR_CODE_HEADER, appError.code);
    res.setHeader(RETRYABLE_HEADER, String(appError.retryable));
    res.status(appError.status).json(errorBody(appError.status, messageFor(appError, res)));
  };
  app.use(errorHandler);
  return app;
}

/**
 * The message an error's caller gets: `publicMessage` (when the error has one) for a client key, `message` for
 * everyone else — admin and service keys, keyless callers on this machine while a class is open, routes without
 * keys (operators and our own services, who need the explanation).
 */
function messageFor(appError: AppError, res: express.Response): string {
  const principal = principalOf(res);
  const client = principal?.keyClass === 'client' && !principal.anonymous;
  return client && appError.publicMessage !== undefined ? appError.publicMessage : appError.message;
}

/** Maps anything thrown to an AppError; body-parser's errors keep their meaning, anything unknown is a 500. */
export function toAppError(err: unknown): AppError {
  if (isAppError(err)) return err;
  const e = err as { type?: string; status?: number; limit?: number } | undefined;
  switch (e?.type) {
    case 'entity.too.large':
      return errors.payloadTooLarge(`Request body exceeds the limit of ${e.limit ?? '?'} bytes`);
    case 'entity.parse.failed':
      return errors.invalidJson();
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return errors.unsupportedMediaType();
    case 'request.aborted':
      return errors.requestAborted();
    default:
      return clientFaultOf(err) ?? errors.internal(err);
  }
}

/** Errors of libraries under the app that are the client's fault, in the catalogue's words; undefined otherwise. */
function clientFaultOf(err: unknown): AppError | undefined {
  const e = err as { status?: number; code?: unknown } | undefined;
  // Express's router throws a URIError (status 400) for a path with a malformed %-escape (`/employees/%FF`)
  // while matching the route, before any handler: the client's mistake, not ours.
  if (err instanceof URIError || (e?.status === 400 && err instanceof Error && /decode param/.test(err.message)))
    return new AppError('invalid_parameter', 400, 'The request path holds an invalid percent-encoding');
  // body-parser's inflate (Content-Encoding gzip/deflate/br) fails with zlib's own error (`Z_DATA_ERROR`,
  // "incorrect header check"; brotli's `ERR__ERROR_FORMAT_…`) marked 400: the body is not what its
  // Content-Encoding says.
  if (e?.status === 400 && /^(Z_|ERR__ERROR_|ERR_BROTLI)/.test(String(e.code)))
    return errors.badRequest(
      'Request body could not be decompressed: it is not valid for its Content-Encoding (send it uncompressed, or valid gzip, deflate or br)',
    );
  return undefined;
}

export { getRequestId };
