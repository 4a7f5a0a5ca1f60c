import { randomUUID } from 'node:crypto';
import {
  AppError,
  backoffMs,
  getRequestId,
  isAppError,
  retry,
  runWithRequestId,
  type Logger,
} from '@workemon/service-kit';
import type { AnalysisResponse, AnalyzeRequest } from '@workemon/contracts';
import type { AuditReporter } from '../audit-reporter.js';
import { MAIL_SKIP_REASONS, createMailAudit, smtpFailureReason, type MailRef } from './mail-audit.js';
import type { EmailSettings } from '../config.js';
import type { ChannelMetrics } from '../channel-metrics.js';
import { replyTextOf, type SecretaryClient } from '../secretary-client.js';
import { rateLimitKey, type SenderRateLimit } from '../sender-rate-limit.js';
import {
  UnparseableMailError,
  parseInboundMail,
  replySubject,
  type InboundMail,
  type SkipReason,
} from './mail-parsing.js';
import { USER_MESSAGES, buildRequestText, refusalMessage } from './mail-request.js';
import { authenticateMail } from './sender-authentication.js';
import type { SmtpMailer } from './smtp-mailer.js';

/**
 * Where a mail came in: the IMAP mailbox (`email`) or a provider's inbound webhook. Used as the metrics label and,
 * later, as the audit row's `channel`; the secretary is always told `channel: 'email'` (it is mail either way).
 */
export type MailSource = 'email' | 'mailgun' | 'sendgrid' | 'ses';

/** What the classify step decided about a parsed mail. */
export type MailDecision =
  | { kind: 'skip'; reason: SkipReason }
  /** Nothing readable: no LLM call, one polite request for text. */
  | { kind: 'unreadable'; replyTo: string }
  | { kind: 'request'; replyTo: string; request: string };

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/**
 * Where the answer goes (RFC 5322 §3.6.2): Reply-To when it is in the sender's own domain or one of
 * `companyDomains`, else From. A Reply-To elsewhere would let anyone aim our replies at a third party.
 */
export function replyAddressOf(mail: Pick<InboundMail, 'from' | 'replyTo'>, companyDomains: readonly string[]) {
  const from = mail.from!;
  const replyTo = mail.replyTo;
  if (!replyTo || replyTo === from) return from;
  const domain = domainOf(replyTo);
  return domain === domainOf(from) || companyDomains.includes(domain) ? replyTo : from;
}

/** Classify step: skip (loop rules), unreadable, or a request for the secretary (built here, see mail-request.ts). */
export function classifyMail(
  mail: InboundMail,
  settings: Pick<EmailSettings, 'companyDomains' | 'maxRequestChars'>,
): MailDecision {
  if (mail.skipReason) return { kind: 'skip', reason: mail.skipReason };
  const replyTo = replyAddressOf(mail, settings.companyDomains);
  const request = buildRequestText(mail, settings.maxRequestChars);
  return request ? { kind: 'request', replyTo, request } : { kind: 'unreadable', replyTo };
}

/**
 * The end of one pass of a mail through the pipeline. Each kind is produced in exactly one place of
 * `processMail` (the pipeline's outcome points); the caller (IMAP channel or webhook) does its own bookkeeping:
 * - `unparseable`: poison, mailparser cannot read it (`code`: EMAXLEN | parser_error);
 * - `skipped`: the loop rules (RFC 3834) say never answer it;
 * - `deferred`: another copy with the same Message-ID is being answered in this process right now;
 * - `duplicate`: this Message-ID was answered before (the caller's `isAnswered`);
 * - `rate-limited`: the sender or the reply address is over RATE_LIMIT_PER_HOUR;
 * - `no-reply`: the secretary's category gets no reply;
 * - `secretary-failed`: the secretary could not decide now (retry later; `error` for secretaryRetry);
 * - `replied`: the reply was accepted by SMTP and `confirm` succeeded;
 * - `delivery-failed`: SMTP refused or `confirm` failed (`permanent`: not worth retrying).
 */
export type MailOutcome =
  | { kind: 'unparseable'; code: string; message: string }
  | { kind: 'skipped'; mail: InboundMail; reason: SkipReason }
  | { kind: 'deferred'; mail: InboundMail }
  | { kind: 'duplicate'; mail: InboundMail }
  | { kind: 'rate-limited'; mail: InboundMail }
  | { kind: 'no-reply'; mail: InboundMail; category?: string }
  | { kind: 'secretary-failed'; mail: InboundMail; error: unknown }
  | { kind: 'replied'; mail: InboundMail; to: string; text: string }
  | { kind: 'delivery-failed'; mail: InboundMail; to: string; error: unknown; permanent: boolean }
  | DryRunOutcome;

