/**
 * A fake of our secretary's `POST /analyze-request` and `GET /health`, speaking its OpenAPI contract
 * (libs/contracts/openapi/secretary.yaml; requests are validated against it, answers are valid by construction).
 * Keeps the contract's idempotency: a repeated `message_id` returns the stored answer without calling `decide`.
 * `POST /action-executions/{id}/approve|reject` for executions a test marks `awaitApproval(id)`: the first
 * decision wins, a second is 409, an unknown id 404, as the real secretary answers.
 * `POST /deliveries` and `POST /deliveries/lookup` keep the handled keys (in `handled`), as the real secretary's
 * `deliveries` table does; while down they answer 503 too. `POST /webhook-tokens` reserves Mailgun tokens per payload
 * as the real secretary's `webhook_tokens` table does (201 / 200 same payload / 409 another), down with them.
 * `POST /rate-limits/consume` and `POST /audit-events` as agreed for issue 15 (docs/audit-and-limits.md): service
 * key only, bodies validated exactly (400 in the contract shape, nothing changed), budgets kept in this process
 * (they outlive the communicators a test restarts), audit events stored once per `event_id`.
 * `POST /telegram-parked-updates`, `/list` and `/remove` keep parked Telegram updates per resource (ParkedUpdatesFake).
 * Leaves out: GET /analyze-request, the directory, history, the rest of actions, the LLM services. Used until a test needs
 * the real secretary (see real-secretary.test.ts).
 */
import { STATUS_CODES } from 'node:http';
import express from 'express';
import { z } from 'zod';
import { TEST_KEYS } from '@workemon/testkit/api-keys';
import { loadOpenApiDocument, type AnalysisResponse, type AnalyzeRequest } from '@workemon/contracts';
import { createOpenApi } from '@workemon/service-kit';
import { listen, type Listening } from '@workemon/testkit';

const openapi = createOpenApi(loadOpenApiDocument('secretary'));

export type Decide = (request: AnalyzeRequest) => AnalysisResponse | { status: number; message: string };

export type FakeSecretary = Listening & {
  calls: AnalyzeRequest[];
  decide: Decide;
  /**
   * Answer 503 to everything (the secretary's database is down) until `up()`; with `'analysis'` only
   * /analyze-request and the approval calls do (e.g. an earlier attempt still holds the message), while
   * /deliveries keeps working.
   */
  down: (scope?: 'all' | 'analysis') => void;
  /** Calls of POST /deliveries and /deliveries/lookup (also while down). */
  deliveryCalls: number;
  up: () => void;
  /** Hold each answer this long. */
  delayMs: number;
  /** Hold the answer to this request this long (instead of delayMs). */
  delayFor?: (request: AnalyzeRequest) => number;
  /** Webhook tokens reserved through POST /webhook-tokens, by `<provider>:<token>`. */
  webhookTokens: Map<string, { payloadSha256: string; reservedAt: number; expiresAt: number }>;
  /** Handled keys recorded through POST /deliveries, with their outcome and reason. */
  handled: Map<string, { outcome: string; reason?: string }>;
  /** Approve/reject calls that reached the fake (also while down), with the bearer key they carried. */
  decisions: { id: number; decision: string; by?: string; authorization?: string }[];
  /** Makes an execution decidable (status awaiting_approval). */
  awaitApproval: (id: number) => void;
  /** The X-Request-Id of each (non-dry-run) /analyze-request call, in the order of `calls`. */
  analyzeRequestIds: Array<string | undefined>;
  /** Act as a secretary older than dry runs that would drop the flag (and act for real): answer without dry_run. */
  ignoreDryRun?: boolean;
  /** /analyze-request calls with `dry_run: true` (not in `calls`; never stored, so never replayed). */
  dryRunCalls: AnalyzeRequest[];
  /** Bodies of POST /rate-limits/consume that were valid (also those answered 503 while down). */
  consumeCalls: ConsumeRequest[];
  /** Bodies of POST /rate-limits/check (read-only: what consume would answer) that were valid. */
  checkCalls: ConsumeRequest[];
  /** Times a key's budget was taken (Unix ms), per key. */
  budgets: Map<string, number[]>;
  /** Audit events stored, in arrival order, once per event_id. */
  auditEvents: AuditEventBody[];
  /** POST /audit-events calls, also refused ones. */
  auditCalls: number;
  /** Status answered to POST /audit-events instead of storing (e.g. 503); undefined: normal. */
  auditFailure?: number;
  /**
   * Answer POST /audit-events as a secretary older than `event_provider` does (session 36): a 400 naming the first
   * event that carries it, in the real secretary's words (service-kit openapi.ts), and nothing stored.
   */
  auditEventProviderUnknown?: boolean;
  /** POST /audit-events calls refused that way (auditEventProviderUnknown). */
  auditEventProviderRefusals: number;
  /** Also refuse POST /rate-limits/consume with 503 (as while the database is down); false: normal. */
  rateLimitsDown: boolean;
  /** Refuse with 503 only the POST /rate-limits/consume calls whose keys this says (undefined: none). */
  rateLimitsDownFor?: (keys: string[]) => boolean;
  /**
   * Status POST /rate-limits/consume answers instead of drawing, with the secretary's error body (404: a secretary
   * older than the route; 400: a limit over the contract's maximum); undefined: normal.
   */
  rateLimitsFailure?: number;
  /** POST /deliveries (recording) answers 503 while lookups keep working. */
  recordsDown: boolean;
  /**
   * Status POST /deliveries/lookup answers (the secretary's error body) while everything else works: 500 for a
   * failing route, 404 for a secretary older than it; undefined: normal.
   */
  lookupFailure?: number;
} & ParkedUpdatesFake;

