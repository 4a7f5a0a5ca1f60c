import express, { type Express, type ErrorRequestHandler, type RequestHandler } from 'express';
import type { OpenApiDocument } from '@workemon/contracts';
import { AppError, ERROR_CODE_HEADER, RETRYABLE_HEADER, errorBody, errors, isAppError } from './errors.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { runHealthChecks, type HealthCheck } from './health.js';
import { REQUEST_ID_HEADER, acceptOrCreateRequestId, getRequestId, runWithRequestId } from './request-context.js';

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
};

const OPERATIONAL_PATHS = new Set(['/health', '/metrics']);

/** Where a handler leaves fields for its request's access-log line (`res.locals`). */
const ACCESS_LOG_FIELDS = 'workemonAccessLogFields';

/**
 * Adds fields to the one access-log line of the current request (written when the response finishes), instead of
 * a second line per request: e.g. `{ llm: { provider, latency_ms }, decision: { is_enough } }`. Field names
 * follow the logger's rules (ECS, or Workemon's own under `workemon.*`); later calls add to earlier ones.
 */
export function addAccessLogFields(res: express.Response, fields: Record<string, unknown>): void {
  const locals = res.locals as Record<string, unknown>;
  locals[ACCESS_LOG_FIELDS] = { ...(locals[ACCESS_LOG_FIELDS] as Record<string, unknown> | undefined), ...fields };
}

/** The route template a request matched (`/employees/:username`), never the raw URL (keeps label cardinality low). */
function routeTemplate(req: express.Request): string {
  const route = (req as { route?: { path?: unknown } }).route;
  if (route && typeof route.path === 'string') return `${req.baseUrl}${route.path}`;
  return 'unmatched';
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

  const requestId: RequestHandler = (req, res, next) => {
    const id = acceptOrCreateRequestId(req.get(REQUEST_ID_HEADER));
    res.setHeader('X-Request-Id', id);
    runWithRequestId(id, () => next());
  };
  app.use(requestId);

  app.use((req, res, next) => {
    const end = metrics.httpRequestDuration.startTimer();
    const started = performance.now();
    if (!OPERATIONAL_PATHS.has(req.path)) {
      metrics.httpRequestsInFlight.inc();
      // 'close' fires once whether the response finished or the client went away.
      res.once('close', () => metrics.httpRequestsInFlight.dec());
    }
    res.on('finish', () => {
      const route = routeTemplate(req);
      end({ method: req.method, route, status_code: String(res.statusCode) });
      const level = OPERATIONAL_PATHS.has(req.path) ? 'debug' : res.statusCode >= 500 ? 'warn' : 'info';
      // Building the entry is most of an access log's cost: skip it for a level nobody keeps.
      if (!logger.isLevelEnabled(level)) return;
      const entry = {
        http: { request: { method: req.method }, response: { status_code: res.statusCode } },
        url: { path: req.path },
        event: { duration: Math.round((performance.now() - started) * 1e6) },
        route,
        // Who called (set by auth.require): ECS user.name is the key's name, never the key.
        ...(res.locals['principal'] ? { user: { name: (res.locals['principal'] as { name: string }).name } } : {}),
        ...(res.locals[ACCESS_LOG_FIELDS] as Record<string, unknown> | undefined),
      };
      logger.log(level, `${req.method} ${route} ${res.statusCode}`, entry);
    });
    next();
  });

  app.use(express.json({ limit: options.bodyLimit ?? '1mb', type: ['application/json', 'application/*+json'] }));

  app.get('/health', async (_req, res) => {
    const checks = typeof options.healthChecks === 'function' ? options.healthChecks() : (options.healthChecks ?? []);
    const { httpStatus, report } = await runHealthChecks(checks, {
      service: options.service,
      version: options.version,
      startedAt,
      metrics,
    });
    res.status(httpStatus).json(report);
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
    throw errors.notFound(`No route for ${req.method} ${req.path}`);
  });

  const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
    const appError = toAppError(err);
    if (appError.status >= 500) {
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
    res.status(appError.status).json(errorBody(appError.status, appError.message));
  };
  app.use(errorHandler);
  return app;
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
      return new AppError('unsupported_media_type', 415, 'Unsupported request encoding');
    case 'request.aborted':
      return new AppError('request_aborted', 400, 'Request aborted');
    default:
      // Express's router throws a URIError (status 400) for a path with a malformed %-escape (`/employees/%FF`)
      // while matching the route, before any handler: the client's mistake, not ours.
      if (err instanceof URIError || (e?.status === 400 && err instanceof Error && /decode param/.test(err.message)))
        return new AppError('invalid_parameter', 400, 'The request path holds an invalid percent-encoding');
      return errors.internal(err);
  }
}

export { getRequestId };
