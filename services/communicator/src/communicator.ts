import type { Express } from 'express';
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
import { buildApp } from './app.js';
import { createAuditReporter, type AuditReporter } from './audit-reporter.js';
import { createChannelMetrics } from './channel-metrics.js';
import { emailSettings, smtpSettings, telegramSettings, webhookSettings, type Config } from './config.js';
import { createEmailChannel, type EmailChannel } from './email/email-channel.js';
import { createMailDryRun } from './email/mail-dry-run.js';
import { createMailPipeline } from './email/mail-pipeline.js';
import { createImapMailbox } from './email/imap-mailbox.js';
import { createSmtpMailer } from './email/smtp-mailer.js';
import { createOutboundSender } from './outbound-sender.js';
import { createPollerLease, createSecretaryLeaseClient, pollerHolderId, type PollerLease } from './poller-lease.js';
import { createSecretaryClient } from './secretary-client.js';
import { createSenderRateLimit } from './sender-rate-limit.js';
import { createTelegramBotApi } from './telegram/telegram-bot-api.js';
import { createTelegramChannel, type TelegramChannel } from './telegram/telegram-channel.js';
import { mountWebhookRoutes } from './webhooks/webhook-routes.js';

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

/**
 * Creates the real dependencies from a config and wires them: the secretary client, the email channel
 * (IMAP + SMTP) and the Telegram channel when configured, and the HTTP app. main.ts runs it; tests build it
 * from a config object pointing at their Dovecot, SMTP sink and fake Bot API.
 */
