import { Agent, request, type Dispatcher } from 'undici';
import { withRequestId } from './request-context.js';
import { startEmitterDeadline } from './resilience.js';

/**
 * The transport under every upstream call of the tree (service-kit's HttpClient, the LLM providers): undici's
 * `request` over keep-alive connection pools. Chosen by measurement (`npm run bench:http`, figures in
 * docs/DEVELOPING.md "Upstream HTTP and retries"): about a quarter of axios' CPU per call and a fifth of fetch()'s, as cheap
 * as node:http. undici is used as a library here, every call with its pool (see the global dispatcher below).
 */

/**
 * Loading npm undici installs its own Agent as the process's global dispatcher (its lib/global.js does so when
 * none is set), which Node's built-in fetch() then uses: the "npm undici replacing Node's fetch by accident" of
 * the performance issue. Our calls pass their pool explicitly and need no global, so the slot is emptied again
 * when npm undici filled it; Node's fetch then installs its own Agent on first use. A dispatcher set on purpose
 * (any other object) is left alone.
 */
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');
const globals = globalThis as unknown as Record<symbol, unknown>;
if (globals[GLOBAL_DISPATCHER] instanceof Agent) globals[GLOBAL_DISPATCHER] = undefined;

export type HttpPoolOptions = {
  /** Most connections per origin (host:port); calls beyond wait for a free one. Default 128. */
  connections?: number;
  /** How long an idle connection is kept, ms (the server's `Keep-Alive: timeout` hint wins when shorter). Default 30 s. */
  keepAliveTimeoutMs?: number;
  /**
   * The CAs (PEM) TLS connections are verified against, replacing Node's bundled roots (add `tls.rootCertificates`
   * to keep them). Default: Node's roots. Certificates are always verified.
   */
  ca?: string[];
};

/** A keep-alive connection pool, one per origin inside; share one between the clients of a process. */
export type HttpPool = Dispatcher;

export const DEFAULT_POOL_CONNECTIONS = 128;

/** A new keep-alive pool. Its idle sockets do not keep the process alive; `close()` it when the owner stops. */
export function createHttpPool(options: HttpPoolOptions = {}): HttpPool {
  return new Agent({
    connections: options.connections ?? DEFAULT_POOL_CONNECTIONS,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
    keepAliveMaxTimeout: 120_000,
    ...(options.ca ? { connect: { ca: options.ca } } : {}),
  });
}

let sharedPool: HttpPool | undefined;

/** The process's default pool, used by every client not given its own. */
export function sharedHttpPool(): HttpPool {
  sharedPool ??= createHttpPool();
  return sharedPool;
}

export type HttpExchange = {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Absolute URL. */
  url: string;
  headers?: Record<string, string>;
  /** Sent as is (JSON callers stringify first). */
  body?: string;
  /** Deadline of the whole exchange, headers and body, in ms. */
  timeoutMs: number;
  /** Default: `sharedHttpPool()`. */
  pool?: HttpPool;
  /** Largest body read, in bytes: a bigger one throws HttpTransportError `too-large`. Default: no limit. */
  maxBytes?: number;
  /** Also keep the body's bytes as read (`HttpAnswer.bytes`), for content that is not UTF-8 text. */
  binary?: boolean;
};

export type HttpAnswer = {
  status: number;
  /** Lower-case names, as undici gives them. */
  headers: Record<string, string | string[] | undefined>;
  /** The body as UTF-8 text. */
  text: string;
  /** The body's bytes, when the exchange asked for `binary`. */
  bytes?: Buffer;
};

/**
 * The exchange got no complete answer: `timeout` (the deadline passed), `unreachable` (network error) or
 * `too-large` (the body passed the exchange's `maxBytes`).
 */
export class HttpTransportError extends Error {
  readonly kind: 'timeout' | 'unreachable' | 'too-large';
  /** The network error's code (`ECONNREFUSED`, …) when there was one. */
  readonly code?: string;

  constructor(
    kind: 'timeout' | 'unreachable' | 'too-large',
    message: string,
    options: { cause?: unknown; code?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'HttpTransportError';
    this.kind = kind;
    this.code = options.code;
  }
}

/** The network error's code (`ECONNREFUSED`, `UND_ERR_SOCKET`, …) of an undici error or its cause. */
export function networkCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = e?.code ?? e?.cause?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Where undici sends a request: the URL's `origin` and its `path` (pathname and search), as its `request(url)` derives them. */
type Target = { origin: string; path: string };

/** Targets of the URLs called lately, so a URL is parsed once rather than on every call (bounded: cleared when full). */
const targets = new Map<string, Target>();
const MAX_TARGETS = 1024;

/**
 * The target of an http(s) URL, parsed with `new URL` the first time it is called; undefined for anything else
 * (then `request(url)` parses it and throws undici's own error for it, as before).
 */
function targetOf(url: string): Target | undefined {
  const known = targets.get(url);
  if (known) return known;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return undefined;
  if (targets.size >= MAX_TARGETS) targets.clear();
  const target = {
    origin: parsed.origin,
    path: parsed.search ? `${parsed.pathname}${parsed.search}` : parsed.pathname,
  };
  targets.set(url, target);
  return target;
}

/**
 * undici's `request` for one exchange: straight to the pool with the URL's cached target (undici's top-level
 * `request(url)` builds a `new URL` on every call), or through `request(url)` for a URL it must judge itself.
 */
function send(url: string, options: Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher: HttpPool }) {
  const target = targetOf(url);
  return target ? options.dispatcher.request({ ...options, ...target }) : request(url, options);
}

/**
 * One HTTP exchange under a deadline: the current request id forwarded as `X-Request-Id` (unless the caller sets
 * it), the whole body read as text. Any status resolves; no complete answer throws HttpTransportError.
 */
export async function exchange(req: HttpExchange): Promise<HttpAnswer> {
  const headers = withRequestId(req.headers);
  // An EventEmitter signal, not an AbortSignal: undici's per-call listener bookkeeping on it is far cheaper.
  const deadline = startEmitterDeadline(req.timeoutMs);
  try {
    const response = await send(req.url, {
      method: req.method,
      headers,
      body: req.body,
      signal: deadline.signal,
      dispatcher: req.pool ?? sharedHttpPool(),
    });
    if (req.maxBytes === undefined && !req.binary)
      return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (req.maxBytes !== undefined && size > req.maxBytes) {
        response.body.destroy();
        throw new HttpTransportError('too-large', `answer larger than ${req.maxBytes} bytes`);
      }
      chunks.push(chunk);
    }
    const bytes = Buffer.concat(chunks);
    return {
      status: response.statusCode,
      headers: response.headers,
      text: bytes.toString('utf8'),
      ...(req.binary ? { bytes } : {}),
    };
  } catch (err) {
    if (err instanceof HttpTransportError) throw err;
    if (deadline.expired())
      throw new HttpTransportError('timeout', `no answer within ${req.timeoutMs} ms`, { cause: err });
    const code = networkCode(err);
    throw new HttpTransportError('unreachable', (err as Error)?.message ?? String(err), { cause: err, code });
  } finally {
    deadline.clear();
  }
}

/** A header's single value (the first when repeated). */
export function headerValue(headers: HttpAnswer['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
