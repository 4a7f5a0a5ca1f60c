import {
  createAuthenticator,
  packageVersion,
  serviceKeyToSend,
  type Authenticator,
  type Closer,
  type KeyClass,
  type Logger,
  type Metrics,
} from '@workemon/service-kit';
import type { Express } from 'express';
import { buildApp, type ChannelHealth } from './app.js';
import { createAuditReporter, type AuditReporter } from './audit-reporter.js';
import { createChannelMetrics, type ChannelMetrics } from './channel-metrics.js';
import {
  companyDomainsOf,
  emailSettings,
  smtpSettings,
  telegramSettings,
  webhookSettings,
  type Config,
  type EmailSettings,
  type TelegramSettings,
  type WebhookSettings,
} from './config.js';
import { createEmailChannel, type EmailChannel } from './email/email-channel.js';
import { createImapMailbox } from './email/imap-mailbox.js';
import { createMailDryRun, type MailDryRun } from './email/mail-dry-run.js';
import { withAuditEventProviderFallback, withIntakeField } from './email/mail-intake.js';
import { createMailPipeline, type MailPipeline } from './email/mail-pipeline.js';
import { createSmtpMailer, type SmtpMailer } from './email/smtp-mailer.js';
import { createOutboundSender } from './outbound-sender.js';
import {
  createPollerLease,
  createSecretaryLeaseClient,
  pollerHolderId,
  type LeaseClient,
  type PollerLease,
} from './poller-lease.js';
import { createSecretaryClient, type SecretaryClient } from './secretary-client.js';
import { createSenderRateLimit, type SenderRateLimit } from './sender-rate-limit.js';
import { createTelegramBotApi, type TelegramBotApi } from './telegram/telegram-bot-api.js';
import { createTelegramChannel, type TelegramChannel } from './telegram/telegram-channel.js';
import { createWebhookRoutes } from './webhooks/webhook-routes.js';

export const SERVICE = 'communicator';
// package.json sits one level above both src/ and dist/.
export const VERSION = packageVersion(new URL('../package.json', import.meta.url));
/** The key classes the communicator serves: each needs keys before it listens beyond loopback. */
export const COMMUNICATOR_KEY_CLASSES: readonly KeyClass[] = ['service'];

export type Communicator = {
  app: Express;
  /** The email channel while this replica polls the mailbox (holds its lease); undefined otherwise. */
  readonly email?: EmailChannel;
  /** The Telegram channel while this replica polls the bot (holds its lease); undefined otherwise. */
  readonly telegram?: TelegramChannel;
  /** Each configured channel's lease: this replica's role for it (`active` polls, `standby` waits). */
  leases: { email?: PollerLease; telegram?: PollerLease };
  /** Competes for the channels' poller leases; the channels start polling once this replica holds them. */
  start: () => void;
  /** Shutdown order: stop taking work, let in-flight messages finish, log out of IMAP, stop the bot. */
  closers: Closer[];
  /** Reports audit events to the secretary (POST /audit-events), in the background. */
  audit: AuditReporter;
};

/** What `createCommunicator` takes besides the config. */
export type CommunicatorOptions = {
  logger: Logger;
  metrics: Metrics;
  /** Default: `config.apiKeys`, every class without keys closed (main.ts passes `authForStart`'s). */
  auth?: Authenticator;
  imapReconnectBaseDelayMs?: number;
  telegramErrorBaseDelayMs?: number;
};

/** The parts every channel shares: the secretary, its durable rate limits and audit log, the metrics and logs. */
type Shared = {
  secretary: SecretaryClient;
  rateLimit: SenderRateLimit;
  /** RATE_LIMIT_MAILBOX_PER_HOUR, the limit of all mail together (absent: 0, no such limit). */
  mailboxRateLimit?: SenderRateLimit;
  audit: AuditReporter;
  metrics: ChannelMetrics;
  logger: Logger;
};

/**
 * Creates the real dependencies from a config and wires them: the secretary client, the email channel
 * (IMAP + SMTP) and the Telegram channel when configured, and the HTTP app. main.ts runs it; tests build it
 * from a config object pointing at their Dovecot, SMTP sink and fake Bot API.
 */
