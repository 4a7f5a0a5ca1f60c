import { defineLlmService, type LlmServiceDeps } from '@workemon/llm';
import { createContextRoutes } from './context-routes.js';

/** `config` is the guesser's own (with CATEGORIES); a plain LLM service config gets the default categories. */
export type GuesserDeps = LlmServiceDeps;

/**
 * The guesser: GUESSER_SPEC (for main.ts), SERVICE, SERVICE_VERSION (from package.json, one level above both src/
 * and dist/) and its HTTP app `buildApp(deps)`, which never listens and never reads the environment.
 */
export const {
  SPEC: GUESSER_SPEC,
  SERVICE,
  SERVICE_VERSION,
  buildApp,
} = defineLlmService({
  service: 'guesser',
  packageJson: new URL('../package.json', import.meta.url),
  createRoutes: createContextRoutes,
});
