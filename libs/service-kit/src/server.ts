import { createServer, IncomingMessage, ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { errorBody } from './errors.js';
import { flushLogger, type Logger } from './logger.js';
import { sleep } from './resilience.js';
import { scheduleStartUpCollection } from './start-up-memory.js';

export type Closer = { name: string; close: () => Promise<void> | void };

export type RunningService = {
  server: Server;
  port: number;
  /** Graceful stop: no new connections, in-flight requests drain, then closers run in order, then logs flush. */
  shutdown: (reason: string) => Promise<void>;
};

export type RunServiceOptions = {
  app: Express;
  port: number;
  host?: string;
  logger: Logger;
  /** Run after HTTP has drained, in order (workers first, pools last). */
  closers?: Closer[];
  /** Hard deadline of the whole shutdown; past it the process exits with status 1. Default 15 s. */
  shutdownTimeoutMs?: number;
  /** Register SIGTERM/SIGINT handlers and exit the process after shutdown (main.ts); off in tests. */
  handleSignals?: boolean;
  /**
   * The service's name (`secretary`): a busy port is reported with the key that moves it, `SECRETARY_PORT`
   * (what `npm start` and compose read) besides `PORT`.
   */
  service?: string;
};

/**
 * The port is taken (EADDRINUSE) or not ours to use (EACCES). Its message is the one line an operator needs:
 * the port, the service, and the keys that move it.
 */
export class PortUnavailableError extends Error {
  readonly port: number;
  readonly code: string;
  constructor(port: number, code: string, service?: string) {
    const key = service ? `${service.toUpperCase().replace(/-/g, '_')}_PORT` : undefined;
    const why = code === 'EACCES' ? 'may not be used by this user' : 'is already in use';
    super(
      `${service ?? 'service'}: port ${port} ${why}; stop what listens there or choose another port with ` +
        `${key ? `${key} (npm start, docker compose) or ` : ''}PORT (this service alone)`,
    );
    this.name = 'PortUnavailableError';
    this.port = port;
    this.code = code;
  }
}

/**
 * Runs `action` after `ms` unless the returned function is called first (then the timer is cleared). The wait is
 * resilience's `sleep`, unref'd: it never keeps the process alive by itself.
 */
function unlessCancelled(ms: number, action: () => void): () => void {
  const cancel = new AbortController();
  void sleep(ms, { signal: cancel.signal, unref: true }).then((passed) => {
    if (passed) action();
  });
  return () => cancel.abort();
}

/**
 * Node's HTTP server options that build each request and response directly on the app's own prototypes
 * (`app.request`, `app.response`), for `createServer(options, app)`.
 *
 * Why: Express's `app.handle` gives every request and response the app's prototypes with `Object.setPrototypeOf`.
 * On objects Node has already built that changes their hidden class (V8 "map") on every request, so the property
 * accesses inside node:http (`writeHead`, `_storeHeader`, `end`, the parser callbacks) stop being monomorphic and
 * slow down everywhere. Measured with `npm run bench:service`'s harness on this project's 2-core machine: a bare
 * node:http LLM hop took 0.20 ms of CPU per request, the same hop with the prototype switch 0.27 ms, and an Express
 * hop 0.33 ms, back to 0.20 ms with these classes. Constructed this way, Express's `setPrototypeOf` finds the
 * prototype already in place and V8 leaves the object as it is (JSObject::SetPrototype returns early for the same
 * prototype). Behaviour is unchanged: the prototype chain is exactly what Express would have set.
 *
 * The constructors are Node's own (`IncomingMessage(socket)`, `ServerResponse(req, options)`, plain functions in
 * Node 20), called on an object created from the app's prototype.
 */
export function expressServerClasses(app: Express): {
  IncomingMessage: typeof IncomingMessage;
  ServerResponse: typeof ServerResponse;
} {
  function AppRequest(this: IncomingMessage, ...args: ConstructorParameters<typeof IncomingMessage>): void {
    (IncomingMessage as unknown as (...a: unknown[]) => void).apply(this, args);
  }
  AppRequest.prototype = app.request;
  function AppResponse(this: ServerResponse, ...args: unknown[]): void {
    (ServerResponse as unknown as (...a: unknown[]) => void).apply(this, args);
  }
  AppResponse.prototype = app.response;
  return {
    IncomingMessage: AppRequest as unknown as typeof IncomingMessage,
    ServerResponse: AppResponse as unknown as typeof ServerResponse,
  };
}

/**
 * What is wrong with a request llhttp refused (its `HPE_*` code), for the 400 answered in the contract's shape:
 * body framing (two Content-Length fields, or one beside Transfer-Encoding: a request a proxy in front may read
 * differently, RFC 9112 §6.1 and §6.3; a broken chunk), a header field, the method, else the URL (raw non-ASCII
 * or a space: the common case, a Cyrillic query typed into curl).
 */
function parseErrorMessage(code: string): string {
  if (
    /^HPE_(INVALID_TRANSFER_ENCODING|UNEXPECTED_CONTENT_LENGTH|INVALID_CONTENT_LENGTH|INVALID_CHUNK_SIZE)$/.test(code)
  )
    return (
      'The request is not valid HTTP: its body framing is ambiguous or broken (send one Content-Length, or ' +
      'Transfer-Encoding: chunked alone, never Content-Length and Transfer-Encoding together)'
    );
  if (code === 'HPE_INVALID_HEADER_TOKEN')
    return 'The request is not valid HTTP: a header field has a name or value with characters HTTP does not allow';
  if (code === 'HPE_INVALID_METHOD') return 'The request is not valid HTTP: unknown method or malformed request line';
  return (
    'The request is not valid HTTP: percent-encode the URL (non-ASCII characters and spaces), ' +
    'e.g. curl -G --data-urlencode'
  );
}

/** How often a shutting-down server closes the keep-alive connections that have fallen idle (ms). */
const IDLE_SWEEP_MS = 100;

/** Listens, and owns graceful shutdown. Only main.ts calls this. */
export async function runService(options: RunServiceOptions): Promise<RunningService> {
  const { app, logger } = options;
  const server = createServer(expressServerClasses(app), app);
  // Keep-alive sockets outliving a load balancer's idle timeout cause resets; these are Node's sane defaults made explicit.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // A request Node's HTTP parser refuses (raw non-ASCII in the URL, as an unencoded Cyrillic query string) never
  // reaches Express: Node's default answer is a bare 400 with no body. Answer it in the contract's shape instead.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const code = String(err.code ?? '');
    if (!socket.writable || !code.startsWith('HPE_')) {
      socket.destroy();
      return;
    }
    const [status, message] =
      code === 'HPE_HEADER_OVERFLOW'
        ? [
            431,
            // Mostly a long text in a GET query: Node's limit is 16 KB for the request line and headers together.
            'Request URL and headers are too large (over 16 KB): send long texts as a JSON body with POST to ' +
              'the same path (the same fields)',
          ]
        : [400, parseErrorMessage(code)];
    const body = JSON.stringify(errorBody(status, message));
    socket.end(
      `HTTP/1.1 ${status} ${errorBody(status, '').error}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host ?? '0.0.0.0', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== 'EADDRINUSE' && code !== 'EACCES') throw err;
    const error = new PortUnavailableError(options.port, code, options.service);
    if (!options.handleSignals) throw error;
    // main.ts: one line for the operator (not a stack trace), what was opened is closed, and the process ends.
    process.stderr.write(`${error.message}\n`);
    for (const closer of options.closers ?? []) {
      try {
        await closer.close();
      } catch {
        // Exiting anyway: the port problem is the one to report.
      }
    }
    process.exit(1);
  }
  const port = (server.address() as AddressInfo).port;
  logger.info(`listening on port ${port}`, { server: { port } });
  // main.ts only: a process of its own, whose start-up memory is worth returning (tests share one process).
  const cancelStartUpCollection = options.handleSignals ? scheduleStartUpCollection() : () => undefined;

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= (async () => {
      const deadline = options.shutdownTimeoutMs ?? 15_000;
      logger.info(`shutting down (${reason})`);
      cancelStartUpCollection();
      const cancelHardStop = unlessCancelled(deadline, () => {
        logger.error(`shutdown did not finish within ${deadline} ms; exiting`);
        if (options.handleSignals) process.exit(1);
      });
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // server.close() closes only the connections idle at that moment: a keep-alive connection whose request was
      // in flight stays open once answered (it said `Connection: keep-alive`), its client may send it more, and
      // `closed` waited for the cut below. A request that arrives on such a connection now is answered with
      // `Connection: close`, and connections that fall idle are closed as they do.
      server.prependListener('request', (_req, res: ServerResponse) => {
        res.shouldKeepAlive = false;
      });
      const idleSweep = setInterval(() => server.closeIdleConnections(), IDLE_SWEEP_MS).unref();
      // Connections still busy after most of the deadline are cut so closers still get their turn.
      const cancelDrain = unlessCancelled(Math.max(1000, deadline * 0.6), () => server.closeAllConnections());
      await closed;
      clearInterval(idleSweep);
      cancelDrain();
      for (const closer of options.closers ?? []) {
        try {
          await closer.close();
        } catch (err) {
          logger.warn(`closing ${closer.name} failed`, { err: err instanceof Error ? err : undefined });
        }
      }
      logger.info('shutdown complete');
      cancelHardStop();
      if (options.handleSignals) {
        await flushLogger(logger, 3000);
        process.exit(0);
      }
    })();
    return shuttingDown;
  };

  if (options.handleSignals) {
    // `on`, not `once`: libraries using signal-exit (node-llama-cpp loads one) re-raise a signal that no other
    // listener is left for, which killed the process in the middle of its graceful shutdown. Repeats are no-ops.
    for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void shutdown(signal));
    process.on('unhandledRejection', (reason) => {
      logger.error('unhandled promise rejection', {
        err: reason instanceof Error ? reason : undefined,
        reason: reason instanceof Error ? undefined : String(reason),
      });
    });
    process.on('uncaughtException', (err) => {
      logger.error('uncaught exception; exiting', { err });
      void shutdown('uncaughtException').finally(() => process.exit(1));
    });
  }
  return { server, port, shutdown };
}
