import type { ErrorRequestHandler, Express } from 'express';
import type { Knex } from 'knex';
import { loadOpenApiDocument } from '@workemon/contracts';
import {
  createOpenApi,
  createServiceApp,
  packageVersion,
  type Authenticator,
  type HealthCheck,
  type KeyClass,
  type Metrics,
} from '@workemon/service-kit';
import type { ActionCatalogSource } from './actions/action-catalog.js';
import { createActionRoutes } from './actions/action-routes.js';
import { createExecutionRepository } from './actions/execution-repository.js';
import { createAnalyzeRoutes } from './analyze-routes.js';
import { createDryRun, type PreviewActions } from './dry-run.js';
import type { AnalyzeLimits } from './rate-limits/analyze-limits.js';
import { createRateLimitRoutes } from './rate-limits/rate-limit-routes.js';
import { createRateLimitStore } from './rate-limits/rate-limit-store.js';
import { createAnalyzer, type AnalyzerOptions } from './analyzer.js';
import { createAuditRecorder } from './audit/audit-recorder.js';
import { DEFAULT_AUDIT_RETENTION_DAYS, createAuditRepository, createAuditRetention } from './audit/audit-repository.js';
import { createAuditRoutes } from './audit/audit-routes.js';
import { toDatabaseError } from './database.js';
import { createDeliveryRepository } from './delivery-repository.js';
import { createDeliveryRoutes } from './delivery-routes.js';
import { createWebhookTokenRepository, createWebhookTokenRoutes } from './webhook-token-routes.js';
import { createDirectoryRepository } from './directory-repository.js';
import { createDirectoryRoutes } from './directory-routes.js';
import { createHistoryReadModel } from './history-read-model.js';
import { createHistoryWriteRepository } from './history-write-repository.js';
import { createHistoryRoutes } from './history-routes.js';
import { createLeaseRepository } from './leases/lease-repository.js';
import { createLeaseRoutes } from './leases/lease-routes.js';
import { createParkedUpdateRoutes } from './parked-updates/parked-update-routes.js';
import { createParkedUpdateRepository } from './parked-updates/parked-update-repository.js';
import { createPromptsRoutes } from './prompts-routes.js';
import { createRuleRepository } from './rules/rule-repository.js';
import { createRuleRoutes } from './rules/rule-routes.js';

export const SERVICE = 'secretary';
// package.json sits one level above both src/ and dist/.
export const VERSION = packageVersion(new URL('../package.json', import.meta.url));
/** The key classes the secretary serves: each needs keys before it listens beyond loopback. */
export const SECRETARY_KEY_CLASSES: readonly KeyClass[] = ['client', 'admin', 'service'];

/** The analyzer's settings and upstreams come straight from the app's deps (see AnalyzerOptions). */
type AnalyzerDeps = Pick<
  AnalyzerOptions,
  | 'guesser'
  | 'analyst'
  | 'logger'
  | 'unknownUserPolicy'
  | 'clientKeyUsernames'
  | 'companyDomains'
  | 'clarificationTtlMs'
  | 'maxClarifications'
  | 'attemptLeaseMs'
  | 'duplicateWaitMs'
  | 'attemptHeartbeatMs'
  | 'decide'
  | 'onDecisionRecorded'
>;

export type SecretaryDeps = AnalyzerDeps & {
  knex: Knex;
  metrics: Metrics;
  /**
   * Checks bearer keys (`createAuthenticator`, or `authForStart` in main.ts). `/analyze-request` takes client,
   * admin and service keys; approvals admin and service keys; everything else admin keys.
   */
  auth: Authenticator;
  /** `APPROVER_TELEGRAM_USER_IDS`: the Telegram approvers the communicator may decide for. Default: none. */
  approverTelegramUserIds?: readonly string[];
  /** Wakes the action worker after an approval or a rejection (main.ts: the worker's nudge); absent: next poll. */
  nudgeActions?: () => void;
  /** What GET /actions reports (main.ts: catalogSourceFor); absent: default policy, nothing configured. */
  actionCatalog?: ActionCatalogSource;
  /**
   * ANALYZE_RATE_LIMIT_PER_USERNAME_PER_HOUR and ANALYZE_RATE_LIMIT_PER_KEY_PER_MINUTE (main.ts: from the config);
   * absent: /analyze-request is not limited. POST /rate-limits/consume works either way.
   */
  analyzeLimits?: AnalyzeLimits;
  /** The routing step's plan of a decision, for dry runs' `would_execute` (main.ts: the action hooks' preview). */
  previewActions?: PreviewActions;
  /** MAX_RESPONSE_LENGTH: longest answer a user receives, in characters; absent or 0: not cut. */
  maxResponseChars?: number;
  /** AUDIT_RETENTION_DAYS: how long audit rows are kept (default 90; docs/audit.md). */
  auditRetentionDays?: number;
};

