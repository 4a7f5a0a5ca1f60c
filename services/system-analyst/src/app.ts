import type { Express } from 'express';
import { packageVersion } from '@workemon/service-kit';
import { buildLlmServiceApp, type LlmServiceDeps, type LlmServiceSpec } from '@workemon/llm';
import { createAnalyticsRoutes } from './analytics-routes.js';

export const SERVICE = 'system-analyst';
// package.json sits one level above both src/ and dist/.
const packageJson = new URL('../package.json', import.meta.url);
export const SERVICE_VERSION = packageVersion(packageJson);

export const ANALYST_SPEC: LlmServiceSpec = { service: SERVICE, packageJson, createRoutes: createAnalyticsRoutes };

export type AnalystDeps = LlmServiceDeps;

/** The system analyst's HTTP app. Never listens, never reads the environment. */
export function buildApp(deps: AnalystDeps): Express {
  return buildLlmServiceApp(ANALYST_SPEC, deps);
}
