import type { SendRequest, SendResponse } from '@workemon/contracts';
import { randomUUID } from 'node:crypto';
import { AppError, errors, getRequestId, isAppError } from '@workemon/service-kit';
import { auditEventId, type AuditReporter } from './audit-reporter.js';
import { smtpFailureReason } from './email/mail-audit.js';
import type { ChannelMetrics } from './channel-metrics.js';
import { MESSAGE_ID, type SmtpMailer } from './email/smtp-mailer.js';
import { splitMessage, type TelegramBotApi } from './telegram/telegram-bot-api.js';

export type OutboundSender = { send: (request: SendRequest) => Promise<SendResponse> };

const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;

/**
 * A channel this deployment has no credentials for. 501 (RFC 9110 §15.6.2: the server does not support the
 * function) and `retryable: false`: it stays so until an operator configures it, so callers (the secretary's
 * action worker) end the action as skipped at once instead of retrying. The message names the keys to set.
 */
export function channelNotConfigured(channel: 'email' | 'tg'): AppError {
  const keys =
    channel === 'email' ? 'IMAP_USER and IMAP_PASSWORD, or SMTP_USER and SMTP_PASSWORD' : 'TELEGRAM_BOT_TOKEN';
  return new AppError('channel_not_configured', 501, `Channel '${channel}' is not configured: set ${keys}`, {
    details: { channel },
    retryable: false,
  });
}
const IDEMPOTENCY_MAX_KEYS = 10_000;

/** What `createOutboundSender` delivers with. */
export type OutboundSenderDeps = {
  mailer?: SmtpMailer;
  telegram?: TelegramBotApi;
  metrics: ChannelMetrics;
  /** Reports each delivery (`delivered` / `failed` with the reason) to the audit log; default: none. */
  audit?: AuditReporter;
  now?: () => number;
};

/** One delivery's result for the audit log: the channel's message id, or the error it failed with. */
type DeliveryResult = { messageId?: string } | { error: unknown };

/**
 * What makes two `POST /send` requests the same message: everything but the key (the channel is in the key of the
 * maps). Compared as text, so `buttons` in the same order are the same.
 */
function fingerprintOf(request: SendRequest): string {
  return JSON.stringify([
    request.to,
    request.text,
    request.buttons ?? null,
    request.subject ?? null,
    request.in_reply_to ?? null,
  ]);
}

/**
 * The 409 for an `idempotency_key` reused with another message. Reporting the first outcome (`delivered: true,
 * duplicate: true`) would tell the caller that a message it never sent was delivered; sending it would break the
 * key's promise. IETF draft-ietf-httpapi-idempotency-key-header §2.7 refuses such a reuse (422 there; 409 is its
 * answer to a key whose first request is still running, which this is too when the first one has not finished)
 * and Stripe's API does likewise ("Keys for idempotent requests can only be used with the same parameters they
 * were first used with"). Not retryable: the same request gets the same answer for the idempotency window.
 */
function idempotencyKeyReused(): AppError {
  return new AppError(
    'idempotency_key_reused',
    409,
    'idempotency_key was already used for another message (recipient, text, subject, in_reply_to or buttons ' +
      'differ) within 24 h: nothing was sent; use a new key for a new message',
    { retryable: false },
  );
}

/**
 * `POST /send`: messages the secretary's actions ask for. A repeated `idempotency_key` (within 24 h, in this
 * process) with the same message returns the first outcome and sends nothing; with another message (recipient,
 * text, subject, in_reply_to or buttons) it is a 409 `idempotency_key_reused` and sends nothing. The email
 * Message-ID is derived from the key too, so a repeat after a restart is still one message to the recipient's
 * mail server.
 */
