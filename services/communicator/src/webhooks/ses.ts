import { errors } from '@workemon/service-kit';

/**
 * What an SES receipt notification (the `Message` of an SNS Notification, a JSON document) holds for us.
 * - `mail`: the raw MIME from `content`, when the receipt rule's SNS action posts the content (encoding UTF8 or
 *   BASE64; SES limits such mail to 150 KB);
 * - `ignored`: not a `Received` notification (SES's `AmazonSnsSubscriptionSucceeded` setup message and the like);
 * - `s3`: an S3 action (the content is in a bucket, not in the notification): where it is, `bucketName` and
 *   `objectKey` of `receipt.action` (the route fetches it when SES_S3_BUCKETS is set, docs/webhooks.md).
 * A notification that is not SES JSON, or an S3 action without bucket or key, throws 400.
 */
export function sesMail(
  message: string,
): { kind: 'mail'; raw: Buffer } | { kind: 'ignored'; type: string } | { kind: 's3'; bucket: string; key: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    throw errors.badRequest('The SNS Message is not an SES notification (not JSON)');
  }
  const n = parsed as {
    notificationType?: unknown;
    eventType?: unknown;
    content?: unknown;
    receipt?: { action?: { type?: unknown; encoding?: unknown; bucketName?: unknown; objectKey?: unknown } };
  } | null;
  if (!n || typeof n !== 'object') throw errors.badRequest('The SNS Message is not an SES notification');
  const type = typeof n.notificationType === 'string' ? n.notificationType : n.eventType;
  if (type !== 'Received') return { kind: 'ignored', type: typeof type === 'string' ? type.slice(0, 60) : 'unknown' };
  const action = n.receipt?.action;
  if (action?.type === 'S3' && typeof n.content !== 'string') {
    const { bucketName, objectKey } = action;
    if (typeof bucketName !== 'string' || !bucketName || typeof objectKey !== 'string' || !objectKey)
      throw errors.badRequest('The SES S3 action has no bucketName or objectKey');
    return { kind: 's3', bucket: bucketName, key: objectKey };
  }
  if (typeof n.content !== 'string' || !n.content)
    throw errors.badRequest('The SES notification has no content (use an SNS action, encoding UTF8 or Base64)');
  const encoding = typeof action?.encoding === 'string' ? action.encoding.toUpperCase() : 'UTF8';
  if (encoding === 'BASE64') {
    if (!/^[A-Za-z0-9+/=\r\n]+$/.test(n.content)) throw errors.badRequest('The SES content is not Base64');
    return { kind: 'mail', raw: Buffer.from(n.content, 'base64') };
  }
  return { kind: 'mail', raw: Buffer.from(n.content, 'utf8') };
}
