import { Router, type RequestHandler } from 'express';
import { rateLimitAnswerOf, type RateLimitConsumeRequest } from '@workemon/contracts';
import { validated, type OpenApi } from '@workemon/service-kit';
import type { RateLimitStore } from './rate-limit-store.js';

/**
 * `POST /rate-limits/consume {keys, limit, window_seconds}` (service key): one unit from every key's budget, all
 * or nothing, in one transaction → `200 {allowed: true}`, or `200 {allowed: false, key, retry_after_seconds}`
 * with nothing taken. The communicator's per-sender limits (`email:<address>`, `reply-to:<address>`,
 * `telegram:<user id>`) live here, so every replica shares them and a restart forgets none.
 * `POST /rate-limits/check` (same body, same verdict) answers what consume would answer now and takes nothing.
 */
export function createRateLimitRoutes(deps: { openapi: OpenApi; auth: RequestHandler; store: RateLimitStore }): Router {
  const router = Router();
  router.post('/rate-limits/consume', deps.auth, deps.openapi.validate('consumeRateLimit'), async (_req, res) => {
    const { body } = validated<{ body: RateLimitConsumeRequest }>(res);
    const verdict = await deps.store.consume(
      // A key named twice is one budget: one unit from each distinct key.
      [...new Set(body.keys)].map((key) => ({ key, limit: body.limit, windowSeconds: body.window_seconds })),
    );
    res.json(rateLimitAnswerOf(verdict));
  });
  // What consume would answer now, taking nothing: the communicator's dry runs (POST /test) report "would be rate
  // limited" without spending the sender's budget (docs/audit-and-limits.md).
  router.post('/rate-limits/check', deps.auth, deps.openapi.validate('checkRateLimit'), async (_req, res) => {
    const { body } = validated<{ body: RateLimitConsumeRequest }>(res);
    const verdict = await deps.store.check(
      [...new Set(body.keys)].map((key) => ({ key, limit: body.limit, windowSeconds: body.window_seconds })),
    );
    res.json(rateLimitAnswerOf(verdict));
  });
  return router;
}
