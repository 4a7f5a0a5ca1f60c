import { AppError, createHttpClient, isAppError, type Logger, type Metrics } from '@workemon/service-kit';
import {
  ACTION_CLARIFY,
  isAction,
  type AnalysisResponse,
  type AnalyzeRequest,
  type AuditEventInput,
  type RateLimitAnswer,
  type RateLimitConsumeRequest,
  type SecretaryApi,
} from '@workemon/contracts';

export type SecretaryClient = {
  analyze: (request: AnalyzeRequest) => Promise<AnalysisResponse>;
  /** Resolves when the secretary's /health answers (200 or 503 with a body); throws when it is unreachable. */
  health: () => Promise<{ status: string }>;
  /**
   * `POST /action-executions/{id}/approve|reject` (an approval button was pressed). Resolves with the
   * execution's new status; a 409 (already decided) or 404 rejects with the secretary's error.
   */
  decideAction: (id: number, decision: 'approve' | 'reject', by: string) => Promise<{ status: string }>;
  /**
   * `POST /deliveries`: records inbound messages (by idempotency key, e.g. `tg:<chat_id>:<message_id>`) as
   * handled, durably, so a restart does not answer them again. Idempotent.
   */
  recordHandled: (channel: 'tg' | 'email', keys: string[], outcome: HandledOutcome, reason?: string) => Promise<void>;
  /** `POST /deliveries/lookup`: the subset of `keys` recorded as handled, with their outcome. */
  lookupHandled: (keys: string[]) => Promise<Map<string, HandledOutcome>>;
  /**
   * `POST /rate-limits/consume` (docs/audit-and-limits.md): takes one unit from every key's budget of `limit`
   * per `windowSeconds`, all or nothing. Rejects with the AppError of the call (503 unreachable, 504 timeout,
   * 404 a secretary without the endpoint) when the secretary cannot answer; never retried here.
   */
  consumeRateLimit: (request: RateLimitConsumeRequest) => Promise<RateLimitAnswer>;
  /**
   * `POST /rate-limits/check`: what `consumeRateLimit` would answer now, taking nothing (dry runs). Rejects as
   * `consumeRateLimit` does; 404 from a secretary older than the route.
   */
  checkRateLimit: (request: RateLimitConsumeRequest) => Promise<RateLimitAnswer>;
  /** `POST /audit-events`: stores 1..100 audit events; a repeated `event_id` is ignored by the secretary. */
  postAuditEvents: (events: AuditEvent[]) => Promise<{ accepted: number; duplicates: number }>;
  /**
   * `POST /webhook-tokens` (docs/webhooks.md): reserves a provider's replay token for the payload with hex SHA-256
   * `payloadSha256`, for `ttlSeconds`, once across every replica. Resolves with the reservation's expiry (ISO 8601,
   * database clock) when it is this payload's — new (201) or already (200: the provider retrying that post).
   * Rejects with the call's AppError otherwise: 409 `upstream_rejected` with `details.upstreamCode`
   * `token_reserved` when another payload holds it, 503/504 when the secretary cannot answer. Not retried here:
   * the webhook's provider retries.
   */
  reserveWebhookToken: (reservation: WebhookTokenReservationInput) => Promise<{ expiresAt: string }>;
  /**
   * `POST /telegram-parked-updates` (docs/communicator.md "Telegram: exactly once"): stores 1..100 raw Bot API
   * Updates of the bot `resource` (`telegram:<bot id>`) durably, so the getUpdates offset may move past them before
   * they are handled. Resolves with the ids stored with this content (`parked`) and those the secretary holds with
   * other content (`conflicts`: not parked). Rejects with the call's AppError: 409 `upstream_rejected` when the
   * secretary's bound of parked updates is reached, 413 for an update over its size bound, 503/504 when it cannot
   * answer. Not retried here.
   */
  parkUpdates: (resource: string, updates: ParkedUpdate[]) => Promise<{ parked: number[]; conflicts: number[] }>;
  /**
   * `POST /telegram-parked-updates/list`: up to `limit` (≤ 100) parked updates above `afterUpdateId`, lowest first,
   * each with `parked_at` (ISO 8601, the secretary's clock; unknown when the secretary sent none). The rows are passed
   * on as stored: the caller validates them (telegram-parking.ts `load`).
   */
  listParkedUpdates: (resource: string, afterUpdateId: number, limit: number) => Promise<ListedParkedUpdate[]>;
  /** `POST /telegram-parked-updates/remove`: removes 1..100 parked updates (unknown ids ignored); how many went. */
  removeParkedUpdates: (resource: string, updateIds: number[]) => Promise<number>;
};

/** A parked Telegram update: its Bot API `update_id` and the Update object as the Bot API sent it. */
export type ParkedUpdate = { update_id: number; update: Record<string, unknown> };
/** A parked update as listed: also when it was parked (ISO 8601, the secretary's clock), when the secretary said. */
export type ListedParkedUpdate = ParkedUpdate & { parked_at?: string };

