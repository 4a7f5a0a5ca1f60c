import { getRequestId } from '@workemon/service-kit';
import { auditEventId, type AuditChannel, type AuditReporter, type AuditSkipReason } from '../audit-reporter.js';
import { intakeOfSource } from './mail-intake.js';
import type { SkipReason } from './mail-parsing.js';
import { msgIdOf } from './message-id.js';

/**
 * A mail as the audit log names it: its Message-ID, or, for mail without one, the intake's key of it (`sha256:<hex>`
 * of the raw mail, mail-handled-record.ts), which stays the same over retries, restarts and UIDVALIDITY changes.
 */
export type MailRef = { messageId?: string; fallbackId: string; sender?: string; subject?: string };

/** The audit skip reason of each loop rule (mail-parsing.ts); the rule itself goes into `detail`. */
export const MAIL_SKIP_REASONS: Record<SkipReason, AuditSkipReason> = {
  auto_submitted: 'automatic',
  precedence: 'automatic',
  mailing_list: 'automatic',
  delivery_report: 'automatic',
  null_sender: 'automatic',
  robot_sender: 'automatic',
  own_address: 'automatic',
  no_sender: 'unreadable',
};

/** The Message-ID of a raw mail's header, without parsing it (for mail given up before it could be parsed). */
export function headerMessageId(source: Buffer): string | undefined {
  const head = source.subarray(0, 64 * 1024).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  // The field with its folded lines (RFC 5322 §2.2.3), then its msg-id as parseInboundMail reads it.
  // Read as latin1 to keep the bytes; an RFC 6532 id is UTF-8.
  const field = /^message-id:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)/im.exec(end >= 0 ? head.slice(0, end) : head);
  const id = field ? msgIdOf(Buffer.from(field[1]!.replace(/\r?\n/g, ''), 'latin1').toString('utf8')) : undefined;
  return id && id.length <= 998 ? id : undefined;
}

/**
 * The audit events of the mail pipeline (docs/audit-and-limits.md), one call per outcome point:
 * `received`, then `skipped` with its reason, or the reply `delivered` / `failed`. Ids are deterministic
 * (`<channel>:<Message-ID>:<outcome>`, `…:reply`), so a mail handled again after a crash or by another replica
 * adds no row; the reply's `failed` is reported only when the mail is given up, never for a try that is retried.
 */
export function createMailAudit(audit: AuditReporter | undefined, channel: AuditChannel) {
  const idOf = (ref: MailRef) => ref.messageId ?? ref.fallbackId;
  // The intake (`event_provider`, docs/audit.md "Intake"): `imap` on the IMAP mailbox's rows, whose channel is
  // `email` like the secretary's rows of every mail; a webhook's rows carry the provider as their channel already.
  const eventProvider = channel === 'email' ? intakeOfSource('email') : undefined;
  const common = (ref: MailRef) => ({
    channel,
    ...(eventProvider ? { event_provider: eventProvider } : {}),
    message_id: idOf(ref),
    // The id the secretary's own rows of this mail carry (its decision): see mail-pipeline.ts.
    request_id: getRequestId(),
    ...(ref.sender ? { sender: ref.sender } : {}),
    ...(ref.subject ? { subject: ref.subject } : {}),
  });
  /** The reply's event (`…:reply`): `delivered`, or `failed` with its reason. */
  const reply = (ref: MailRef, recipient: string, outcome: 'delivered' | 'failed', more: Record<string, string>) =>
    audit?.report({
      event_id: auditEventId(channel, idOf(ref), 'reply'),
      direction: 'outbound',
      outcome,
      ...common(ref),
      recipient,
      ...more,
    });
  return {
    received: (ref: MailRef) =>
      audit?.report({
        event_id: auditEventId(channel, idOf(ref), 'received'),
        direction: 'inbound',
        outcome: 'received',
        ...common(ref),
      }),
    skipped: (ref: MailRef, reason: AuditSkipReason, detail?: string) =>
      audit?.report({
        event_id: auditEventId(channel, idOf(ref), 'skipped'),
        direction: 'inbound',
        outcome: 'skipped',
        reason,
        ...common(ref),
        ...(detail ? { detail } : {}),
      }),
    delivered: (ref: MailRef, recipient: string, detail?: string) =>
      reply(ref, recipient, 'delivered', detail ? { detail } : {}),
    failed: (ref: MailRef, recipient: string, reason: string, detail?: string) =>
      reply(ref, recipient, 'failed', { reason, ...(detail ? { detail } : {}) }),
  };
}

export type MailAudit = ReturnType<typeof createMailAudit>;

/** The audit reason of an SMTP failure (smtp-mailer.ts error codes). */
export function smtpFailureReason(code: string | undefined): string {
  if (code === 'upstream_timeout') return 'timeout';
  if (code === 'delivery_rejected') return 'smtp-rejected';
  return 'smtp-unavailable';
}
