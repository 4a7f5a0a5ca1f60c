import { backoffMs, isAppError, type Logger } from '@workemon/service-kit';
import type { EmailSettings } from '../config.js';
import type { ChannelMetrics } from '../channel-metrics.js';
import { replyTextOf, type SecretaryClient } from '../secretary-client.js';
import { secretaryRetry } from '../secretary-retry.js';
import type { SenderRateLimit } from '../sender-rate-limit.js';
import {
  FLAG_ATTEMPT_PREFIX,
  FLAG_FAILED,
  FLAG_REPLIED,
  attemptsRecorded,
  type FetchedMail,
  type ImapMailbox,
} from './imap-mailbox.js';
import {
  UnparseableMailError,
  parseInboundMail,
  replySubject,
  type InboundMail,
  type SkipReason,
} from './mail-parsing.js';
import { USER_MESSAGES, buildRequestText, refusalMessage } from './mail-request.js';
import { authenticateMail, type SenderAuthentication } from './sender-authentication.js';
import type { SmtpMailer } from './smtp-mailer.js';

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

/** What the decide step returns for a category that gets no reply (the secretary's `no_reply`). */
const NO_REPLY = Symbol('no reply');

type Attempt = {
  count: number;
  nextAt: number;
  rateCounted: boolean;
  /** Secretary outages met so far (retried within seconds, not counted against MAX_ATTEMPTS). */
  outages?: number;
  /** The last failure was such an outage: the next try records no `$WorkemonAttemptN` on the message. */
  uncounted?: boolean;
};

export type EmailChannel = {
  start: () => void;
  /** Stops taking mail, waits for mail in flight up to `deadlineMs`, then logs out. */
  stop: (deadlineMs: number) => Promise<void>;
  health: () => {
    connected: boolean;
    /** Unix ms of the last successful sweep; undefined before the first. */
    lastSweepAt?: number;
    /** Unix ms the channel started: the age of "no sweep yet". */
    startedAt?: number;
    sweepIntervalMs: number;
  };
  /** Seconds since the oldest unseen mail (not set aside) arrived, as of the last sweep; 0 when none. */
  oldestUnseenAgeSeconds: () => number;
  mailer: SmtpMailer;
};

/**
 * Reads the mailbox and answers each mail exactly once:
 * - a mail is flagged \Seen only after its reply was accepted by SMTP, or when it is deliberately skipped;
 * - failures leave it unseen and retry it with backoff; each attempt is recorded on the message as the keyword
 *   `$WorkemonAttemptN` (so the count survives restarts), and after `maxAttempts` it is set aside ($WorkemonFailed);
 * - the same Message-ID is answered once (an answered copy in the mailbox, or one in flight, wins);
 * - the reply's Message-ID is derived from the request's key, so the rare resend after a crash between SMTP
 *   accepting and the flag write is one message to the recipient's server, and the secretary, keyed by the same
 *   `message_id`, returns its stored answer instead of asking the LLM again.
 */
