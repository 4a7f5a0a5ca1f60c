import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import type { Knex } from 'knex';
import type { Channel } from '@workemon/contracts';
import { getRequestId, isAppError, principalOf, sleep, type Logger } from '@workemon/service-kit';
import type { DecisionRecordedHook } from '../decision.js';
import {
  AUDIT_EVENT_PROVIDERS,
  auditRowOf,
  type AuditChannel,
  type AuditEventProvider,
  type AuditEventInput,
  type AuditRepository,
  type AuditRetention,
} from './audit-repository.js';

/** The audit channel of an analysis channel: the contract's `tg` is `telegram` in the audit log. */
export function auditChannelOf(channel: Channel | string): AuditChannel {
  return channel === 'tg' ? 'telegram' : channel === 'email' ? 'email' : 'direct';
}

/** What one /analyze-request call has recorded so far (kept in async context for the decision hook). */
type RequestAudit = {
  req: Request;
  res: Response;
  /** When the request arrived (Date.now()); written as ISO 8601 (receivedAtOf). */
  receivedAtMs: number;
  /** Set by the decision hook: received/decided rows are in the decision's transaction. */
  decided: boolean;
  /** Set once the request's own row (skipped, or a dry run's) is written or being written. */
  settled: boolean;
  /** The error the request ended with, as the error middleware saw it: its code and HTTP status. */
  errorCode?: string;
  errorStatus?: number;
  /** What `res.json` was given (the decision of a dry run, which writes nothing of its own). */
  responseBody?: unknown;
};

const PATH = '/analyze-request';

/** When the request arrived, as the audit rows' `occurred_at` (ISO 8601, UTC). */
const receivedAtOf = (audit: RequestAudit) => new Date(audit.receivedAtMs).toISOString();

/**
 * The JSON body as sent, read leniently: undefined when the body was refused (broken JSON, too large: the kit
 * keeps that error for after the key check and throws it to whoever reads `req.body` before).
 */
