import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import bytes from 'bytes';
import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { AppError, errors } from './errors.js';
import { getRequestId, runWithRequestId } from './request-context.js';

/**
 * The media types whose bodies are parsed as JSON: `application/json` and the structured-syntax suffix
 * `application/*+json` (RFC 6839 §3.1), the same list for the fast path and for body-parser.
 */
export const JSON_BODY_TYPES = ['application/json', 'application/*+json'];

/**
 * The one Content-Type the fast path reads by itself: `application/json`, bare or with `charset=utf-8`
 * (case-insensitive, the charset optionally quoted). Any other type, parameter or charset goes to body-parser.
 */
const PLAIN_JSON_TYPE = /^application\/json[ \t]*(?:;[ \t]*charset[ \t]*=[ \t]*(?:utf-8|"utf-8")[ \t]*)?$/i;

/** The first character that is not JSON whitespace (RFC 8259 §2: space, tab, LF, CR), or '' when there is none. */
function firstNonWhitespace(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return text[i]!;
  }
  return '';
}

/**
 * A JSON body's text to its value with body-parser's strict rules: an empty body is `{}`, a leading byte order
 * mark is dropped (as iconv-lite's UTF-8 decoder does), anything but an object or an array at the top is
 * invalid. Throws the catalogue's 400 `invalid_json`.
 */
export function parseJsonBody(raw: string): unknown {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  if (text.length === 0) return {};
  const first = text[0] === '{' || text[0] === '[' ? text[0] : firstNonWhitespace(text);
  if (first !== '{' && first !== '[') throw scalarOrInvalid(text);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw errors.invalidJson();
  }
}

/**
 * The 400 for a body body-parser's strict mode refuses at its first byte: well-formed JSON that is a scalar at the top
 * (`null`, `1`, `"text"`) is told so ("must be a JSON object"), anything else is not valid JSON. Both `invalid_json`.
 */
function scalarOrInvalid(text: string): AppError {
  try {
    JSON.parse(text);
  } catch {
    return errors.invalidJson();
  }
  return new AppError('invalid_json', 400, 'Request body must be a JSON object');
}

/** Whether the request carries a body at all (type-is `hasBody`: a Transfer-Encoding, or a numeric Content-Length). */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || !isNaN(Number(req.headers['content-length']));
}

/**
 * Whether the fast path may read this request: plain UTF-8 `application/json`, no Content-Encoding, a stream
 * still to read (on-finished's `isFinished` is false). Everything else takes body-parser's path.
 */
function fastPathApplies(req: IncomingMessage): boolean {
  const type = req.headers['content-type'];
  const coding = req.headers['content-encoding'];
  return (
    type !== undefined &&
    PLAIN_JSON_TYPE.test(type) &&
    (coding === undefined || coding.toLowerCase() === 'identity') &&
    !(req as { upgrade?: boolean }).upgrade &&
    req.socket?.readable === true &&
    !(req.complete && !req.readable)
  );
}

/**
 * Reads off the rest of a request whose body is refused, then calls `done` once (body-parser answers an error
 * only after the request ended, so the client that is still sending gets the answer rather than a reset).
 */
function drainThen(req: IncomingMessage, done: () => void): void {
  let called = false;
  const once = () => {
    if (called) return;
    called = true;
    done();
  };
  if (req.readableEnded || req.destroyed) return once();
  req.once('end', once);
  req.once('close', once);
  req.resume();
}

/**
 * Collects a request's body up to `limit` bytes: `onDone(body)` with the bytes, or `onDone(undefined, error)`
 * with the catalogue's 413 `payload_too_large` (declared Content-Length or bytes received past the limit) or
 * 400 `request_aborted` (the client went away before the end).
 */
function collectBody(
  req: IncomingMessage,
  limit: number,
  onDone: (body: Buffer | undefined, error?: Error) => void,
): void {
  const tooLarge = () => errors.payloadTooLarge(`Request body exceeds the limit of ${limit} bytes`);
  if (Number(req.headers['content-length']) > limit) return onDone(undefined, tooLarge());
  const chunks: Buffer[] = [];
  let received = 0;
  const finish = (body: Buffer | undefined, error?: Error) => {
    req.removeListener('data', onData);
    req.removeListener('end', onEnd);
    req.removeListener('aborted', onAborted);
    req.removeListener('error', onAborted);
    onDone(body, error);
  };
  const onData = (chunk: Buffer) => {
    received += chunk.length;
    if (received > limit) return finish(undefined, tooLarge());
    chunks.push(chunk);
  };
  const onEnd = () => finish(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received));
  const onAborted = () => finish(undefined, errors.requestAborted());
  req.on('data', onData);
  req.once('end', onEnd);
  req.once('aborted', onAborted);
  req.once('error', onAborted);
}

/**
 * Runs `step` under `requestId` again (when there is one). The request stream's events come outside the async
 * context the chain runs in, and the request id is the one context the kit keeps before the body is read
 * (`requestEntry`); restoring it costs ~0.05 µs, `AsyncResource.bind` (raw-body's way) ~13 µs per request.
 */
