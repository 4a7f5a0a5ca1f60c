import { Router, type RequestHandler } from 'express';
import { validated, type OpenApi } from '@workemon/service-kit';
import type { DeliveryRecord, DeliveryRepository } from './delivery-repository.js';

export { DELIVERY_RETENTION_DAYS } from './delivery-repository.js';

/** What the delivery routes need: the OpenAPI document, the service-key check and the delivery repository. */
export type DeliveryRoutesDeps = { openapi: OpenApi; auth: RequestHandler; deliveries: DeliveryRepository };

/**
 * The communicator's durable record of handled inbound messages (stored by `deliveries`, a DeliveryRepository):
 * `POST /deliveries {channel, keys, outcome, reason?}` → `{recorded}` (idempotent: a known key keeps its first
 * outcome) and `POST /deliveries/lookup {keys}` → `{handled: [{key, outcome, reason, recorded_at}]}`.
 */
export function createDeliveryRoutes(deps: DeliveryRoutesDeps): Router {
  const router = Router();
  const { openapi, auth, deliveries } = deps;

  router.post('/deliveries', auth, openapi.validate('recordDeliveries'), async (_req, res) => {
    const { body } = validated<{ body: DeliveryRecord }>(res);
    res.json({ recorded: await deliveries.record(body) });
  });

  router.post('/deliveries/lookup', auth, openapi.validate('lookupDeliveries'), async (_req, res) => {
    const { body } = validated<{ body: { keys: string[] } }>(res);
    res.json({ handled: await deliveries.lookup(body.keys) });
  });
  return router;
}
