// Builds the communicator the way main.ts does (createCommunicator from a config), pointed at the test's
// Dovecot, SMTP sink, fake Bot API and secretary, and serves its app on an ephemeral port.
import { loadOpenApiDocument } from '@workemon/contracts';
import { createLogger, createMetrics, createOpenApi } from '@workemon/service-kit';
import { listen, waitFor, type Listening } from '@workemon/testkit';
import { TEST_KEY_ENV, bearer } from '@workemon/testkit/api-keys';
import type { DovecotServer } from '@workemon/testkit/dovecot';
import type { FakeTelegram } from '@workemon/testkit/fake-telegram';
import type { SmtpSink } from '@workemon/testkit/smtp-sink';
import { createCommunicator, type Communicator } from '../src/communicator.js';
import { loadConfig } from '../src/config.js';

export const openapi = createOpenApi(loadOpenApiDocument('communicator'));

/** The service key the harness configures (SERVICE_API_KEYS), as the secretary sends it to POST /send. */
export const SERVICE_AUTH = bearer('service');

export type Running = Communicator & {
  http: Listening;
  metrics: ReturnType<typeof createMetrics>;
  /** Value of a counter/gauge sample, 0 when absent. */
  metric: (name: string, labels?: Record<string, string>) => Promise<number>;
  stop: () => Promise<void>;
};

export async function startCommunicator(options: {
  secretaryUrl: string;
  dovecot?: DovecotServer;
  user?: string;
  sink?: SmtpSink;
  telegram?: FakeTelegram;
  env?: Record<string, string>;
  /** Wait until this replica polls its channels (holds their leases); default true. */
  awaitLeases?: boolean;
}): Promise<Running> {
  const user = options.user ?? options.dovecot?.users[0]?.user;
  const password = options.dovecot?.users.find((u) => u.user === user)?.password;
  const config = loadConfig({
    SECRETARY_URL: options.secretaryUrl,
    SECRETARY_TIMEOUT: '3s',
    RETRY_BASE_DELAY: '200ms',
    SHUTDOWN_TIMEOUT: '5s',
    // The test world's keys: the communicator takes the service key on /send and sends it to the secretary.
    ...TEST_KEY_ENV,
    ...(options.dovecot && options.sink
      ? {
          IMAP_HOST: '127.0.0.1',
          IMAP_PORT: String(options.dovecot.port),
          IMAP_SECURE: 'false',
          IMAP_USER: user,
          IMAP_PASSWORD: password,
          SMTP_HOST: '127.0.0.1',
          SMTP_PORT: String(options.sink.port),
          SMTP_SECURE: 'false',
          // Generous on purpose: a worker stalled longer than this by a loaded CI fires the socket's timer before
          // it reads the server's 250 (Node runs timers before polling), so a reply the sink took looks lost and is
          // sent again. Tests of a slow server set their own.
          SMTP_TIMEOUT: '30s',
        }
      : {}),
    ...(options.telegram
      ? {
          TELEGRAM_BOT_TOKEN: options.telegram.token,
          TELEGRAM_API_ROOT: options.telegram.url,
          TELEGRAM_POLL_TIMEOUT_S: '1',
          TELEGRAM_CONFLICT_WAIT: '300ms',
          TELEGRAM_HANDLER_TIMEOUT: '5s',
        }
      : {}),
    ...options.env,
  });
  const logger = createLogger({ service: 'communicator', level: process.env['TEST_LOG_LEVEL'] ?? 'error' });
  const metrics = createMetrics('communicator');
  const communicator = createCommunicator(config, {
    logger,
    metrics,
    imapReconnectBaseDelayMs: 200,
    telegramErrorBaseDelayMs: 100,
  });
  const http = await listen(communicator.app);
  communicator.start();
  // The channels poll once this replica holds their leases (one round trip to the secretary).
  const leases = Object.values(communicator.leases).filter((l) => l !== undefined);
  if (options.awaitLeases !== false && leases.length) {
    await waitFor(() => leases.every((l) => l.role() === 'active'), { what: 'poller leases', timeoutMs: 10_000 });
  }
  let stopped = false;
  return {
    app: communicator.app,
    leases: communicator.leases,
    start: communicator.start,
    closers: communicator.closers,
    audit: communicator.audit,
    get email() {
      return communicator.email;
    },
    get telegram() {
      return communicator.telegram;
    },
    http,
    metrics,
    metric: async (name, labels = {}) => {
      const json = await metrics.registry.getMetricsAsJSON();
      const m = json.find((x) => x.name === name);
      if (!m) return 0;
      return (m.values as Array<{ value: number; labels: Record<string, string | number> }>)
        .filter((v) => Object.entries(labels).every(([k, val]) => String(v.labels[k]) === val))
        .reduce((sum, v) => sum + v.value, 0);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await http.close();
      for (const closer of communicator.closers) await closer.close();
    },
  };
}

export function waitUntil<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 15_000,
) {
  return waitFor(fn, { what, timeoutMs, intervalMs: 50 });
}

let counter = 0;
/** A raw RFC 5322 mail; every field can be overridden, `headers` adds lines, `body` may be a Buffer. */
export function buildEmail(
  o: {
    from?: string;
    to?: string;
    subject?: string;
    messageId?: string | null;
    inReplyTo?: string;
    references?: string;
    headers?: string[];
    contentType?: string;
    transferEncoding?: string;
    body?: string | Buffer;
  } = {},
): Buffer {
  counter += 1;
  const messageId = o.messageId === undefined ? `<m${Date.now()}.${counter}@client.test>` : o.messageId;
  const lines = [
    `From: ${o.from ?? 'Иван Петров <ivan@client.test>'}`,
    `To: ${o.to ?? 'bot@example.test'}`,
    `Subject: ${o.subject ?? 'Доступ к VPN'}`,
    `Date: ${new Date().toUTCString()}`,
    ...(messageId ? [`Message-ID: ${messageId}`] : []),
    ...(o.inReplyTo ? [`In-Reply-To: ${o.inReplyTo}`] : []),
    ...(o.references ? [`References: ${o.references}`] : []),
    'MIME-Version: 1.0',
    `Content-Type: ${o.contentType ?? 'text/plain; charset=utf-8'}`,
    `Content-Transfer-Encoding: ${o.transferEncoding ?? '8bit'}`,
    ...(o.headers ?? []),
  ];
  const head = Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'utf8');
  const body =
    typeof o.body === 'string' || o.body === undefined
      ? Buffer.from(o.body ?? 'Здравствуйте! Нужен доступ к VPN для удалённой работы.\r\n', 'utf8')
      : o.body;
  return Buffer.concat([head, body]);
}
