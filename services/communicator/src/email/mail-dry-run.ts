import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type MailComposerClass from 'nodemailer/lib/mail-composer/index.js';
import { AppError, errors, getRequestId, isAppError, type Logger } from '@workemon/service-kit';
import {
  rateLimitVerdictOf,
  type AnalysisResponse,
  type DryRunVerdict as ContractDryRunVerdict,
} from '@workemon/contracts';
import { auditEventId, type AuditReporter, type AuditSkipReason } from '../audit-reporter.js';
import type { SecretaryClient } from '../secretary-client.js';
import { MAIL_SKIP_REASONS } from './mail-audit.js';
import { contentKeyOf, legacyMailDeliveryKey, mailDeliveryKey } from './mail-handled-record.js';
import {
  OVER_BUDGET_DETAIL,
  WouldBeRateLimitedError,
  overBudget,
  type DryRunBudgets,
  type OverBudget,
} from './mail-dry-run-budget.js';
import type { MailOutcome, MailPipeline } from './mail-pipeline.js';

/** A mail to try: raw RFC 5322 bytes, or the fields of a plain-text mail (`POST /test` with JSON). */
export type DryRunInput =
  { raw: Buffer } | { from: string; subject?: string; text: string; message_id?: string; in_reply_to?: string };

/**
 * The answer of `POST /test` (communicator.yaml `DryRunVerdict`): `skipped` with the audit reason (and the
 * finer rule in `detail`), or `decided` with the secretary's dry-run answer and the reply that would be sent.
 * Narrower than the contract's type, which has `reason` as any string and `decision` as any object: here
 * `reason` is one of the audit log's reasons and `decision` the secretary's AnalysisResponse. The compiler checks
 * that every such verdict is a contract `DryRunVerdict` (below).
 */
export type DryRunVerdict = Omit<ContractDryRunVerdict, 'reason' | 'decision'> & {
  reason?: AuditSkipReason | 'refused';
  decision?: AnalysisResponse;
};
const verdictIsContractVerdict: DryRunVerdict extends ContractDryRunVerdict ? true : false = true;
void verdictIsContractVerdict;

/** Builds the RFC 5322 mail of a JSON dry run (nodemailer's composer: encoded words, line folding, a Message-ID). */
async function composeMail(input: Exclude<DryRunInput, { raw: Buffer }>, to: string): Promise<Buffer> {
  // Required at the first dry run, not at load (docs/operations.md, "Memory at start-up").
  const MailComposer = createRequire(import.meta.url)(
    'nodemailer/lib/mail-composer/index.js',
  ) as typeof MailComposerClass;
  return new MailComposer({
    from: input.from,
    to,
    subject: input.subject ?? '',
    text: input.text,
    ...(input.message_id ? { messageId: input.message_id } : {}),
    ...(input.in_reply_to ? { inReplyTo: input.in_reply_to, references: [input.in_reply_to] } : {}),
  })
    .compile()
    .build();
}

/**
 * Who asked for a dry run, as far as what it may learn goes: `full` (an admin key) sees what the secretary shows its
 * service key; `client` (a client key) sees what the secretary shows a client key and nothing of the mailbox's
 * history (docs/audit-and-limits.md, "POST /test and client keys").
 */
export type DryRunView = 'full' | 'client';

/**
 * A dry run of the mail pipeline (`createMailDryRun`); `view` defaults to `client`, the narrower one. `caller` is
 * the budget key of the caller's API key (`rateLimitKey.testKey`) that a decided mail draws from; without it nothing
 * is drawn.
 */
export type MailDryRun = (
  input: DryRunInput,
  options?: { view?: DryRunView; caller?: string },
) => Promise<DryRunVerdict>;

/** TEST_RATE_LIMIT_PER_KEY_PER_MINUTE's window, in seconds. */
const TEST_LIMIT_WINDOW_SECONDS = 60;

