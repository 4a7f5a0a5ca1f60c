import type { Express, Router } from 'express';
import { loadOpenApiDocument, type ServiceName } from '@workemon/contracts';
import {
  ConfigError,
  authForStart,
  createAuthenticator,
  createLogger,
  createMetrics,
  createOpenApi,
  createServiceApp,
  packageVersion,
  runService,
  type Authenticator,
  type Env,
  type KeyClass,
  type Logger,
  type Metrics,
  type OpenApi,
} from '@workemon/service-kit';
import {
  createLlmClient,
  llmCallMetadata,
  type LlmCallMetadata,
  type LlmClient,
  type LlmResult,
} from './llm-client.js';
import { providerPoolSize } from './llm-config.js';
import { configureProviderPool } from './provider-http.js';
import type { LlmServiceConfig } from './llm-service-config.js';
import { bodyLimitForInput } from './user-content.js';
import { generationSettings, personaSha256, type GenerationSettings, type PromptVersion } from './prompt-version.js';

/** What an LLM service's routes get: the OpenAPI validator, the client, the prompt and its provenance. */
export type LlmRouteDeps = {
  openapi: OpenApi;
  llm: LlmClient;
  prompt: string;
  logger: Logger;
  /** The active prompt's name and hash (added to every answer's `llm` metadata). */
  promptVersion: PromptVersion;
  /** The generation settings in force (added to every answer's `llm` metadata). */
  settings: GenerationSettings;
  /** What the service's loadConfig returned (a service may extend LlmServiceConfig with its own keys). */
  config: LlmServiceConfig;
  /** The service's key check: its routes take `auth.require(LLM_SERVICE_KEY_CLASSES)`. */
  auth: Authenticator;
};

/** The `llm` object of an LLM service's answer: see `llmAnswerMetadata`. */
export type LlmAnswerMetadata = LlmCallMetadata & {
  prompt: PromptVersion;
  /** SHA-256 hex of the trimmed persona, when one was sent. */
  persona_sha256?: string;
  settings: GenerationSettings;
};

/**
 * The `llm` object of an LLM service's answer (the contracts' `LlmCall`): provider, model, tokens and latency of
 * the call (`llmCallMetadata`), the active prompt's name and hash, `persona_sha256` when a persona was sent
 * (trimmed, SHA-256 hex), and the generation settings in force.
 */
export function llmAnswerMetadata(
  result: LlmResult<unknown>,
  deps: Pick<LlmRouteDeps, 'promptVersion' | 'settings'>,
  persona: string | undefined,
): LlmAnswerMetadata {
  const trimmed = persona?.trim();
  // Fields added one by one to the call's object, in the contract's order: no copies of it per answer.
  const metadata = llmCallMetadata(result) as LlmAnswerMetadata;
  metadata.prompt = deps.promptVersion;
  if (trimmed) metadata.persona_sha256 = personaSha256(trimmed);
  metadata.settings = deps.settings;
  return metadata;
}

/** What an LLM-backed service (guesser, system analyst) adds to the shared shape: its name and its routes. */
export type LlmServiceSpec = {
  service: Extract<ServiceName, 'guesser' | 'system-analyst'>;
  /** URL of the service's package.json (its version is reported by /health). */
  packageJson: URL;
  /** The service's own routes (`createXRoutes(deps): Router`), mounted after /health and /prompt. */
  createRoutes: (deps: LlmRouteDeps) => Router;
};

/** The key classes an LLM service serves: only the secretary (a service key) calls it. */
export const LLM_SERVICE_KEY_CLASSES: readonly KeyClass[] = ['service'];

export type LlmServiceDeps = {
  config: LlmServiceConfig;
  logger?: Logger;
  metrics?: Metrics;
  /** Default: a client for config.llm reporting to `metrics`. */
  llm?: LlmClient;
  /** Default: `config.apiKeys`, every class without keys closed (main.ts passes `authForStart`'s). */
  auth?: Authenticator;
};

/**
 * What an LLM service's package exports, from its spec: `SPEC` (for `runLlmService`), `SERVICE` (its name), `SERVICE_VERSION` (its
 * package.json's version, as /health reports it) and `buildApp(deps)` (its HTTP app; never listens, never reads
 * the environment).
 */
