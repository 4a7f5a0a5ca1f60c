import { backoffMs, isAppError, sleep, untilAborted, withDeadline, type Logger } from '@workemon/service-kit';
import type { EmailSettings } from '../config.js';
import type { ChannelMetrics } from '../channel-metrics.js';
import type { SecretaryClient } from '../secretary-client.js';
import { secretaryRetry } from '../secretary-retry.js';
import type { SenderRateLimit } from '../sender-rate-limit.js';
import {
  FLAG_ATTEMPT_PREFIX,
  FLAG_FAILED,
  FLAG_REPLIED,
  ImapCommandError,
  ImapTimeoutError,
  attemptsRecorded,
  type FetchedMail,
  type ImapMailbox,
} from './imap-mailbox.js';
import { createMailPipeline, mailRefOf, type MailOutcome, type MailPipeline } from './mail-pipeline.js';
import type { AuditReporter } from '../audit-reporter.js';
import { createMailAudit, headerMessageId, smtpFailureReason, type MailRef } from './mail-audit.js';
import type { SmtpMailer } from './smtp-mailer.js';

// The IMAP-independent steps (parse, loop rules, rate limit, decide, deliver) live in mail-pipeline.ts.
export { classifyMail, replyAddressOf, type MailDecision } from './mail-pipeline.js';

/** Finished mails an email channel remembers (UIDVALIDITY:UID keys, a few dozen bytes each). */
export const SETTLED_KEPT = 10_000;

