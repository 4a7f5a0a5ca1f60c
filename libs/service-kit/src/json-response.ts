import type { Express, Response } from 'express';

/** The Content-Type of every JSON answer (Express's `res.json` gives the same: RFC 8259 media type, UTF-8). */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/**
 * Whether `res.json(body)` may skip Express's general `res.send`: a body that stringifies, a status with a
 * body (not 204/205/304), not HEAD, no conditional request (`If-None-Match`, `If-Modified-Since`: Express would
 * test freshness), no Content-Type, Transfer-Encoding or ETag set by the handler, and the app's JSON and ETag
 * settings at their service-app values (no replacer, spaces or escape; ETag off).
 */
function leanSendApplies(res: Response): boolean {
  const { req } = res;
  const settings = res.app.settings as Record<string, unknown>;
  const status = res.statusCode;
  return (
    status !== 204 &&
    status !== 205 &&
    status !== 304 &&
    req.method !== 'HEAD' &&
    req.headers['if-none-match'] === undefined &&
    req.headers['if-modified-since'] === undefined &&
    !res.hasHeader('content-type') &&
    !res.hasHeader('transfer-encoding') &&
    !res.hasHeader('etag') &&
    settings['etag fn'] === undefined &&
    !settings['json replacer'] &&
    !settings['json spaces'] &&
    !settings['json escape']
  );
}

/**
 * Replaces `res.json` on `app`'s responses (its `app.response`, never Express's global prototype) with one that
 * writes what Express's would — `Content-Type: application/json; charset=utf-8`, `Content-Length` in bytes, the
 * JSON text — without `res.send`'s per-call work (content-type lookups and charset rewriting, ETag and freshness
 * checks, a Buffer copy of bodies over 1,000 characters). Any case `res.send` treats specially (see
 * `leanSendApplies`) goes through Express's own `res.json`, unchanged.
 */
export function installLeanJson(app: Express): void {
  const expressJson = app.response.json;
  app.response.json = function leanJson(this: Response, body?: unknown): Response {
    const text = body === undefined ? undefined : JSON.stringify(body);
    if (typeof text !== 'string' || !leanSendApplies(this)) return expressJson.call(this, body);
    this.setHeader('Content-Type', JSON_CONTENT_TYPE);
    this.setHeader('Content-Length', String(Buffer.byteLength(text, 'utf8')));
    this.end(text, 'utf8');
    return this;
  };
}