export function defineLlmService(spec: LlmServiceSpec): {
  SPEC: LlmServiceSpec;
  SERVICE: LlmServiceSpec['service'];
  SERVICE_VERSION: string;
  buildApp: (deps: LlmServiceDeps) => Express;
} {
  return {
    SPEC: spec,
    SERVICE: spec.service,
    SERVICE_VERSION: packageVersion(spec.packageJson),
    buildApp: (deps) => buildLlmServiceApp(spec, deps),
  };
}

/** The HTTP app of an LLM-backed service. Never listens, never reads the environment. */
export function buildLlmServiceApp(spec: LlmServiceSpec, deps: LlmServiceDeps): Express {
  const { config } = deps;
  const version = packageVersion(spec.packageJson);
  const logger =
    deps.logger ?? createLogger({ service: spec.service, version, level: config.logLevel, secrets: config.secrets });
  const metrics = deps.metrics ?? createMetrics(spec.service);
  const llm = deps.llm ?? createLlmClient(config.llm, { metrics, logger });
  const auth = deps.auth ?? createAuthenticator(config.apiKeys);
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
      // /health's details (the provider's URL and error) only for the secretary's key (and admin keys).
      auth,
      // Both body routes need the service key: a caller without one is not read (401 from the route).
      bodyNeedsKey: true,
    },
    (app) => {
      const routeDeps: LlmRouteDeps = {
        openapi,
        llm,
        prompt: config.prompt,
        logger,
        promptVersion: config.promptVersion,
        settings: generationSettings(config.llm),
        config,
        auth,
      };
      // GET /prompt: which prompt, models and settings this instance runs with (the secretary's GET /prompts asks).
      app.get('/prompt', auth.require(LLM_SERVICE_KEY_CLASSES), openapi.validate('getPrompt'), (_req, res) => {
        res.json({
          service: spec.service,
          prompt: { ...config.promptVersion, source: config.promptSource === 'built-in' ? 'built-in' : 'PROMPT_FILE' },
          models: llm.describe().map(({ provider, model }) => ({ provider, model })),
          settings: routeDeps.settings,
        });
      });
      app.use(spec.createRoutes(routeDeps));
    },
  );
}

/** main.ts of an LLM-backed service: configuration, logger (stdout + Elasticsearch), LLM client, listen, shutdown. */
export function runLlmService(spec: LlmServiceSpec, loadConfig: (env: Env) => LlmServiceConfig): void {
  const start = async () => {
    const config = loadConfig(process.env);
    // Beyond loopback SERVICE_API_KEYS must be set: refused here, before anything starts.
    const { auth, warning } = authForStart({
      host: config.host,
      keys: config.apiKeys,
      served: LLM_SERVICE_KEY_CLASSES,
    });
    const version = packageVersion(spec.packageJson);
    const logger = createLogger({
      service: spec.service,
      version,
      level: config.logLevel,
      secrets: config.secrets,
      elasticsearch: config.elasticsearch,
    });
    if (warning) logger.warn(warning);
    const metrics = createMetrics(spec.service);
    // One connection per call in flight (LLM_CONCURRENCY) to each provider; waiting calls hold none.
    configureProviderPool({ connections: providerPoolSize(config.llm), keepAliveTimeoutMs: 30_000 });
    const llm = createLlmClient(config.llm, { metrics, logger });
    const app = buildLlmServiceApp(spec, { config, logger, metrics, llm, auth });
    await runService({
      app,
      port: config.port,
      host: config.host,
      logger,
      handleSignals: true,
      service: spec.service,
      closers: [{ name: 'llm', close: () => llm.close?.() }],
    });
    logger.info('LLM chain ready', {
      llm: { chain: llm.describe(), prompt: config.promptSource, prompt_version: config.promptVersion },
    });
  };
  start().catch((err: unknown) => {
    // The logger may not exist yet (bad configuration): stderr is the only channel left.
    process.stderr.write(`${err instanceof ConfigError ? err.message : String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  });
}
