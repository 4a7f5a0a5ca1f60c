import type { AuditEventInput as ContractAuditEventInput, SecretaryApi } from '@workemon/contracts';
import type { Knex } from 'knex';
import { errors, sanitizeText } from '@workemon/service-kit';

/** The channels an audit event is recorded under (the communicator names webhook intakes by their provider). */
export const AUDIT_CHANNELS = [
  'email',
  'telegram',
  'direct',
  'mailgun',
  'sendgrid',
  'ses',
] as const satisfies readonly ContractAuditEventInput['channel'][];
export type AuditChannel = ContractAuditEventInput['channel'];

/**
 * The intakes of mail (`event_provider`, ECS `event.provider`; AuditEventProvider in secretary.yaml): the IMAP
 * mailbox or a provider's inbound webhook. The channel stays `email` on the secretary's own rows of a mail; this
 * tells the intakes apart (docs/audit.md, "Intake").
 */
export const AUDIT_EVENT_PROVIDERS = ['imap', 'mailgun', 'sendgrid', 'ses'] as const satisfies readonly NonNullable<
  ContractAuditEventInput['event_provider']
>[];
export type AuditEventProvider = (typeof AUDIT_EVENT_PROVIDERS)[number];

/** The webhook channels, whose rows are that provider's when the writer named none. */
const WEBHOOK_PROVIDERS: ReadonlySet<string> = new Set<AuditEventProvider>(['mailgun', 'sendgrid', 'ses']);
export type AuditDirection = ContractAuditEventInput['direction'];
export type AuditOutcome = ContractAuditEventInput['outcome'];

/** One event as written (`AuditEventInput` in secretary.yaml); `occurred_at` absent: the database clock. */
export type AuditEventInput = ContractAuditEventInput;

type AuditSchemas = SecretaryApi.components['schemas'];

/** One stored event (`AuditEvent` in secretary.yaml): times as ISO 8601 UTC strings. */
export type AuditEvent = AuditSchemas['AuditEvent'];

/**
 * GET /audit's filters (the query of `listAuditEvents`); `since` inclusive, `until` exclusive (RFC 3339);
 * `limit` 1..500.
 */
export type AuditFilter = NonNullable<SecretaryApi.operations['listAuditEvents']['parameters']['query']>;

/** The counts of one channel in /stats' `audit` (dry runs excluded): `AuditChannelCounts` in secretary.yaml. */
export type AuditChannelCounts = AuditSchemas['AuditChannelCounts'];

export const AUDIT_STATS_PERIODS = ['day', 'week', 'month'] as const;
export type AuditStatsPeriod = (typeof AUDIT_STATS_PERIODS)[number];

/** `from` inclusive, `to` exclusive (ISO 8601); `period` adds per-UTC-period counts as /rules/stats does. */
export type AuditStatsOptions = { from?: string; to?: string; period?: AuditStatsPeriod };

/** The audit log's counts per channel in a window (`AuditStats` in secretary.yaml). */
export type AuditStats = AuditSchemas['AuditStats'];

/** AUDIT_RETENTION_DAYS' default: how long audit rows are kept. */
export const DEFAULT_AUDIT_RETENTION_DAYS = 90;

const TABLE = 'audit_events';
// The caller's namespace of a REST (`direct`) row's message_id in /stats, and a separator: a message_id is unique per
// namespace (migration 340_message_namespace), so two client keys' messages with the same id are two messages. The
// secretary's REST rows end their detail with the caller (`via client key '<name>'`, audit-recorder.ts callerDetail);
// every other caller shares one namespace (''). A message_id holds no control character (sanitizeText), so the
// line feed cannot join two different (namespace, message_id) pairs into one.
const REST_NAMESPACE = `(CASE WHEN channel = 'direct'
  THEN coalesce(substring(detail from 'via client key ''(.*)''$'), '') ELSE '' END || chr(10))`;
const COLUMNS = [
  'id',
  'event_id',
  'channel',
  'direction',
  'outcome',
  'reason',
  'message_id',
  'request_id',
  'conversation_id',
  'sender',
  'recipient',
  'subject',
  'detail',
  'dry_run',
  'occurred_at',
  'recorded_at',
  'event_provider',
];
// Columns are `text`; these caps keep one oversized value (an upstream's long error) from failing a write
// that is made on the secretary's own behalf. POST /audit-events refuses longer values instead (its schema).
const CAPS: Partial<Record<keyof AuditEventInput, number>> = {
  event_id: 200,
  reason: 200,
  message_id: 1000,
  request_id: 200,
  sender: 320,
  recipient: 320,
  subject: 300,
  detail: 1000,
};

