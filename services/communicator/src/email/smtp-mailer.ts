import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type nodemailerModule from 'nodemailer';
import { AppError, errors } from '@workemon/service-kit';
import type { EmailSettings } from '../config.js';
import { ownSubjectDigest, ownTextDigest } from './mail-own-text.js';

/**
 * A Message-ID as `in_reply_to` and `references` take it: RFC 5322 §3.6.4 `msg-id = "<" id-left "@" id-right ">"`,
 * without the CFWS around it. Each side is one or more characters other than `<`, `>`, `@`, white space and
 * control characters (RFC 5322 §3.2.3 atext and `.`, RFC 6532 §3.2 UTF-8, the obsolete and literal forms'
 * printable characters; C0 and C1 controls excluded): nothing that could end the header line. A CR/LF
 * would otherwise be folded into the In-Reply-To field and start a header of its own (`Bcc:`).
 */
// SendRequest.in_reply_to's pattern in communicator.yaml (there \x00-\x1f\x7f-\x9f, which is \p{Cc}), for callers
// without the OpenAPI validator.
export const MESSAGE_ID = /^<[^<>@\s\p{Cc}]+@[^<>@\s\p{Cc}]+>$/u;

/**
 * The References field of a reply: the well-formed Message-IDs (RFC 5322 §3.6.4, MESSAGE_ID) among `references`,
 * space-separated; undefined when none. A malformed one (white space, a line break, no `@`) from an inbound mail is
 * left out rather than folded into the header.
 */
function threadReferences(references: readonly string[] | undefined): string | undefined {
  const ids = (references ?? []).filter((id) => MESSAGE_ID.test(id));
  return ids.length ? ids.join(' ') : undefined;
}

export type OutgoingMail = {
  to: string;
  subject: string;
  text: string;
  inReplyTo?: string;
  references?: string[];
  /**
   * Seeds the Message-ID (with the text's digest, replyMessageId). The same key and text always give the same
   * Message-ID, so if a crash makes us send a reply twice, mail servers and clients (Gmail, Yandex, Thunderbird) see
   * one message, not two; the text of a key's reply is the same on a resend (the secretary answers a repeated
   * `message_id` with its stored answer).
   */
  idempotencyKey: string;
  /** RFC 3834: `auto-replied` for answers to a mail, `auto-generated` for messages we start. */
  autoSubmitted: 'auto-replied' | 'auto-generated';
};

export type SmtpMailer = {
  send: (mail: OutgoingMail) => Promise<{ messageId: string }>;
  /** Logs in and out again; the result is cached for a minute so health checks do not hammer the server. */
  verify: () => Promise<boolean>;
  close: () => void;
};

/**
 * The domain of a From address, bare (`bot@example.test`) or with a display name (`Workemon <bot@example.test>`,
 * MAIL_FROM allows both): `example.test`; `workemon.local` when it has none. Only the address inside `<…>` counts, so
 * a display name never leaves a `>` in a Message-ID (which made `<…@example.test>>`).
 */