export function createCommunicator(config: Config, options: CommunicatorOptions): Communicator {
  const { logger, metrics } = options;
  const secretary = createSecretaryClient({
    ...secretaryTarget(config),
    timeoutMs: config.secretaryTimeout,
    metrics,
    logger,
  });
  const shared: Shared = {
    secretary,
    // Durable per-sender limits, kept by the secretary (POST /rate-limits/consume): shared by replicas, kept over restarts.
    rateLimit: createSenderRateLimit({ secretary, limitPerHour: config.rateLimitPerHour, logger }),
    ...(config.rateLimitMailboxPerHour > 0
      ? {
          mailboxRateLimit: createSenderRateLimit({ secretary, limitPerHour: config.rateLimitMailboxPerHour, logger }),
        }
      : {}),
    // The audit log lives in the secretary; reporting never holds up a message (audit-reporter.ts).
    audit: createAuditReporter({
      send: withAuditEventProviderFallback((events) => secretary.postAuditEvents(events), logger),
      logger,
      metrics,
    }),
    metrics: createChannelMetrics(metrics),
    logger,
  };
  // One active poller per mailbox and bot token among replicas (docs/kubernetes.md): each channel polls only while
  // this replica holds its lease in the secretary; a channel instance lives for one tenure (stop() is final), and
  // POST /send works in any role with a mailer and a Bot API client of its own.
  const leases: LeaseSetup = {
    client: createSecretaryLeaseClient({ ...secretaryTarget(config), timeoutMs: 5000, metrics, logger }),
    holder: pollerHolderId(),
    ttlMs: config.pollerLeaseTtl,
    stopTimeoutMs: config.shutdownTimeout,
    logger,
  };
  const mail = createMailIntake(config, shared);
  const email = mail.emailConfig
    ? emailLeaseOf(mail.emailConfig, leases, shared, mail.pipeline, options.imapReconnectBaseDelayMs)
    : undefined;
  const tgConfig = telegramSettings(config);
  const botApi = tgConfig
    ? createTelegramBotApi({
        token: tgConfig.token,
        apiRoot: tgConfig.apiRoot,
        requestTimeoutMs: tgConfig.requestTimeoutMs,
      })
    : undefined;
  const telegram = tgConfig
    ? telegramLeaseOf(tgConfig, botApi!, leases, shared, options.telegramErrorBaseDelayMs)
    : undefined;

  const app = buildApp({
    version: VERSION,
    logger,
    metrics,
    auth: options.auth ?? createAuthenticator(config.apiKeys),
    secretary,
    outbound: createOutboundSender({
      mailer: mail.sendMailer,
      telegram: botApi,
      metrics: shared.metrics,
      audit: shared.audit,
    }),
    dryRun: mail.dryRun,
    maxMailBytes: config.maxMailBytes,
    channelHealth: () => ({
      email: mail.sendMailer && email && emailHealth(email, mail.emailConfig!),
      smtp: mail.sendMailer && { verify: () => mail.sendMailer!.verify() },
      telegram: tgConfig && telegram && telegramHealth(telegram, tgConfig),
    }),
    webhookRoutes: createWebhookRoutes({
      settings: mail.webhooks,
      pipeline: mail.pipeline,
      secretary,
      metrics: shared.metrics,
      logger,
    }),
  });

  return {
    app,
    get email() {
      return email?.current();
    },
    get telegram() {
      return telegram?.current();
    },
    leases: { email: email?.lease, telegram: telegram?.lease },
    audit: shared.audit,
    start: () => {
      email?.lease.start();
      telegram?.lease.start();
    },
    closers: closersOf(shared.audit, [email?.lease, telegram?.lease], [mail.sendMailer]),
  };
}

/** The secretary's base URL and the key sent to it (SECRETARY_API_KEY, else the first service key). */
function secretaryTarget(config: Config): { baseURL: string; apiKey?: string } {
  return { baseURL: config.secretaryUrl!, apiKey: config.secretaryApiKey ?? serviceKeyToSend(config.apiKeys) };
}

