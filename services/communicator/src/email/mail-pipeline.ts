import { randomUUID } from 'node:crypto';
import { Semaphore } from 'async-mutex';
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
import { MAIL_SKIP_REASONS, createMailAudit, smtpFailureReason, type MailAudit, type MailRef } from './mail-audit.js';
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
import { HandledLookupError } from './mail-handled-record.js';
import { intakeOfSource } from './mail-intake.js';
import { USER_MESSAGES, buildRequestText, refusalMessage } from './mail-request.js';
import { authenticateMail, type ProviderDmarcPass, type SenderAuthentication } from './sender-authentication.js';
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
 * - `duplicate`: this Message-ID (or, without one, this mail) was answered before (`isAnswered`, `isKeyAnswered`);
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
  /**
   * Idempotency key when the mail has no Message-ID: `sha256:<hex>` of the raw mail (mail-handled-record.ts
   * `contentKeyOf`), for the IMAP intake and the webhooks alike — never a UID, which a UIDVALIDITY change reassigns.
   */
  fallbackKey: string;
  /** Added to every log line about this mail (e.g. `{ imap: { uid } }`). */
  logContext?: Record<string, unknown>;
  /**
   * A dry run (POST /test): up to the decision only — the secretary is asked with `dry_run: true`, and no rate-limit
   * budget is taken, nothing is sent, `confirm` is not called and no audit event is reported; ends in `dry-run`.
   */
  dryRun?: boolean;
  /**
   * A dry run for a caller with a client key (POST /test): the mail's Authentication-Results are not believed (the
   * caller wrote them) and the secretary is asked for the client's view (`dry_run_view: "client"`), so the answer
   * holds no more than the secretary shows a client key. The source's `isAnswered` should then say false.
   */
  dryRunView?: 'client';
  /**
   * A dry run's draw from its caller's budget (POST /test, TEST_RATE_LIMIT_PER_KEY_PER_MINUTE), awaited right before
   * the secretary is asked: only a mail that gets as far as a decision costs a unit. Throws to end the pass as
   * `secretary-failed` with its error (429 `rate_limited` with Retry-After; the secretary's 503 when it cannot be
   * asked).
   */
  dryRunDraw?: () => Promise<void>;
  /** A DMARC pass the provider reported in its signed notification (SES `receipt.dmarcVerdict`). */
  providerDmarcPass?: ProviderDmarcPass;
};