const isParkAnswer = (d: unknown): d is { parked: number[]; conflicts: number[] } =>
  Array.isArray((d as { parked?: unknown })?.parked) && Array.isArray((d as { conflicts?: unknown })?.conflicts);

/** What `reserveWebhookToken` sends: the provider, its token, the payload's hex SHA-256 and how long to keep it. */
export type WebhookTokenReservationInput = {
  provider: 'mailgun';
  token: string;
  payloadSha256: string;
  ttlSeconds: number;
};

type WebhookTokenReservation = SecretaryApi.components['schemas']['WebhookTokenReservation'];

const isWebhookTokenReservation = (data: unknown): data is WebhookTokenReservation => {
  const d = data as Partial<WebhookTokenReservation> | null;
  return !!d && typeof d.token === 'string' && typeof d.payload_sha256 === 'string' && typeof d.expires_at === 'string';
};

/** The secretary's answer to `POST /rate-limits/consume` (libs/contracts, checked against the contract). */
export type { RateLimitAnswer };

/**
 * One audit event as `POST /audit-events` takes it (the secretary's audit log; fields and limits as agreed in
 * docs/audit-and-limits.md). `event_id` (≤ 200 chars) is the idempotency key.
 */
export type AuditEvent = AuditEventInput;

/** Deadline of the small bookkeeping calls (rate limit, audit): they must not hold a mail for SECRETARY_TIMEOUT. */
const BOOKKEEPING_TIMEOUT_MS = 10_000;

const isRateLimitAnswer = (data: unknown): data is RateLimitAnswer => {
  const d = data as { allowed?: unknown; key?: unknown; retry_after_seconds?: unknown } | null;
  if (!d || typeof d.allowed !== 'boolean') return false;
  return d.allowed || (typeof d.key === 'string' && typeof d.retry_after_seconds === 'number');
};

/** sent: answered; skipped: deliberately not answered; failed: given up (a permanent error). */
/** What became of a handled inbound message: the secretary contract's DeliveryOutcome. */
export type HandledOutcome = SecretaryApi.components['schemas']['DeliveryOutcome'];

const hasStatus = (data: unknown): data is { status: string } =>
  !!data && typeof data === 'object' && typeof (data as { status?: unknown }).status === 'string';

function isAnalysis(data: unknown): data is AnalysisResponse {
  const d = data as Partial<AnalysisResponse> | null;
  return (
    !!d &&
    typeof d.is_enough === 'boolean' &&
    typeof d.request === 'string' &&
    isAction(d.action) &&
    typeof d.question === 'string' &&
    typeof d.response === 'string'
  );
}

/**
 * The secretary answering `POST /analyze-request` with 401 refuses the communicator's own key (the communicator
 * always sends one): a fault of this deployment's configuration, never of the employee who wrote. It becomes a
 * retryable 503 `upstream_key_refused` naming the fix, so the mail stays unseen (a webhook gets 503 and its
 * provider retries) and a Telegram update is retried, instead of the employee being told they are not in the
 * directory. Any other error is returned as it is.
 */
export function ownKeyRefused(err: unknown): unknown {
  if (!isAppError(err) || err.code !== 'upstream_rejected' || err.status !== 401) return err;
  return new AppError(
    'upstream_key_refused',
    503,
    "The secretary refused the communicator's key (HTTP 401): give the communicator one of the secretary's " +
      'SERVICE_API_KEYS (it sends SECRETARY_API_KEY, else the first of its own SERVICE_API_KEYS)',
    { cause: err, retryable: true },
  );
}

/**
 * The only code that knows the secretary's URL. `POST /analyze-request` is not retried here: the caller owns
 * the retry schedule (a mail stays unseen, an update unconfirmed), and `message_id` makes a repeat harmless.
 */