const iso = (v: unknown) => new Date(v as string).toISOString();
const clip = (v: string, max: number) => (v.length <= max ? v : `${v.slice(0, max - 1)}…`);

/**
 * An event as an `audit_events` row: text cleaned of control characters and clipped to the column caps,
 * `occurred_at` null when the writer gave none (the statement then uses the database clock), `event_provider` the
 * writer's, else the webhook a webhook channel names (migration 370 filled in the older rows the same way).
 */
export function auditRowOf(e: AuditEventInput): Record<string, unknown> {
  const row: Record<string, unknown> = {
    event_id: clip(sanitizeText(e.event_id), CAPS.event_id!),
    channel: e.channel,
    direction: e.direction,
    outcome: e.outcome,
    dry_run: e.dry_run ?? false,
    occurred_at: e.occurred_at ?? null,
    event_provider: e.event_provider ?? (WEBHOOK_PROVIDERS.has(e.channel) ? e.channel : null),
  };
  for (const key of ['reason', 'message_id', 'request_id', 'sender', 'recipient', 'subject', 'detail'] as const) {
    const value = e[key];
    // Control characters (NUL above all, which PostgreSQL refuses in text) go, as at every other edge.
    const clean = value === undefined ? '' : sanitizeText(value);
    row[key] = clean === '' ? null : clip(clean, CAPS[key]!);
  }
  row['conversation_id'] = e.conversation_id ?? null;
  return row;
}

function toRow(knex: Knex, e: AuditEventInput): Record<string, unknown> {
  return { ...auditRowOf(e), occurred_at: e.occurred_at ?? knex.fn.now() };
}

function fromRow(r: Record<string, unknown>): AuditEvent {
  return {
    ...(r as Omit<AuditEvent, 'id' | 'conversation_id' | 'occurred_at' | 'recorded_at'>),
    id: Number(r['id']),
    conversation_id: r['conversation_id'] == null ? null : Number(r['conversation_id']),
    dry_run: Boolean(r['dry_run']),
    occurred_at: iso(r['occurred_at']),
    recorded_at: iso(r['recorded_at']),
  };
}

// The cursor names the last row of a page by (occurred_at to the microsecond, id): base64url of a JSON pair.
// The time is PostgreSQL's own text in UTC, so no precision is lost on the way through a JS Date.
function encodeCursor(occurredAt: string, id: number): string {
  return Buffer.from(JSON.stringify([occurredAt, id])).toString('base64url');
}

function decodeCursor(cursor: string): [string, number] {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/.test(value[0]) &&
      Number.isSafeInteger(value[1]) &&
      (value[1] as number) > 0
    )
      return [value[0], value[1] as number];
  } catch {
    // falls through to the 400
  }
  throw errors.invalidParameter('cursor', 'is not a cursor this endpoint returned');
}

const EMPTY_COUNTS = (): AuditChannelCounts => ({
  inbound: 0,
  skipped: 0,
  skipped_by_reason: {},
  decided: 0,
  replied: 0,
  requester_replies: 0,
  action_notices: 0,
  delivered: 0,
  failed: 0,
  failed_by_reason: {},
});

/**
 * The audit log in `audit_events` (migration 300_audit_log; docs/audit.md). Works on PostgreSQL and PGlite.
 * `insert` is idempotent by `event_id` and takes a transaction so a decision and its audit row commit together.
 */
