import type { Request, RequestHandler, Response } from 'express';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { REQUEST_ID_HEADER, acceptOrCreateRequestId, runWithRequestId } from './request-context.js';

/** Paths that are not the service's work: not counted in flight, logged at `debug`. */
export const OPERATIONAL_PATHS: ReadonlySet<string> = new Set(['/health', '/metrics']);

/** Where a handler leaves fields for its request's access-log line (`res.locals`). */
export const ACCESS_LOG_FIELDS = 'workemonAccessLogFields';

/** What the observer keeps on a response between the request's start and its `close` event. */
type Observation = { logger: Logger; metrics: Metrics; startedMs: number; inFlight: boolean; requestId: string };

/** The response's observation, on a symbol so it never meets a field of Express or of a handler. */
const OBSERVATION = Symbol('workemon.requestObservation');

type ObservedResponse = Response & { [OBSERVATION]?: Observation };

/** The route template a request matched (`/employees/:username`), never the raw URL (keeps label cardinality low). */
export function routeTemplate(req: Request): string {
  const route = (req as { route?: { path?: unknown } }).route;
  if (route && typeof route.path === 'string') return `${req.baseUrl}${route.path}`;
  return 'unmatched';
}

/** The access line's level: `debug` for operational paths, `warn` for a 5xx, `info` otherwise. */
function accessLogLevel(path: string, status: number): string {
  return OPERATIONAL_PATHS.has(path) ? 'debug' : status >= 500 ? 'warn' : 'info';
}

/**
 * The request's one access-log line at `level` (ECS: `http.request.method`, `http.response.status_code`,
 * `url.path`, `event.duration` in nanoseconds, `user.name` of the caller's key, plus the handler's
 * `addAccessLogFields`; `trace.id` from the request's context, see `onResponseClose`).
 */
function writeAccessLog(req: Request, res: Response, route: string, level: string, seen: Observation): void {
  const durationMs = performance.now() - seen.startedMs;
  const principal = res.locals['principal'] as { name: string } | undefined;
  const entry = {
    http: { request: { method: req.method }, response: { status_code: res.statusCode } },
    url: { path: req.path },
    event: { duration: Math.round(durationMs * 1e6) },
    route,
    // Who called (set by auth.require): ECS user.name is the key's name, never the key.
    ...(principal ? { user: { name: principal.name } } : {}),
    ...(res.locals[ACCESS_LOG_FIELDS] as Record<string, unknown> | undefined),
  };
  seen.logger.log(level, `${req.method} ${route} ${res.statusCode}`, entry);
}

/**
 * The response's `close` listener (`this` is the response): `workemon_http_requests_in_flight` down again, and
 * for a response that was sent in full (`writableFinished`; a client that went away gets neither) the
 * `http_request_duration_seconds` observation and the access-log line. `close` fires once, a tick after
 * `finish`, so one listener serves both.
 */
function onResponseClose(this: ObservedResponse): void {
  const seen = this[OBSERVATION];
  if (!seen) return;
  if (seen.inFlight) seen.metrics.httpRequestsInFlight.dec();
  if (!this.writableFinished) return;
  const req = this.req;
  const route = routeTemplate(req);
  seen.metrics.httpRequestDuration.observe(
    { method: req.method, route, status_code: String(this.statusCode) },
    (performance.now() - seen.startedMs) / 1000,
  );
  // Building the entry is most of an access log's cost: nothing for a level nobody keeps.
  const level = accessLogLevel(req.path, this.statusCode);
  if (!seen.logger.isLevelEnabled(level)) return;
  // `close` is emitted outside the request's async context: the line gets its trace.id back here.
  runWithRequestId(seen.requestId, () => writeAccessLog(req, this, route, level, seen));
}

/** Starts observing one request: its clock, the in-flight gauge (not for operational paths), one `close` listener. */
function observe(req: Request, res: ObservedResponse, logger: Logger, metrics: Metrics, requestId: string): void {
  const inFlight = !OPERATIONAL_PATHS.has(req.path);
  if (inFlight) metrics.httpRequestsInFlight.inc();
  res[OBSERVATION] = { logger, metrics, startedMs: performance.now(), inFlight, requestId };
  res.once('close', onResponseClose);
}

/**
 * The first middleware of a service app, one router layer instead of three: the request id (the caller's
 * `X-Request-Id` when it is safe, else a new UUID) answered in `X-Request-Id` and kept in async context for logs
 * and outgoing calls; the request observed (metrics and the access-log line, see `onResponseClose`); then
 * `then` (the JSON body reader) inside the request's context.
 */
export function requestEntry(logger: Logger, metrics: Metrics, then: RequestHandler): RequestHandler {
  return (req, res, next) => {
    const id = acceptOrCreateRequestId(req.headers[REQUEST_ID_HEADER]);
    res.setHeader('X-Request-Id', id);
    observe(req, res, logger, metrics, id);
    runWithRequestId(id, () => then(req, res, next));
  };
}
