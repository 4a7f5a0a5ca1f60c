import { Router, type RequestHandler } from 'express';
import type { Knex } from 'knex';
import { AppError, validated, type OpenApi } from '@workemon/service-kit';
import type { SecretaryApi } from '@workemon/contracts';

/**
 * The contract's `WebhookTokenReservationRequest`: `{provider: 'mailgun', token (1–200 chars), payload_sha256 (64
 * lower-case hex), ttl_seconds (1–86400)}`.
 */
export type WebhookTokenReservationRequest = SecretaryApi.components['schemas']['WebhookTokenReservationRequest'];

/** The contract's `WebhookTokenReservation`: the stored reservation, times in ISO 8601 (database clock). */
export type WebhookTokenReservation = SecretaryApi.components['schemas']['WebhookTokenReservation'];

/**
 * What a reservation attempt found. `reserved`: the token was free (or its reservation had expired) and is now
 * this payload's. `repeated`: it is already reserved for the same payload (a provider's retry of that post, or the
 * call itself repeated); nothing changed. `conflict`: reserved for another payload — a replay; nothing changed.
 */
export type WebhookTokenAttempt = {
  outcome: 'reserved' | 'repeated' | 'conflict';
  reservation: WebhookTokenReservation;
};

type TokenRow = {
  provider: string;
  token: string;
  payload_sha256: string;
  reserved_at: Date | string;
  expires_at: Date | string;
};

const toReservation = (row: TokenRow): WebhookTokenReservation => ({
  provider: row.provider,
  token: row.token,
  payload_sha256: row.payload_sha256,
  reserved_at: new Date(row.reserved_at).toISOString(),
  expires_at: new Date(row.expires_at).toISOString(),
});

/**
 * Webhook replay tokens over the secretary's `webhook_tokens` table (migration 330; unique on provider and
 * token), decided on the database clock so replicas whose clocks disagree still agree.
 */
export type WebhookTokenRepository = {
  /**
   * Reserves `request.token` of `request.provider` for `request.payload_sha256` until `ttl_seconds` from now, in
   * one statement that also deletes every other expired reservation. Resolves with the outcome and the stored
   * reservation; rejects only with the database's errors.
   */
  reserve(request: WebhookTokenReservationRequest): Promise<WebhookTokenAttempt>;
};

/** A WebhookTokenRepository over `db` (the secretary's database, with `webhook_tokens` migrated). */
export function createWebhookTokenRepository(db: Knex): WebhookTokenRepository {
  return {
    async reserve(request) {
      const { provider, token, payload_sha256: digest, ttl_seconds: ttlSeconds } = request;
      // INSERT … ON CONFLICT … WHERE: an expired reservation is taken over, a live one is left alone (RETURNING is
      // then empty). The data-modifying CTE deletes the other expired rows in the same round trip (it runs whether
      // or not it is referenced; it leaves this key to the ON CONFLICT clause, so one statement never touches a
      // row twice).
      const { rows } = await db.raw<{ rows: TokenRow[] }>(
        `with purged as (
           delete from webhook_tokens where expires_at <= now() and not (provider = ? and token = ?)
         )
         insert into webhook_tokens as w (provider, token, payload_sha256, reserved_at, expires_at)
         values (?, ?, ?, now(), now() + ?::interval)
         on conflict (provider, token) do update set
           payload_sha256 = excluded.payload_sha256,
           reserved_at = excluded.reserved_at,
           expires_at = excluded.expires_at
         where w.expires_at <= now()
         returning provider, token, payload_sha256, reserved_at, expires_at`,
        [provider, token, provider, token, digest, `${ttlSeconds} seconds`],
      );
      if (rows[0]) return { outcome: 'reserved', reservation: toReservation(rows[0]) };
      const current = await db<TokenRow>('webhook_tokens')
        .where({ provider, token })
        .andWhere('expires_at', '>', db.fn.now())
        .first('provider', 'token', 'payload_sha256', 'reserved_at', 'expires_at');
      // Expired between the two statements: reserve again rather than report a reservation that has lapsed.
      if (!current) return this.reserve(request);
      return {
        outcome: current.payload_sha256 === digest ? 'repeated' : 'conflict',
        reservation: toReservation(current),
      };
    },
  };
}

/** What the webhook token route needs: the OpenAPI document, the service-key check and the repository. */
export type WebhookTokenRoutesDeps = { openapi: OpenApi; auth: RequestHandler; tokens: WebhookTokenRepository };

/**
 * `POST /webhook-tokens` (service key; docs/webhooks.md): 201 `WebhookTokenReservation` when the token is
 * reserved now, 200 when it already was for the same payload, 409 `token_reserved` when it is reserved for another
 * payload (a replay of a captured signature: the communicator answers the provider 401). Mount with
 * `app.use(createWebhookTokenRoutes(deps))`.
 */
export function createWebhookTokenRoutes(deps: WebhookTokenRoutesDeps): Router {
  const { openapi, auth, tokens } = deps;
  const router = Router();
  router.post('/webhook-tokens', auth, openapi.validate('reserveWebhookToken'), async (_req, res) => {
    const { body } = validated<{ body: WebhookTokenReservationRequest }>(res);
    const attempt = await tokens.reserve(body);
    if (attempt.outcome === 'conflict')
      throw new AppError(
        'token_reserved',
        409,
        `This ${body.provider} token is reserved for another payload until ${attempt.reservation.expires_at}`,
        { retryable: false },
      );
    res.status(attempt.outcome === 'reserved' ? 201 : 200).json(attempt.reservation);
  });
  return router;
}
