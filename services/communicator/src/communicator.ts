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
import { createChannelMetrics } from './channel-metrics.js';
import { emailSettings, telegramSettings, type Config } from './config.js';
import { createEmailChannel, type EmailChannel } from './email/email-channel.js';
import { createImapMailbox } from './email/imap-mailbox.js';
import { createSmtpMailer } from './email/smtp-mailer.js';
import { createOutboundSender } from './outbound-sender.js';
import { createSecretaryClient } from './secretary-client.js';
import { createSenderRateLimit } from './sender-rate-limit.js';
import { createTelegramBotApi } from './telegram/telegram-bot-api.js';
import { createTelegramChannel, type TelegramChannel } from './telegram/telegram-channel.js';

export const SERVICE = 'communicator';
// package.json sits one level above both src/ and dist/.
export const VERSION = packageVersion(new URL('../package.json', import.meta.url));
/** The key classes the communicator serves: each needs keys before it listens beyond loopback. */
export const COMMUNICATOR_KEY_CLASSES: readonly KeyClass[] = ['service'];

export type Communicator = {
  app: Express;
  email?: EmailChannel;
  telegram?: TelegramChannel;
  /** Starts reading the mailbox and polling Telegram. */
  start: () => void;
  /** Shutdown order: stop taking work, let in-flight messages finish, log out of IMAP, stop the bot. */
  closers: Closer[];
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
    baseURL: config.SECRETARY_URL!,
    apiKey: config.SECRETARY_API_KEY ?? serviceKeyToSend(config.apiKeys),
    timeoutMs: config.SECRETARY_TIMEOUT,
    metrics,
    logger,
  });
  const rateLimit = createSenderRateLimit(config.RATE_LIMIT_PER_HOUR);

  const emailConfig = emailSettings(config);
  if (emailConfig && !emailConfig.trustedAuthservIds.length)
    logger.warn(
      'TRUSTED_AUTHSERV_ID is not set: no mail counts as authenticated, so mail gets replies only and triggers ' +
        'no Jira task, colleague or mailing-list action (set it to your receiving server, e.g. mx.yandex.ru)',
    );
  const email = emailConfig
    ? createEmailChannel({
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
        metrics: channelMetrics,
        logger,
      })
    : undefined;

  const tgConfig = telegramSettings(config);
  const telegram = tgConfig
    ? createTelegramChannel({
        settings: tgConfig,
        api: createTelegramBotApi({ token: tgConfig.token, apiRoot: tgConfig.apiRoot }),
        secretary,
        rateLimit,
        metrics: channelMetrics,
        logger,
        errorBaseDelayMs: options.telegramErrorBaseDelayMs,
      })
    : undefined;

  const app = buildApp({
    version: VERSION,
    logger,
    metrics,
    auth: options.auth ?? createAuthenticator(config.apiKeys),
    secretary,
    outbound: createOutboundSender({ mailer: email?.mailer, telegram: telegram?.api, metrics: channelMetrics }),
    channelHealth: () => ({
      email: email && { ...email.health(), verifySmtp: () => email.mailer.verify() },
      telegram: telegram?.health(),
    }),
  });

  // Both channels drain side by side, within one deadline.
  const closers: Closer[] = [
    {
      name: 'channels',
      close: async () => {
        await Promise.all([email?.stop(config.SHUTDOWN_TIMEOUT), telegram?.stop(config.SHUTDOWN_TIMEOUT)]);
      },
    },
  ];

  return {
    app,
    email,
    telegram,
    start: () => {
      email?.start();
      telegram?.start();
    },
    closers,
  };
}
