import { Router } from 'express';
import { errors, validated, type Authenticator, type OpenApi } from '@workemon/service-kit';
import type { AuditEventInput, AuditFilter, AuditRepository, AuditRetention } from './audit-repository.js';

export type AuditRoutesDeps = {
  repository: AuditRepository;
  openapi: OpenApi;
  /** Checks keys: POST /audit-events takes service keys (the communicator), GET /audit admin keys. */
  auth: Authenticator;
  /** Expires old rows now and then as events are written (AUDIT_RETENTION_DAYS). */
  retention?: AuditRetention;
};

/**
 * `POST /audit-events` (service key: a batch of 1..100 events, validated whole before anything is stored,
 * idempotent by event_id; 202 `{accepted, duplicates}`) and `GET /audit` (admin key: filters, newest first,
 * cursor pages; unknown query keys are a 400). Mount with `app.use(createAuditRoutes(deps))`; docs/audit.md.
 */
export function createAuditRoutes(deps: AuditRoutesDeps): Router {
  const { repository, openapi } = deps;
  const serviceKey = deps.auth.require(['service']);
  const adminKey = deps.auth.require(['admin']);
  const router = Router();

  router.post('/audit-events', serviceKey, openapi.validate('recordAuditEvents'), async (_req, res) => {
    const { events } = validated<{ body: { events: AuditEventInput[] } }>(res).body;
    // The schema checks each field; what it cannot say: a time that is a valid format but not a real instant.
    events.forEach((e, i) => {
      if (e.occurred_at !== undefined && Number.isNaN(Date.parse(e.occurred_at)))
        throw errors.invalidParameter(`events[${i}].occurred_at`, 'must be an RFC 3339 time');
    });
    const counts = await repository.insert(events);
    await deps.retention?.noteWrite();
    res.status(202).json(counts);
  });

  router.get('/audit', adminKey, openapi.validate('listAuditEvents'), async (_req, res) => {
    const { query } = validated<{ query: AuditFilter }>(res);
    if (query.since && query.until && new Date(query.since) >= new Date(query.until))
      throw errors.invalidParameter('until', "must be later than 'since'");
    res.json(await repository.list(query));
  });

  return router;
}