/**
 * The end of a dry run (`PipelineInput.dryRun`, POST /test) once the mail got as far as a decision: the
 * secretary's answer (`analysis`, asked with `dry_run: true`) and the reply that would be sent; `reason` when
 * none would be (`no-reply`) or when it is one of ours (`unreadable`: no secretary call; `refused`: the
 * secretary refused the request, `refusal` says how).
 */
export type DryRunOutcome = {
  kind: 'dry-run';
  mail: InboundMail;
  analysis?: AnalysisResponse;
  reason?: 'no-reply' | 'unreadable' | 'refused';
  refusal?: { status: number; code: string };
  reply?: { to: string; subject: string; inReplyTo?: string; text: string };
};

/** The audit reference of a mail in the pipeline: its Message-ID, else the source's fallback key. */
export const mailRefOf = (mail: InboundMail, fallbackKey: string): MailRef => ({
  messageId: mail.messageId,
  fallbackId: fallbackKey,
  sender: mail.from,
  subject: mail.subject,
});

/** One mail handed to the pipeline by its source. */
export type PipelineInput = {
  source: MailSource;
  /** The raw RFC 5322 message (a webhook's parsed fields are assembled into one first). */
  raw: Buffer;
  /** Only the start of a bigger mail is here (MAX_MAIL_BYTES). */
  truncated?: boolean;
  /** Idempotency key when the mail has no Message-ID (IMAP: `<uidvalidity>:<uid>`; webhooks: a hash of the mail). */
  fallbackKey: string;
  /** Added to every log line about this mail (e.g. `{ imap: { uid } }`). */
  logContext?: Record<string, unknown>;
  /**
   * A dry run (POST /test): up to the decision only — the secretary is asked with `dry_run: true`, and no rate-limit
   * budget is taken, nothing is sent, `confirm` is not called and no audit event is reported; ends in `dry-run`.
   */
  dryRun?: boolean;
};

/** What the source contributes to one pass: its own "already answered" check, rate-limit memory, confirmation. */
export type PipelineHooks = {
  /** Whether this Message-ID was answered before (IMAP: an \Answered copy; webhooks: the `mail:` delivery record). */
  isAnswered: (messageId: string) => Promise<boolean>;
  /** The sender's budget was already taken for this mail on an earlier attempt: do not take it again. */
  rateCounted?: boolean;
  /** Called once the budget was taken for this mail. */
  onRateCounted?: () => void;
  /**
   * Called after SMTP accepted the reply, still inside the Message-ID's in-flight window (IMAP: the \Answered flag;
   * webhooks: the `mail:<Message-ID>` delivery record). Retried twice; a failure is logged and the outcome stays
   * `replied` (the reply is out: failing the mail would make its source send it again).
   */
  confirm: (mail: InboundMail) => Promise<void>;
};

export type MailPipeline = {
  /** Runs parse → loop rules → duplicate check → rate limit → sender trust → decide → deliver → confirm. */
  processMail: (input: PipelineInput, hooks: PipelineHooks) => Promise<MailOutcome>;
};

/** The metrics label of a source (the IMAP channel is `email`). */
const label = (source: MailSource) => source;

/**
 * The IMAP-independent email pipeline, shared by the IMAP channel (email-channel.ts) and the inbound webhooks
 * (webhooks/*.ts). One instance per process: it owns the in-flight Message-ID set, so two copies of a mail
 * arriving at once (two IMAP copies, a webhook retry) are answered once.
 */
