export { AppError, isAppError, errorBody, errors, ERROR_CODE_HEADER, RETRYABLE_HEADER } from './errors.js';
export { runWithRequestId, getRequestId, acceptOrCreateRequestId, REQUEST_ID_HEADER } from './request-context.js';
export {
  createLogger,
  flushLogger,
  ecsLogFormat,
  redactFormat,
  elasticsearchTransportOf,
  type Logger,
  type LoggerOptions,
} from './logger.js';
// A type only: the class is loaded on demand (ELASTICSEARCH_URL set), see elasticsearchTransportOf.
export type { WorkemonElasticsearchTransport } from './elasticsearch-transport.js';
export {
  elasticsearchFromEnv,
  logIndexTemplate,
  LOG_DATA_STREAM,
  LOG_INDEX_TEMPLATE,
  type ElasticsearchLogOptions,
  type ElasticsearchEnv,
} from './elasticsearch-options.js';
export { createMetrics, SLOW_CALL_BUCKETS, type Metrics } from './metrics.js';
export { runHealthChecks, type HealthCheck, type CheckResult, type CheckStatus, type HealthReport } from './health.js';
export {
  ConfigError,
  parseEnv,
  parseDurationMs,
  env,
  commonEnvSchema,
  authEnvSchema,
  loadConfigOrExit,
  camelCaseKeys,
  camelCaseName,
  API_KEY_ENV_NAMES,
  serviceEnvSchema,
  type CamelCase,
  type CamelCaseKeys,
  type Env,
} from './config.js';
export { createOpenApi, validated, type OpenApi, type ValidatedRequest } from './openapi.js';
export {
  createAuthenticator,
  authForStart,
  readApiKeys,
  parseApiKeyList,
  allKeys,
  serviceKeyToSend,
  keyFingerprint,
  keyId,
  checkApiKeyLengths,
  MIN_API_KEY_LENGTH,
  RECOMMENDED_API_KEY_LENGTH,
  isLoopbackAddress,
  isLoopbackHost,
  principalOf,
  KEY_CLASSES,
  KEY_CLASS_VARIABLES,
  type KeyClass,
  type Principal,
  type ApiKeyEntry,
  type ApiKeys,
  type AuthEnv,
  type Authenticator,
  type AuthenticatorOptions,
} from './auth.js';
export { sanitizeText, sanitizeDeep, JsonTooDeepError, MAX_JSON_DEPTH } from './text-sanitizing.js';
export { cutText, TEXT_CUT_MARKER, type CutTextOptions } from './text-cutting.js';
export {
  addAccessLogFields,
  createServiceApp,
  HEALTH_DETAIL_CLASSES,
  healthSummary,
  toAppError,
  type ServiceAppOptions,
} from './app.js';
export {
  createHttpClient,
  type HttpClient,
  type HttpClientOptions,
  type CallOptions,
  type HttpResponse,
} from './http-client.js';
export {
  exchange,
  createHttpPool,
  sharedHttpPool,
  headerValue,
  HttpTransportError,
  DEFAULT_POOL_CONNECTIONS,
  type HttpPool,
  type HttpPoolOptions,
  type HttpExchange,
  type HttpAnswer,
} from './http-transport.js';
export { openHttpStream, type HttpStreamRequest, type HttpStream } from './http-stream.js';
export {
  backoffMs,
  spreadMs,
  sleep,
  startDeadline,
  startEmitterDeadline,
  DeadlineEmitter,
  type EmitterDeadline,
  withDeadline,
  untilAborted,
  isRetryable,
  retryAfterMsOf,
  retry,
  createCircuitBreaker,
  type BackoffOptions,
  type Deadline,
  type RetryOptions,
  type CircuitBreaker,
} from './resilience.js';
export {
  runService,
  PortUnavailableError,
  type RunServiceOptions,
  type RunningService,
  type Closer,
} from './server.js';
export { packageVersion } from './package-version.js';
export {
  startService,
  parseServiceEnv,
  toServiceConfig,
  type ServiceConfig,
  type ServiceStart,
  type StartableConfig,
} from './service-start.js';