/** The mail side: SMTP for POST /send and for replies, the one mail pipeline, and the POST /test dry run. */
type MailIntake = {
  emailConfig?: EmailSettings;
  /**
   * The one mailer: POST /send, replies to mail (IMAP or webhooks) and dry runs. The email channel's SMTP settings,
   * or SMTP_USER and SMTP_PASSWORD alone (an outbound-only install: mailing-list actions, webhook intake); undefined
   * without either.
   */
  sendMailer?: SmtpMailer;
  pipeline?: MailPipeline;
  dryRun?: MailDryRun;
  webhooks: WebhookSettings;
};

/**
 * One mail pipeline per process, shared by the IMAP channel and the inbound webhooks (its in-flight Message-ID
 * set spans both). Webhook mail needs SMTP for replies, with or without the IMAP channel. POST /test runs mail
 * through the same pipeline in dry-run mode (mail-dry-run.ts): nothing is sent, no sender's budget is taken (a
 * decided mail takes one unit of its caller's key's TEST_RATE_LIMIT_PER_KEY_PER_MINUTE), only a dry-run audit
 * event is reported.
 */
function createMailIntake(config: Config, shared: Shared): MailIntake {
  const emailConfig = emailSettings(config);
  if (emailConfig && !emailConfig.trustedAuthservIds.length)
    shared.logger.warn(
      'TRUSTED_AUTHSERV_ID is not set: no mail counts as authenticated, so mail gets replies only and triggers ' +
        'no Jira task, colleague or mailing-list action (set it to your receiving server, e.g. mx.yandex.ru)',
    );
  const webhooks = webhookSettings(config);
  const replySmtp = emailConfig ?? smtpSettings(config);
  const sendMailer = replySmtp ? createSmtpMailer(replySmtp) : undefined;
  const mailer = sendMailer;
  if (!replySmtp || !mailer) return { emailConfig, sendMailer, webhooks };
  const companyDomains = companyDomainsOf(config);
  const ownAddresses = [config.imapUser, replySmtp.smtp.user, replySmtp.from].filter((a): a is string => !!a);
  const pipeline = createMailPipeline({
    settings: {
      companyDomains,
      maxRequestChars: config.maxRequestChars,
      trustedAuthservIds: config.trustedAuthservId,
      webhookTrustedAuthservIds: {
        mailgun: config.mailgunTrustedAuthservId,
        sendgrid: config.sendgridTrustedAuthservId,
        ses: config.sesTrustedAuthservId,
      },
    },
    ownAddresses,
    mailer,
    ...shared,
    // The secretary is told each mail's intake (`intake`) for its audit rows (docs/audit.md, "Intake").
    secretary: withIntakeField(shared.secretary, shared.logger),
  });
  const dryRun = createMailDryRun({
    pipeline,
    ownAddress: replySmtp.from,
    limitPerKeyPerMinute: config.testRateLimitPerKeyPerMinute,
    // Read, never drawn from: an admin's dry run reports "would be rate limited" (docs/audit-and-limits.md).
    budgets: {
      rateLimit: shared.rateLimit,
      mailboxRateLimit: shared.mailboxRateLimit,
      companyDomains,
      trustedAuthservIds: config.trustedAuthservId,
      ownAddresses,
    },
    ...shared,
  });
  return { emailConfig, sendMailer, pipeline, dryRun, webhooks };
}

/** What every channel's poller lease shares: the secretary's lease API, this replica's id, the timing. */
type LeaseSetup = {
  client: LeaseClient;
  holder: string;
  ttlMs: number;
  /** How long a channel that loses its lease gets for the messages in flight (SHUTDOWN_TIMEOUT). */
  stopTimeoutMs: number;
  logger: Logger;
};

/** A channel behind its poller lease: `current()` is the channel while this replica is active, else undefined. */
type LeasedChannel<C> = { lease: PollerLease; current: () => C | undefined };

/**
 * Runs a channel only while this replica holds the lease `name`: `open()` creates and starts a fresh channel on
 * becoming active; on standing down it is stopped (in-flight work gets `stopTimeoutMs`) and dropped.
 */