function domainOf(address: string): string {
  const mailbox = /<([^<>]*)>/.exec(address)?.[1] ?? address;
  const at = mailbox.lastIndexOf('@');
  const domain = at < 0 ? '' : mailbox.slice(at + 1).trim();
  return /^[^\s<>@"()[\],;:\\]+$/.test(domain) ? domain : 'workemon.local';
}

/**
 * The Message-ID of a mail we send: `<workemon.{32 hex}.{16 hex}.{8 hex}@domain>`, the first part the first 32 hex
 * digits of SHA-256 over `idempotencyKey`, the second the digest of `text` (mail-own-text.ts ownTextDigest: SHA-256
 * over the text without any white space, first 16 hex digits), the third the digest of `subject` (ownSubjectDigest:
 * its bare form, 8 hex digits), the domain that of `from` (RFC 5322 §3.6.4). A reply names it in
 * In-Reply-To/References, so the communicator can find our text where a client quotes it without '>' marks
 * (withoutOwnQuotedText), and tell a reply's subject edited by its author from the thread's own (mail-parsing.ts
 * subjectSaysMore). The same key, text and subject always give the same Message-ID. Without `subject`,
 * `<workemon.{32 hex}.{16 hex}@domain>`; without `text` either, the older form `<workemon.{32 hex}@domain>`.
 */
export function replyMessageId(idempotencyKey: string, from: string, text?: string, subject?: string): string {
  const key = createHash('sha256').update(idempotencyKey).digest('hex').slice(0, 32);
  const digest = text === undefined ? '' : `.${ownTextDigest(text)}`;
  const topic = text === undefined || subject === undefined ? '' : `.${ownSubjectDigest(subject)}`;
  return `<workemon.${key}${digest}${topic}@${domainOf(from)}>`;
}

/** Turns nodemailer's failures into the error catalogue: a permanent 5xx is a rejection, the rest is transient. */
function toAppError(err: unknown): AppError {
  const e = err as { responseCode?: number; code?: string; message?: string };
  if (e.code === 'ETIMEDOUT' || e.code === 'ETIME') return errors.upstreamTimeout('smtp', err);
  if (typeof e.responseCode === 'number' && e.responseCode >= 500) {
    return new AppError('delivery_rejected', 400, `The mail server rejected the message (${e.responseCode})`, {
      cause: err,
      retryable: false,
      details: { responseCode: e.responseCode },
    });
  }
  return errors.upstreamUnavailable('smtp', err, { code: e.code, responseCode: e.responseCode });
}

/**
 * SMTP connections the pool keeps for `concurrency` mails in flight (EMAIL_CONCURRENCY): one per two mails (a
 * delivery holds a connection for a few round trips of a mail's whole pass), at least 2 and at most 8 — mail
 * providers limit simultaneous sessions per account (Yandex, Mail.ru: about 10).
 */
export function smtpPoolSize(concurrency: number | undefined): number {
  return Math.max(2, Math.min(8, Math.ceil((concurrency ?? 4) / 2)));
}

/** The only code that talks SMTP. Pooled connections (smtpPoolSize), a deadline per delivery. */
export function createSmtpMailer(
  settings: Pick<EmailSettings, 'smtp' | 'from'> & Partial<Pick<EmailSettings, 'concurrency'>>,
): SmtpMailer {
  // Required here, not at load: a communicator with no SMTP settings never loads nodemailer (docs/operations.md).
  const nodemailer = createRequire(import.meta.url)('nodemailer') as typeof nodemailerModule;
  const transport = nodemailer.createTransport({
    host: settings.smtp.host,
    port: settings.smtp.port,
    secure: settings.smtp.secure,
    auth: { user: settings.smtp.user, pass: settings.smtp.password },
    pool: true,
    maxConnections: smtpPoolSize(settings.concurrency),
    connectionTimeout: Math.min(settings.smtp.timeoutMs, 30_000),
    greetingTimeout: Math.min(settings.smtp.timeoutMs, 30_000),
    socketTimeout: settings.smtp.timeoutMs,
    // Loopback test servers speak plaintext; real ones (Yandex) use implicit TLS on 465.
    ignoreTLS: !settings.smtp.secure && ['127.0.0.1', 'localhost', '::1'].includes(settings.smtp.host),
  });
  let verified: { ok: boolean; at: number } | undefined;

  return {
    async send(mail) {
      const messageId = replyMessageId(mail.idempotencyKey, settings.from, mail.text, mail.subject);
      try {
        await transport.sendMail({
          from: settings.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          messageId,
          // Only well-formed Message-IDs thread the reply: an inbound mail's own header is whatever its sender wrote.
          inReplyTo: mail.inReplyTo && MESSAGE_ID.test(mail.inReplyTo) ? mail.inReplyTo : undefined,
          references: threadReferences(mail.references),
          headers: { 'Auto-Submitted': mail.autoSubmitted, 'X-Auto-Response-Suppress': 'All' },
        });
      } catch (err) {
        throw toAppError(err);
      }
      verified = { ok: true, at: Date.now() };
      return { messageId };
    },
    async verify() {
      if (verified && Date.now() - verified.at < 60_000) return verified.ok;
      let ok = false;
      try {
        ok = await transport.verify();
      } catch {
        ok = false;
      }
      verified = { ok, at: Date.now() };
      return ok;
    },
    close: () => transport.close(),
  };
}
