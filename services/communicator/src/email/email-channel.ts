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
import {
  createMailPipeline,
  mailRefOf,
  type MailOutcome,
  type MailPipeline,
  type PipelineHooks,
} from './mail-pipeline.js';
import type { AuditReporter } from '../audit-reporter.js';
import { createMailAudit, headerMessageId, smtpFailureReason, type MailRef } from './mail-audit.js';
import type { SmtpMailer } from './smtp-mailer.js';
import type { HandledOutcome } from '../secretary-client.js';
import {
  HandledLookupError,
  contentKeyOf,
  createHandledRecord,
  mailDeliveryKey,
  type HandledRecord,
} from './mail-handled-record.js';

// The IMAP-independent steps (parse, loop rules, rate limit, decide, deliver) live in mail-pipeline.ts.
export { classifyMail, replyAddressOf, type MailDecision } from './mail-pipeline.js';

/** The `/deliveries` key of a mail (mailDeliveryKey): its Message-ID with its sender, else its content key. */
const deliveryKeyOf = (mail: { messageId?: string; from?: string }, contentKey: string): string =>
  mail.messageId ? mailDeliveryKey(mail.messageId, mail.from) : mailDeliveryKey(contentKey);

/** Finished mails an email channel remembers (UIDVALIDITY:UID keys, a few dozen bytes each). */
export const SETTLED_KEPT = 10_000;

/** The flags of an answered mail. */
const REPLIED_FLAGS = ['\\Seen', '\\Answered', FLAG_REPLIED];

/** The UIDVALIDITY part of a channel key (`<uidvalidity>:<uid>`). */
const validityOf = (key: string) => key.slice(0, key.lastIndexOf(':'));

/**
 * The flags a mail found handled before gets: the answered mail itself — recorded `sent`, with no other \Answered
 * copy of it in the mailbox (a UIDVALIDITY change dropped its flag write, or a restore lost it) — gets
 * `\Answered $WorkemonReplied` back, so the mailbox shows it as answered again; another copy of an answered mail
 * (delivered twice, its answered copy beside it) is only \Seen: it was not answered itself.
 */
const duplicateFlags = (at: Pick<MailAtHand, 'durable' | 'copyAnswered'>) =>
  at.durable === 'sent' && !at.copyAnswered ? REPLIED_FLAGS : ['\\Seen'];

/**
 * A mail being handled: its channel key (`<uidvalidity>:<uid>`, in-process bookkeeping), the fetch, its content key
 * (`sha256:<hex>`: the idempotency key without a Message-ID) and the durable record found before anything was sent.
 */