export function createMailPipeline(deps: {
  settings: Pick<EmailSettings, 'companyDomains' | 'maxRequestChars' | 'trustedAuthservIds'>;
  /** Our own addresses: mail from them is never answered (loop rule). */
  ownAddresses: readonly string[];
  mailer: SmtpMailer;
  secretary: SecretaryClient;
  rateLimit: SenderRateLimit;
  /** Audit events at the outcome points (mail-audit.ts), with the source as the channel; default: none. */
  audit?: AuditReporter;
  metrics: ChannelMetrics;
  logger: Logger;
}): MailPipeline {
  const { settings, mailer, secretary, metrics, logger, ownAddresses } = deps;
  const messageIdsInFlight = new Set<string>();

  /**
   * Rate limits, kept by the secretary (durable, shared by replicas and intakes): the sender, and the reply address
   * too when it differs (no reflecting replies at a third party), all or nothing. Throws when the secretary
   * cannot be asked (the mail is then not answered now: `secretary-failed`, retried like any secretary outage).
   */
  async function withinRateLimit(mail: InboundMail, replyTo: string): Promise<boolean> {
    const sender = mail.from!;
    const keys = [rateLimitKey.email(sender)];
    if (replyTo.toLowerCase() !== sender.toLowerCase()) keys.push(rateLimitKey.replyTo(replyTo));
    return (await deps.rateLimit.consume(keys)).allowed;
  }

  /** Runs the source's `confirm` after a delivered reply: retried twice, then logged, never thrown. */
  async function confirmReplied(hooks: PipelineHooks, mail: InboundMail, log: Record<string, unknown>) {
    try {
      await retry(() => hooks.confirm(mail), {
        maxRetries: 2,
        shouldRetry: () => true,
        delayMs: (n) => backoffMs(n, { baseMs: 200, maxMs: 2000, jitter: 0.5 }),
      });
    } catch (err) {
      logger.error(
        'the reply was sent but could not be recorded as handled; a repeat of this mail may be answered again',
        {
          ...log,
          email: { message_id: mail.messageId?.slice(0, 256) },
          error: { message: isAppError(err) ? err.code : (err as Error).message },
        },
      );
    }
  }

  async function processMail(input: PipelineInput, hooks: PipelineHooks): Promise<MailOutcome> {
    // One request id per pass (a webhook's own, else a new one): sent to the secretary as X-Request-Id and put on
    // the audit events, so the communicator's rows and the secretary's decision of this mail share it.
    if (!getRequestId()) return runWithRequestId(randomUUID(), () => processMail(input, hooks));
    const channel = label(input.source);
    const log = input.logContext ?? {};
    const dryRun = input.dryRun === true;
    // A dry run reports nothing here (POST /test reports its one dry_run event itself).
    const audit = createMailAudit(dryRun ? undefined : deps.audit, input.source);
    // 1. parse
    let mail: InboundMail;
    try {
      mail = await parseInboundMail(input.raw, { ownAddresses, truncated: input.truncated });
    } catch (err) {
      const code = err instanceof UnparseableMailError ? err.code : 'parser_error';
      logger.warn('mail cannot be parsed', { ...log, error: { code, message: (err as Error).message } });
      return { kind: 'unparseable', code, message: (err as Error).message };
    }
    const ref = mailRefOf(mail, input.fallbackKey);
    audit.received(ref);
    // 2. classify (and build the secretary request)
    const decision = classifyMail(mail, settings);
    if (decision.kind === 'skip') {
      if (!dryRun) metrics.skipped(channel, decision.reason);
      audit.skipped(ref, MAIL_SKIP_REASONS[decision.reason], decision.reason);
      logger.info(`mail skipped: ${decision.reason}`, { ...log, email: { message_id: mail.messageId?.slice(0, 256) } });
      return { kind: 'skipped', mail, reason: decision.reason };
    }
    const requestKey = mail.messageId ?? input.fallbackKey;
    // A dry run neither waits for nor holds up the real handling of the same Message-ID.
    const holdsMessageId = Boolean(mail.messageId) && !dryRun;
    if (holdsMessageId && messageIdsInFlight.has(mail.messageId!)) {
      // Another copy is being answered right now; look again once it is done.
      return { kind: 'deferred', mail };
    }
    if (holdsMessageId) messageIdsInFlight.add(mail.messageId!);
    try {
      if (mail.messageId && (await hooks.isAnswered(mail.messageId))) {
        if (!dryRun) metrics.skipped(channel, 'duplicate');
        audit.skipped(ref, 'duplicate', 'this Message-ID was already answered');
        logger.info('mail skipped: this Message-ID was already answered', log);
        return { kind: 'duplicate', mail };
      }
      // A dry run takes no budget (docs/audit-and-limits.md).
      if (!hooks.rateCounted && !dryRun) {
        let allowed: boolean;
        try {
          allowed = await withinRateLimit(mail, decision.replyTo);
        } catch (err) {
          // Never answered without a budget check: retried like any secretary outage (secretary-retry.ts).
          logger.warn('the rate limit could not be checked (secretary); the mail waits', {
            ...log,
            error: { message: isAppError(err) ? err.code : (err as Error).message },
          });
          return { kind: 'secretary-failed', mail, error: err };
        }
        if (!allowed) {
          metrics.skipped(channel, 'rate_limited');
          audit.skipped(ref, 'rate-limited', 'over RATE_LIMIT_PER_HOUR');
          logger.warn('sender or reply address over the hourly limit; no reply', log);
          return { kind: 'rate-limited', mail };
        }
        hooks.onRateCounted?.();
      }
      // 3. decide
      let text: string;
      let analysis: AnalysisResponse | undefined;
      let refusal: DryRunOutcome['refusal'];
      if (decision.kind === 'unreadable') {
        if (!dryRun) metrics.skipped(channel, 'unreadable');
        text = USER_MESSAGES.unreadable;
      } else {
        // Whether the receiving server vouches for the From: domain (RFC 8601 Authentication-Results, DMARC alignment).
        const senderAuthentication = authenticateMail({
          source: input.raw,
          from: mail.from,
          trustedAuthservIds: settings.trustedAuthservIds,
        });
        try {
          // The secretary request: everything it is told about a mail is assembled here and in buildRequestText.
          const request: AnalyzeRequest = {
            channel: 'email',
            username: mail.from!,
            sender_authentication: { ...senderAuthentication, reason: senderAuthentication.reason.slice(0, 500) },
            request: decision.request,
            message_id: requestKey.slice(0, 998),
            ...(mail.threadRoot ? { thread_key: mail.threadRoot.slice(0, 998) } : {}),
            ...(mail.subject ? { subject: mail.subject.slice(0, 998) } : {}),
          };
          analysis = await secretary.analyze(dryRun ? ({ ...request, dry_run: true } as AnalyzeRequest) : request);
          if (dryRun && (analysis as { dry_run?: unknown }).dry_run !== true) {
            // A secretary that ignored the flag may have acted: say so loudly instead of pretending it was a dry run.
            throw new AppError(
              'dry_run_unsupported',
              502,
              'The secretary did not confirm the dry run (its answer lacks dry_run: true); upgrade it before using POST /test',
              { retryable: false },
            );
          }
          if (dryRun && analysis.no_reply) return { kind: 'dry-run', mail, analysis, reason: 'no-reply' };
          if (analysis.no_reply) {
            // A category that gets no reply (automatic mail, marketing): handled, nothing is sent.
            metrics.skipped(channel, 'no_reply');
            logger.info('mail not answered: its category gets no reply', {
              ...log,
              classification: { category: analysis.category },
            });
            audit.skipped(ref, 'no-reply', 'its category gets no reply');
            return { kind: 'no-reply', mail, category: analysis.category };
          }
          text = replyTextOf(analysis) || USER_MESSAGES.emptyAnswer;
        } catch (err) {
          const status = isAppError(err) ? err.status : 500;
          if (isAppError(err) && err.code === 'dry_run_unsupported')
            return { kind: 'secretary-failed', mail, error: err };
          if (isAppError(err) && status >= 400 && status < 500 && !err.retryable) {
            refusal = { status, code: err.code };
            // A decision, not a failure; its text is for developers and only goes to the log.
            logger.warn('the secretary refused the request; the sender gets a standard message', {
              ...log,
              error: { code: err.code, message: err.message },
              http: { response: { status_code: status } },
            });
            if (!dryRun) metrics.reply(channel, 'rejected');
            text = refusalMessage(err);
          } else {
            return { kind: 'secretary-failed', mail, error: err };
          }
        }
      }
      if (dryRun) {
        return {
          kind: 'dry-run',
          mail,
          analysis,
          ...(decision.kind === 'unreadable' ? { reason: 'unreadable' as const } : {}),
          ...(refusal ? { reason: 'refused' as const, refusal } : {}),
          reply: { to: decision.replyTo, subject: replySubject(mail.subject), inReplyTo: mail.messageId, text },
        };
      }
      // 4. deliver (SMTP first), 5. confirm (the source's record, only once the server accepted the reply)
      try {
        await mailer.send({
          to: decision.replyTo,
          subject: replySubject(mail.subject),
          text,
          inReplyTo: mail.messageId,
          references: mail.references,
          idempotencyKey: requestKey,
          autoSubmitted: 'auto-replied',
        });
      } catch (err) {
        metrics.reply(channel, 'failed');
        const permanent = isAppError(err) && !err.retryable;
        // A refusal is final whatever the source does next (IMAP sets the mail aside, a webhook answers 200): the
        // reply's `failed` event. A temporary failure is retried, so it is reported only if the source gives up.
        if (permanent)
          audit.failed(ref, decision.replyTo, smtpFailureReason(err.code), 'the SMTP server refused the reply');
        return { kind: 'delivery-failed', mail, to: decision.replyTo, error: err, permanent };
      }
      metrics.reply(channel, 'sent');
      // The reply is out: from here on the mail is replied, whatever happens to its record. A failed record is
      // logged, never turned into a delivery failure (that would make the source send the reply again).
      await confirmReplied(hooks, mail, log);
      logger.info('mail answered', { ...log, email: { message_id: mail.messageId?.slice(0, 256) } });
      audit.delivered(
        ref,
        decision.replyTo,
        decision.kind === 'unreadable'
          ? 'nothing readable: asked for text'
          : refusal
            ? `the secretary refused the request (${refusal.status}); a standard message was sent`
            : undefined,
      );
      return { kind: 'replied', mail, to: decision.replyTo, text };
    } finally {
      if (holdsMessageId) messageIdsInFlight.delete(mail.messageId!);
    }
  }

  return { processMail };
}