export function createAuditRepository(knex: Knex) {
  return {
    /**
     * Stores events; a known `event_id` (stored before, or repeated in `events`) is ignored.
     * Returns how many were stored now and how many were ignored. `db`: a transaction to write in (default: knex).
     */
    async insert(events: readonly AuditEventInput[], db: Knex | Knex.Transaction = knex) {
      if (events.length === 0) return { accepted: 0, duplicates: 0 };
      const rows = events.map((e) => toRow(knex, e));
      const inserted = (await db(TABLE).insert(rows).onConflict('event_id').ignore().returning('id')) as unknown[];
      return { accepted: inserted.length, duplicates: events.length - inserted.length };
    },

    /** A page of events, newest first by (occurred_at, id); `next_cursor` null on the last page. */
    async list(filter: AuditFilter): Promise<{ items: AuditEvent[]; next_cursor: string | null }> {
      const limit = filter.limit ?? 100;
      const q = knex(TABLE).select(
        ...COLUMNS,
        knex.raw(`to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') AS cursor_time`),
      );
      for (const key of [
        'channel',
        'reason',
        'outcome',
        'direction',
        'message_id',
        'request_id',
        'event_provider',
      ] as const) {
        if (filter[key] !== undefined) q.where(key, filter[key]);
      }
      if (filter.sender !== undefined) q.whereRaw('lower(sender) = lower(?)', [filter.sender]);
      if (filter.dry_run !== undefined) q.where('dry_run', filter.dry_run);
      if (filter.since) q.where('occurred_at', '>=', filter.since);
      if (filter.until) q.where('occurred_at', '<', filter.until);
      if (filter.cursor) {
        const [time, id] = decodeCursor(filter.cursor);
        q.whereRaw(`(occurred_at, id) < (cast(? as timestamp) AT TIME ZONE 'UTC', ?)`, [time, id]);
      }
      const rows = (await q
        .orderBy([
          { column: 'occurred_at', order: 'desc' },
          { column: 'id', order: 'desc' },
        ])
        .limit(limit + 1)) as Record<string, unknown>[];
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        items: page.map(({ cursor_time: _time, ...r }) => fromRow(r)),
        next_cursor: rows.length > limit && last ? encodeCursor(String(last['cursor_time']), Number(last['id'])) : null,
      };
    },

    /**
     * Per channel (and with `period` per UTC day / ISO week / month): inbound messages (rows received or skipped,
     * one per message: by message_id (within its caller's namespace on the REST intake), else request_id, else the
     * event), skipped by reason, decisions, replies delivered (outbound events whose id ends in `:reply`: `replied`,
     * split into `requester_replies`, the answers on the request's channel, and `action_notices`, the secretary's
     * `action:<id>:reply` outcome notices), deliveries and failures by reason. Dry runs excluded.
     */
    async stats(options: AuditStatsOptions = {}): Promise<AuditStats> {
      const window = [options.from ?? null, options.to ?? null];
      const bucket = options.period
        ? `(date_trunc('${options.period}', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`
        : 'NULL::timestamptz';
      // One row per (period, channel, kind, reason) with a count; the kinds are summed into the counts below.
      const { rows } = await knex.raw<{ rows: Record<string, unknown>[] }>(
        `
        WITH w AS (
          SELECT *, ${bucket} AS start FROM ${TABLE}
          WHERE dry_run = false
            AND occurred_at >= coalesce(cast(? as timestamptz), '-infinity'::timestamptz)
            AND occurred_at < coalesce(cast(? as timestamptz), 'infinity'::timestamptz)
        )
        SELECT start, channel, 'inbound' AS kind, NULL AS reason,
               count(DISTINCT coalesce(${REST_NAMESPACE} || message_id, request_id, event_id)) AS n
          FROM w WHERE direction = 'inbound' AND outcome IN ('received', 'skipped') GROUP BY start, channel
        UNION ALL
        SELECT start, channel, 'skipped', coalesce(reason, 'unspecified'), count(*)
          FROM w WHERE outcome = 'skipped' AND direction = 'inbound' GROUP BY start, channel, reason
        UNION ALL
        SELECT start, channel, 'decided', NULL, count(*) FROM w WHERE outcome = 'decided' GROUP BY start, channel
        UNION ALL
        SELECT start, channel, ${DELIVERY_KIND}, NULL, count(*)
          FROM w WHERE outcome = 'delivered' AND direction = 'outbound' GROUP BY 1, 2, 3
        UNION ALL
        SELECT start, channel, 'failed', coalesce(reason, 'unspecified'), count(*)
          FROM w WHERE outcome = 'failed' AND direction = 'outbound' GROUP BY start, channel, reason`,
        window,
      );
      const total: Record<string, AuditChannelCounts> = {};
      const byPeriod = new Map<string, Record<string, AuditChannelCounts>>();
      for (const r of rows) {
        addCounts(total, r);
        if (options.period) {
          const start = iso(r['start']);
          if (!byPeriod.has(start)) byPeriod.set(start, {});
          addCounts(byPeriod.get(start)!, r);
        }
      }
      return {
        from: options.from ? iso(options.from) : null,
        to: options.to ? iso(options.to) : null,
        channels: total,
        ...(options.period
          ? {
              periods: [...byPeriod.entries()]
                .sort(([a], [b]) => (a < b ? 1 : -1))
                .map(([start, channels]) => ({ start, channels })),
            }
          : {}),
      };
    },

    /**
     * Deletes events recorded more than `retentionDays` days ago (AUDIT_RETENTION_DAYS), at most `batch` rows per
     * call so a first cleanup of a large table does not hold a long lock. Returns the number deleted.
     */
    async deleteExpired(retentionDays: number, batch = 10_000): Promise<number> {
      return (await knex(TABLE)
        .whereIn(
          'id',
          knex(TABLE)
            .select('id')
            .where('recorded_at', '<', knex.raw(`now() - (? * interval '1 day')`, [retentionDays]))
            .limit(batch),
        )
        .delete()) as number;
    },
  };
}