type MailAtHand = {
  key: string;
  fetched: FetchedMail;
  contentKey: string;
  durable?: HandledOutcome;
  /** Another copy of its Message-ID is \Answered in the mailbox. */
  copyAnswered?: boolean;
};

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
 * - the durable record decides, not a flag or a UID: once SMTP accepted a reply, the mail is recorded in the
 *   secretary (`POST /deliveries`, `mail:<Message-ID>`, or `mail:sha256:<hex of the raw mail>` without one) while
 *   its flags are written, and before anything is sent every mail is looked up there (then an \Answered copy of
 *   its Message-ID in the mailbox). A UIDVALIDITY change (RFC 9051 §2.3.1.1: the server rebuilt its index, the
 *   mailbox was restored or recreated, a provider migrated it) gives every message a new UID and drops a pending
 *   flag write; such a mail, found again unseen, is recognised by its record and gets its \Answered back, unanswered;
 * - the same Message-ID is answered once (its record, an answered copy in the mailbox, or one in flight, wins);
 * - the reply's Message-ID is derived from the request's key (the Message-ID, else the content hash), so the rare
 *   resend after a crash between SMTP accepting and the record is one message to the recipient's server, and the
 *   secretary, keyed by the same `message_id`, returns its stored answer instead of asking the LLM again.
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
  const handled: HandledRecord = createHandledRecord(deps.secretary, logger);
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
    void handled.flush();
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
        .catch((err: unknown) => onMailError(uid, err))
        .finally(() => {
          inFlight.delete(uid);
          pump();
        });
      inFlight.set(uid, work);
    }
  }

  /** A pass that threw: the mail stays unseen for the next sweep (counted or not, as the failure says). */
  async function onMailError(uid: number, err: unknown) {
    if (!(err instanceof ImapCommandError || err instanceof ImapTimeoutError)) {
      logger.error('mail processing crashed', { err: err instanceof Error ? err : undefined, imap: { uid } });
      return;
    }
    // The mailbox failed a command (refused, timed out, connection lost): the mail stays unseen for the next sweep.
    logger.warn('an IMAP command failed while handling a mail; the next sweep takes it up again', {
      imap: { uid },
      error: { message: err.message },
    });
    // A command the server refuses for this mail (its "already answered?" SEARCH) is the mail's failure: it
    // counts as an attempt, so the mail is set aside after MAX_ATTEMPTS, as on a server without keywords,
    // where no attempt keyword counts it, it was otherwise retried at every sweep for ever.
    if (err instanceof ImapCommandError && err.refused) await fail(uid, keyOf(uid), `imap: ${err.message}`, false);
    else uncount(keyOf(uid));
  }

  /**
   * Flags a finished mail and settles it. `key` (`<uidvalidity>:<uid>`) names the message the flags are for: the
   * write is dropped when the mailbox's UIDVALIDITY is another one by then (that UID is another message now).
   */
  async function markDone(key: string, uid: number, flags: string[]) {
    await mailbox.addFlags(uid, flags, validityOf(key));
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
    await mailbox.setAside(uid, validityOf(key)).catch((err: Error) => {
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
    if (mailbox.keywordsAllowed())
      await mailbox.addFlags(fetched.uid, [`${FLAG_ATTEMPT_PREFIX}${done + 1}`], fetched.uidValidity);
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

  /**
   * The mailbox's side of one pass of `at`: the duplicate check (the durable record, then an \Answered copy; what
   * each found is kept on `at` for settleOutcome), the rate-limit memory, and the confirmation of a sent reply.
   */
  function hooksOf(at: MailAtHand): PipelineHooks {
    const { key, fetched } = at;
    const handledBefore = async (key: string) => {
      try {
        at.durable = await handled.lookup([key]);
      } catch (err) {
        // The secretary cannot answer: the mail waits (the pipeline's secretary-failed), since a restored mailbox
        // has lost the flags that would decide. Only a secretary older than the route (404) leaves it to the flags.
        if (!(err instanceof HandledLookupError) || !err.routeMissing) throw err;
        logger.warn('the secretary has no durable record of mail (404); the mailbox flags decide', {
          imap: { uid: fetched.uid },
        });
        at.durable = undefined;
      }
      return at.durable !== undefined;
    };
    return {
      isAnswered: async (messageId, sender) => {
        const recorded = await handledBefore(mailDeliveryKey(messageId, sender));
        // Asked when recorded too: an \Answered copy beside it tells another copy from the mail itself.
        at.copyAnswered = await mailbox.isAnswered(messageId, fetched.uid);
        return recorded || at.copyAnswered;
      },
      isKeyAnswered: (contentKey) => handledBefore(mailDeliveryKey(contentKey)),
      rateCounted: attempts.get(key)?.rateCounted,
      onRateCounted: () => {
        attempts.set(key, { count: attempts.get(key)?.count ?? 0, nextAt: 0, rateCounted: true });
      },
      // The record and the flags go out together: either one keeps the mail from a second reply, the record also
      // across a UIDVALIDITY change, a restore of the mailbox, and a crash before the flag write.
      confirm: async (mail) => {
        await Promise.all([
          handled.record([deliveryKeyOf(mail, at.contentKey)], 'sent'),
          markDone(key, fetched.uid, REPLIED_FLAGS),
        ]);
      },
    };
  }

  async function processMail(uid: number) {
    const fetched = await mailbox.fetch(uid).catch((err: Error) => {
      logger.warn('fetching mail failed', { imap: { uid }, error: { message: err.message } });
      return null;
    });
    if (fetched === null) return; // the connection is gone; the next sweep picks it up again
    if (!fetched) return; // expunged meanwhile
    // Named by the UIDVALIDITY the mail was fetched under: after a change this UID is another message.
    const key = `${fetched.uidValidity}:${uid}`;
    // A sweep's SEARCH may have been answered just before this mail's flags were stored: the flags fetched now
    // are the truth, and a mail already seen or set aside is done.
    if (fetched.flags.includes('\\Seen') || fetched.flags.includes(FLAG_FAILED)) return;
    const firstTry = !attempts.has(key) && attemptsRecorded(fetched.flags) === 0;
    if (firstTry) metrics.received('email');
    if (!(await recordAttempt(fetched, key))) return;
    const endTimer = metrics.startTimer('email');
    const at: MailAtHand = { key, fetched, contentKey: contentKeyOf(fetched.source) };
    const outcome = await pipeline.processMail(
      {
        source: 'email',
        raw: fetched.source,
        truncated: fetched.truncated,
        fallbackKey: at.contentKey,
        logContext: { imap: { uid, uid_validity: fetched.uidValidity } },
      },
      hooksOf(at),
    );
    const result = await settleOutcome(at, outcome);
    if (result) endTimer(result);
  }

  /**
   * The IMAP bookkeeping of a pipeline outcome (the confirm half of the mailbox's steps): skipped mail is flagged
   * \Seen (a duplicate recorded as sent: \Answered too), a deliberate no-reply or rate limit is also recorded
   * durably, failures are counted and retried or given up, a deferred copy is looked at again soon. `durable`: the
   * record the duplicate check found. Returns the duration metric's result label; undefined for a dry run (the
   * mailbox never asks for one).
   */
  async function settleOutcome(at: MailAtHand, outcome: MailOutcome) {
    const { key, fetched, contentKey } = at;
    const uid = fetched.uid;
    switch (outcome.kind) {
      case 'unparseable':
        await fail(uid, key, `parse: ${outcome.code}`, false, undefined, {
          messageId: headerMessageId(fetched.source),
          fallbackId: contentKey,
        });
        return 'retry';
      case 'deferred':
        // Another copy is being answered right now; look again once it is done.
        scheduleSweep(settings.retryBaseDelayMs / 10 + 50);
        return 'deferred';
      case 'skipped':
        await markDone(key, uid, ['\\Seen']);
        return 'skipped';
      case 'duplicate':
        await markDone(key, uid, duplicateFlags(at));
        return 'skipped';
      case 'rate-limited':
      case 'no-reply':
        // Deliberately not answered: recorded as the webhooks do, so a UIDVALIDITY change does not reopen it.
        await Promise.all([
          handled.record([deliveryKeyOf(outcome.mail, contentKey)], 'skipped', outcome.kind),
          markDone(key, uid, ['\\Seen']),
        ]);
        return 'skipped';
      case 'secretary-failed':
        await failOnSecretary(at, outcome);
        return 'retry';
      case 'delivery-failed':
        await failOnDelivery(at, outcome);
        return 'retry';
      case 'replied':
        return 'sent';
      case 'dry-run':
        return undefined;
    }
  }

  /** A secretary outage or refusal to decide: retried (an outage within seconds, uncounted: secretary-retry.ts). */
  async function failOnSecretary(at: MailAtHand, outcome: Extract<MailOutcome, { kind: 'secretary-failed' }>) {
    const err = outcome.error;
    await fail(
      at.fetched.uid,
      at.key,
      `secretary: ${isAppError(err) ? err.code : 'error'}`,
      false,
      err,
      mailRefOf(outcome.mail, at.contentKey),
    );
  }

  /** SMTP did not take the reply: retried, or given up at once when refused (5xx), with the reply's `failed` event. */
  async function failOnDelivery(at: MailAtHand, outcome: Extract<MailOutcome, { kind: 'delivery-failed' }>) {
    const err = outcome.error;
    const code = isAppError(err) ? err.code : undefined;
    await fail(at.fetched.uid, at.key, `smtp: ${code ?? (err as Error).message}`, outcome.permanent, undefined, () =>
      audit.failed(
        mailRefOf(outcome.mail, at.contentKey),
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
