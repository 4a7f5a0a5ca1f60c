import { request } from 'undici';
import { HttpTransportError, networkCode, sharedHttpPool, type HttpAnswer, type HttpPool } from './http-transport.js';
import { withRequestId } from './request-context.js';

/**
 * A GET whose body is too big to hold in memory (a model file of gigabytes), on the same transport as every other
 * upstream call (`exchange()`: undici over the process's keep-alive pool, the request id forwarded). It has no
 * deadline for the whole exchange — a download takes as long as it takes — but undici's idle limits: no headers
 * within `idleTimeoutMs`, or no body bytes for `idleTimeoutMs`, fails it.
 */
export type HttpStreamRequest = {
  /** Absolute URL. */
  url: string;
  headers?: Record<string, string>;
  /** Stops the exchange (connecting, waiting, or reading the body). */
  signal?: AbortSignal;
  /** Default: `sharedHttpPool()`. */
  pool?: HttpPool;
  /** Redirects followed (a hub sends file downloads on to its CDN with 302). Default 5. */
  maxRedirections?: number;
  /** Longest wait for the answer's headers and longest silence between body bytes, in ms. Default 300 s. */
  idleTimeoutMs?: number;
};

/** An answer whose body is read as it arrives. */
export type HttpStream = {
  status: number;
  /** Lower-case names, as undici gives them. */
  headers: HttpAnswer['headers'];
  /** The body's bytes; iterating throws when the connection breaks off or goes idle. */
  body: AsyncIterable<Buffer>;
  /** Drops the body unread (an answer the caller will not use), releasing the connection. */
  discard(): void;
};

/** undici's error code for "no headers / no body bytes within the idle limit". */
const IDLE_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Destroys an unread body; the abort error undici then emits on it has no one to tell and is dropped. */
function discardBody(body: NodeJS.ReadableStream & { destroy(): void }): void {
  body.on('error', () => undefined);
  body.destroy();
}

/**
 * Sends a GET and resolves as soon as the headers are in, with the body left to read (any status resolves).
 * Throws HttpTransportError: `timeout` when no headers came within the idle limit, `unreachable` for a network
 * error or an abort of `signal` (its `code` set when the network gave one).
 */
export async function openHttpStream(req: HttpStreamRequest): Promise<HttpStream> {
  const idleMs = req.idleTimeoutMs ?? 300_000;
  try {
    const response = await request(req.url, {
      method: 'GET',
      headers: withRequestId(req.headers),
      signal: req.signal,
      dispatcher: req.pool ?? sharedHttpPool(),
      maxRedirections: req.maxRedirections ?? 5,
      headersTimeout: idleMs,
      bodyTimeout: idleMs,
    });
    return {
      status: response.statusCode,
      headers: response.headers,
      body: response.body as AsyncIterable<Buffer>,
      discard: () => discardBody(response.body),
    };
  } catch (err) {
    const code = networkCode(err);
    if (code && IDLE_CODES.has(code))
      throw new HttpTransportError('timeout', `no answer within ${idleMs} ms`, { cause: err, code });
    throw new HttpTransportError('unreachable', (err as Error)?.message ?? String(err), { cause: err, code });
  }
}
