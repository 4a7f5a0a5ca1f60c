export {
  createLlmClient,
  type LlmClient,
  type LlmClientDeps,
  type CompleteRequest,
  type LlmResult,
  llmCallMetadata,
  type LlmCallMetadata,
} from './llm-client.js';
export {
  PROVIDERS,
  PROVIDER_DEFAULTS,
  llmEnvSchema,
  llmSettingsFromEnv,
  llmSecrets,
  providerPoolSize,
  DEFAULT_LLM_CONCURRENCY,
  DEFAULT_LLM_QUEUE_LIMIT,
  type ProviderName,
  type ProviderSettings,
  type LlmSettings,
  type LocalModelSettings,
  type JsonMode,
} from './llm-config.js';
export { llmErrors } from './llm-errors.js';
export { stripInvisible, prepareUserContent, delimitUserContent, bodyLimitForInput } from './user-content.js';
export { extractJson, parseStructured, jsonSchemaOf, cutAnswer, ANSWER_CUT_MARKER } from './structured-output.js';
// The breaker lives in service-kit's resilience module; re-exported for the LLM services' existing imports.
export { createCircuitBreaker, type CircuitBreaker } from '@workemon/service-kit';
export { parseRetryAfterMs, configureProviderPool } from './provider-http.js';
export type { TokenUsage } from './provider-wire.js';
export { readPromptFile } from './prompt-file.js';
export { loadLlmServiceConfig, type LlmServiceConfig } from './llm-service-config.js';
export {
  buildLlmServiceApp,
  defineLlmService,
  runLlmService,
  llmAnswerMetadata,
  LLM_SERVICE_KEY_CLASSES,
  type LlmServiceSpec,
  type LlmServiceDeps,
  type LlmRouteDeps,
  type LlmAnswerMetadata,
} from './llm-service.js';
export {
  sha256Hex,
  bundledPromptPath,
  promptNameOf,
  loadPrompt,
  generationSettings,
  withPersona,
  MAX_PERSONA_CHARS,
  type PromptVersion,
  type GenerationSettings,
} from './prompt-version.js';
export { createLocalWire, grammarSchemaOf, type LocalWire, type LocalModelPhase } from './local-wire.js';
export {
  parseHubModelRef,
  resolveHubFile,
  downloadHubFile,
  pickGgufFile,
  hubModelDir,
  findDownloadedModel,
  ModelDownloadError,
  type HubModelRef,
  type HubFile,
  type DownloadProgress,
} from './model-download.js';