/** How a given-up mail is audited: a callback that reports it, or the mail's reference (reported as `poison`). */
type GiveUpAudit = MailRef | (() => void);

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
    /** Why the mailbox's last connection attempt failed (ImapMailbox.lastError); undefined once connected. */
    lastError?: string;
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
  /** The process's mail pipeline (shared with the webhooks); default: one of this channel's own. */
  pipeline?: MailPipeline;
  /** Audit events (mail-audit.ts): the pipeline's outcome points, and here the mail given up; default: none. */
  audit?: AuditReporter;
}): EmailChannel {
  const { settings, mailer, metrics, logger } = deps;
  const audit = createMailAudit(deps.audit, 'email');
  const ownAddresses = [settings.imap.user, settings.smtp.user, settings.from];
  const pipeline = deps.pipeline ?? createMailPipeline({ ...deps, ownAddresses });
  const attempts = new Map<string, Attempt>();
  const queue: number[] = [];
  const queued = new Set<number>();
  const inFlight = new Map<number, Promise<void>>();
  /**
   * Mail this process finished with (answered or skipped: `markDone`; `keyOf`), the oldest forgotten beyond
   * SETTLED_KEPT: never taken up again here even if its flags could not be written (the server refused the STORE),
   * so a refused write costs at most a repeat after a restart, not one per sweep.
   */
  const settled = new Set<string>();
  const settle = (key: string) => {
    settled.add(key);
    if (settled.size > SETTLED_KEPT) settled.delete(settled.values().next().value!);
  };
  let sweeping: Promise<void> | undefined;
  let sweepAgain = false;
  let lastSweepAt: number | undefined;
  let oldestUnseenAt: number | undefined;
  let startedAt: number | undefined;
  let stopped = false;
  let sweepTimer: NodeJS.Timeout | undefined;
  /** Aborts every scheduled retry sweep at stop(). */
  const retryWaits = new AbortController();

  const mailbox = deps.openMailbox(() => requestSweep());
  const keyOf = (uid: number) => `${mailbox.uidValidity() ?? '0'}:${uid}`;

  function scheduleSweep(delayMs: number) {
    // Work that fails while stopping must not start a timer that keeps the process alive after stop().
    if (stopped) return;
    void sleep(delayMs, { signal: retryWaits.signal }).then((waited) => {
      if (waited) requestSweep();
    });
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
      if (queued.has(uid) || inFlight.has(uid) || settled.has(keyOf(uid))) continue;
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
        .catch(async (err: unknown) => {
          // The mailbox failed a command (refused, timed out, connection lost): the mail stays unseen for the next sweep.
          if (err instanceof ImapCommandError || err instanceof ImapTimeoutError) {
            logger.warn('an IMAP command failed while handling a mail; the next sweep takes it up again', {
              imap: { uid },
              error: { message: err.message },
            });
            // A command the server refuses for this mail (its "already answered?" SEARCH) is the mail's failure: it
            // counts as an attempt, so the mail is set aside after MAX_ATTEMPTS, as on a server without keywords,
            // where no attempt keyword counts it, it was otherwise retried at every sweep for ever.
            if (err instanceof ImapCommandError && err.refused)
              await fail(uid, keyOf(uid), `imap: ${err.message}`, false);
            else uncount(keyOf(uid));
          } else
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
    // Named before the write, which may wait across a reconnect: a new UIDVALIDITY there gives this UID to another mail.
    const key = keyOf(uid);
    await mailbox.addFlags(uid, flags);
    attempts.delete(key);
    settle(key);
  }

  /**
   * Gives a mail up: flagged $WorkemonFailed (or moved aside), counted, logged; the mail after it goes on.
   * Audit: `onGiveUp` reports the outcome when the caller knows it (a reply that kept failing); otherwise the mail
   * (`onGiveUp` its reference, or one read from the raw header) is reported received and skipped as `poison`.
   */
  async function giveUp(uid: number, key: string, reason: string, onGiveUp?: GiveUpAudit, source?: Buffer) {
    attempts.delete(key);
    if (typeof onGiveUp === 'function') onGiveUp();
    else {
      const ref: MailRef = onGiveUp ?? { messageId: source && headerMessageId(source), fallbackId: key };
      audit.received(ref);
      audit.skipped(ref, 'poison', `set aside after repeated failures (${reason})`);
    }
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

  async function fail(
    uid: number,
    key: string,
    reason: string,
    permanent: boolean,
    secretaryError?: unknown,
    onGiveUp?: GiveUpAudit,
  ) {
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
      await giveUp(uid, key, reason, onGiveUp);
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
      await giveUp(fetched.uid, key, `${done} attempts recorded on the message`, undefined, fetched.source);
      return false;
    }
    if (mailbox.keywordsAllowed()) await mailbox.addFlags(fetched.uid, [`${FLAG_ATTEMPT_PREFIX}${done + 1}`]);
    const attempt = attempts.get(key) ?? { count: 0, nextAt: 0, rateCounted: false };
    attempt.count = done;
    attempts.set(key, attempt);
    return true;
  }

  /**
   * A try that ended on a lost or silent connection (ImapTimeoutError, a connection closed under a command) was not
   * the mail's failure: its attempt keyword is already on the message, so the next try adds none (`uncounted`, as
   * for a secretary outage). Five drops at its "already answered?" SEARCH no longer set a healthy mail aside (s35).
   */
  function uncount(key: string) {
    const attempt = attempts.get(key);
    if (attempt) attempt.uncounted = true;
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

    const outcome = await pipeline.processMail(
      {
        source: 'email',
        raw: fetched.source,
        truncated: fetched.truncated,
        fallbackKey: key,
        logContext: { imap: { uid } },
      },
      {
        isAnswered: (messageId) => mailbox.isAnswered(messageId, uid),
        rateCounted: attempts.get(key)?.rateCounted,
        onRateCounted: () => {
          attempts.set(key, { count: attempts.get(key)?.count ?? 0, nextAt: 0, rateCounted: true });
        },
        confirm: () => markDone(uid, ['\\Seen', '\\Answered', FLAG_REPLIED]),
      },
    );
    const result = await settleOutcome(uid, key, fetched, outcome);
    if (result) endTimer(result);
  }

  /**
   * The IMAP bookkeeping of a pipeline outcome (the confirm half of the mailbox's steps): skipped mail is flagged
   * \Seen, failures are counted and retried or given up, a deferred copy is looked at again soon. Returns the
   * duration metric's result label; undefined for a dry run (the mailbox never asks for one).
   */
  async function settleOutcome(uid: number, key: string, fetched: FetchedMail, outcome: MailOutcome) {
    switch (outcome.kind) {
      case 'unparseable':
        await fail(uid, key, `parse: ${outcome.code}`, false, undefined, {
          messageId: headerMessageId(fetched.source),
          fallbackId: key,
        });
        return 'retry';
      case 'deferred':
        // Another copy is being answered right now; look again once it is done.
        scheduleSweep(settings.retryBaseDelayMs / 10 + 50);
        return 'deferred';
      case 'skipped':
      case 'duplicate':
      case 'rate-limited':
      case 'no-reply':
        await markDone(uid, ['\\Seen']);
        return 'skipped';
      case 'secretary-failed':
        await failOnSecretary(uid, key, outcome);
        return 'retry';
      case 'delivery-failed':
        await failOnDelivery(uid, key, outcome);
        return 'retry';
      case 'replied':
        return 'sent';
      case 'dry-run':
        return undefined;
    }
  }

  /** A secretary outage or refusal to decide: retried (an outage within seconds, uncounted: secretary-retry.ts). */
  async function failOnSecretary(
    uid: number,
    key: string,
    outcome: Extract<MailOutcome, { kind: 'secretary-failed' }>,
  ) {
    const err = outcome.error;
    await fail(
      uid,
      key,
      `secretary: ${isAppError(err) ? err.code : 'error'}`,
      false,
      err,
      mailRefOf(outcome.mail, key),
    );
  }

  /** SMTP did not take the reply: retried, or given up at once when refused (5xx), with the reply's `failed` event. */
  async function failOnDelivery(uid: number, key: string, outcome: Extract<MailOutcome, { kind: 'delivery-failed' }>) {
    const err = outcome.error;
    const code = isAppError(err) ? err.code : undefined;
    await fail(uid, key, `smtp: ${code ?? (err as Error).message}`, outcome.permanent, undefined, () =>
      audit.failed(
        mailRefOf(outcome.mail, key),
        outcome.to,
        smtpFailureReason(code),
        'given up; the mail is set aside',
      ),
    );
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
      retryWaits.abort();
      queue.length = 0;
      queued.clear();
      const drained = Promise.allSettled([...inFlight.values(), sweeping]);
      const timedOut = await withDeadline(deadlineMs, (signal) => untilAborted(drained, signal)).then(
        () => false,
        () => true,
      );
      if (timedOut) logger.warn(`${inFlight.size} mail(s) still in flight at shutdown; they stay unseen`);
      await mailbox.stop();
      mailer.close();
    },
    health: () => ({
      connected: mailbox.isConnected(),
      lastSweepAt,
      startedAt,
      sweepIntervalMs: settings.sweepIntervalMs,
      ...(mailbox.lastError?.() ? { lastError: mailbox.lastError() } : {}),
    }),
    oldestUnseenAgeSeconds,
  };
}
