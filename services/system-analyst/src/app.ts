import { defineLlmService, type LlmServiceDeps } from '@workemon/llm';
import { createAnalyticsRoutes } from './analytics-routes.js';

export type AnalystDeps = LlmServiceDeps;

/**
 * The system analyst: ANALYST_SPEC (for main.ts), SERVICE, SERVICE_VERSION (from package.json, one level above
 * both src/ and dist/) and its HTTP app `buildApp(deps)`, which never listens and never reads the environment.
 */
export const {
  SPEC: ANALYST_SPEC,
  SERVICE,
  SERVICE_VERSION,
  buildApp,
} = defineLlmService({
  service: 'system-analyst',
  packageJson: new URL('../package.json', import.meta.url),
  createRoutes: createAnalyticsRoutes,
});