/**
 * The parked Telegram updates (`POST /telegram-parked-updates`, `/list`, `/remove`), as the real secretary's
 * `telegram_parked_updates` table keeps them: per resource and update_id, the first content stays (another content
 * is a conflict), listed lowest first; down (503) with the deliveries. Leaves out the size and row bounds.
 */
export type ParkedUpdatesFake = {
  /** `<resource>` → update_id → the parked Update (JSON text), in the order parked. */
  parkedUpdates: Map<string, Map<number, string>>;
  /** Every update_id ever parked through the route (also those removed since), per resource. */
  everParked: Map<string, Set<number>>;
  /** POST /telegram-parked-updates/remove answers 503 (the rows stay) while true. */
  parkedRemovalsDown: boolean;
};

/** Mounts the parked-update routes on `app` (validated against the contract); `down()` says when to answer 503. */
function mountParkedUpdates(
  app: express.Express,
  down: () => boolean,
  unavailable: (res: express.Response) => void,
): ParkedUpdatesFake {
  const fake: ParkedUpdatesFake = { parkedUpdates: new Map(), everParked: new Map(), parkedRemovalsDown: false };
  const rowsOf = (resource: string) => {
    const rows = fake.parkedUpdates.get(resource) ?? new Map<number, string>();
    fake.parkedUpdates.set(resource, rows);
    return rows;
  };
  app.post('/telegram-parked-updates', openapi.validate('parkTelegramUpdates'), (req, res) => {
    if (down()) return void unavailable(res);
    const body = req.body as { resource: string; updates: Array<{ update_id: number; update: unknown }> };
    const rows = rowsOf(body.resource);
    const ever = fake.everParked.get(body.resource) ?? new Set<number>();
    fake.everParked.set(body.resource, ever);
    const parked: number[] = [];
    const conflicts: number[] = [];
    for (const u of body.updates) {
      const text = JSON.stringify(u.update);
      if (!rows.has(u.update_id)) rows.set(u.update_id, text);
      (rows.get(u.update_id) === text ? parked : conflicts).push(u.update_id);
      ever.add(u.update_id);
    }
    res.json({ parked, conflicts });
  });
  app.post('/telegram-parked-updates/list', openapi.validate('listParkedTelegramUpdates'), (req, res) => {
    if (down()) return void unavailable(res);
    const body = req.body as { resource: string; after_update_id?: number; limit?: number };
    const updates = [...rowsOf(body.resource)]
      .filter(([id]) => id > (body.after_update_id ?? -1))
      .sort(([a], [b]) => a - b)
      .slice(0, body.limit ?? 100)
      .map(([update_id, text]) => ({
        update_id,
        update: JSON.parse(text) as object,
        parked_at: new Date().toISOString(),
      }));
    res.json({ updates });
  });
  app.post('/telegram-parked-updates/remove', openapi.validate('removeParkedTelegramUpdates'), (req, res) => {
    if (down() || fake.parkedRemovalsDown) return void unavailable(res);
    const body = req.body as { resource: string; update_ids: number[] };
    const rows = rowsOf(body.resource);
    res.json({ removed: body.update_ids.filter((id) => rows.delete(id)).length });
  });
  return fake;
}

