import { readFileSync } from 'node:fs';
import type { Express } from 'express';
import { loadOpenApiDocument } from '@workemon/contracts';
import {
  createLogger,
  createMetrics,
  createOpenApi,
  createServiceApp,
  type Logger,
  type Metrics,
} from '@workemon/service-kit';
import { bodyLimitForInput, createLlmClient, type LlmClient } from '@workemon/llm';
import type { AnalystConfig } from './config.js';
import { mountAnalyticsRoutes } from './analytics-routes.js';

export const SERVICE_NAME = 'system-analyst';
// package.json sits one level above both src/ and dist/.
export const SERVICE_VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export type AnalystDeps = {
  config: AnalystConfig;
  logger?: Logger;
  metrics?: Metrics;
  /** Default: a client for config.llm reporting to `metrics`. */
  llm?: LlmClient;
};

/** The system analyst's HTTP app. Never listens, never reads the environment. */
export function buildApp(deps: AnalystDeps): Express {
  const { config } = deps;
  const logger =
    deps.logger ??
    createLogger({ service: SERVICE_NAME, version: SERVICE_VERSION, level: config.logLevel, secrets: config.secrets });
  const metrics = deps.metrics ?? createMetrics(SERVICE_NAME);
  const llm = deps.llm ?? createLlmClient(config.llm, { metrics, logger });
  const document = loadOpenApiDocument('system-analyst');
  const openapi = createOpenApi(document);
  return createServiceApp(
    {
      service: SERVICE_NAME,
      version: SERVICE_VERSION,
      logger,
      metrics,
      openapi: document,
      healthChecks: llm.healthChecks(),
      bodyLimit: bodyLimitForInput(config.llm.maxInputChars),
    },
    (app) => mountAnalyticsRoutes(app, { openapi, llm, prompt: config.prompt, logger }),
  );
}
