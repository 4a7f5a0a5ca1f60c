import { createLogger, createMetrics, elasticsearchFromEnv, loadConfigOrExit, runService } from '@workemon/service-kit';
import { SERVICE, VERSION, createCommunicator } from './communicator.js';
import { loadConfig } from './config.js';

const config = loadConfigOrExit(() => loadConfig(process.env));
const logger = createLogger({
  service: SERVICE,
  version: VERSION,
  level: config.LOG_LEVEL,
  elasticsearch: elasticsearchFromEnv(config),
  secrets: [
    ...config.API_KEYS,
    config.SECRETARY_API_KEY,
    config.IMAP_PASSWORD,
    config.SMTP_PASSWORD,
    config.TELEGRAM_BOT_TOKEN,
    config.ELASTICSEARCH_PASSWORD,
  ],
});
const metrics = createMetrics(SERVICE);
const communicator = createCommunicator(config, { logger, metrics });

await runService({
  app: communicator.app,
  port: config.PORT,
  logger,
  closers: communicator.closers,
  // In-flight mail gets SHUTDOWN_TIMEOUT; the whole shutdown a little more.
  shutdownTimeoutMs: config.SHUTDOWN_TIMEOUT + 15_000,
  handleSignals: true,
  service: SERVICE,
});
communicator.start();
logger.info(`channels: email ${communicator.email ? 'on' : 'off'}, telegram ${communicator.telegram ? 'on' : 'off'}`);
