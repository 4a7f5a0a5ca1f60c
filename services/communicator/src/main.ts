import { runService, startService } from '@workemon/service-kit';
import { COMMUNICATOR_KEY_CLASSES, SERVICE, VERSION, createCommunicator } from './communicator.js';
import { loadConfig } from './config.js';

// Beyond loopback SERVICE_API_KEYS must be set (POST /send sends mail as the company).
const { config, auth, logger, metrics } = startService({
  service: SERVICE,
  version: VERSION,
  loadConfig: () => loadConfig(process.env),
  served: COMMUNICATOR_KEY_CLASSES,
  secrets: (c) => [
    c.secretaryApiKey,
    c.imapPassword,
    c.smtpPassword,
    c.telegramBotToken,
    c.mailgunWebhookSigningKey,
    c.sendgridWebhookSecret,
    c.sesS3SecretAccessKey,
    process.env['AWS_SECRET_ACCESS_KEY'],
  ],
});
const communicator = createCommunicator(config, { logger, metrics, auth });

await runService({
  app: communicator.app,
  port: config.port,
  host: config.host,
  logger,
  closers: communicator.closers,
  // In-flight mail gets SHUTDOWN_TIMEOUT; the whole shutdown a little more.
  shutdownTimeoutMs: config.shutdownTimeout + 15_000,
  handleSignals: true,
  service: SERVICE,
});
communicator.start();
logger.info(
  `channels: email ${communicator.leases.email ? 'on' : 'off'}, telegram ${communicator.leases.telegram ? 'on' : 'off'} ` +
    '(each polls once this replica holds its lease)',
);