export function createSecretaryClient(options: {
  baseURL: string;
  apiKey?: string;
  timeoutMs: number;
  metrics: Metrics;
  logger: Logger;
}): SecretaryClient {
  const http = createHttpClient({
    target: 'secretary',
    baseURL: options.baseURL,
    timeoutMs: options.timeoutMs,
    apiKey: options.apiKey,
    metrics: options.metrics,
    logger: options.logger,
    maxRetries: 0,
  });
  return {
    analyze: (request) =>
      http.post<AnalysisResponse>('/analyze-request', request, { validate: isAnalysis }).catch((err: unknown) => {
        throw ownKeyRefused(err);
      }),
    decideAction: (id, decision, by) =>
      http.post<{ status: string }>(`/action-executions/${id}/${decision}`, { by }, { validate: hasStatus }),
    recordHandled: async (channel, keys, outcome, reason) => {
      await http.post<{ recorded: number }>(
        '/deliveries',
        { channel, keys, outcome, ...(reason ? { reason: reason.slice(0, 200) } : {}) },
        {
          validate: (d): d is { recorded: number } => typeof (d as { recorded?: unknown })?.recorded === 'number',
          timeoutMs: Math.min(options.timeoutMs, BOOKKEEPING_TIMEOUT_MS),
        },
      );
    },
    lookupHandled: async (keys) => {
      const found = await http.post<{ handled: Array<{ key: string; outcome: HandledOutcome }> }>(
        '/deliveries/lookup',
        { keys },
        {
          validate: (d): d is { handled: [] } => Array.isArray((d as { handled?: unknown })?.handled),
          timeoutMs: Math.min(options.timeoutMs, BOOKKEEPING_TIMEOUT_MS),
        },
      );
      return new Map(found.handled.map((h) => [h.key, h.outcome]));
    },
    consumeRateLimit: (request) =>
      http.post<RateLimitAnswer>('/rate-limits/consume', request, {
        validate: isRateLimitAnswer,
        timeoutMs: Math.min(options.timeoutMs, BOOKKEEPING_TIMEOUT_MS),
      }),
    checkRateLimit: (request) =>
      http.post<RateLimitAnswer>('/rate-limits/check', request, {
        validate: isRateLimitAnswer,
        timeoutMs: Math.min(options.timeoutMs, BOOKKEEPING_TIMEOUT_MS),
      }),
    postAuditEvents: (events) =>
      http.post<{ accepted: number; duplicates: number }>(
        '/audit-events',
        { events },
        {
          validate: (d): d is { accepted: number; duplicates: number } =>
            typeof (d as { accepted?: unknown })?.accepted === 'number',
          timeoutMs: Math.min(options.timeoutMs, BOOKKEEPING_TIMEOUT_MS),
        },
      ),
    reserveWebhookToken: async ({ provider, token, payloadSha256, ttlSeconds }) => {
      const reservation = await http.post<WebhookTokenReservation>(
        '/webhook-tokens',
        { provider, token, payload_sha256: payloadSha256, ttl_seconds: ttlSeconds },
        { validate: isWebhookTokenReservation, timeoutMs: Math.min(options.timeoutMs, BOOKKEEPING_TIMEOUT_MS) },
      );
      return { expiresAt: reservation.expires_at };
    },
    parkUpdates: (resource, updates) =>
      http.post<{ parked: number[]; conflicts: number[] }>(
        '/telegram-parked-updates',
        { resource, updates },
        { validate: isParkAnswer, timeoutMs: Math.min(options.timeoutMs, BOOKKEEPING_TIMEOUT_MS) },
      ),
    listParkedUpdates: async (resource, afterUpdateId, limit) => {
      const page = await http.post<{ updates: ListedParkedUpdate[] }>(
        '/telegram-parked-updates/list',
        { resource, after_update_id: afterUpdateId, limit },
        {
          validate: (d): d is { updates: ListedParkedUpdate[] } => Array.isArray((d as { updates?: unknown })?.updates),
          timeoutMs: Math.min(options.timeoutMs, BOOKKEEPING_TIMEOUT_MS),
        },
      );
      return page.updates.map(({ update_id, update, parked_at }) => ({ update_id, update, parked_at }));
    },
    removeParkedUpdates: async (resource, updateIds) => {
      const answer = await http.post<{ removed: number }>(
        '/telegram-parked-updates/remove',
        { resource, update_ids: updateIds },
        {
          validate: (d): d is { removed: number } => typeof (d as { removed?: unknown })?.removed === 'number',
          timeoutMs: Math.min(options.timeoutMs, BOOKKEEPING_TIMEOUT_MS),
        },
      );
      return answer.removed;
    },
    health: async () => {
      const res = await http.probe('/health', { timeoutMs: 2000 }).catch((err: unknown) => {
        // Said for the operator reading /health: where the communicator looks, the key that sets it, the fix.
        if ((err as { code?: unknown }).code !== 'upstream_unavailable') throw err;
        throw new Error(
          `nothing answers at ${options.baseURL} (SECRETARY_URL): start the secretary (npm start runs every ` +
            'service) or correct SECRETARY_URL',
        );
      });
      if (res.status !== 200 && res.status !== 503) throw new Error(`secretary /health answered ${res.status}`);
      const status = (res.data as { status?: unknown } | undefined)?.status;
      return { status: typeof status === 'string' ? status : res.status === 200 ? 'ok' : 'down' };
    },
  };
}

/** The text sent back to the user: the question when the secretary asks one, else its answer. */
export function replyTextOf(analysis: AnalysisResponse): string {
  const primary = analysis.action === ACTION_CLARIFY ? analysis.question : analysis.response;
  return (primary || analysis.response || analysis.question).trim();
}