const SKIP_REASONS = [
  'automatic',
  'rate-limited',
  'untrusted',
  'poison',
  'duplicate',
  'unreadable',
  'no-reply',
  'not-addressed',
] as const;

/** POST /rate-limits/consume, as agreed between the communicator and the secretary (issue 15). */
const consumeSchema = z
  .object({
    keys: z.array(z.string().min(1).max(300)).min(1).max(10),
    limit: z.number().int().min(1),
    window_seconds: z.number().int().min(1).max(86_400),
  })
  .strict();
export type ConsumeRequest = z.infer<typeof consumeSchema>;

/** One event of POST /audit-events, as agreed (issue 15); a skipped event's reason is one of the agreed ones. */
const auditEventSchema = z
  .object({
    event_id: z.string().min(1).max(200),
    channel: z.enum(['email', 'telegram', 'direct', 'mailgun', 'sendgrid', 'ses']),
    direction: z.enum(['inbound', 'outbound']),
    outcome: z.enum(['received', 'skipped', 'decided', 'delivered', 'failed']),
    reason: z.string().min(1).max(200).optional(),
    message_id: z.string().min(1).optional(),
    request_id: z.string().min(1).optional(),
    conversation_id: z.number().int().optional(),
    sender: z.string().min(1).optional(),
    recipient: z.string().min(1).optional(),
    subject: z.string().max(300).optional(),
    detail: z.string().max(1000).optional(),
    dry_run: z.boolean().optional(),
    occurred_at: z.string().datetime({ offset: true }).optional(),
    event_provider: z.enum(['imap', 'mailgun', 'sendgrid', 'ses']).optional(),
  })
  .strict()
  .refine((e) => e.outcome !== 'skipped' || (SKIP_REASONS as readonly string[]).includes(e.reason ?? ''), {
    message: `a skipped event's reason is one of ${SKIP_REASONS.join(', ')}`,
  });
export type AuditEventBody = z.infer<typeof auditEventSchema>;
const auditBatchSchema = z.object({ events: z.array(auditEventSchema).min(1).max(100) }).strict();

export const answer = (response: string, request = ''): AnalysisResponse => ({
  is_enough: true,
  request,
  action: 'ответить сообщением',
  question: '',
  response,
  'context-response': response,
});

export const clarify = (question: string, request = ''): AnalysisResponse => ({
  is_enough: false,
  request,
  action: 'уточнить',
  question,
  // As the secretary answers: the explanation is the question (the seed's example of is_enough=false).
  response: question,
  'context-response': question,
});