function inRequestContext(requestId: string | undefined, step: () => void): void {
  if (requestId === undefined) step();
  else runWithRequestId(requestId, step);
}

/** The fast path's end: the body parsed into `req.body`, or the error passed on once the request is drained. */
function settle(req: Request, next: NextFunction, body: Buffer | undefined, error?: Error): void {
  if (error) {
    const requestId = getRequestId();
    // The error's log line keeps its trace.id though `end` comes outside the context.
    return drainThen(req, () => inRequestContext(requestId, () => next(error)));
  }
  // Buffer#toString would turn bytes that are not UTF-8 into U+FFFD and the route would store that text.
  if (!isUtf8(body!)) return next(errors.invalidUtf8());
  try {
    req.body = parseJsonBody(body!.toString('utf8'));
  } catch (err) {
    return next(err);
  }
  next();
}

/**
 * body-parser's `verify` for JSON: a UTF-8 body (the charset named or, unnamed, the default) must be UTF-8, or it
 * is the catalogue's 400 (iconv-lite would decode it with U+FFFD). body-parser passes the thrown AppError on with
 * its own status kept (http-errors takes an Error's `status`).
 */
function verifyUtf8(_req: IncomingMessage, _res: unknown, body: Buffer, encoding: string): void {
  if (/^utf-?8$/i.test(encoding) && !isUtf8(body)) throw errors.invalidUtf8();
}

/**
 * Express middleware parsing JSON request bodies (`application/json`, `application/*+json`) into `req.body`,
 * with body-parser's outcomes: `limit` (bytes, or body-parser's syntax such as `'1mb'`) exceeded → 413
 * `payload_too_large`, broken or non-object/array JSON → 400 `invalid_json`, a charset other than UTF-* → 415,
 * bytes that are not UTF-8 → 400 `invalid_json` (RFC 8259 §8.1),
 * gzip/deflate/br bodies inflated, the client gone → 400 `request_aborted`, an empty body → `{}`, other content
 * types left unread (`req.body` undefined). A plain UTF-8 `application/json` body without Content-Encoding — the
 * services' own traffic — is read here directly (no raw-body, iconv or type-is per request); every other
 * request goes to `express.json` as before.
 */
export function jsonBodyParser(options: { limit: string | number }): RequestHandler {
  const limit = bytes.parse(options.limit);
  if (limit === null || isNaN(limit)) throw new TypeError(`body limit '${String(options.limit)}' is invalid`);
  const fallback = express.json({ limit, type: JSON_BODY_TYPES, verify: verifyUtf8 });
  return (req: Request, res: Response, next: NextFunction) => {
    if (!fastPathApplies(req)) return fallback(req, res, next);
    if (!('body' in (req as object))) req.body = undefined;
    if (!hasBody(req)) return next();
    // The request's events come outside the chain's async context: the rest of the chain runs under its id again.
    const requestId = getRequestId();
    collectBody(req, limit, (body, error) => inRequestContext(requestId, () => settle(req, next, body, error)));
  };
}

/** Where `deferBodyErrors` keeps a body error until the route's authentication has run. */
const DEFERRED_BODY_ERROR = Symbol('workemon.deferredBodyError');

type DeferringRequest = Request & { [DEFERRED_BODY_ERROR]?: unknown };

/** `req.body` as a plain property holding `value` (what it is before and after a deferred error). */
function setPlainBody(req: Request, value: unknown): void {
  Object.defineProperty(req, 'body', { value, writable: true, enumerable: true, configurable: true });
}

/**
 * `parser` (the JSON body reader) whose error — 400 broken JSON, 413 too large, 415 charset, 400 aborted — is
 * kept instead of answered at once, so that a request without a valid key is refused with 401/403 first and a
 * caller without a key learns nothing from how its body was judged. `auth.require` answers the kept error once
 * the key passed, `openapi.validate` on a route without a key, and any other reader of `req.body` gets it thrown
 * (so such a route answers it as before). The request is read to its end either way, as before.
 */
export function deferBodyErrors(parser: RequestHandler): RequestHandler {
  return (req, res, next) =>
    parser(req, res, (err?: unknown) => {
      if (err === undefined || err === null || err === 'route' || err === 'router') return next(err as undefined);
      (req as DeferringRequest)[DEFERRED_BODY_ERROR] = err;
      Object.defineProperty(req, 'body', {
        enumerable: true,
        configurable: true,
        get() {
          throw err;
        },
        set(value: unknown) {
          setPlainBody(req, value);
        },
      });
      next();
    });
}

/** The body error `deferBodyErrors` kept for this request, taken (`req.body` is then unset); undefined: none. */
export function takeDeferredBodyError(req: Request): unknown {
  const deferring = req as DeferringRequest;
  const err = deferring[DEFERRED_BODY_ERROR];
  if (err === undefined) return undefined;
  delete deferring[DEFERRED_BODY_ERROR];
  setPlainBody(req, undefined);
  return err;
}
