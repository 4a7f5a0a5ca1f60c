import type { Express } from 'express';
import { packageVersion } from '@workemon/service-kit';
import { buildLlmServiceApp, type LlmServiceDeps, type LlmServiceSpec } from '@workemon/llm';
import { createContextRoutes } from './context-routes.js';

export const SERVICE = 'guesser';
// package.json sits one level above both src/ and dist/.
const packageJson = new URL('../package.json', import.meta.url);
export const SERVICE_VERSION = packageVersion(packageJson);

export const GUESSER_SPEC: LlmServiceSpec = { service: SERVICE, packageJson, createRoutes: createContextRoutes };

/** `config` is the guesser's own (with CATEGORIES); a plain LLM service config gets the default categories. */
export type GuesserDeps = LlmServiceDeps;

/** The guesser's HTTP app. Never listens, never reads the environment. */
export function buildApp(deps: GuesserDeps): Express {
  return buildLlmServiceApp(GUESSER_SPEC, deps);
}