export function createEmailChannel(deps: {
  settings: EmailSettings;
  /** Opens the mailbox; `onChange` is called on new mail (IDLE) and after every (re)connection. */
  openMailbox: (onChange: () => void) => ImapMailbox;
  mailer: SmtpMailer;
  secretary: SecretaryClient;
  rateLimit: SenderRateLimit;
  metrics: ChannelMetrics;
  logger: Logger;
}): EmailChannel {
  const { settings, mailer, secretary, metrics, logger } = deps;
  const ownAddresses = [settings.imap.user, settings.smtp.user, settings.from];
  const attempts = new Map<string, Attempt>();
  const queue: number[] = [];
  const queued = new Set<number>();
  const inFlight = new Map<number, Promise<void>>();
  const messageIdsInFlight = new Set<string>();
  let sweeping: Promise<void> | undefined;
  let sweepAgain = false;
  let lastSweepAt: number | undefined;
  let oldestUnseenAt: number | undefined;
  let startedAt: number | undefined;
  let stopped = false;
  let sweepTimer: NodeJS.Timeout | undefined;
  const retryTimers = new Set<NodeJS.Timeout>();

  const mailbox = deps.openMailbox(() => requestSweep());
  const keyOf = (uid: number) => `${mailbox.uidValidity() ?? '0'}:${uid}`;

  function scheduleSweep(delayMs: number) {
    // Work that fails while stopping must not start a timer that keeps the process alive after stop().
    if (stopped) return;
    const timer = setTimeout(() => {
      retryTimers.delete(timer);
      requestSweep();
    }, delayMs);
    retryTimers.add(timer);
  }

  const oldestUnseenAgeSeconds = () =>
    oldestUnseenAt === undefined ? 0 : Math.max(0, (Date.now() - oldestUnseenAt) / 1000);
  /** The age grows between sweeps too, and while the connection is down. */
  const refreshGauges = () => metrics.oldestUnseenAge(oldestUnseenAgeSeconds());

  function requestSweep() {
    if (stopped) return;
    refreshGauges();
    if (sweeping) {
      sweepAgain = true;
      return;
    }
    sweeping = (async () => {
      do {
        sweepAgain = false;
        await sweepOnce();
      } while (sweepAgain && !stopped);
    })().finally(() => {
      sweeping = undefined;
    });
  }

  async function sweepOnce() {
    let found: { uids: number[]; oldestAt?: number } | undefined;
    try {
      found = await mailbox.listUnseen();
    } catch (err) {
      metrics.pollError('email', 'sweep');
      logger.warn('mailbox sweep failed', { error: { message: (err as Error).message } });
      return;
    }
    if (!found) return;
    lastSweepAt = Date.now();
    oldestUnseenAt = found.oldestAt;
    refreshGauges();
    metrics.success('email');
    const now = Date.now();
    for (const uid of found.uids) {
      const attempt = attempts.get(keyOf(uid));
      if (queued.has(uid) || inFlight.has(uid)) continue;
      if (attempt && attempt.nextAt > now) continue;
      queue.push(uid);
      queued.add(uid);
    }
    pump();
  }

  function pump() {
    while (!stopped && inFlight.size < settings.concurrency && queue.length) {
      const uid = queue.shift()!;
      queued.delete(uid);
      const work = processMail(uid)
        .catch((err: unknown) => {
          logger.error('mail processing crashed', { err: err instanceof Error ? err : undefined, imap: { uid } });
        })
        .finally(() => {
          inFlight.delete(uid);
          pump();
        });
      inFlight.set(uid, work);
    }
  }

  async function markDone(uid: number, flags: string[]) {
    await mailbox.addFlags(uid, flags);
    attempts.delete(keyOf(uid));
  }

  /** Gives a mail up: flagged $WorkemonFailed (or moved aside), counted, logged; the mail after it goes on. */
  async function giveUp(uid: number, key: string, reason: string) {
    attempts.delete(key);
    metrics.emailFailed();
    logger.error('mail given up after repeated failures; set aside for a human', {
      imap: { uid, flag: FLAG_FAILED },
      reason,
    });
    await mailbox.setAside(uid).catch((err: Error) => {
      logger.warn('setting a failed mail aside did not work; the next sweep tries again', {
        imap: { uid },
        error: { message: err.message },
      });
    });
  }

  async function fail(uid: number, key: string, reason: string, permanent: boolean, secretaryError?: unknown) {
    const attempt = attempts.get(key) ?? { count: 0, nextAt: 0, rateCounted: true };
    // A secretary that is restarting (503, unreachable) is retried within seconds and not counted: secretary-retry.ts.
    const retry =
      secretaryError === undefined
        ? undefined
        : secretaryRetry(secretaryError, attempt.count + (attempt.outages ?? 0) + 1, settings.retryBaseDelayMs);
    attempt.uncounted = Boolean(retry && !retry.counts);
    if (attempt.uncounted) attempt.outages = (attempt.outages ?? 0) + 1;
    else attempt.count = permanent ? settings.maxAttempts : attempt.count + 1;
    if (attempt.count >= settings.maxAttempts) {
      await giveUp(uid, key, reason);
      return;
    }
    const delay = retry?.delayMs ?? backoffMs(attempt.count - 1, { baseMs: settings.retryBaseDelayMs, jitter: 0.5 });
    attempt.nextAt = Date.now() + delay;
    attempts.set(key, attempt);
    logger.warn(`mail will be retried in ${Math.round(delay)} ms`, { imap: { uid }, reason, attempt: attempt.count });
    scheduleSweep(delay + 10);
  }

  /**
   * Counts this attempt on the message itself (`$WorkemonAttemptN`), before anything that could crash, so a mail
   * that kills or hangs the process is still given up after MAX_ATTEMPTS across restarts. False: given up now.
   */
  async function recordAttempt(fetched: FetchedMail, key: string): Promise<boolean> {
    const prior = attempts.get(key);
    if (prior?.uncounted) {
      // A retry after a secretary outage: the mail itself is fine, so this try is not one of its attempts.
      prior.uncounted = false;
      return true;
    }
    const memory = prior?.count ?? 0;
    const done = Math.max(attemptsRecorded(fetched.flags), memory);
    if (done >= settings.maxAttempts) {
      await giveUp(fetched.uid, key, `${done} attempts recorded on the message`);
      return false;
    }
    if (mailbox.keywordsAllowed()) await mailbox.addFlags(fetched.uid, [`${FLAG_ATTEMPT_PREFIX}${done + 1}`]);
    const attempt = attempts.get(key) ?? { count: 0, nextAt: 0, rateCounted: false };
    attempt.count = done;
    attempts.set(key, attempt);
    return true;
  }

  /** Decide step: the answer text, from the secretary or one of our own Russian messages. Undefined: retry. */
  async function decide(
    decision: Exclude<MailDecision, { kind: 'skip' }>,
    mail: InboundMail,
    uid: number,
    key: string,
    requestKey: string,
    senderAuthentication: SenderAuthentication,
  ): Promise<string | typeof NO_REPLY | undefined> {
    if (decision.kind === 'unreadable') {
      metrics.skipped('email', 'unreadable');
      return USER_MESSAGES.unreadable;
    }
    try {
      // The secretary request: everything it is told about a mail is assembled here and in buildRequestText.
      const analysis = await secretary.analyze({
        channel: 'email',
        username: mail.from!,
        sender_authentication: { ...senderAuthentication, reason: senderAuthentication.reason.slice(0, 500) },
        request: decision.request,
        message_id: requestKey.slice(0, 998),
        ...(mail.threadRoot ? { thread_key: mail.threadRoot.slice(0, 998) } : {}),
        ...(mail.subject ? { subject: mail.subject.slice(0, 998) } : {}),
      });
      if (analysis.no_reply) {
        // A category that gets no reply (automatic mail, marketing): handled, nothing is sent.
        metrics.skipped('email', 'no_reply');
        logger.info('mail not answered: its category gets no reply', {
          imap: { uid },
          classification: { category: analysis.category },
        });
        return NO_REPLY;
      }
      return replyTextOf(analysis) || USER_MESSAGES.emptyAnswer;
    } catch (err) {
      const status = isAppError(err) ? err.status : 500;
      if (isAppError(err) && status >= 400 && status < 500 && !err.retryable) {
        // A decision, not a failure; its text is for developers and only goes to the log.
        logger.warn('the secretary refused the request; the sender gets a standard message', {
          imap: { uid },
          error: { code: err.code, message: err.message },
          http: { response: { status_code: status } },
        });
        metrics.reply('email', 'rejected');
        return refusalMessage(err);
      }
      await fail(uid, key, `secretary: ${isAppError(err) ? err.code : 'error'}`, false, err);
      return undefined;
    }
  }

  /** Deliver + confirm steps: SMTP first, the flags only once the server accepted the reply. */
  async function deliver(mail: InboundMail, to: string, uid: number, requestKey: string, text: string) {
    await mailer.send({
      to,
      subject: replySubject(mail.subject),
      text,
      inReplyTo: mail.messageId,
      references: mail.references,
      idempotencyKey: requestKey,
      autoSubmitted: 'auto-replied',
    });
    metrics.reply('email', 'sent');
    await markDone(uid, ['\\Seen', '\\Answered', FLAG_REPLIED]);
    logger.info('mail answered', { imap: { uid }, email: { message_id: mail.messageId?.slice(0, 256) } });
  }

  /** Rate limits: the sender, and the reply address too when it differs (no reflecting replies at a third party). */
  function withinRateLimit(mail: InboundMail, replyTo: string): boolean {
    const sender = mail.from!;
    if (!deps.rateLimit.tryTake(sender)) return false;
    return replyTo === sender || deps.rateLimit.tryTake(`reply-to:${replyTo}`);
  }

  async function processMail(uid: number) {
    const key = keyOf(uid);
    const fetched = await mailbox.fetch(uid).catch((err: Error) => {
      logger.warn('fetching mail failed', { imap: { uid }, error: { message: err.message } });
      return null;
    });
    if (fetched === null) return; // the connection is gone; the next sweep picks it up again
    if (!fetched) return; // expunged meanwhile
    // A sweep's SEARCH may have been answered just before this mail's flags were stored: the flags fetched now
    // are the truth, and a mail already seen or set aside is done.
    if (fetched.flags.includes('\\Seen') || fetched.flags.includes(FLAG_FAILED)) return;
    const firstTry = !attempts.has(key) && attemptsRecorded(fetched.flags) === 0;
    if (firstTry) metrics.received('email');
    if (!(await recordAttempt(fetched, key))) return;
    const endTimer = metrics.startTimer('email');

    // 1. parse
    let mail: InboundMail;
    try {
      mail = await parseInboundMail(fetched.source, { ownAddresses, truncated: fetched.truncated });
    } catch (err) {
      const code = err instanceof UnparseableMailError ? err.code : 'parser_error';
      logger.warn('mail cannot be parsed', { imap: { uid }, error: { code, message: (err as Error).message } });
      await fail(uid, key, `parse: ${code}`, false);
      endTimer('retry');
      return;
    }
    // 2. classify (and build the secretary request)
    const decision = classifyMail(mail, settings);
    if (decision.kind === 'skip') {
      metrics.skipped('email', decision.reason);
      logger.info(`mail skipped: ${decision.reason}`, {
        imap: { uid },
        email: { message_id: mail.messageId?.slice(0, 256) },
      });
      await markDone(uid, ['\\Seen']);
      endTimer('skipped');
      return;
    }
    const requestKey = mail.messageId ?? key;
    if (mail.messageId && messageIdsInFlight.has(mail.messageId)) {
      // Another copy is being answered right now; look again once it is done.
      scheduleSweep(settings.retryBaseDelayMs / 10 + 50);
      endTimer('deferred');
      return;
    }
    if (mail.messageId) messageIdsInFlight.add(mail.messageId);
    try {
      if (mail.messageId && (await mailbox.isAnswered(mail.messageId, uid))) {
        metrics.skipped('email', 'duplicate');
        logger.info('mail skipped: this Message-ID was already answered', { imap: { uid } });
        await markDone(uid, ['\\Seen']);
        endTimer('skipped');
        return;
      }
      const attempt = attempts.get(key);
      if (!attempt?.rateCounted) {
        if (!withinRateLimit(mail, decision.replyTo)) {
          metrics.skipped('email', 'rate_limited');
          logger.warn('sender or reply address over the hourly limit; no reply', { imap: { uid } });
          await markDone(uid, ['\\Seen']);
          endTimer('skipped');
          return;
        }
        attempts.set(key, { count: attempt?.count ?? 0, nextAt: 0, rateCounted: true });
      }
      // 3. decide
      // Whether the receiving server vouches for the From: domain (RFC 8601 Authentication-Results, DMARC alignment).
      const senderAuthentication = authenticateMail({
        source: fetched.source,
        from: mail.from,
        trustedAuthservIds: settings.trustedAuthservIds,
      });
      const text = await decide(decision, mail, uid, key, requestKey, senderAuthentication);
      if (text === undefined) {
        endTimer('retry');
        return;
      }
      if (text === NO_REPLY) {
        await markDone(uid, ['\\Seen']);
        endTimer('skipped');
        return;
      }
      // 4. deliver, 5. confirm
      try {
        await deliver(mail, decision.replyTo, uid, requestKey, text);
        endTimer('sent');
      } catch (err) {
        metrics.reply('email', 'failed');
        const permanent = isAppError(err) && !err.retryable;
        await fail(uid, key, `smtp: ${isAppError(err) ? err.code : (err as Error).message}`, permanent);
        endTimer('retry');
      }
    } finally {
      if (mail.messageId) messageIdsInFlight.delete(mail.messageId);
    }
  }

  return {
    mailer,
    start: () => {
      startedAt = Date.now();
      mailbox.start();
      // IDLE pushes new mail; the periodic sweep catches whatever a push missed, retries failures and, with its
      // command deadline, finds a connection that stopped answering.
      sweepTimer = setInterval(requestSweep, settings.sweepIntervalMs);
    },
    stop: async (deadlineMs) => {
      stopped = true;
      clearInterval(sweepTimer);
      for (const t of retryTimers) clearTimeout(t);
      retryTimers.clear();
      queue.length = 0;
      queued.clear();
      const drained = Promise.allSettled([...inFlight.values(), sweeping]);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        drained.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), deadlineMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) logger.warn(`${inFlight.size} mail(s) still in flight at shutdown; they stay unseen`);
      await mailbox.stop();
      mailer.close();
    },
    health: () => ({
      connected: mailbox.isConnected(),
      lastSweepAt,
      startedAt,
      sweepIntervalMs: settings.sweepIntervalMs,
    }),
    oldestUnseenAgeSeconds,
  };
}
