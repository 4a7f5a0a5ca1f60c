import type { Express } from 'express';
import { loadOpenApiDocument, type ServiceName } from '@workemon/contracts';
import {
  ConfigError,
  createLogger,
  createMetrics,
  createOpenApi,
  createServiceApp,
  packageVersion,
  runService,
  type Env,
  type Logger,
  type Metrics,
  type OpenApi,
} from '@workemon/service-kit';
import { createLlmClient, type LlmClient } from './llm-client.js';
import type { LlmServiceConfig } from './llm-service-config.js';
import { bodyLimitForInput } from './user-content.js';

/** What an LLM-backed service (guesser, system analyst) adds to the shared shape: its name and its routes. */
export type LlmServiceSpec = {
  service: Extract<ServiceName, 'guesser' | 'system-analyst'>;
  /** URL of the service's package.json (its version is reported by /health). */
  packageJson: URL;
  mountRoutes: (app: Express, deps: { openapi: OpenApi; llm: LlmClient; prompt: string; logger: Logger }) => void;
};

export type LlmServiceDeps = {
  config: LlmServiceConfig;
  logger?: Logger;
  metrics?: Metrics;
  /** Default: a client for config.llm reporting to `metrics`. */
  llm?: LlmClient;
};

/** The HTTP app of an LLM-backed service. Never listens, never reads the environment. */
export function buildLlmServiceApp(spec: LlmServiceSpec, deps: LlmServiceDeps): Express {
  const { config } = deps;
  const version = packageVersion(spec.packageJson);
  const logger =
    deps.logger ?? createLogger({ service: spec.service, version, level: config.logLevel, secrets: config.secrets });
  const metrics = deps.metrics ?? createMetrics(spec.service);
  const llm = deps.llm ?? createLlmClient(config.llm, { metrics, logger });
  const document = loadOpenApiDocument(spec.service);
  const openapi = createOpenApi(document);
  return createServiceApp(
    {
      service: spec.service,
      version,
      logger,
      metrics,
      openapi: document,
      healthChecks: llm.healthChecks(),
      bodyLimit: bodyLimitForInput(config.llm.maxInputChars),
    },
    (app) => spec.mountRoutes(app, { openapi, llm, prompt: config.prompt, logger }),
  );
}

/** main.ts of an LLM-backed service: configuration, logger (stdout + Elasticsearch), LLM client, listen, shutdown. */
export function runLlmService(spec: LlmServiceSpec, loadConfig: (env: Env) => LlmServiceConfig): void {
  const start = async () => {
    const config = loadConfig(process.env);
    const version = packageVersion(spec.packageJson);
    const logger = createLogger({
      service: spec.service,
      version,
      level: config.logLevel,
      secrets: config.secrets,
      elasticsearch: config.elasticsearch,
    });
    const metrics = createMetrics(spec.service);
    const llm = createLlmClient(config.llm, { metrics, logger });
    const app = buildLlmServiceApp(spec, { config, logger, metrics, llm });
    await runService({
      app,
      port: config.port,
      logger,
      handleSignals: true,
      closers: [{ name: 'llm', close: () => llm.close?.() }],
    });
    logger.info('LLM chain ready', { llm: { chain: llm.describe(), prompt: config.promptSource } });
  };
  start().catch((err: unknown) => {
    // The logger may not exist yet (bad configuration): stderr is the only channel left.
    process.stderr.write(`${err instanceof ConfigError ? err.message : String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  });
}