/** The secretary's HTTP app. Never listens, never reads the environment: main.ts and tests hand it deps. */
export function buildApp(deps: SecretaryDeps): Express {
  const openapi = createOpenApi(loadOpenApiDocument('secretary'));
  const anyKey = deps.auth.require(['client', 'admin', 'service']);
  const adminKey = deps.auth.require(['admin']);
  const serviceKey = deps.auth.require(['service']);
  const directory = createDirectoryRepository(deps.knex);
  const history = createHistoryWriteRepository(deps.knex);
  const historyReadModel = createHistoryReadModel(deps.knex);
  const rateLimits = createRateLimitStore(deps.knex);
  const auditRepository = createAuditRepository(deps.knex);
  const auditRetention = createAuditRetention({
    repository: auditRepository,
    retentionDays: deps.auditRetentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS,
    onError: (err) =>
      deps.logger.warn('audit retention cleanup failed', { err: err instanceof Error ? err : undefined }),
  });
  const audit = createAuditRecorder({ repository: auditRepository, retention: auditRetention, logger: deps.logger });
  const analyzeRequests = deps.metrics.counter(
    'workemon_analyze_requests_total',
    'Decisions taken by the secretary, by channel, action and whether the context was enough',
    ['channel', 'action', 'is_enough'],
  );
  const analyzer = createAnalyzer({
    guesser: deps.guesser,
    analyst: deps.analyst,
    history,
    logger: deps.logger,
    unknownUserPolicy: deps.unknownUserPolicy,
    clientKeyUsernames: deps.clientKeyUsernames,
    companyDomains: deps.companyDomains,
    clarificationTtlMs: deps.clarificationTtlMs,
    maxClarifications: deps.maxClarifications,
    attemptLeaseMs: deps.attemptLeaseMs,
    duplicateWaitMs: deps.duplicateWaitMs,
    attemptHeartbeatMs: deps.attemptHeartbeatMs,
    decide: deps.decide,
    // Every decision gets its audit row in the transaction that stores it (docs/audit.md).
    onDecisionRecorded: audit.decisionHook(deps.onDecisionRecorded),
    onDecided: (channel, decision) =>
      analyzeRequests.inc({ channel, action: decision.action, is_enough: String(decision.is_enough) }),
  });

  const healthChecks: HealthCheck[] = [
    {
      name: 'postgres',
      critical: true,
      run: async () => {
        await deps.knex.raw('select 1');
        return { status: 'ok' };
      },
    },
    {
      name: 'guesser',
      critical: false,
      // Running with its LLM unreachable is `degraded` (with the LLM's detail), not down.
      run: () => deps.guesser.ping(),
    },
    {
      name: 'system-analyst',
      critical: false,
      run: () => deps.analyst.ping(),
    },
  ];

  return createServiceApp(
    {
      service: SERVICE,
      version: VERSION,
      logger: deps.logger,
      metrics: deps.metrics,
      openapi: openapi.document,
      healthChecks,
      // /health's details (connection errors naming hosts) only for admin and service keys.
      auth: deps.auth,
      // Every route that takes a body needs a key: a caller without one is not read (401 from the route).
      bodyNeedsKey: true,
    },
    (app) => {
      // Before the route's auth: refused requests are audited too.
      app.use(audit.track);
      app.use(
        createAnalyzeRoutes({
          openapi,
          auth: anyKey,
          analyzer,
          limits: deps.analyzeLimits ? { store: rateLimits, settings: deps.analyzeLimits } : undefined,
          dryRun: createDryRun({
            analyzer,
            knex: deps.knex,
            preview: deps.previewActions,
            maxResponseChars: deps.maxResponseChars,
          }),
          maxResponseChars: deps.maxResponseChars,
          openClasses: deps.auth.open,
        }),
      );
      // Durable per-sender budgets shared by every communicator replica (rate-limits/): service keys only.
      app.use(createRateLimitRoutes({ openapi, auth: serviceKey, store: rateLimits }));
      app.use(createDirectoryRoutes({ openapi, auth: adminKey, directory }));
      app.use(
        createHistoryRoutes({ openapi, auth: adminKey, history: historyReadModel, auditStats: auditRepository.stats }),
      );
      app.use(
        createPromptsRoutes({
          openapi,
          auth: adminKey,
          directory,
          guesser: deps.guesser,
          analyst: deps.analyst,
        }),
      );
      // The communicator's record of handled inbound messages and its poller leases: service keys only.
      app.use(createDeliveryRoutes({ openapi, auth: serviceKey, deliveries: createDeliveryRepository(deps.knex) }));
      app.use(createWebhookTokenRoutes({ openapi, auth: serviceKey, tokens: createWebhookTokenRepository(deps.knex) }));
      const auth = deps.auth;
      app.use(
        createActionRoutes({
          executions: createExecutionRepository(deps.knex),
          openapi,
          auth,
          approverTelegramUserIds: deps.approverTelegramUserIds ?? [],
          onApproved: deps.nudgeActions,
          onRejected: deps.nudgeActions,
          onRetried: deps.nudgeActions,
          catalog: deps.actionCatalog,
        }),
      );
      app.use(createRuleRoutes({ rules: createRuleRepository(deps.knex), openapi, auth }));
      app.use(createLeaseRoutes({ leases: createLeaseRepository(deps.knex), openapi, auth: serviceKey }));
      // Telegram updates the communicator parked (docs/communicator.md "Telegram: exactly once"): service keys only.
      app.use(createParkedUpdateRoutes({ openapi, auth: serviceKey, parked: createParkedUpdateRepository(deps.knex) }));
      app.use(createAuditRoutes({ repository: auditRepository, openapi, auth, retention: auditRetention }));
      // A lost database reaches the shared error handler as the catalogue's 503, not as a generic 500.
      const mapDatabaseErrors: ErrorRequestHandler = (err, _req, _res, next) => next(toDatabaseError(err));
      app.use(mapDatabaseErrors);
      // A refused or failed /analyze-request gets its `skipped` audit row before the error answer goes out.
      app.use(audit.captureError);
    },
  );
}
