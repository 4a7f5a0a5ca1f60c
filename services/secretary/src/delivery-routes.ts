import { Router, type RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { Channel } from '@workemon/contracts';
import { validated, type OpenApi } from '@workemon/service-kit';

/** How long a handled key is kept: Telegram keeps an unconfirmed update about 24 h; a week is ample. */
export const DELIVERY_RETENTION_DAYS = 7;

type Outcome = 'sent' | 'skipped' | 'failed';

/**
 * The communicator's durable record of handled inbound messages, in the `deliveries` table:
 * `POST /deliveries {channel, keys, outcome, reason?}` (idempotent: a known key keeps its first outcome) and
 * `POST /deliveries/lookup {keys}` → `{handled: [{key, outcome, reason, recorded_at}]}`.
 */
export function createDeliveryRoutes(deps: { openapi: OpenApi; auth: RequestHandler; knex: Knex }): Router {
  const router = Router();
  const { openapi, auth, knex } = deps;
  let writes = 0;

  router.post('/deliveries', auth, openapi.validate('recordDeliveries'), async (_req, res) => {
    const { body } = validated<{ body: { channel: Channel; keys: string[]; outcome: Outcome; reason?: string } }>(res);
    const rows = [...new Set(body.keys)].map((key) => ({
      key,
      channel: body.channel,
      outcome: body.outcome,
      reason: body.reason ?? null,
    }));
    const inserted = (await knex('deliveries').insert(rows).onConflict('key').ignore().returning('key')) as unknown[];
    // Old keys go now and then, not on every write.
    writes += 1;
    if (writes % 100 === 1) {
      await knex('deliveries')
        .where('recorded_at', '<', knex.raw(`now() - interval '${DELIVERY_RETENTION_DAYS} days'`))
        .delete();
    }
    res.json({ recorded: inserted.length });
  });

  router.post('/deliveries/lookup', auth, openapi.validate('lookupDeliveries'), async (_req, res) => {
    const { body } = validated<{ body: { keys: string[] } }>(res);
    const rows = (await knex('deliveries')
      .whereIn('key', body.keys)
      .select('key', 'outcome', 'reason', 'recorded_at')) as Array<{
      key: string;
      outcome: Outcome;
      reason: string | null;
      recorded_at: Date | string;
    }>;
    res.json({
      handled: rows.map((r) => ({ ...r, recorded_at: new Date(r.recorded_at).toISOString() })),
    });
  });
  return router;
}