export function createCommunicator(
  config: Config,
  options: {
    logger: Logger;
    metrics: Metrics;
    /** Default: `config.apiKeys`, every class without keys closed (main.ts passes `authForStart`'s). */
    auth?: Authenticator;
    imapReconnectBaseDelayMs?: number;
    telegramErrorBaseDelayMs?: number;
  },
): Communicator {
  const { logger, metrics } = options;
  const channelMetrics = createChannelMetrics(metrics);
  const secretary = createSecretaryClient({
    baseURL: config.secretaryUrl!,
    apiKey: config.secretaryApiKey ?? serviceKeyToSend(config.apiKeys),
    timeoutMs: config.secretaryTimeout,
    metrics,
    logger,
  });
  // Durable per-sender limits, kept by the secretary (POST /rate-limits/consume): shared by replicas, kept over restarts.
  const rateLimit = createSenderRateLimit({ secretary, limitPerHour: config.rateLimitPerHour, logger });
  // The audit log lives in the secretary; reporting never holds up a message (audit-reporter.ts).
  const audit = createAuditReporter({ send: (events) => secretary.postAuditEvents(events), logger, metrics });

  const emailConfig = emailSettings(config);
  if (emailConfig && !emailConfig.trustedAuthservIds.length)
    logger.warn(
      'TRUSTED_AUTHSERV_ID is not set: no mail counts as authenticated, so mail gets replies only and triggers ' +
        'no Jira task, colleague or mailing-list action (set it to your receiving server, e.g. mx.yandex.ru)',
    );
  // One active poller per mailbox and bot token among replicas (docs/kubernetes.md): each channel polls only while
  // this replica holds its lease in the secretary; a channel instance lives for one tenure (stop() is final), and
  // POST /send works in any role with a mailer and a Bot API client of its own.
  const leaseClient = createSecretaryLeaseClient({
    baseURL: config.secretaryUrl!,
    apiKey: config.secretaryApiKey ?? serviceKeyToSend(config.apiKeys),
    timeoutMs: 5000,
    metrics,
    logger,
  });
  const holder = pollerHolderId();
  const standbyDetail = (lease: PollerLease) =>
    `standby: another replica polls this (${lease.health().lease}); POST /send is served here`;
  let email: EmailChannel | undefined;
  const sendMailer = emailConfig ? createSmtpMailer(emailConfig) : undefined;
  // One mail pipeline per process, shared by the IMAP channel and the inbound webhooks (its in-flight Message-ID
  // set spans both). Webhook mail needs SMTP for replies, with or without the IMAP channel.
  const webhooks = webhookSettings(config);
  const webhooksOn = !!(webhooks.mailgun || webhooks.sendgrid || webhooks.ses);
  const replySmtp = emailConfig ?? (webhooksOn ? smtpSettings(config) : undefined);
  const webhookMailer = !sendMailer && replySmtp ? createSmtpMailer(replySmtp) : undefined;
  const pipelineMailer = sendMailer ?? webhookMailer;
  const pipeline =
    replySmtp && pipelineMailer
      ? createMailPipeline({
          settings: {
            companyDomains: config.companyDomains.map((d) => d.trim().toLowerCase().replace(/^@/, '')).filter(Boolean),
            maxRequestChars: config.maxRequestChars,
            trustedAuthservIds: config.trustedAuthservId,
          },
          ownAddresses: [config.imapUser, replySmtp.smtp.user, replySmtp.from].filter((a): a is string => !!a),
          mailer: pipelineMailer,
          secretary,
          rateLimit,
          audit,
          metrics: channelMetrics,
          logger,
        })
      : undefined;
  const emailLease = emailConfig
    ? createPollerLease({
        name: `imap:${emailConfig.imap.user}@${emailConfig.imap.host}:${emailConfig.imap.port}/${emailConfig.imap.mailbox}`,
        holder,
        client: leaseClient,
        ttlMs: config.pollerLeaseTtl,
        logger,
        onActive: () => {
          email = createEmailChannel({
            settings: emailConfig,
            openMailbox: (onChange) =>
              createImapMailbox({
                settings: emailConfig,
                logger,
                metrics: channelMetrics,
                onChange,
                reconnectBaseDelayMs: options.imapReconnectBaseDelayMs,
              }),
            mailer: createSmtpMailer(emailConfig),
            secretary,
            rateLimit,
            audit,
            metrics: channelMetrics,
            logger,
            pipeline,
          });
          email.start();
        },
        onStandby: async () => {
          const ending = email;
          email = undefined;
          await ending?.stop(config.shutdownTimeout);
        },
      })
    : undefined;

  // POST /test runs mail through the same pipeline in dry-run mode (mail-dry-run.ts): nothing is sent, no budget
  // is taken, only a dry-run audit event is reported.
  const dryRun =
    pipeline && replySmtp
      ? createMailDryRun({ pipeline, secretary, ownAddress: replySmtp.from, audit, logger })
      : undefined;

  const tgConfig = telegramSettings(config);
  const botApi = tgConfig ? createTelegramBotApi({ token: tgConfig.token, apiRoot: tgConfig.apiRoot }) : undefined;
  let telegram: TelegramChannel | undefined;
  const telegramLease = tgConfig
    ? createPollerLease({
        // The bot's id is the token's part before ':' (public, like the bot's username); the secret part never is.
        name: `telegram:${tgConfig.token.split(':')[0]}`,
        holder,
        client: leaseClient,
        ttlMs: config.pollerLeaseTtl,
        logger,
        onActive: () => {
          telegram = createTelegramChannel({
            settings: tgConfig,
            api: botApi!,
            secretary,
            rateLimit,
            audit,
            metrics: channelMetrics,
            logger,
            errorBaseDelayMs: options.telegramErrorBaseDelayMs,
          });
          telegram.start();
        },
        onStandby: async () => {
          const ending = telegram;
          telegram = undefined;
          await ending?.stop(config.shutdownTimeout);
        },
      })
    : undefined;

  const app = buildApp({
    version: VERSION,
    logger,
    metrics,
    auth: options.auth ?? createAuthenticator(config.apiKeys),
    secretary,
    outbound: createOutboundSender({ mailer: sendMailer, telegram: botApi, metrics: channelMetrics, audit }),
    dryRun,
    maxMailBytes: config.maxMailBytes,
    channelHealth: () => ({
      email:
        sendMailer &&
        (email
          ? { ...email.health(), verifySmtp: () => sendMailer.verify() }
          : {
              standby: standbyDetail(emailLease!),
              connected: false,
              sweepIntervalMs: emailConfig!.sweepIntervalMs,
              verifySmtp: () => sendMailer.verify(),
            }),
      telegram:
        tgConfig &&
        (telegram?.health() ?? { standby: standbyDetail(telegramLease!), pollTimeoutS: tgConfig.pollTimeoutS }),
    }),
    mountWebhooks: (app) =>
      mountWebhookRoutes(app, { settings: webhooks, pipeline, secretary, metrics: channelMetrics, logger }),
  });

  // Both channels drain side by side, within one deadline.
  const closers: Closer[] = [
    {
      name: 'channels',
      // Stopping a lease stops its channel (in-flight work drains) and hands the lease over at once.
      close: async () => {
        await Promise.all([emailLease?.stop(), telegramLease?.stop()]);
        sendMailer?.close();
        webhookMailer?.close();
      },
    },
    // After the channels: their last events are queued by now.
    { name: 'audit reporting', close: () => audit.close(5000) },
  ];

  return {
    app,
    get email() {
      return email;
    },
    get telegram() {
      return telegram;
    },
    leases: { email: emailLease, telegram: telegramLease },
    audit,
    start: () => {
      emailLease?.start();
      telegramLease?.start();
    },
    closers,
  };
}
