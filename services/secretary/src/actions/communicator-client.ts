import type { SendButton, SendRequest, SendResponse } from '@workemon/contracts';
import { createHttpClient, type Logger, type Metrics } from '@workemon/service-kit';

/**
 * Inline buttons for the approver's Telegram message (the communicator contract's SendButton): the communicator
 * renders them as one row of an inline keyboard and turns a press (callback query) into
 * `POST /action-executions/{id}/approve|reject` on the secretary. See docs/actions.md.
 */
export type { SendButton };

/** A SendRequest whose idempotency key is always set (derived from the execution id). */
export type OutboundMessage = SendRequest & { idempotency_key: string };

export type CommunicatorClient = {
  send(message: OutboundMessage): Promise<SendResponse>;
};

const isSendResponse = (data: unknown): data is SendResponse =>
  !!data && typeof data === 'object' && typeof (data as SendResponse).delivered === 'boolean';

/** Where the communicator is: `COMMUNICATOR_URL`, the service key, and a deadline per call (ms). */
export type CommunicatorSettings = { baseUrl: string; apiKey?: string; timeoutMs?: number };

/** Optional observers of the communicator's HTTP client (upstream metric, logs). */
export type CommunicatorObservers = { metrics?: Metrics; logger?: Logger };

/**
 * The one HTTP client shape the secretary uses towards the communicator: target `communicator` (its upstream
 * metric label), one attempt per call (the caller owns retries), `settings.timeoutMs` or `defaultTimeoutMs`.
 */
export function createCommunicatorHttp(
  settings: CommunicatorSettings,
  deps: CommunicatorObservers,
  defaultTimeoutMs: number,
) {
  return createHttpClient({
    target: 'communicator',
    baseURL: settings.baseUrl,
    timeoutMs: settings.timeoutMs ?? defaultTimeoutMs,
    maxRetries: 0,
    apiKey: settings.apiKey,
    metrics: deps.metrics,
    logger: deps.logger,
  });
}

/**
 * The communicator's `POST /send`. Every message carries an idempotency key derived from the execution id, so
 * the outbox worker may repeat a send after a crash without the person getting it twice; the worker owns the
 * retries (this client makes one attempt).
 */
export function createCommunicatorClient(
  settings: CommunicatorSettings,
  deps: CommunicatorObservers = {},
): CommunicatorClient {
  const http = createCommunicatorHttp(settings, deps, 15_000);
  return {
    send: (message) => http.post<SendResponse>('/send', message, { validate: isSendResponse }),
  };
}
