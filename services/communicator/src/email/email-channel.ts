import { isAppError, type Logger } from '@workemon/service-kit';
import type { EmailSettings } from '../config.js';
import type { ChannelMetrics } from '../channel-metrics.js';
import { replyTextOf, type SecretaryClient } from '../secretary-client.js';
import type { SenderRateLimit } from '../sender-rate-limit.js';
import { FLAG_FAILED, FLAG_REPLIED, type ImapMailbox } from './imap-mailbox.js';
import { parseInboundMail, replySubject, type InboundMail } from './mail-parsing.js';
import { authenticateSender, authenticationResultsHeaders } from './sender-authentication.js';
import type { SmtpMailer } from './smtp-mailer.js';

export const EMPTY_MAIL_REPLY =
  'Здравствуйте! В письме не нашлось текста запроса. Пожалуйста, опишите вопрос текстом в теле письма.';

type Attempt = { count: number; nextAt: number; rateCounted: boolean };

export type EmailChannel = {
  start: () => void;
  /** Stops taking mail, waits for mail in flight up to `deadlineMs`, then logs out. */
  stop: (deadlineMs: number) => Promise<void>;
  health: () => { connected: boolean; lastSweepAt?: number; sweepIntervalMs: number };
  mailer: SmtpMailer;
};

/**
 * Reads the mailbox and answers each mail exactly once:
 * - a mail is flagged \Seen only after its reply was accepted by SMTP, or when it is deliberately skipped;
 * - failures leave it unseen and retry it with backoff; after `maxAttempts` it is flagged $WorkemonFailed;
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

  function requestSweep() {
    if (stopped) return;
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
    let uids: number[] | undefined;
    try {
      uids = await mailbox.listUnseen();
    } catch (err) {
      metrics.pollError('email', 'sweep');
      logger.warn('mailbox sweep failed', { error: { message: (err as Error).message } });
      return;
    }
    if (!uids) return;
    lastSweepAt = Date.now();
    metrics.success('email');
    const now = Date.now();
    for (const uid of uids) {
      const attempt = attempts.get(keyOf(uid));
      if (queued.has(uid) || inFlight.has(uid)) continue;
      if (attempt && attempt.nextAt > now) continue;
      if (attempt && attempt.count >= settings.maxAttempts) continue;
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

  async function fail(uid: number, key: string, reason: string, permanent: boolean) {
    const attempt = attempts.get(key) ?? { count: 0, nextAt: 0, rateCounted: true };
    attempt.count = permanent ? settings.maxAttempts : attempt.count + 1;
    if (attempt.count >= settings.maxAttempts) {
      attempts.delete(key);
      metrics.emailFailed();
      logger.error('mail given up after repeated failures; flagged for a human', {
        imap: { uid, flag: FLAG_FAILED },
        reason,
      });
      await mailbox.addFlags(uid, [FLAG_FAILED]);
      return;
    }
    const delay = settings.retryBaseDelayMs * 2 ** (attempt.count - 1) * (0.5 + Math.random() * 0.5);
    attempt.nextAt = Date.now() + delay;
    attempts.set(key, attempt);
    logger.warn(`mail will be retried in ${Math.round(delay)} ms`, { imap: { uid }, reason, attempt: attempt.count });
    scheduleSweep(delay + 10);
  }

  async function reply(mail: InboundMail, uid: number, key: string, text: string) {
    await mailer.send({
      to: mail.replyTo!,
      subject: replySubject(mail.subject),
      text,
      inReplyTo: mail.messageId,
      references: mail.references,
      idempotencyKey: key,
      autoSubmitted: 'auto-replied',
    });
    metrics.reply('email', 'sent');
    await markDone(uid, ['\\Seen', '\\Answered', FLAG_REPLIED]);
    logger.info('mail answered', { imap: { uid }, email: { message_id: mail.messageId?.slice(0, 256) } });
  }

  async function processMail(uid: number) {
    const key = keyOf(uid);
    const fetched = await mailbox.fetch(uid).catch((err: Error) => {
      logger.warn('fetching mail failed', { imap: { uid }, error: { message: err.message } });
      return null;
    });
    if (fetched === null) return; // the connection is gone; the next sweep picks it up again
    if (!fetched) return; // expunged meanwhile
    const attempt = attempts.get(key);
    if (!attempt) metrics.received('email');
    const endTimer = metrics.startTimer('email');

    const mail = await parseInboundMail(fetched.source, {
      ownAddresses,
      maxRequestChars: settings.maxRequestChars,
      truncated: fetched.truncated,
    });
    if (mail.skipReason) {
      metrics.skipped('email', mail.skipReason);
      logger.info(`mail skipped: ${mail.skipReason}`, {
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
      const sender = mail.from!;
      if (!attempt?.rateCounted) {
        if (!deps.rateLimit.tryTake(sender)) {
          metrics.skipped('email', 'rate_limited');
          logger.warn('sender over the hourly limit; no reply', { imap: { uid } });
          await markDone(uid, ['\\Seen']);
          endTimer('skipped');
          return;
        }
        attempts.set(key, { count: attempt?.count ?? 0, nextAt: 0, rateCounted: true });
      }

      let text: string;
      if (!mail.text) {
        text = EMPTY_MAIL_REPLY;
      } else {
        try {
          const verdict = authenticateSender({
            headers: authenticationResultsHeaders(fetched.source),
            from: mail.from,
            trustedAuthservIds: settings.trustedAuthservIds,
          });
          const analysis = await secretary.analyze({
            channel: 'email',
            username: sender,
            sender_authentication: { ...verdict, reason: verdict.reason.slice(0, 500) },
            request: mail.text,
            message_id: requestKey.slice(0, 998),
            ...(mail.threadRoot ? { thread_key: mail.threadRoot.slice(0, 998) } : {}),
          });
          text = replyTextOf(analysis);
        } catch (err) {
          const status = isAppError(err) ? err.status : 500;
          if (isAppError(err) && status >= 400 && status < 500 && !err.retryable) {
            // The secretary said no (e.g. an unknown sender): its message is meant for the user.
            text = err.message;
            metrics.reply('email', 'rejected');
          } else {
            await fail(uid, key, `secretary: ${isAppError(err) ? err.code : 'error'}`, false);
            endTimer('retry');
            return;
          }
        }
      }
      if (!text) text = EMPTY_MAIL_REPLY;
      try {
        await reply(mail, uid, requestKey, text);
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
      mailbox.start();
      // IDLE pushes new mail; the periodic sweep catches whatever a push missed and retries failures.
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
    health: () => ({ connected: mailbox.isConnected(), lastSweepAt, sweepIntervalMs: settings.sweepIntervalMs }),
  };
}
