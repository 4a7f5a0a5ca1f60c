import { Router } from 'express';
import type { SendRequest } from '@workemon/contracts';
import { validated, type Authenticator, type OpenApi } from '@workemon/service-kit';
import type { OutboundSender } from './outbound-sender.js';

/**
 * `POST /send` (operation `send` of the communicator's OpenAPI document): a message the secretary's actions ask
 * for, on `email` or `tg`. Service keys only; the body is validated against the contract (400 otherwise) and
 * delivered by `outbound` (outbound-sender.ts: idempotency, 501 for a channel that is not configured).
 */
export function createSendRoutes(deps: { openapi: OpenApi; auth: Authenticator; outbound: OutboundSender }): Router {
  const router = Router();
  router.post('/send', deps.auth.require(['service']), deps.openapi.validate('send'), async (_req, res) => {
    res.json(await deps.outbound.send(validated(res).body as SendRequest));
  });
  return router;
}
