import { ConfigError, createLogger, createMetrics, runService } from '@workemon/service-kit';
import { createLlmClient } from '@workemon/llm';
import { loadConfig } from './config.js';
import { SERVICE_NAME, SERVICE_VERSION, buildApp } from './app.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = createLogger({
    service: SERVICE_NAME,
    version: SERVICE_VERSION,
    level: config.logLevel,
    secrets: config.secrets,
    elasticsearch: config.elasticsearch,
  });
  const metrics = createMetrics(SERVICE_NAME);
  const llm = createLlmClient(config.llm, { metrics, logger });
  const app = buildApp({ config, logger, metrics, llm });
  await runService({ app, port: config.port, logger, handleSignals: true });
  logger.info('LLM chain ready', { llm: { chain: llm.describe(), prompt: config.promptSource } });
}

main().catch((err: unknown) => {
  // The logger may not exist yet (bad configuration): stderr is the only channel left.
  process.stderr.write(`${err instanceof ConfigError ? err.message : String((err as Error)?.stack ?? err)}\n`);
  process.exit(1);
});
