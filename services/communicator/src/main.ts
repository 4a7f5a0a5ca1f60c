import {
  allKeys,
  authForStart,
  createLogger,
  createMetrics,
  elasticsearchFromEnv,
  loadConfigOrExit,
  runService,
} from '@workemon/service-kit';
import { COMMUNICATOR_KEY_CLASSES, SERVICE, VERSION, createCommunicator } from './communicator.js';
import { loadConfig } from './config.js';

const config = loadConfigOrExit(() => loadConfig(process.env));
// Beyond loopback SERVICE_API_KEYS must be set (POST /send sends mail as the company).
const startAuth = loadConfigOrExit(() =>
  authForStart({ host: config.HOST, keys: config.apiKeys, served: COMMUNICATOR_KEY_CLASSES }),
);
const logger = createLogger({
  service: SERVICE,
  version: VERSION,
  level: config.LOG_LEVEL,
  elasticsearch: elasticsearchFromEnv(config),
  secrets: [
    ...allKeys(config.apiKeys),
    config.SECRETARY_API_KEY,
    config.IMAP_PASSWORD,
    config.SMTP_PASSWORD,
    config.TELEGRAM_BOT_TOKEN,
    config.ELASTICSEARCH_PASSWORD,
    config.MAILGUN_WEBHOOK_SIGNING_KEY,
    config.SENDGRID_WEBHOOK_SECRET,
    config.SES_S3_SECRET_ACCESS_KEY,
    process.env['AWS_SECRET_ACCESS_KEY'],
  ],
});
if (startAuth.warning) logger.warn(startAuth.warning);
const metrics = createMetrics(SERVICE);
const communicator = createCommunicator(config, { logger, metrics, auth: startAuth.auth });

await runService({
  app: communicator.app,
  port: config.PORT,
  host: config.HOST,
  logger,
  closers: communicator.closers,
  // In-flight mail gets SHUTDOWN_TIMEOUT; the whole shutdown a little more.
  shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT + 15_000,
  handleSignals: true,
  service: SERVICE,
});
communicator.start();
logger.info(
  `channels: email ${communicator.leases.email ? 'on' : 'off'}, telegram ${communicator.leases.telegram ? 'on' : 'off'} ` +
    '(each polls once this replica holds its lease)',
);
