import type { ErrorRequestHandler, Express } from 'express';
import type { Knex } from 'knex';
import { loadOpenApiDocument } from '@workemon/contracts';
import {
  createOpenApi,
  createServiceApp,
  packageVersion,
  requireApiKey,
  type HealthCheck,
  type Metrics,
} from '@workemon/service-kit';
import { createActionRoutes } from './actions/action-routes.js';
import { mountAnalyzeRoutes } from './analyze-routes.js';
import { createAnalyzer, type AnalyzerOptions } from './analyzer.js';
import { toDatabaseError } from './database.js';
import { createDirectoryRepository } from './directory-repository.js';
import { mountDirectoryRoutes } from './directory-routes.js';
import { createHistoryRepository } from './history-repository.js';
import { mountHistoryRoutes } from './history-routes.js';
import { createRuleRoutes } from './rules/rule-routes.js';

export const SERVICE = 'secretary';
// package.json sits one level above both src/ and dist/.
export const VERSION = packageVersion(new URL('../package.json', import.meta.url));

/** The analyzer's settings and upstreams come straight from the app's deps (see AnalyzerOptions). */
type AnalyzerDeps = Pick<
  AnalyzerOptions,
  | 'guesser'
  | 'analyst'
  | 'logger'
  | 'unknownUserPolicy'
  | 'clarificationTtlMs'
  | 'maxClarifications'
  | 'attemptLeaseMs'
  | 'decide'
  | 'onDecisionRecorded'
>;

export type SecretaryDeps = AnalyzerDeps & {
  knex: Knex;
  metrics: Metrics;
  /** Accepted bearer keys; empty: open. */
  apiKeys: readonly string[];
  /** Wakes the action worker after an approval or a rejection (main.ts: the worker's nudge); absent: next poll. */
  nudgeActions?: () => void;
};

/** The secretary's HTTP app. Never listens, never reads the environment: main.ts and tests hand it deps. */
export function buildApp(deps: SecretaryDeps): Express {
  const openapi = createOpenApi(loadOpenApiDocument('secretary'));
  const auth = requireApiKey(deps.apiKeys);
  const directory = createDirectoryRepository(deps.knex);
  const history = createHistoryRepository(deps.knex);
  const analyzeRequests = deps.metrics.counter(
    'workemon_analyze_requests_total',
    'Decisions taken by the secretary, by channel, action and whether the context was enough',
    ['channel', 'action', 'is_enough'],
  );
  const analyzer = createAnalyzer({
    guesser: deps.guesser,
    analyst: deps.analyst,
    history,
    directory,
    logger: deps.logger,
    unknownUserPolicy: deps.unknownUserPolicy,
    clarificationTtlMs: deps.clarificationTtlMs,
    maxClarifications: deps.maxClarifications,
    attemptLeaseMs: deps.attemptLeaseMs,
    decide: deps.decide,
    onDecisionRecorded: deps.onDecisionRecorded,
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
    },
    (app) => {
      mountAnalyzeRoutes(app, { openapi, auth, analyzer });
      mountDirectoryRoutes(app, { openapi, auth, directory });
      mountHistoryRoutes(app, { openapi, auth, history });
      const apiKeys = deps.apiKeys;
      app.use(
        createActionRoutes({
          db: deps.knex,
          openapi,
          apiKeys,
          onApproved: deps.nudgeActions,
          onRejected: deps.nudgeActions,
        }),
      );
      app.use(createRuleRoutes({ db: deps.knex, openapi, apiKeys }));
      // A lost database reaches the shared error handler as the catalogue's 503, not as a generic 500.
      const mapDatabaseErrors: ErrorRequestHandler = (err, _req, _res, next) => next(toDatabaseError(err));
      app.use(mapDatabaseErrors);
    },
  );
}