/**
 * `POST /test`: runs the mail pipeline (mail-pipeline.ts) on one mail with `dryRun` — parse, loop rules, the
 * duplicate check (read-only: the `mail:<Message-ID>` delivery record), sender trust, and the secretary's decision
 * asked with `dry_run: true` — and returns the verdict. No SMTP, no IMAP flag, no sender's budget, no delivery
 * record; one audit event marked `dry_run: true`. A mail that gets as far as the secretary's decision calls the
 * model, so it takes one unit from its caller's budget (`options.caller`, `test:key:<class>:<name>`,
 * `limitPerKeyPerMinute`, kept by the secretary like the senders' budgets): over it, 429 `rate_limited` with
 * Retry-After and no secretary call.
 *
 * In the `full` view (an admin key) the mail's sender budgets are read, never drawn from (`budgets`: the secretary's
 * `POST /rate-limits/check`): a mail the real pipeline would refuse (RATE_LIMIT_PER_HOUR, RATE_LIMIT_MAILBOX_PER_HOUR)
 * ends there as it would — `skipped` / `rate-limited` with the exhausted budget in `rate_limit`, no secretary call,
 * nothing drawn from the caller's budget. The `client` view does not read them: like the duplicate check, they tell
 * the mailbox's history (how much a given address has written).
 *
 * The communicator asks the secretary with its own service key, which sees more than a client key may. In the
 * `client` view (`options.view`, the default) the pass is the one a client key would get from the secretary
 * itself: the Message-ID is treated as never answered (no lookup, so `duplicate` never tells whether our mailbox
 * answered a mail), the mail's own Authentication-Results are not believed (the caller wrote them), and the
 * secretary is asked for `dry_run_view: "client"` (rule names, directory targets and operator reasons left out).
 * @throws AppError 400 for a mail that cannot be parsed; 429 over the caller's budget; the secretary's error (503
 *   unreachable, 502 when it did not confirm the dry run) when it cannot decide or the budgets cannot be read.
 */
export function createMailDryRun(deps: {
  pipeline: MailPipeline;
  secretary: Pick<SecretaryClient, 'lookupHandled' | 'consumeRateLimit'>;
  /** POST /test mails decided per caller's key per minute (TEST_RATE_LIMIT_PER_KEY_PER_MINUTE); 0: no limit. */
  limitPerKeyPerMinute: number;
  /** Our address, the `To:` of a JSON dry run's mail. */
  ownAddress: string;
  /** The senders' budgets, read (never drawn from) in the `full` view; absent: not read. */
  budgets?: DryRunBudgets;
  audit?: AuditReporter;
  logger: Logger;
}): MailDryRun {
  return async (input, options = {}) => {
    const raw = 'raw' in input ? input.raw : await composeMail(input, deps.ownAddress);
    const budgets = options.view === 'full' ? deps.budgets : undefined;
    const draw = beforeDecision(
      budgets && (() => overBudget(budgets, raw)),
      drawFromCaller(deps.secretary, options.caller, deps.limitPerKeyPerMinute),
    );
    const outcome = await runDryPass(deps, raw, options.view, draw);
    const verdict = (await rateLimitedVerdictOf(outcome, budgets, raw)) ?? verdictOf(outcome);
    const messageId = 'mail' in outcome ? outcome.mail.messageId : undefined;
    reportDryRun(deps.audit, outcome, verdict);
    return { ...verdict, ...(messageId ? { message_id: messageId } : {}) };
  };
}