export function createOutboundSender(deps: OutboundSenderDeps): OutboundSender {
  const now = deps.now ?? Date.now;
  // Every key in flight or delivered within IDEMPOTENCY_TTL_MS, with the fingerprint of the message it carried.
  const seen = new Map<string, { at: number; fingerprint: string; result: Promise<SendResponse> }>();
  // Telegram pieces already delivered under a key whose delivery then failed: a retry with the key sends the rest.
  const partial = new Map<string, { at: number; fingerprint: string; progress: TelegramProgress }>();

  function remember(key: string, fingerprint: string, result: Promise<SendResponse>) {
    const t = now();
    pruneOldest(seen, t);
    const entry = { at: t, fingerprint, result };
    seen.set(key, entry);
    // A failed delivery may be retried with the same key (and, nothing having been delivered, with another message).
    result.catch(() => {
      if (seen.get(key) === entry) seen.delete(key);
    });
  }

  return {
    send: async (request) => {
      checkInReplyTo(request);
      const explicitKey = request.idempotency_key;
      const fingerprint = fingerprintOf(request);
      if (explicitKey) {
        const previous = seen.get(`${request.channel}:${explicitKey}`);
        if (previous && now() - previous.at <= IDEMPOTENCY_TTL_MS) {
          if (previous.fingerprint !== fingerprint) throw idempotencyKeyReused();
          const result = await previous.result;
          return { ...result, duplicate: true };
        }
      }
      const key = explicitKey ?? `${request.channel}:${request.to}:${now()}:${Math.random()}`;
      const progressKey = explicitKey ? `${request.channel}:${explicitKey}` : undefined;
      // Only a repeat of the same message resumes: another recipient, text or buttons under the key starts over.
      const kept = progressKey ? partial.get(progressKey) : undefined;
      const resumes = !!kept && kept.fingerprint === fingerprint && now() - kept.at <= IDEMPOTENCY_TTL_MS;
      const progress = resumes ? kept.progress : { sent: 0 };
      const result = deliver(deps, request, explicitKey ? `send:${explicitKey}` : key, progress);
      if (progressKey) {
        remember(progressKey, fingerprint, result);
        result.then(
          () => partial.delete(progressKey),
          () => {
            if (progress.sent === 0) return;
            pruneOldest(partial, now());
            partial.set(progressKey, { at: now(), fingerprint, progress });
          },
        );
      }
      return result;
    },
  };
}

/**
 * Drops the oldest entries of `map` (insertion order is age order) older than IDEMPOTENCY_TTL_MS at `t` (ms), and
 * as many more as keep it under IDEMPOTENCY_MAX_KEYS once one is added.
 */
function pruneOldest(map: Map<string, { at: number }>, t: number): void {
  for (const [k, v] of map) {
    if (t - v.at > IDEMPOTENCY_TTL_MS || map.size >= IDEMPOTENCY_MAX_KEYS) map.delete(k);
    else break;
  }
}

/**
 * How far a Telegram delivery got: `sent` pieces delivered (of splitMessage's), the first one's message id, and the
 * chat they went to (a supergroup the group became). Kept across a failure, so a retry with the same
 * `idempotency_key` sends only the pieces still missing.
 */
type TelegramProgress = { sent: number; first?: number; chatId?: number | string };

/** Checks the request, then sends it on its channel (`key`: the idempotency key the email Message-ID comes from). */
async function deliver(
  deps: OutboundSenderDeps,
  request: SendRequest,
  key: string,
  progress: TelegramProgress,
): Promise<SendResponse> {
  checkButtons(request);
  return request.channel === 'email' ? deliverEmail(deps, request, key) : deliverTelegram(deps, request, progress);
}

/** Buttons are Telegram's only, each `callback_data` at most 64 bytes (Bot API InlineKeyboardButton). 400 otherwise. */
function checkButtons(request: SendRequest): void {
  if (request.buttons && request.channel !== 'tg') throw errors.invalidParameter('buttons', 'is only for channel tg');
  for (const button of request.buttons ?? []) {
    if (Buffer.byteLength(button.callback_data, 'utf8') > 64)
      throw errors.invalidParameter('buttons', 'callback_data must be at most 64 bytes (Telegram limit)');
  }
}

/** `in_reply_to` must be one Message-ID (MESSAGE_ID); 400 otherwise, whatever the channel. */
function checkInReplyTo(request: SendRequest): void {
  if (request.in_reply_to !== undefined && !MESSAGE_ID.test(request.in_reply_to))
    throw errors.invalidParameter(
      'in_reply_to',
      'must be one Message-ID such as <id@host> (RFC 5322 §3.6.4), without white space or line breaks',
    );
}

/** Sends one mail by SMTP (RFC 3834 `Auto-Submitted: auto-generated`); 501 without a mailer, 400 for a bad `to`. */
async function deliverEmail(deps: OutboundSenderDeps, request: SendRequest, key: string): Promise<SendResponse> {
  if (!deps.mailer) throw channelNotConfigured('email');
  // One address only: a comma or semicolon would make nodemailer send to several recipients.
  if (!/^[^\s@<>,;]+@[^\s@<>,;]+\.[^\s@<>,;]+$/.test(request.to))
    throw errors.invalidParameter('to', 'must be an email address for channel email');
  try {
    const { messageId } = await deps.mailer.send({
      to: request.to,
      subject: (request.subject ?? 'Workemon').replace(/[\r\n]+/g, ' '),
      text: request.text,
      inReplyTo: request.in_reply_to,
      references: request.in_reply_to ? [request.in_reply_to] : undefined,
      idempotencyKey: key,
      autoSubmitted: 'auto-generated',
    });
    deps.metrics.reply('email', 'sent');
    auditDelivery(deps, request, { messageId });
    return { delivered: true, channel: 'email', message_id: messageId };
  } catch (err) {
    deps.metrics.reply('email', 'failed');
    auditDelivery(deps, request, { error: err });
    throw err;
  }
}

