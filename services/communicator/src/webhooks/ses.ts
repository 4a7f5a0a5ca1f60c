import { domainToASCII } from 'node:url';
import { errors } from '@workemon/service-kit';

/** What `sesMail` finds in an SES receipt notification. */
export type SesMail =
  | { kind: 'mail'; raw: Buffer; dmarcPassFor?: string }
  | { kind: 'ignored'; type: string }
  | { kind: 's3'; bucket: string; key: string; dmarcPassFor?: string };

/** The fields of an SES receipt notification we read (docs: "Contents of notifications for Amazon SES email receiving"). */
type SesNotification = {
  notificationType?: unknown;
  eventType?: unknown;
  content?: unknown;
  receipt?: { action?: SesAction; dmarcVerdict?: { status?: unknown } };
  mail?: { commonHeaders?: { from?: unknown } };
};
type SesAction = { type?: unknown; encoding?: unknown; bucketName?: unknown; objectKey?: unknown };

/**
 * What an SES receipt notification (the `Message` of an SNS Notification, a JSON document) holds for us.
 * - `mail`: the raw MIME from `content`, when the receipt rule's SNS action posts the content (encoding UTF8 or
 *   BASE64; SES limits such mail to 150 KB);
 * - `ignored`: not a `Received` notification (SES's `AmazonSnsSubscriptionSucceeded` setup message and the like);
 * - `s3`: an S3 action (the content is in a bucket, not in the notification): where it is, `bucketName` and
 *   `objectKey` of `receipt.action` (the route fetches it when SES_S3_BUCKETS is set, docs/webhooks.md).
 * A notification that is not SES JSON, or an S3 action without bucket or key, throws 400.
 */
export function sesMail(message: string): SesMail {
  const n = sesNotificationOf(message);
  const type = typeof n.notificationType === 'string' ? n.notificationType : n.eventType;
  if (type !== 'Received') return { kind: 'ignored', type: typeof type === 'string' ? type.slice(0, 60) : 'unknown' };
  const action = n.receipt?.action;
  const dmarc = dmarcPassOf(n);
  const mail =
    action?.type === 'S3' && typeof n.content !== 'string' ? s3LocationOf(action) : contentMailOf(n.content, action);
  return dmarc && mail.kind !== 'ignored' ? { ...mail, dmarcPassFor: dmarc } : mail;
}

/**
 * The From: domain SES found passing DMARC (`receipt.dmarcVerdict.status` PASS, for the one address of
 * `mail.commonHeaders.from`), undefined otherwise. The notification is signed by SNS (verified before this is read),
 * so unlike an Authentication-Results header in the mail, the sender cannot have written it.
 */
function dmarcPassOf(n: SesNotification): string | undefined {
  if (n.receipt?.dmarcVerdict?.status !== 'PASS') return undefined;
  const from = n.mail?.commonHeaders?.from;
  if (!Array.isArray(from) || from.length !== 1 || typeof from[0] !== 'string') return undefined;
  // `Name <addr>`, `addr (comment)` (RFC 5322 §3.2.2 comments, one level), or the bare address.
  const text = from[0].replace(/\([^()]*\)/g, ' ').trim();
  const address = /<([^<>]*)>$/.exec(text)?.[1] ?? text;
  const at = address.lastIndexOf('@');
  const domain =
    at < 0
      ? ''
      : address
          .slice(at + 1)
          .trim()
          .toLowerCase()
          .replace(/\.$/, '');
  // An internationalised domain in its ASCII form (the mail's own From: may carry either); undefined when invalid.
  return domainToASCII(domain) || undefined;
}

/** The SNS `Message` as an SES notification object; 400 when it is not JSON or not an object. */
function sesNotificationOf(message: string): SesNotification {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    throw errors.badRequest('The SNS Message is not an SES notification (not JSON)');
  }
  if (!parsed || typeof parsed !== 'object') throw errors.badRequest('The SNS Message is not an SES notification');
  return parsed as SesNotification;
}

/** Where an S3 action stored the mail (`bucketName`, `objectKey`); 400 when either is missing. */
function s3LocationOf(action: SesAction): SesMail {
  const { bucketName, objectKey } = action;
  if (typeof bucketName !== 'string' || !bucketName || typeof objectKey !== 'string' || !objectKey)
    throw errors.badRequest('The SES S3 action has no bucketName or objectKey');
  return { kind: 's3', bucket: bucketName, key: objectKey };
}

/** The raw mail an SNS action posted in `content`, in its `encoding` (UTF8, the default, or BASE64); 400 without it. */
function contentMailOf(content: unknown, action: SesAction | undefined): SesMail {
  if (typeof content !== 'string' || !content)
    throw errors.badRequest('The SES notification has no content (use an SNS action, encoding UTF8 or Base64)');
  const encoding = typeof action?.encoding === 'string' ? action.encoding.toUpperCase() : 'UTF8';
  if (encoding !== 'BASE64') return { kind: 'mail', raw: Buffer.from(content, 'utf8') };
  if (!/^[A-Za-z0-9+/=\r\n]+$/.test(content)) throw errors.badRequest('The SES content is not Base64');
  return { kind: 'mail', raw: Buffer.from(content, 'base64') };
}