/** The one audit event of a dry run (`dry_run: true`): its verdict, and the mail's Message-ID, sender and subject. */
function reportDryRun(audit: AuditReporter | undefined, outcome: MailOutcome, verdict: DryRunVerdict): void {
  const mail = 'mail' in outcome ? outcome.mail : undefined;
  const messageId = mail?.messageId;
  audit?.report({
    event_id: auditEventId('email', messageId ?? 'no-message-id', `dry-run:${randomUUID()}`),
    channel: 'email',
    direction: 'inbound',
    outcome: verdict.outcome,
    ...(verdict.reason && verdict.reason !== 'refused' ? { reason: verdict.reason } : {}),
    ...(messageId ? { message_id: messageId } : {}),
    request_id: getRequestId(),
    ...(mail?.from ? { sender: mail.from } : {}),
    ...(mail?.subject ? { subject: mail.subject } : {}),
    detail: `POST /test${verdict.detail ? `: ${verdict.detail}` : ''}`,
    dry_run: true,
  });
}

/**
 * The step a dry pass runs right before the secretary would be asked (PipelineInput.dryRunDraw): the senders'
 * budgets first (`over`: throws WouldBeRateLimitedError when the mail would be refused, as the real pipeline refuses
 * it before any decision), then the caller's draw. Undefined when there is neither.
 */
function beforeDecision(
  over: (() => Promise<OverBudget | undefined>) | undefined,
  draw: (() => Promise<void>) | undefined,
): (() => Promise<void>) | undefined {
  if (!over && !draw) return undefined;
  return async () => {
    const refused = await over?.();
    if (refused) throw new WouldBeRateLimitedError(refused);
    await draw?.();
  };
}

/**
 * The `skipped` / `rate-limited` verdict of a dry pass that would be rate limited: ended by WouldBeRateLimitedError
 * before the decision, or — a mail with nothing readable, which asks no decision but is limited all the same —
 * found over a budget after it (`budgets` read only in the full view). Undefined otherwise.
 */
async function rateLimitedVerdictOf(
  outcome: MailOutcome,
  budgets: DryRunBudgets | undefined,
  raw: Buffer,
): Promise<DryRunVerdict | undefined> {
  let over: OverBudget | undefined;
  if (outcome.kind === 'secretary-failed' && outcome.error instanceof WouldBeRateLimitedError)
    over = outcome.error.over;
  else if (budgets && outcome.kind === 'dry-run' && outcome.reason === 'unreadable')
    over = await overBudget(budgets, raw, outcome.mail);
  if (!over) return undefined;
  return {
    dry_run: true,
    outcome: 'skipped',
    reason: 'rate-limited',
    detail: OVER_BUDGET_DETAIL[over.limit],
    rate_limit: over,
  };
}

/**
 * One dry pass of `raw` through the pipeline in `view`: the client's never reads the delivery record (a Message-ID
 * is never answered) and asks the secretary for the client's view (PipelineInput.dryRunView).
 */
function runDryPass(
  deps: { pipeline: MailPipeline; secretary: Pick<SecretaryClient, 'lookupHandled'> },
  raw: Buffer,
  view: DryRunView = 'client',
  dryRunDraw?: () => Promise<void>,
): Promise<MailOutcome> {
  const clientView = view === 'client';
  return deps.pipeline.processMail(
    {
      source: 'email',
      raw,
      fallbackKey: `test:${randomUUID()}`,
      dryRun: true,
      ...(clientView ? { dryRunView: 'client' as const } : {}),
      ...(dryRunDraw ? { dryRunDraw } : {}),
      logContext: { dry_run: true },
    },
    {
      isAnswered: clientView
        ? async () => false
        : async (messageId, sender) => {
            // The keys the intakes record (mailDeliveryKey), the one from before keys named the sender too.
            const keys = [mailDeliveryKey(messageId, sender), legacyMailDeliveryKey(messageId)];
            return (await deps.secretary.lookupHandled(keys)).size > 0;
          },
      // Mail without a Message-ID: the intakes record it under the SHA-256 of its bytes (contentKeyOf), so the same
      // bytes handed to the dry run find that record (the pass's own fallback key is a fresh `test:` id).
      ...(clientView
        ? {}
        : {
            isKeyAnswered: async () =>
              (await deps.secretary.lookupHandled([mailDeliveryKey(contentKeyOf(raw))])).size > 0,
          }),
      confirm: () => Promise.reject(new Error('a dry run confirms nothing')),
    },
  );
}