/** By default: echoes the request back in the answer. */
export async function startFakeSecretary(decide?: Decide): Promise<FakeSecretary> {
  const stored = new Map<string, AnalysisResponse>();
  const dryRunCalls: AnalyzeRequest[] = [];
  const analyzeRequestIds: Array<string | undefined> = [];
  let isDown = false;
  let deliveriesDown = false;
  const state = {
    deliveryCalls: 0,
    calls: [] as AnalyzeRequest[],
    decide: decide ?? ((r: AnalyzeRequest) => answer(`Ответ на: ${r.request}`, r.request)),
    delayMs: 0,
  };
  const app = express();
  app.use(express.json({ limit: '5mb' }));
  app.get('/health', (_req, res) => {
    res.status(isDown ? 503 : 200).json({
      status: isDown ? 'down' : 'ok',
      service: 'secretary',
      version: 'fake',
      uptime_s: 1,
      checks: {},
    });
  });
  // `dry_run: true` (issue 15, owned by the secretary's `limits` work): taken off before the contract check of this
  // branch's secretary.yaml, answered with `dry_run: true` and `would_execute`, and never stored.
  app.post('/analyze-request', (req, res, next) => {
    const body = req.body as { dry_run?: unknown } | undefined;
    res.locals['dryRun'] = body?.dry_run === true && !(state as { ignoreDryRun?: boolean }).ignoreDryRun;
    if (body && 'dry_run' in body) {
      if (typeof body.dry_run !== 'boolean') {
        res.status(400).json({ error: 'Bad Request', message: 'dry_run must be a boolean', statusCode: 400 });
        return;
      }
      delete body.dry_run;
    }
    next();
  });
  app.post('/analyze-request', openapi.validate('analyzeRequestPost'), async (req, res) => {
    const body = req.body as AnalyzeRequest;
    const dryRun = res.locals['dryRun'] === true;
    (dryRun ? dryRunCalls : state.calls).push(body);
    if (!dryRun) analyzeRequestIds.push(req.get('x-request-id'));
    const delay = (state as { delayFor?: (r: AnalyzeRequest) => number }).delayFor?.(body) ?? state.delayMs;
    if (delay) await new Promise((resolve) => setTimeout(resolve, delay));
    if (isDown) {
      res
        .status(503)
        .json({ error: 'Service Unavailable', message: "Dependency 'database' is unavailable", statusCode: 503 });
      return;
    }
    const key = body.message_id && !dryRun ? `${body.channel}:${body.message_id}` : undefined;
    const previous = key ? stored.get(key) : undefined;
    if (previous) {
      res.json(previous);
      return;
    }
    const result = state.decide(body);
    if ('status' in result) {
      res.status(result.status).json({ error: 'Rejected', message: result.message, statusCode: result.status });
      return;
    }
    if (key) stored.set(key, result);
    if (dryRun) {
      res.json({
        ...result,
        dry_run: true,
        would_execute: result.no_reply ? [] : [{ action: result.action, target: body.username, text: result.response }],
      });
      return;
    }
    res.json(result);
  });
  const handled = new Map<string, { outcome: string; reason?: string }>();
  const unavailable = (res: express.Response) =>
    res
      .status(503)
      .json({ error: 'Service Unavailable', message: "Dependency 'database' is unavailable", statusCode: 503 });
  app.post('/deliveries', openapi.validate('recordDeliveries'), (req, res) => {
    state.deliveryCalls += 1;
    if (deliveriesDown || extra.recordsDown) return void unavailable(res);
    const body = req.body as { keys: string[]; outcome: string; reason?: string };
    let recorded = 0;
    for (const key of body.keys) {
      if (handled.has(key)) continue;
      handled.set(key, { outcome: body.outcome, reason: body.reason });
      recorded += 1;
    }
    res.json({ recorded });
  });
  app.post('/deliveries/lookup', openapi.validate('lookupDeliveries'), (req, res) => {
    state.deliveryCalls += 1;
    if (deliveriesDown) return void unavailable(res);
    if (extra.lookupFailure) {
      const status = extra.lookupFailure;
      return void res
        .status(status)
        .json({ error: status === 404 ? 'Not Found' : 'Error', message: 'lookup', statusCode: status });
    }
    const keys = (req.body as { keys: string[] }).keys;
    res.json({
      handled: keys
        .filter((key) => handled.has(key))
        .map((key) => ({ key, outcome: handled.get(key)!.outcome, recorded_at: new Date().toISOString() })),
    });
  });
  const parkedFake = mountParkedUpdates(app, () => deliveriesDown, unavailable);
  // Webhook token reservations (POST /webhook-tokens), as the real secretary decides them: free or expired → 201,
  // the same payload → 200 unchanged, another payload → 409 `token_reserved`; down with the deliveries.
  const webhookTokens = new Map<string, { payloadSha256: string; reservedAt: number; expiresAt: number }>();
  app.post('/webhook-tokens', openapi.validate('reserveWebhookToken'), (req, res) => {
    if (deliveriesDown) return void unavailable(res);
    const body = req.body as { provider: string; token: string; payload_sha256: string; ttl_seconds: number };
    const key = `${body.provider}:${body.token}`;
    const now = Date.now();
    let current = webhookTokens.get(key);
    const fresh = !current || current.expiresAt <= now;
    if (fresh) {
      current = { payloadSha256: body.payload_sha256, reservedAt: now, expiresAt: now + body.ttl_seconds * 1000 };
      webhookTokens.set(key, current);
    } else if (current!.payloadSha256 !== body.payload_sha256) {
      res.setHeader('X-Workemon-Error-Code', 'token_reserved');
      res.setHeader('X-Workemon-Retryable', 'false');
      res.status(409).json({ error: 'Conflict', message: 'reserved for another payload', statusCode: 409 });
      return;
    }
    res.status(fresh ? 201 : 200).json({
      provider: body.provider,
      token: body.token,
      payload_sha256: current!.payloadSha256,
      reserved_at: new Date(current!.reservedAt).toISOString(),
      expires_at: new Date(current!.expiresAt).toISOString(),
    });
  });
  // Poller leases (PUT/DELETE /poller-leases/{name}), as the real secretary grants them: free, lapsed or the same
  // holder → 200; another live holder → 409. Unlike analyses they stay up under down(): a test of a secretary
  // outage is about the mail and updates in flight, not about which replica polls.
  const leases = new Map<string, { holder: string; epoch: number; expiresAt: number }>();
  app.put('/poller-leases/:name', openapi.validate('acquirePollerLease'), (req, res) => {
    const name = req.params['name'] as string;
    const { holder, ttl_ms } = req.body as { holder: string; ttl_ms: number };
    const now = Date.now();
    const current = leases.get(name);
    if (current && current.holder !== holder && current.expiresAt > now) {
      res
        .status(409)
        .json({ error: 'Conflict', message: `Lease '${name}' is held by ${current.holder}`, statusCode: 409 });
      return;
    }
    const epoch = !current
      ? 1
      : current.holder === holder && current.expiresAt > now
        ? current.epoch
        : current.epoch + 1;
    leases.set(name, { holder, epoch, expiresAt: now + ttl_ms });
    const iso = new Date(now).toISOString();
    res.json({ name, holder, epoch, acquired_at: iso, expires_at: new Date(now + ttl_ms).toISOString() });
  });
  app.delete('/poller-leases/:name', openapi.validate('releasePollerLease'), (req, res) => {
    const name = req.params['name'] as string;
    if (leases.get(name)?.holder === req.query['holder']) leases.delete(name);
    res.status(204).end();
  });
  const executions = new Map<number, string>();
  const decisions: FakeSecretary['decisions'] = [];
  app.post('/action-executions/:id/:decision', (req, res) => {
    const id = Number(req.params.id);
    const decision = req.params.decision;
    const fail = (status: number, message: string) =>
      res.status(status).json({
        error: status === 409 ? 'Conflict' : status === 404 ? 'Not Found' : 'Service Unavailable',
        message,
        statusCode: status,
      });
    if (decision !== 'approve' && decision !== 'reject') return void fail(404, 'Not Found');
    decisions.push({ id, decision, by: (req.body as { by?: string }).by, authorization: req.get('authorization') });
    if (isDown) return void fail(503, "Dependency 'database' is unavailable");
    const status = executions.get(id);
    if (!status) return void fail(404, `Action execution ${id} not found`);
    if (status !== 'awaiting_approval')
      return void fail(409, `Action execution ${id} is not awaiting approval (status: ${status})`);
    const next = decision === 'approve' ? 'pending' : 'skipped';
    executions.set(id, next);
    res.json({ id, status: next, decision: decision === 'approve' ? 'approved' : 'rejected' });
  });
  // ---- issue 15: durable rate limits and the audit log (service key only) ----
  const consumeCalls: ConsumeRequest[] = [];
  const budgets = new Map<string, number[]>();
  const auditEvents: AuditEventBody[] = [];
  const auditIds = new Set<string>();
  const extra = {
    auditCalls: 0,
    auditFailure: undefined as number | undefined,
    auditEventProviderUnknown: false,
    auditEventProviderRefusals: 0,
    rateLimitsDown: false,
    rateLimitsDownFor: undefined as ((keys: string[]) => boolean) | undefined,
    rateLimitsFailure: undefined as number | undefined,
    recordsDown: false,
    lookupFailure: undefined as number | undefined,
  };
  const serviceOnly: express.RequestHandler = (req, res, next) => {
    if (req.get('authorization') === `Bearer ${TEST_KEYS.service}`) return next();
    res.status(401).json({ error: 'Unauthorized', message: 'a service key is required', statusCode: 401 });
  };
  const badRequest = (res: express.Response, error: z.ZodError) =>
    res.status(400).json({
      error: 'Bad Request',
      message: error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '),
      statusCode: 400,
    });
  // POST /rate-limits/check: the verdict consume would give now, taking nothing (the secretary's store.check).
  const checkCalls: ConsumeRequest[] = [];
  app.post('/rate-limits/check', serviceOnly, (req, res) => {
    const parsed = consumeSchema.safeParse(req.body);
    if (!parsed.success) return void badRequest(res, parsed.error);
    checkCalls.push(parsed.data);
    if (deliveriesDown || extra.rateLimitsDown) return void unavailable(res);
    const { keys, limit, window_seconds } = parsed.data;
    const now = Date.now();
    for (const key of keys) {
      const recent = (budgets.get(key) ?? []).filter((at) => now - at < window_seconds * 1000);
      if (recent.length >= limit) {
        const retry = Math.max(1, Math.ceil((recent[0]! + window_seconds * 1000 - now) / 1000));
        return void res.json({ allowed: false, key, retry_after_seconds: retry });
      }
    }
    res.json({ allowed: true });
  });
  app.post('/rate-limits/consume', serviceOnly, (req, res) => {
    const parsed = consumeSchema.safeParse(req.body);
    if (!parsed.success) return void badRequest(res, parsed.error);
    consumeCalls.push(parsed.data);
    if (deliveriesDown || extra.rateLimitsDown || extra.rateLimitsDownFor?.(parsed.data.keys))
      return void unavailable(res);
    if (extra.rateLimitsFailure) {
      const status = extra.rateLimitsFailure;
      res.status(status).json({ error: STATUS_CODES[status], message: 'refused by the test', statusCode: status });
      return;
    }
    const { keys, limit, window_seconds } = parsed.data;
    const now = Date.now();
    const windowMs = window_seconds * 1000;
    // All or nothing: the first exhausted key refuses the whole call and nothing is taken.
    for (const key of keys) {
      const recent = (budgets.get(key) ?? []).filter((at) => now - at < windowMs);
      budgets.set(key, recent);
      if (recent.length >= limit) {
        res.json({
          allowed: false,
          key,
          retry_after_seconds: Math.max(1, Math.ceil((recent[0]! + windowMs - now) / 1000)),
        });
        return;
      }
    }
    for (const key of keys) budgets.get(key)!.push(now);
    res.json({ allowed: true });
  });
  app.post('/audit-events', serviceOnly, (req, res) => {
    extra.auditCalls += 1;
    if (extra.auditFailure) {
      res
        .status(extra.auditFailure)
        .json({ error: 'Failure', message: 'refused by the test', statusCode: extra.auditFailure });
      return;
    }
    if (deliveriesDown) return void unavailable(res);
    const withProvider = extra.auditEventProviderUnknown
      ? ((req.body as { events?: unknown[] })?.events ?? []).findIndex(
          (e) => !!e && typeof e === 'object' && 'event_provider' in e,
        )
      : -1;
    if (withProvider >= 0) {
      extra.auditEventProviderRefusals += 1;
      res.status(400).json({
        error: 'Bad Request',
        message: `Parameter 'events.${withProvider}.event_provider' is not allowed`,
        statusCode: 400,
      });
      return;
    }
    const parsed = auditBatchSchema.safeParse(req.body);
    if (!parsed.success) return void badRequest(res, parsed.error);
    let accepted = 0;
    for (const event of parsed.data.events) {
      if (auditIds.has(event.event_id)) continue;
      auditIds.add(event.event_id);
      auditEvents.push(event);
      accepted += 1;
    }
    res.status(202).json({ accepted, duplicates: parsed.data.events.length - accepted });
  });

  app.use(((err, _req, res, _next) => {
    const status = (err as { status?: number }).status ?? 500;
    res.status(status).json({ error: 'Error', message: (err as Error).message, statusCode: status });
  }) as express.ErrorRequestHandler);
  const served = await listen(app);
  const result = Object.assign(state, served, {
    dryRunCalls,
    analyzeRequestIds,
    consumeCalls,
    checkCalls,
    budgets,
    auditEvents,
    handled,
    webhookTokens,
    decisions,
    parkedUpdates: parkedFake.parkedUpdates,
    everParked: parkedFake.everParked,
    awaitApproval: (id: number) => void executions.set(id, 'awaiting_approval'),
    down: (scope: 'all' | 'analysis' = 'all') => {
      isDown = true;
      deliveriesDown = scope === 'all';
    },
    up: () => {
      isDown = false;
      deliveriesDown = false;
    },
  }) as FakeSecretary;
  // Test-settable switches, read by the routes above.
  for (const name of [
    'auditCalls',
    'auditFailure',
    'auditEventProviderUnknown',
    'auditEventProviderRefusals',
    'rateLimitsDown',
    'rateLimitsDownFor',
    'rateLimitsFailure',
    'recordsDown',
    'lookupFailure',
  ] as const) {
    Object.defineProperty(result, name, {
      get: () => extra[name],
      set: (v: never) => {
        extra[name] = v;
      },
      enumerable: true,
    });
  }
  Object.defineProperty(result, 'parkedRemovalsDown', {
    get: () => parkedFake.parkedRemovalsDown,
    set: (v: boolean) => {
      parkedFake.parkedRemovalsDown = v;
    },
    enumerable: true,
  });
  return result;
}