function sentBody(req: Request): unknown {
  try {
    return req.body as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Whether the request may be a dry run (`dry_run` in the query or the JSON body), read leniently before the route
 * validated it: only then is the answer kept for the audit rows (a dry run stores no decision of its own).
 */
function mayBeDryRun(req: Request): boolean {
  const body: unknown = sentBody(req);
  return req.url.includes('dry_run') || (typeof body === 'object' && body !== null && 'dry_run' in body);
}
const REFUSAL_WRITE_WAIT_MS = 1000;

// Reasons for a refused or failed REST request (docs/audit.md); the skipped reasons of the interface first.
function reasonFor(status: number, code: string | undefined): string {
  if (code === 'unknown_user') return 'untrusted';
  if (code === 'duplicate_in_progress') return 'duplicate';
  if (status === 429) return 'rate-limited';
  if (status === 401) return 'unauthenticated';
  if (status === 403) return 'forbidden';
  if (status === 413 || code === 'request_too_long') return 'too-long';
  if (status === 400) return 'invalid-request';
  if (status === 504) return 'timeout';
  if (status === 502) return 'upstream-error';
  if (status === 503) return 'unavailable';
  if (status >= 500) return 'error';
  return `http-${status}`;
}

const str = (v: unknown, max: number) =>
  typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, max) : undefined;

/**
 * The caller's fields: as the route validated them (control characters removed), else as sent (GET: query, POST:
 * body), read leniently — a refused request may be malformed. The repository cleans what it stores.
 */
function fieldsOf(req: Request, res: Response): Record<string, unknown> {
  const validated = res.locals['validated'] as { query?: unknown; body?: unknown } | undefined;
  const source: unknown = validated
    ? req.method === 'GET'
      ? validated.query
      : validated.body
    : req.method === 'GET'
      ? req.query
      : sentBody(req);
  return source && typeof source === 'object' && !Array.isArray(source) ? (source as Record<string, unknown>) : {};
}

/**
 * A dry run (`dry_run: true` on /analyze-request) as the route accepted it (the validated request) or answered
 * it (`dry_run: true` in the answer): a field the contract does not know is never taken for one.
 */
function isDryRun(res: Response, responseBody?: unknown): boolean {
  const validated = res.locals['validated'] as { query?: Record<string, unknown>; body?: unknown } | undefined;
  const body = validated?.body as Record<string, unknown> | undefined;
  return (
    body?.['dry_run'] === true ||
    validated?.query?.['dry_run'] === true ||
    (responseBody as Record<string, unknown> | undefined)?.['dry_run'] === true
  );
}

/**
 * Whose inbound rows these are: the communicator (service key) reports email and Telegram messages itself
 * (POST /audit-events); anything else reaching /analyze-request is the REST (`direct`) intake, whatever the
 * body's `channel` claims.
 */
function recordsInbound(res: Response, fields: Record<string, unknown>): boolean {
  const principal = principalOf(res);
  const fromCommunicator = principal?.keyClass === 'service' && !principal.anonymous;
  return !(fromCommunicator && (fields['channel'] === 'email' || fields['channel'] === 'tg'));
}

/**
 * The intake of a mail the communicator passed on (`intake` on /analyze-request: `imap`, `mailgun`, `sendgrid`,
 * `ses`), for the audit rows' `event_provider`; undefined for the REST intake (`direct`: no caller there vouches for
 * how a mail arrived), for other channels, and when the communicator did not say (an older one).
 */
function eventProviderOf(fields: Record<string, unknown>, direct: boolean): AuditEventProvider | undefined {
  const intake = fields['intake'];
  if (direct || fields['channel'] !== 'email') return undefined;
  return AUDIT_EVENT_PROVIDERS.find((p) => p === intake);
}

function callerDetail(res: Response): string {
  const principal = principalOf(res);
  return principal ? `via ${principal.keyClass} key '${principal.name}'` : 'no valid key';
}

/**
 * The secretary's own audit rows (docs/audit.md): for every /analyze-request on the REST (`direct`) intake a
 * `received` and a `decided` row written in the decision's transaction, or one `skipped` row with the reason
 * when the request is refused or fails (400, 401, 403, 413, 429, 5xx) or only replays a stored answer; and a
 * `decided` row for every decision on any channel. Dry runs are marked `dry_run`.
 *
 * Mount `track` before the route's auth, `captureError` among the error handlers (before the shared one), and
 * give the analyzer `decisionHook(next)` as its `onDecisionRecorded`.
 */
export function createAuditRecorder(deps: { repository: AuditRepository; retention?: AuditRetention; logger: Logger }) {
  const storage = new AsyncLocalStorage<RequestAudit>();
  const { repository, logger } = deps;

  async function write(events: AuditEventInput[]): Promise<void> {
    await repository.insert(events);
    await deps.retention?.noteWrite();
  }

  /** The single row of a request that did not produce a decision of its own. */
  function settleEvents(audit: RequestAudit): AuditEventInput[] {
    const { req, res } = audit;
    // A caller without a valid key (401) vouches for nothing: the row says a refused call came, and keeps no name,
    // subject or message_id it claimed (anyone on the network could write "the director" into the log).
    const fields = (audit.errorStatus ?? res.statusCode) === 401 ? {} : fieldsOf(req, res);
    if (!recordsInbound(res, fields)) return [];
    const dryRun = isDryRun(res, audit.responseBody);
    const base = {
      channel: 'direct' as const,
      direction: 'inbound' as const,
      request_id: str(res.getHeader('X-Request-Id'), 200) ?? getRequestId(),
      message_id: str(fields['message_id'], 998),
      sender: str(fields['username'], 320),
      subject: str(fields['subject'], 300),
      dry_run: dryRun,
    };
    const status = audit.errorStatus ?? res.statusCode;
    if (status < 400 && dryRun) {
      // A dry run stores no decision (no hook ran): its received and decided rows come from the answer.
      const body = (audit.responseBody ?? {}) as Record<string, unknown>;
      const id = randomUUID();
      return [
        {
          ...base,
          event_id: `direct:${id}:received`,
          outcome: 'received',
          detail: callerDetail(res),
          occurred_at: receivedAtOf(audit),
        },
        {
          ...base,
          event_id: `direct:${id}:decided`,
          outcome: 'decided',
          conversation_id: typeof body['conversation_id'] === 'number' ? body['conversation_id'] : undefined,
          detail: decisionDetail(body['action'], body['is_enough']),
        },
      ];
    }
    return [
      {
        ...base,
        event_id: `direct:${randomUUID()}:skipped`,
        outcome: 'skipped',
        reason: status < 400 ? 'duplicate' : reasonFor(status, audit.errorCode),
        detail:
          status < 400
            ? `answered from the stored decision of this message_id; ${callerDetail(res)}`
            : `HTTP ${status}${audit.errorCode ? ` ${audit.errorCode}` : ''}; ${callerDetail(res)}`,
        occurred_at: receivedAtOf(audit),
      },
    ];
  }

  async function settle(audit: RequestAudit): Promise<void> {
    if (audit.settled || audit.decided) return;
    audit.settled = true;
    const events = settleEvents(audit);
    if (events.length) await write(events);
  }

  function warn(err: unknown) {
    logger.warn('could not write the audit row of a request', { err: err instanceof Error ? err : undefined });
  }

  // Whatever did not pass the error middleware (an answer written directly, a dry run, a replay) is settled
  // once the answer is out; a request that decided has its rows already. One listener for every response.
  function settleOnFinish(this: Response): void {
    const audit = this.locals['audit'] as RequestAudit;
    if (audit.settled || audit.decided) return;
    void settle(audit).catch(warn);
  }

  function begin(req: Request, res: Response): RequestAudit {
    const audit: RequestAudit = { req, res, receivedAtMs: Date.now(), decided: false, settled: false };
    res.locals['audit'] = audit;
    if (mayBeDryRun(req)) keepResponseBody(res, audit);
    res.once('finish', settleOnFinish);
    return audit;
  }

  const track: RequestHandler = (req, res, next) => {
    if (req.path !== PATH) return next();
    storage.run(begin(req, res), next);
  };

  // Refusals are written before the error answer goes out, so a client that sees its 4xx finds the row.
  const captureError: ErrorRequestHandler = (err, req, res, next) => {
    if (req.path !== PATH) return next(err);
    // A body that is not JSON fails before `track` ran.
    const audit = (res.locals['audit'] as RequestAudit | undefined) ?? begin(req, res);
    audit.errorCode = isAppError(err) ? err.code : undefined;
    audit.errorStatus = statusOf(err);
    // With the database away the write fails only after the pool's acquire timeout: the answer waits at most
    // REFUSAL_WRITE_WAIT_MS for it (the write goes on, and is logged if it fails).
    void waitAtMost(settle(audit).catch(warn), REFUSAL_WRITE_WAIT_MS).then(() => next(err));
  };

  /** Wraps the analyzer's `onDecisionRecorded`: the audit rows are written in the same transaction, first. */
  /** The `received` (REST only) and `decided` rows of a recorded decision. */
  function decisionEvents(recorded: Parameters<DecisionRecordedHook>[1]): AuditEventInput[] {
    const audit = storage.getStore();
    const { decision, context } = recorded;
    const fields = audit ? fieldsOf(audit.req, audit.res) : {};
    const direct = audit ? recordsInbound(audit.res, fields) : context.channel === 'direct';
    const eventProvider = eventProviderOf(fields, direct);
    const base = {
      channel: direct ? ('direct' as const) : auditChannelOf(context.channel),
      direction: 'inbound' as const,
      request_id: getRequestId(),
      message_id: str(fields['message_id'], 998),
      conversation_id: context.conversationId,
      sender: context.sender,
      subject: context.subject?.slice(0, 300),
      dry_run: audit ? isDryRun(audit.res) : false,
      ...(eventProvider ? { event_provider: eventProvider } : {}),
    };
    const events: AuditEventInput[] = [];
    if (direct && audit) {
      events.push({
        ...base,
        event_id: `analysis:${context.analysisId}:received`,
        outcome: 'received',
        detail: callerDetail(audit.res),
        occurred_at: receivedAtOf(audit),
      });
    }
    events.push({
      ...base,
      event_id: `analysis:${context.analysisId}:decided`,
      outcome: 'decided',
      detail: `${decisionDetail(decision.action, decision.is_enough)}; analysis ${context.analysisId}`,
    });
    return events;
  }

  /**
   * Wraps the action hooks (`next`): the decision's audit rows are stored by the statement that records the
   * decision (`auditRows`, no extra round trip), and the transaction is opened only when `next` writes.
   */
  function decisionHook(next?: DecisionRecordedHook): DecisionRecordedHook {
    const hook = async (trx: Knex.Transaction, recorded: Parameters<DecisionRecordedHook>[1]) => {
      await next?.(trx, recorded);
    };
    return Object.assign(hook, {
      writes: (recorded: Parameters<DecisionRecordedHook>[1]) => (next ? (next.writes?.(recorded) ?? true) : false),
      auditRows: (recorded: Parameters<DecisionRecordedHook>[1]) => decisionEvents(recorded).map(auditRowOf),
      afterRecorded: () => {
        const audit = storage.getStore();
        if (audit) audit.decided = true;
      },
    });
  }

  return { track, captureError, decisionHook };
}

/** Keeps what `res.json` is given in `audit.responseBody` (a dry run's answer, for its audit rows). */
function keepResponseBody(res: Response, audit: RequestAudit): void {
  const json = res.json.bind(res);
  res.json = (body: unknown) => {
    audit.responseBody = body;
    return json(body);
  };
}

/**
 * Waits until `work` settles or `ms` pass, whichever is first; never rejects. The wait is the resilience
 * module's `sleep`, aborted (its timer cleared) as soon as `work` settles; `work` itself goes on either way.
 */
async function waitAtMost(work: Promise<unknown>, ms: number): Promise<void> {
  const settled = new AbortController();
  const abort = () => settled.abort();
  void work.then(abort, abort);
  await sleep(ms, { signal: settled.signal });
}

// The status the shared error handler will answer with (an AppError's, a body parser's 400/413, else 500).
function statusOf(err: unknown): number {
  if (isAppError(err)) return err.status;
  const e = err as { status?: unknown; statusCode?: unknown } | undefined;
  const status = e?.status ?? e?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}

function decisionDetail(action: unknown, isEnough: unknown): string {
  return `action: ${typeof action === 'string' ? action : 'none'}; is_enough: ${String(isEnough)}`;
}

export type AuditRecorder = ReturnType<typeof createAuditRecorder>;