/** What the source contributes to one pass: its own "already answered" check, rate-limit memory, confirmation. */
export type PipelineHooks = {
  /**
   * Whether this Message-ID of this sender (the From: address; mailDeliveryKey) was answered before (IMAP: the
   * `mail:` delivery record, else an \Answered copy; webhooks: the `mail:` delivery record). May reject with
   * HandledLookupError when the record cannot be read: the pass then ends as `secretary-failed`.
   */
  isAnswered: (messageId: string, sender: string | undefined) => Promise<boolean>;
  /**
   * For mail without a Message-ID: whether the mail, named by `PipelineInput.fallbackKey`, was answered before (IMAP:
   * its `mail:sha256:…` delivery record). Absent: such mail is not looked up (webhooks look it up before the pass).
   */
  isKeyAnswered?: (fallbackKey: string) => Promise<boolean>;
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

/** What `createMailPipeline` is built from: settings, our own addresses and the parts each step talks to. */
export type MailPipelineDeps = {
  settings: Pick<EmailSettings, 'companyDomains' | 'maxRequestChars' | 'trustedAuthservIds'> & {
    /**
     * Per webhook, whose Authentication-Results count in the mail it posts (MAILGUN_TRUSTED_AUTHSERV_ID,
     * SENDGRID_…, SES_…); none: that webhook's mail is unauthenticated unless its provider's signed verdict says
     * otherwise. TRUSTED_AUTHSERV_ID (the IMAP server's) never applies to it: webhook mail did not pass that server,
     * so a header naming it was written by the sender.
     */
    webhookTrustedAuthservIds?: Partial<Record<Exclude<MailSource, 'email'>, readonly string[]>>;
  };
  /** Our own addresses: mail from them is never answered (loop rule). */
  ownAddresses: readonly string[];
  mailer: SmtpMailer;
  secretary: SecretaryClient;
  rateLimit: SenderRateLimit;
  /** RATE_LIMIT_MAILBOX_PER_HOUR: every mail together (`rateLimitKey.mailbox`); absent: no such limit. */
  mailboxRateLimit?: SenderRateLimit;
  /** Audit events at the outcome points (mail-audit.ts), with the source as the channel; default: none. */
  audit?: AuditReporter;
  metrics: ChannelMetrics;
  logger: Logger;
};

/**
 * One pass of one mail through the steps: what every step reads. `channel` is the metrics label (the source);
 * `audit` reports nothing on a dry run (POST /test reports its one dry_run event itself).
 */
export type MailPass = {
  deps: MailPipelineDeps;
  input: PipelineInput;
  hooks: PipelineHooks;
  channel: MailSource;
  log: Record<string, unknown>;
  dryRun: boolean;
  audit: MailAudit;
};

/** A pass once its mail is parsed: the mail and its audit reference. */
export type ParsedMailPass = MailPass & { mail: InboundMail; ref: MailRef };

/** The decide step's result when a reply is to be sent: its text, and what it was made from. */
export type ReplyPlan = {
  text: string;
  /** The secretary's answer, when it was asked and answered. */
  analysis?: AnalysisResponse;
  /** The secretary refused the request (a 4xx not worth retrying): its status and code. */
  refusal?: DryRunOutcome['refusal'];
};

/** A step either lets the mail go on (with its value) or ends the pass with an outcome. */
const isOutcome = (value: unknown): value is MailOutcome =>
  typeof value === 'object' && value !== null && 'kind' in value;

/** An error as one log/`error.message` word: the AppError's code, else the message. */
const errorWord = (err: unknown) => (isAppError(err) ? err.code : (err as Error).message);

/** The Message-ID as logged (cut to 256 characters). */
const loggedMessageId = (mail: InboundMail) => ({ email: { message_id: mail.messageId?.slice(0, 256) } });

/** Starts a pass: the metrics label, log context, dry-run flag and the (dry-run-silent) audit of this mail. */
export function startPass(deps: MailPipelineDeps, input: PipelineInput, hooks: PipelineHooks): MailPass {
  const dryRun = input.dryRun === true;
  return {
    deps,
    input,
    hooks,
    channel: input.source,
    log: input.logContext ?? {},
    dryRun,
    audit: createMailAudit(dryRun ? undefined : deps.audit, input.source),
  };
}

/**
 * Megabytes of raw mail parsed at once in this process, every channel together. A parse holds about twice its mail's
 * size in heap (mailparser's text, the latin1 copies the header and charset steps read): sixteen 4 MB mails at once
 * (EMAIL_CONCURRENCY's default) took more than a service's 128 MB old space. Small mails take one unit each.
 */
export const PARSE_BUDGET_MB = 12;
const parseBudget = new Semaphore(PARSE_BUDGET_MB);

/**
 * Parse step: the raw mail → `InboundMail` (mail-parsing.ts), reported `received`; poison mail (mailparser cannot
 * read it: EMAXLEN, parser_error) ends the pass as `unparseable`. Waits for its share of PARSE_BUDGET_MB (its size
 * in MB, at least 1, at most the whole budget).
 */
export async function parseStep(pass: MailPass): Promise<ParsedMailPass | MailOutcome> {
  const { deps, input, log } = pass;
  let mail: InboundMail;
  const units = Math.min(PARSE_BUDGET_MB, Math.max(1, Math.ceil(input.raw.length / 1_000_000)));
  try {
    mail = await parseBudget.runExclusive(
      () => parseInboundMail(input.raw, { ownAddresses: deps.ownAddresses, truncated: input.truncated }),
      units,
    );
  } catch (err) {
    const code = err instanceof UnparseableMailError ? err.code : 'parser_error';
    deps.logger.warn('mail cannot be parsed', { ...log, error: { code, message: (err as Error).message } });
    return { kind: 'unparseable', code, message: (err as Error).message };
  }
  const ref = mailRefOf(mail, input.fallbackKey);
  pass.audit.received(ref);
  return { ...pass, mail, ref };
}

/** Classify step, loop rules (RFC 3834): a mail a machine sent ends the pass as `skipped` (counted, audited). */
export function loopRuleStep(pass: ParsedMailPass, decision: Extract<MailDecision, { kind: 'skip' }>): MailOutcome {
  const { deps, mail } = pass;
  if (!pass.dryRun) deps.metrics.skipped(pass.channel, decision.reason);
  pass.audit.skipped(pass.ref, MAIL_SKIP_REASONS[decision.reason], decision.reason);
  deps.logger.info(`mail skipped: ${decision.reason}`, { ...pass.log, ...loggedMessageId(mail) });
  return { kind: 'skipped', mail, reason: decision.reason };
}

/**
 * Classify step, idempotency: a Message-ID answered before (the source's `isAnswered`), or a mail without one whose
 * fallback key was (`isKeyAnswered`), ends the pass as `duplicate`; a record that cannot be read (HandledLookupError)
 * as `secretary-failed`. Runs before anything is sent or asked.
 */
export async function idempotencyStep(pass: ParsedMailPass): Promise<MailOutcome | undefined> {
  const { deps, mail, hooks } = pass;
  let answered: boolean;
  try {
    answered = mail.messageId
      ? await hooks.isAnswered(mail.messageId, mail.from)
      : ((await hooks.isKeyAnswered?.(pass.input.fallbackKey)) ?? false);
  } catch (err) {
    // The record could not be read: the mail waits (a restored mailbox has lost the flags that would decide).
    if (err instanceof HandledLookupError) return { kind: 'secretary-failed', mail, error: err.cause };
    throw err;
  }
  if (!answered) return undefined;
  const what = mail.messageId ? 'this Message-ID' : 'this mail';
  if (!pass.dryRun) deps.metrics.skipped(pass.channel, 'duplicate');
  pass.audit.skipped(pass.ref, 'duplicate', `${what} was already answered`);
  deps.logger.info(`mail skipped: ${what} was already answered`, pass.log);
  return { kind: 'duplicate', mail };
}

/**
 * Rate limits, kept by the secretary (durable, shared by replicas and intakes): the sender, and the reply address
 * too when it differs (no reflecting replies at a third party), all or nothing. Throws when the secretary
 * cannot be asked.
 */
export async function withinRateLimit(
  rateLimit: SenderRateLimit,
  mail: Pick<InboundMail, 'from'>,
  replyTo: string,
): Promise<boolean> {
  const sender = mail.from!;
  const keys = [rateLimitKey.email(sender)];
  if (replyTo.toLowerCase() !== sender.toLowerCase()) keys.push(rateLimitKey.replyTo(replyTo));
  return (await rateLimit.consume(keys)).allowed;
}

/** What a mail over each limit (overLimit) is counted, audited and logged as. */
const OVER_LIMIT = {
  sender: {
    metricReason: 'rate_limited',
    auditDetail: 'over RATE_LIMIT_PER_HOUR',
    logMessage: 'sender or reply address over the hourly limit; no reply',
  },
  mailbox: {
    metricReason: 'mailbox_rate_limited',
    auditDetail: 'over RATE_LIMIT_MAILBOX_PER_HOUR (all mail together)',
    logMessage: 'the mailbox is over its hourly limit of replies (RATE_LIMIT_MAILBOX_PER_HOUR); no reply',
  },
} as const;

/**
 * Which limit a mail is over: `sender` (RATE_LIMIT_PER_HOUR, the sender or the reply address), then `mailbox`
 * (RATE_LIMIT_MAILBOX_PER_HOUR, all mail together, taken only once the sender's budget allowed the mail; a mail
 * refused there has spent one unit of its sender's); undefined: within both. `senderCounted` runs once the sender's
 * unit is taken, so a retry after the secretary failed between the two checks does not take it again. An
 * authenticated sender in COMPANY_DOMAINS (`isColleague`) is not counted against the mailbox: a flood of forged
 * strangers must not silence the employees the mailbox is for. Throws when the secretary cannot be asked.
 */
async function overLimit(
  pass: ParsedMailPass,
  replyTo: string,
  senderCounted: () => void,
): Promise<'sender' | 'mailbox' | undefined> {
  const { deps, mail } = pass;
  if (!(await withinRateLimit(deps.rateLimit, mail, replyTo))) return 'sender';
  senderCounted();
  if (!deps.mailboxRateLimit || isColleague(pass)) return undefined;
  return (await deps.mailboxRateLimit.consume([rateLimitKey.mailbox])).allowed ? undefined : 'mailbox';
}

/** Whether the mail's sender is verified (sender trust, as the secretary will be told) and in COMPANY_DOMAINS. */
function isColleague(pass: ParsedMailPass): boolean {
  const domain = domainOf(pass.mail.from!);
  const companyDomains = pass.deps.settings.companyDomains;
  if (!companyDomains.some((d) => domain === d || domain.endsWith(`.${d}`))) return false;
  return senderAuthenticationOf(pass).verified;
}

/**
 * Classify step, rate limit (RATE_LIMIT_PER_HOUR): takes the budget once per mail (`hooks.rateCounted` /
 * `onRateCounted`), never on a dry run. Over the limit: `rate-limited`; the secretary unreachable:
 * `secretary-failed` (never answered without a budget check; retried like any secretary outage).
 */
export async function rateLimitStep(pass: ParsedMailPass, replyTo: string): Promise<MailOutcome | undefined> {
  const { deps, mail, hooks, log } = pass;
  // A dry run takes no budget (docs/audit-and-limits.md).
  if (hooks.rateCounted || pass.dryRun) return undefined;
  let over: 'sender' | 'mailbox' | undefined;
  try {
    over = await overLimit(pass, replyTo, () => hooks.onRateCounted?.());
  } catch (err) {
    deps.logger.warn('the rate limit could not be checked (secretary); the mail waits', {
      ...log,
      error: { message: errorWord(err) },
    });
    return { kind: 'secretary-failed', mail, error: err };
  }
  if (over) {
    const { metricReason, auditDetail, logMessage } = OVER_LIMIT[over];
    deps.metrics.skipped(pass.channel, metricReason);
    pass.audit.skipped(pass.ref, 'rate-limited', auditDetail);
    deps.logger.warn(logMessage, log);
    return { kind: 'rate-limited', mail };
  }
  hooks.onRateCounted?.();
  return undefined;
}

/**
 * The sender verdict of a mail a client key submitted to POST /test: its Authentication-Results are the caller's own
 * text, not a receiving server's (RFC 8601 §5: only headers added by a trusted border server may be believed), so
 * the sender counts as unverified, as a mail from outside would.
 */
const CLIENT_TEST_MAIL_UNVERIFIED = {
  verified: false,
  method: 'none',
  reason: "POST /test with a client key: the submitted mail's Authentication-Results are not believed",
} as const;

/**
 * The sender trust verdict of a mail (sender-authentication.ts), as the secretary is told it: a client key's dry run
 * believes no Authentication-Results (the caller wrote them).
 */
function senderAuthenticationOf(pass: ParsedMailPass): SenderAuthentication {
  const known = authentications.get(pass);
  if (known) return known;
  const { mail, input } = pass;
  const verdict =
    pass.dryRun && input.dryRunView === 'client'
      ? CLIENT_TEST_MAIL_UNVERIFIED
      : authenticateMail({
          source: input.raw,
          from: mail.from,
          ...trustedIdsOf(pass.deps.settings, input.source),
          providerDmarcPass: input.providerDmarcPass,
        });
  authentications.set(pass, verdict);
  return verdict;
}

/** Each pass's verdict, worked out once (the mailbox limit and the secretary request both read it). */
const authentications = new WeakMap<ParsedMailPass, SenderAuthentication>();

/** Whose Authentication-Results count for mail from `source`, and the configuration key that says so. */
function trustedIdsOf(
  settings: MailPipelineDeps['settings'],
  source: MailSource,
): { trustedAuthservIds: readonly string[]; setting: string } {
  if (source === 'email') return { trustedAuthservIds: settings.trustedAuthservIds, setting: 'TRUSTED_AUTHSERV_ID' };
  return {
    trustedAuthservIds: settings.webhookTrustedAuthservIds?.[source] ?? [],
    setting: `${source.toUpperCase()}_TRUSTED_AUTHSERV_ID`,
  };
}

/**
 * The secretary request of a mail: everything it is told about a mail is assembled here and in buildRequestText,
 * with the sender trust step's verdict (RFC 8601 Authentication-Results, DMARC alignment) and the contract's
 * length limits (998: RFC 5322 line length).
 */
export function analyzeRequestOf(pass: ParsedMailPass, requestText: string): AnalyzeRequest {
  const { mail, input } = pass;
  const clientView = pass.dryRun && input.dryRunView === 'client';
  const senderAuthentication = senderAuthenticationOf(pass);
  const request: AnalyzeRequest = {
    channel: 'email',
    username: mail.from!,
    sender_authentication: { ...senderAuthentication, reason: senderAuthentication.reason.slice(0, 500) },
    request: requestText,
    message_id: (mail.messageId ?? input.fallbackKey).slice(0, 998),
    ...(mail.threadRoot ? { thread_key: mail.threadRoot.slice(0, 998) } : {}),
    ...(mail.subject ? { subject: mail.subject.slice(0, 998) } : {}),
  };
  // The intake (IMAP or a webhook's provider) for the audit rows of the mail (docs/audit.md, "Intake"); a dry run
  // came by neither.
  if (!pass.dryRun) return { ...request, intake: intakeOfSource(input.source) };
  return { ...request, dry_run: true, ...(clientView ? { dry_run_view: 'client' as const } : {}) };
}

/**
 * Asks the secretary; a dry run first draws from its caller's budget (PipelineInput.dryRunDraw). On a dry run its answer must confirm `dry_run: true`: a secretary that ignored the flag may
 * have acted, so that is a 502 `dry_run_unsupported` (not retryable) instead of a pretended dry run.
 */
export async function askSecretary(pass: ParsedMailPass, request: AnalyzeRequest): Promise<AnalysisResponse> {
  if (pass.dryRun) await pass.input.dryRunDraw?.();
  const analysis = await pass.deps.secretary.analyze(request);
  if (pass.dryRun && (analysis as { dry_run?: unknown }).dry_run !== true) {
    throw new AppError(
      'dry_run_unsupported',
      502,
      'The secretary did not confirm the dry run (its answer lacks dry_run: true); upgrade it before using POST /test',
      { retryable: false },
    );
  }
  return analysis;
}

/**
 * A secretary error turned into the pass's next move: a refusal (a 4xx not worth retrying) is a decision — the
 * sender gets the standard Russian message (its developer text goes to the log only); anything else (and a dry
 * run the secretary did not confirm) ends the pass as `secretary-failed`.
 */
export function secretaryErrorStep(pass: ParsedMailPass, err: unknown): ReplyPlan | MailOutcome {
  const { deps, mail } = pass;
  const refused =
    isAppError(err) && err.code !== 'dry_run_unsupported' && err.status >= 400 && err.status < 500 && !err.retryable;
  if (!refused) return { kind: 'secretary-failed', mail, error: err };
  deps.logger.warn('the secretary refused the request; the sender gets a standard message', {
    ...pass.log,
    error: { code: err.code, message: err.message },
    http: { response: { status_code: err.status } },
  });
  if (!pass.dryRun) deps.metrics.reply(pass.channel, 'rejected');
  return { text: refusalMessage(err), refusal: { status: err.status, code: err.code } };
}

/** A secretary answer whose category gets no reply (automatic mail, marketing): handled, nothing is sent. */
export function noReplyStep(pass: ParsedMailPass, analysis: AnalysisResponse): MailOutcome {
  const { deps, mail } = pass;
  if (pass.dryRun) return { kind: 'dry-run', mail, analysis, reason: 'no-reply' };
  deps.metrics.skipped(pass.channel, 'no_reply');
  deps.logger.info('mail not answered: its category gets no reply', {
    ...pass.log,
    classification: { category: analysis.category },
  });
  pass.audit.skipped(pass.ref, 'no-reply', 'its category gets no reply');
  return { kind: 'no-reply', mail, category: analysis.category };
}

/**
 * Decide step: the reply's text. Nothing readable: one polite request for text, no LLM call. Otherwise the
 * secretary's answer (`no-reply` when its category gets none; its refusal as a standard message; an outage ends
 * the pass as `secretary-failed`).
 */
export async function decideStep(pass: ParsedMailPass, decision: ReadableDecision): Promise<ReplyPlan | MailOutcome> {
  if (decision.kind === 'unreadable') {
    if (!pass.dryRun) pass.deps.metrics.skipped(pass.channel, 'unreadable');
    return { text: USER_MESSAGES.unreadable };
  }
  let analysis: AnalysisResponse;
  try {
    analysis = await askSecretary(pass, analyzeRequestOf(pass, decision.request));
  } catch (err) {
    return secretaryErrorStep(pass, err);
  }
  if (analysis.no_reply) return noReplyStep(pass, analysis);
  return { text: replyTextOf(analysis) || USER_MESSAGES.emptyAnswer, analysis };
}

/** The end of a dry run that got as far as a reply: the answer and the reply that would be sent. */
export function dryRunOutcomeOf(pass: ParsedMailPass, decision: ReadableDecision, plan: ReplyPlan): DryRunOutcome {
  const { mail } = pass;
  return {
    kind: 'dry-run',
    mail,
    analysis: plan.analysis,
    ...(decision.kind === 'unreadable' ? { reason: 'unreadable' as const } : {}),
    ...(plan.refusal ? { reason: 'refused' as const, refusal: plan.refusal } : {}),
    reply: { to: decision.replyTo, subject: replySubject(mail.subject), inReplyTo: mail.messageId, text: plan.text },
  };
}

/**
 * Deliver step: the reply over SMTP (RFC 3834 `Auto-Submitted: auto-replied`; its Message-ID derived from the
 * request's key, so a resend after a crash is one message). A failure ends the pass as `delivery-failed`; a
 * refusal (5xx, `permanent`) is final whatever the source does next, so its `failed` event is reported here, a
 * temporary failure only if the source gives up.
 */
export async function deliverStep(
  pass: ParsedMailPass,
  replyTo: string,
  plan: ReplyPlan,
): Promise<MailOutcome | undefined> {
  const { deps, mail } = pass;
  try {
    await deps.mailer.send({
      to: replyTo,
      subject: replySubject(mail.subject),
      text: plan.text,
      inReplyTo: mail.messageId,
      references: mail.references,
      idempotencyKey: mail.messageId ?? pass.input.fallbackKey,
      autoSubmitted: 'auto-replied',
    });
  } catch (err) {
    deps.metrics.reply(pass.channel, 'failed');
    const permanent = isAppError(err) && !err.retryable;
    if (permanent)
      pass.audit.failed(pass.ref, replyTo, smtpFailureReason(err.code), 'the SMTP server refused the reply');
    return { kind: 'delivery-failed', mail, to: replyTo, error: err, permanent };
  }
  deps.metrics.reply(pass.channel, 'sent');
  return undefined;
}

/** Runs the source's `confirm` after a delivered reply: retried twice (200 ms–2 s backoff), then logged, never thrown. */
export async function confirmReplied(pass: ParsedMailPass): Promise<void> {
  const { deps, mail, hooks } = pass;
  try {
    await retry(() => hooks.confirm(mail), {
      maxRetries: 2,
      shouldRetry: () => true,
      delayMs: (n) => backoffMs(n, { baseMs: 200, maxMs: 2000, jitter: 0.5 }),
    });
  } catch (err) {
    deps.logger.error(
      'the reply was sent but could not be recorded as handled; a repeat of this mail may be answered again',
      { ...pass.log, ...loggedMessageId(mail), error: { message: errorWord(err) } },
    );
  }
}

/** The `detail` of the reply's `delivered` audit event: why a standard message went out, if one did. */
function deliveredDetail(decision: ReadableDecision, plan: ReplyPlan): string | undefined {
  if (decision.kind === 'unreadable') return 'nothing readable: asked for text';
  if (plan.refusal) return `the secretary refused the request (${plan.refusal.status}); a standard message was sent`;
  return undefined;
}

/**
 * Confirm step: the reply is out, so from here on the mail is `replied`, whatever happens to its record — the
 * source's `confirm` (IMAP: \Answered; webhooks: the delivery record), then the log and the `delivered` event.
 */
export async function confirmStep(
  pass: ParsedMailPass,
  decision: ReadableDecision,
  plan: ReplyPlan,
): Promise<MailOutcome> {
  await confirmReplied(pass);
  pass.deps.logger.info('mail answered', { ...pass.log, ...loggedMessageId(pass.mail) });
  pass.audit.delivered(pass.ref, decision.replyTo, deliveredDetail(decision, plan));
  return { kind: 'replied', mail: pass.mail, to: decision.replyTo, text: plan.text };
}

/** A decision that gets an answer (not skipped by the loop rules). */
export type ReadableDecision = Exclude<MailDecision, { kind: 'skip' }>;

/**
 * The steps after the in-flight check: idempotency → rate limit → decide → (dry run ends here) → deliver →
 * confirm. Each step returns an outcome to end the pass, or lets the mail go on.
 */
export async function answerStep(pass: ParsedMailPass, decision: ReadableDecision): Promise<MailOutcome> {
  const stop = (await idempotencyStep(pass)) ?? (await rateLimitStep(pass, decision.replyTo));
  if (stop) return stop;
  const plan = await decideStep(pass, decision);
  if (isOutcome(plan)) return plan;
  if (pass.dryRun) return dryRunOutcomeOf(pass, decision, plan);
  return (await deliverStep(pass, decision.replyTo, plan)) ?? (await confirmStep(pass, decision, plan));
}

/**
 * The IMAP-independent email pipeline, shared by the IMAP channel (email-channel.ts) and the inbound webhooks
 * (webhooks/*.ts). One instance per process: it owns the in-flight Message-ID set, so two copies of a mail
 * arriving at once (two IMAP copies, a webhook retry) are answered once.
 */
export function createMailPipeline(deps: MailPipelineDeps): MailPipeline {
  const messageIdsInFlight = new Set<string>();

  async function processMail(input: PipelineInput, hooks: PipelineHooks): Promise<MailOutcome> {
    // One request id per pass (a webhook's own, else a new one): sent to the secretary as X-Request-Id and put on
    // the audit events, so the communicator's rows and the secretary's decision of this mail share it.
    if (!getRequestId()) return runWithRequestId(randomUUID(), () => processMail(input, hooks));
    const parsed = await parseStep(startPass(deps, input, hooks));
    if (isOutcome(parsed)) return parsed;
    const decision = classifyMail(parsed.mail, deps.settings);
    if (decision.kind === 'skip') return loopRuleStep(parsed, decision);
    return holdingMessageId(messageIdsInFlight, parsed, () => answerStep(parsed, decision));
  }

  return { processMail };
}

/**
 * Runs `work` holding the mail's Message-ID in `inFlight`: another copy being answered right now ends this pass
 * as `deferred` (its source looks again once that one is done). A dry run neither waits for nor holds up the
 * real handling of the same Message-ID; mail without a Message-ID is not held.
 */
export async function holdingMessageId(
  inFlight: Set<string>,
  pass: ParsedMailPass,
  work: () => Promise<MailOutcome>,
): Promise<MailOutcome> {
  const id = pass.dryRun ? undefined : pass.mail.messageId;
  if (!id) return work();
  if (inFlight.has(id)) return { kind: 'deferred', mail: pass.mail };
  inFlight.add(id);
  try {
    return await work();
  } finally {
    inFlight.delete(id);
  }
}