/**
 * One unit from the per-minute budget `caller` (a `rateLimitKey.testKey`), through the secretary's durable limits
 * (`POST /rate-limits/consume`): shared by replicas, kept over restarts. Undefined (nothing drawn) without a caller
 * or with the limit off (0).
 * @throws AppError 429 `rate_limited` with Retry-After (whole seconds) when the budget is spent; the secretary's
 *   error (503, 504, 404 from a secretary older than the route) when it cannot be asked: no unchecked dry run.
 */
function drawFromCaller(
  secretary: Pick<SecretaryClient, 'consumeRateLimit'>,
  caller: string | undefined,
  limit: number,
): (() => Promise<void>) | undefined {
  if (caller === undefined || limit <= 0) return undefined;
  return async () => {
    let answer: Awaited<ReturnType<SecretaryClient['consumeRateLimit']>>;
    try {
      answer = await secretary.consumeRateLimit({ keys: [caller], limit, window_seconds: TEST_LIMIT_WINDOW_SECONDS });
    } catch (err) {
      // A 4xx here (a secretary older than the route, a key it refuses) is not the secretary refusing the mail, which
      // would answer `refused` with our standard message: the budget could not be asked.
      throw isAppError(err) && err.retryable ? err : errors.upstreamUnavailable('secretary', err);
    }
    const verdict = rateLimitVerdictOf(answer);
    if (verdict.allowed) return;
    // Retryable: the pipeline ends the pass as `secretary-failed` and its error is the answer (not a refusal).
    throw new AppError(
      'rate_limited',
      429,
      `Too many POST /test mails for this API key (${limit} per minute); retry in ${verdict.retryAfterSeconds} s`,
      { headers: { 'Retry-After': String(verdict.retryAfterSeconds) }, retryable: true },
    );
  };
}

function verdictOf(outcome: MailOutcome): DryRunVerdict {
  switch (outcome.kind) {
    case 'unparseable':
      throw errors.badRequest(`The mail cannot be parsed (${outcome.code})`);
    case 'skipped':
      return { dry_run: true, outcome: 'skipped', reason: MAIL_SKIP_REASONS[outcome.reason], detail: outcome.reason };
    case 'duplicate':
    case 'deferred':
      return {
        dry_run: true,
        outcome: 'skipped',
        reason: 'duplicate',
        detail: 'this Message-ID was already answered',
      };
    case 'secretary-failed': {
      const err = outcome.error;
      throw isAppError(err) ? err : errors.upstreamUnavailable('secretary', err);
    }
    case 'dry-run':
      if (outcome.reason === 'no-reply')
        return {
          dry_run: true,
          outcome: 'skipped',
          reason: 'no-reply',
          detail: 'its category gets no reply',
          decision: outcome.analysis,
        };
      return {
        dry_run: true,
        outcome: 'decided',
        ...(outcome.reason ? { reason: outcome.reason } : {}),
        ...(outcome.reason === 'unreadable' ? { detail: 'nothing readable: the sender would be asked for text' } : {}),
        ...(outcome.refusal
          ? { detail: `the secretary refused the request (${outcome.refusal.status} ${outcome.refusal.code})` }
          : {}),
        ...(outcome.analysis ? { decision: outcome.analysis } : {}),
        ...(outcome.reply
          ? {
              reply: {
                to: outcome.reply.to,
                subject: outcome.reply.subject,
                ...(outcome.reply.inReplyTo ? { in_reply_to: outcome.reply.inReplyTo } : {}),
                text: outcome.reply.text,
              },
            }
          : {}),
      };
    default:
      // rate-limited, no-reply, replied, delivery-failed: a dry run never gets there.
      throw new AppError('internal_error', 500, `Unexpected dry-run outcome '${outcome.kind}'`);
  }
}
