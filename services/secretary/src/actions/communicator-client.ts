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

/**
 * The communicator's `POST /send`. Every message carries an idempotency key derived from the execution id, so
 * the outbox worker may repeat a send after a crash without the person getting it twice; the worker owns the
 * retries (this client makes one attempt).
 */
export function createCommunicatorClient(
  settings: { baseUrl: string; apiKey?: string; timeoutMs?: number },
  deps: { metrics?: Metrics; logger?: Logger } = {},
): CommunicatorClient {
  const http = createHttpClient({
    target: 'communicator',
    baseURL: settings.baseUrl,
    timeoutMs: settings.timeoutMs ?? 15_000,
    maxRetries: 0,
    apiKey: settings.apiKey,
    metrics: deps.metrics,
    logger: deps.logger,
  });
  return {
    send: (message) => http.post<SendResponse>('/send', message, { validate: isSendResponse }),
  };
}