/**
 * Sends a text to a Telegram chat id or @username, split into the Bot API's 4096-character pieces; buttons go
 * under the last piece. The response's message id is the first piece's. 501 without a bot, 400 for a bad `to`.
 * Pieces `progress` says were delivered are not sent again; a group that became a supergroup gets them there.
 */
async function deliverTelegram(
  deps: OutboundSenderDeps,
  request: SendRequest,
  progress: TelegramProgress = { sent: 0 },
): Promise<SendResponse> {
  const telegram = deps.telegram;
  if (!telegram) throw channelNotConfigured('tg');
  if (!/^(-?\d+|@\w{4,})$/.test(request.to))
    throw errors.invalidParameter('to', 'must be a Telegram chat id or @username for channel tg');
  const chatId = /^-?\d+$/.test(request.to) ? Number(request.to) : request.to;
  progress.chatId ??= chatId;
  try {
    const parts = splitMessage(request.text);
    for (const [i, part] of parts.entries()) {
      if (i < progress.sent) continue;
      // Buttons go under the last piece, where the reader ends up.
      const buttons = i === parts.length - 1 ? request.buttons : undefined;
      const send = (to: number | string) => telegram.sendText(to, part, { buttons });
      const { messageId } = await send(progress.chatId).catch((err: unknown) => {
        // A group that became a supergroup (400 with parameters.migrate_to_chat_id, Bot API ResponseParameters):
        // this piece and the rest go there, once.
        const failure = telegram.describe(err);
        if (failure.kind !== 'migrated' || failure.migrateToChatId === undefined || progress.chatId !== chatId)
          throw err;
        progress.chatId = failure.migrateToChatId;
        return send(progress.chatId);
      });
      progress.first ??= messageId;
      progress.sent = i + 1;
    }
    deps.metrics.reply('tg', 'sent');
    auditDelivery(deps, request, { messageId: String(progress.first) });
    return { delivered: true, channel: 'tg', message_id: String(progress.first) };
  } catch (err) {
    deps.metrics.reply('tg', 'failed');
    auditDelivery(deps, request, { error: err });
    throw err;
  }
}

/**
 * The audit event of one delivery attempt. Ids: `<channel>:send:<idempotency_key>:delivered` (one row however
 * often the secretary repeats the call), a failure `…:failed:<uuid>` (each failed try is a row of its own, so a
 * later success is not hidden behind it); without a key, a fresh id.
 */
function auditDelivery(deps: OutboundSenderDeps, request: SendRequest, result: DeliveryResult): void {
  if (!deps.audit) return;
  const channel = request.channel === 'tg' ? 'telegram' : 'email';
  const ref = `send:${request.idempotency_key ?? randomUUID()}`;
  const failed = 'error' in result;
  const reason = failed ? failureReason(deps, channel, result.error) : undefined;
  const messageId = 'messageId' in result ? result.messageId : undefined;
  deps.audit.report({
    event_id: auditEventId(channel, ref, failed ? `failed:${randomUUID()}` : 'delivered'),
    channel,
    direction: 'outbound',
    outcome: failed ? 'failed' : 'delivered',
    ...(reason ? { reason } : {}),
    // The mail it answers, when the action replies in a thread: links the delivery to that message.
    ...(request.in_reply_to ? { message_id: request.in_reply_to } : {}),
    request_id: getRequestId(),
    recipient: request.to,
    ...(request.subject ? { subject: request.subject } : {}),
    detail: `POST /send${messageId ? `; channel message id ${messageId}` : ''}`,
  });
}

/** The audit reason of a failed delivery: the SMTP reason (mail-audit.ts) or `telegram-<Bot API reason>`. */
function failureReason(deps: OutboundSenderDeps, channel: 'email' | 'telegram', err: unknown): string {
  if (channel === 'email') return smtpFailureReason(isAppError(err) ? err.code : undefined);
  return `telegram-${(deps.telegram?.describe(err).reason ?? 'failed').replace(/_/g, '-')}`;
}
