import type { Knex } from 'knex';
import type { Logger, Metrics } from '@workemon/service-kit';
import { createActionHooks, replyTargetFor } from './action-hooks.js';
import type { ActionSettings } from './action-policy.js';
import { createCommunicatorClient } from './communicator-client.js';
import type { DepartmentTarget } from './executors.js';
import { createJiraClient, type JiraClient } from './jira-client.js';
import { createExecutionRepository } from './execution-repository.js';
import { createActionWorker, type ActionWorker } from './worker.js';
import { createActionAudit } from '../audit/action-audit.js';
import {
  DEFAULT_AUDIT_RETENTION_DAYS,
  createAuditRepository,
  createAuditRetention,
} from '../audit/audit-repository.js';

export type ActionsDeps = {
  db: Knex;
  settings: ActionSettings;
  communicator: { baseUrl: string; apiKey?: string };
  /** The directory's department lookup, for rules that send an action to another department. */
  resolveDepartment: (name: string) => Promise<DepartmentTarget | undefined>;
  logger: Logger;
  metrics: Metrics;
  /** AUDIT_RETENTION_DAYS: how long the audit rows the worker writes are kept (default 90). */
  auditRetentionDays?: number;
};

export type Actions = {
  /** `decide` and `onDecisionRecorded` for the analyzer (SecretaryDeps). */
  hooks: ReturnType<typeof createActionHooks>;
  worker: ActionWorker;
  jira?: JiraClient;
};

/**
 * The actions feature put together from its settings: the Jira client (when configured), the communicator
 * client, the outbox worker and the decision hooks. main.ts starts the worker after the migrations and stops it
 * before the database closes; the end-to-end tests build the secretary the same way.
 */
export function createActions(deps: ActionsDeps): Actions {
  const { db, settings, logger, metrics } = deps;
  const communicator = createCommunicatorClient(deps.communicator, { metrics, logger });
  const jira = settings.jira ? createJiraClient(settings.jira, { metrics, logger }) : undefined;
  const auditRepository = createAuditRepository(db);
  const worker = createActionWorker({
    db,
    executions: createExecutionRepository(db),
    executors: { jira, communicator },
    communicator,
    settings: settings.worker,
    approverChatId: settings.approverChatId,
    logger,
    metrics,
    audit: createActionAudit({
      repository: auditRepository,
      retention: createAuditRetention({
        repository: auditRepository,
        retentionDays: deps.auditRetentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS,
        onError: (err) =>
          logger.warn('audit retention cleanup failed', { err: err instanceof Error ? err : undefined }),
      }),
      logger,
    }),
  });
  const hooks = createActionHooks({
    db,
    policy: settings.policy,
    minConfidence: settings.minConfidence,
    jira: { configured: !!jira, defaultProjectKey: jira?.defaultProjectKey },
    resolveDepartment: deps.resolveDepartment,
    worker,
    replyTarget: replyTargetFor,
    logger,
  });
  return { hooks, worker, jira };
}
