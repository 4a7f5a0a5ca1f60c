import { Router, type RequestHandler } from 'express';
import { validated, type OpenApi } from '@workemon/service-kit';
import type { ParkedUpdateRepository, UpdateToPark } from './parked-update-repository.js';

/** What the parked-update routes need: the OpenAPI document, the service-key check and the repository. */
export type ParkedUpdateRoutesDeps = { openapi: OpenApi; auth: RequestHandler; parked: ParkedUpdateRepository };

/** How many parked updates one list call returns when the caller names no `limit` (the contract's maximum). */
const LIST_LIMIT_DEFAULT = 100;

/**
 * The communicator's parked Telegram updates (docs/communicator.md "Telegram: exactly once"), service key only:
 * - `POST /telegram-parked-updates {resource, updates: [{update_id, update}]}` → `{parked, conflicts}` (idempotent;
 *   409 `parking_full`, 413 `payload_too_large`);
 * - `POST /telegram-parked-updates/list {resource, after_update_id?, limit?}` → `{updates: [{update_id, update,
 *   parked_at}]}`, lowest update_id first;
 * - `POST /telegram-parked-updates/remove {resource, update_ids}` → `{removed}`.
 */
export function createParkedUpdateRoutes(deps: ParkedUpdateRoutesDeps): Router {
  const router = Router();
  const { openapi, auth, parked } = deps;

  router.post('/telegram-parked-updates', auth, openapi.validate('parkTelegramUpdates'), async (_req, res) => {
    const { body } = validated<{ body: { resource: string; updates: UpdateToPark[] } }>(res);
    res.json(await parked.park(body.resource, body.updates));
  });

  router.post(
    '/telegram-parked-updates/list',
    auth,
    openapi.validate('listParkedTelegramUpdates'),
    async (_req, res) => {
      const { body } = validated<{ body: { resource: string; after_update_id?: number; limit?: number } }>(res);
      const updates = await parked.list(body.resource, body.after_update_id ?? -1, body.limit ?? LIST_LIMIT_DEFAULT);
      res.json({ updates });
    },
  );

  router.post(
    '/telegram-parked-updates/remove',
    auth,
    openapi.validate('removeParkedTelegramUpdates'),
    async (_req, res) => {
      const { body } = validated<{ body: { resource: string; update_ids: number[] } }>(res);
      res.json({ removed: await parked.remove(body.resource, body.update_ids) });
    },
  );
  return router;
}
