import { Router, type RequestHandler } from 'express';
import { AppError, validated, type OpenApi } from '@workemon/service-kit';
import type { LeaseRepository } from './lease-repository.js';

export type LeaseRoutesDeps = {
  leases: LeaseRepository;
  openapi: OpenApi;
  /** Service-to-service authentication: only the communicator takes poller leases. */
  auth: RequestHandler;
};

type LeaseParams = { params: { name: string } };

/**
 * `PUT /poller-leases/{name}` (take or renew; 409 `lease_held` with the current holder when another replica
 * has it) and `DELETE /poller-leases/{name}?holder=` (hand over at shutdown). Mount with
 * `app.use(createLeaseRoutes(deps))`.
 */
export function createLeaseRoutes(deps: LeaseRoutesDeps): Router {
  const { leases, openapi, auth } = deps;
  const router = Router();
  router.put('/poller-leases/:name', auth, openapi.validate('acquirePollerLease'), async (_req, res) => {
    const { params, body } = validated<LeaseParams & { body: { holder: string; ttl_ms: number } }>(res);
    const attempt = await leases.acquire(params.name, body.holder, body.ttl_ms);
    if (!attempt.granted) {
      throw new AppError(
        'lease_held',
        409,
        `Lease '${params.name}' is held by ${attempt.lease.holder} until ${attempt.lease.expires_at}`,
        {
          details: { holder: attempt.lease.holder, expires_at: attempt.lease.expires_at },
        },
      );
    }
    res.json(attempt.lease);
  });
  router.delete('/poller-leases/:name', auth, openapi.validate('releasePollerLease'), async (_req, res) => {
    const { params, query } = validated<LeaseParams & { query: { holder: string } }>(res);
    await leases.release(params.name, query.holder);
    res.status(204).end();
  });
  return router;
}