export type AuditRepository = ReturnType<typeof createAuditRepository>;

type CountField =
  'inbound' | 'skipped' | 'decided' | 'replied' | 'requester_replies' | 'action_notices' | 'delivered' | 'failed';

// The kind of a delivered outbound row in the stats query. Every `…:reply` is a reply (`replied`, as the contract
// has always counted it); the action worker's outcome notices (`action:<id>:reply`, action-audit.ts) are told apart
// from the answers to requests (the communicator's `<channel>:<message id>:reply`), so an action does not count as
// a second answer to its request. An operator's re-run (`action:<id>-retry<n>:reply`) is a notice too.
const DELIVERY_KIND = `CASE WHEN event_id LIKE 'action:%:reply' THEN 'action_notice'
  WHEN event_id LIKE '%:reply' THEN 'requester_reply' ELSE 'delivered' END`;

/** Which counts a kind of row of the stats query adds to, and where its reason is tallied. */
const KIND_COUNTS: Record<string, { fields: CountField[]; byReason?: 'skipped_by_reason' | 'failed_by_reason' }> = {
  inbound: { fields: ['inbound'] },
  skipped: { fields: ['skipped'], byReason: 'skipped_by_reason' },
  decided: { fields: ['decided'] },
  // A reply is a delivery too; both kinds of reply count in `replied`.
  requester_reply: { fields: ['replied', 'requester_replies', 'delivered'] },
  action_notice: { fields: ['replied', 'action_notices', 'delivered'] },
  delivered: { fields: ['delivered'] },
  failed: { fields: ['failed'], byReason: 'failed_by_reason' },
};

/** Adds one row of the stats query (`channel`, `kind`, `reason`, count `n`) to the counts of its channel. */
function addCounts(into: Record<string, AuditChannelCounts>, r: Record<string, unknown>): void {
  const kind = KIND_COUNTS[String(r['kind'])];
  if (!kind) return;
  const counts = (into[String(r['channel'])] ??= EMPTY_COUNTS());
  const n = Number(r['n']);
  for (const field of kind.fields) counts[field] += n;
  if (kind.byReason) {
    const reason = String(r['reason']);
    counts[kind.byReason][reason] = (counts[kind.byReason][reason] ?? 0) + n;
  }
}

/**
 * Runs `deleteExpired` on the first write and then every `everyWrites` writes, as the deliveries keys are kept
 * (delivery-repository.ts): no timer to own, and an idle log has nothing new to expire. Failures are handed to
 * `onError` (the next due write tries again).
 */
export function createAuditRetention(options: {
  repository: AuditRepository;
  retentionDays: number;
  everyWrites?: number;
  onError?: (err: unknown) => void;
}) {
  let writes = 0;
  const every = options.everyWrites ?? 100;
  return {
    /** Counts a write; on a due one, deletes expired rows (awaits it: callers outside a request may not). */
    async noteWrite(): Promise<void> {
      writes += 1;
      if (writes % every !== 1 && every !== 1) return;
      await options.repository.deleteExpired(options.retentionDays).catch((err: unknown) => options.onError?.(err));
    },
  };
}

export type AuditRetention = ReturnType<typeof createAuditRetention>;
