import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { flushLogger, type Logger } from './logger.js';

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
};

/** Listens, and owns graceful shutdown. Only main.ts calls this. */
export async function runService(options: RunServiceOptions): Promise<RunningService> {
  const { app, logger } = options;
  const server = createServer(app);
  // Keep-alive sockets outliving a load balancer's idle timeout cause resets; these are Node's sane defaults made explicit.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info(`listening on port ${port}`, { server: { port } });

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= (async () => {
      const deadline = options.shutdownTimeoutMs ?? 15_000;
      logger.info(`shutting down (${reason})`);
      const hardStop = setTimeout(() => {
        logger.error(`shutdown did not finish within ${deadline} ms; exiting`);
        if (options.handleSignals) process.exit(1);
      }, deadline);
      hardStop.unref();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Connections still busy after most of the deadline are cut so closers still get their turn.
      const drainTimer = setTimeout(() => server.closeAllConnections(), Math.max(1000, deadline * 0.6));
      drainTimer.unref();
      await closed;
      clearTimeout(drainTimer);
      for (const closer of options.closers ?? []) {
        try {
          await closer.close();
        } catch (err) {
          logger.warn(`closing ${closer.name} failed`, { err: err instanceof Error ? err : undefined });
        }
      }
      logger.info('shutdown complete');
      clearTimeout(hardStop);
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