function leasedChannel<C extends { start(): void; stop(deadlineMs: number): Promise<void> }>(
  name: string,
  setup: LeaseSetup,
  open: () => C,
): LeasedChannel<C> {
  let channel: C | undefined;
  const lease = createPollerLease({
    name,
    holder: setup.holder,
    client: setup.client,
    ttlMs: setup.ttlMs,
    logger: setup.logger,
    onActive: () => {
      channel = open();
      channel.start();
    },
    onStandby: async () => {
      const ending = channel;
      channel = undefined;
      await ending?.stop(setup.stopTimeoutMs);
    },
  });
  return { lease, current: () => channel };
}

/** The IMAP channel behind the lease `imap:<user>@<host>:<port>/<mailbox>`, with an SMTP mailer of its own. */
function emailLeaseOf(
  settings: EmailSettings,
  setup: LeaseSetup,
  shared: Shared,
  pipeline: MailPipeline | undefined,
  reconnectBaseDelayMs: number | undefined,
): LeasedChannel<EmailChannel> {
  const { imap } = settings;
  return leasedChannel(`imap:${imap.user}@${imap.host}:${imap.port}/${imap.mailbox}`, setup, () =>
    createEmailChannel({
      settings,
      openMailbox: (onChange) =>
        createImapMailbox({ settings, logger: shared.logger, metrics: shared.metrics, onChange, reconnectBaseDelayMs }),
      mailer: createSmtpMailer(settings),
      ...shared,
      pipeline,
    }),
  );
}

/** The Telegram channel behind the lease `telegram:<bot id>`. */
function telegramLeaseOf(
  settings: TelegramSettings,
  api: TelegramBotApi,
  setup: LeaseSetup,
  shared: Shared,
  errorBaseDelayMs: number | undefined,
): LeasedChannel<TelegramChannel> {
  // The bot's id is the token's part before ':' (public, like the bot's username); the secret part never is.
  return leasedChannel(`telegram:${settings.token.split(':')[0]}`, setup, () =>
    createTelegramChannel({ settings, api, ...shared, errorBaseDelayMs }),
  );
}

/** Why this replica does not poll: another one does, or it cannot ask the secretary for the lease (and what to do). */
const standbyDetail = (lease: PollerLease) => {
  const { lease: name, error } = lease.health();
  if (!error) return `standby: another replica polls this (${name}); POST /send is served here`;
  const fix = /\b40[13]\b/.test(error)
    ? ": give the communicator a key of the secretary's SERVICE_API_KEYS"
    : ': check SECRETARY_URL and that the secretary runs';
  return `not polling: cannot take the lease ${name} from the secretary (${error})${fix}`;
};

/** The email part of /health: the channel's own state while active, a standby note otherwise. */
function emailHealth(email: LeasedChannel<EmailChannel>, settings: EmailSettings): NonNullable<ChannelHealth['email']> {
  const channel = email.current();
  if (channel) return channel.health();
  return {
    standby: standbyDetail(email.lease),
    ...(email.lease.health().error ? { leaseError: true } : {}),
    connected: false,
    sweepIntervalMs: settings.sweepIntervalMs,
  };
}

/** The Telegram part of /health: the channel's own state while active, a standby note otherwise. */
function telegramHealth(
  telegram: LeasedChannel<TelegramChannel>,
  settings: TelegramSettings,
): NonNullable<ChannelHealth['telegram']> {
  return (
    telegram.current()?.health() ?? {
      standby: standbyDetail(telegram.lease),
      ...(telegram.lease.health().error ? { leaseError: true } : {}),
      pollTimeoutS: settings.pollTimeoutS,
    }
  );
}

/**
 * Shutdown order: both channels drain side by side, within one deadline (stopping a lease stops its channel and
 * hands the lease over at once), the mailers close; then the audit reporting, whose last events are queued by now.
 */
function closersOf(
  audit: AuditReporter,
  leases: readonly (PollerLease | undefined)[],
  mailers: readonly (SmtpMailer | undefined)[],
): Closer[] {
  return [
    {
      name: 'channels',
      close: async () => {
        await Promise.all(leases.map(async (lease) => lease?.stop()));
        for (const mailer of mailers) mailer?.close();
      },
    },
    { name: 'audit reporting', close: () => audit.close(5000) },
  ];
}
