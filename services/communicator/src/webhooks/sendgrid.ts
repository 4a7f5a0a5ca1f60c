import { createHash, timingSafeEqual } from 'node:crypto';
import iconv from 'iconv-lite';
import { errors } from '@workemon/service-kit';
import { fieldBytes, fieldText, type FormBody } from './form-body.js';
import { composeMime, splitHeaderBlock } from './mime-compose.js';

/** Constant-time equality of two secrets of any length (both hashed first, so lengths leak nothing). */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/**
 * SendGrid Inbound Parse signs nothing, so the operator puts a secret in the Parse URL: `?key=<secret>` or basic
 * auth `https://<any user>:<secret>@host/webhook/sendgrid`. True when either carries SENDGRID_WEBHOOK_SECRET.
 */
export function sendgridAuthorized(query: unknown, authorization: string | undefined, secret: string): boolean {
  const key = (query as Record<string, unknown> | undefined)?.['key'];
  let ok = false;
  if (typeof key === 'string' && key) ok = secretsEqual(key, secret) || ok;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization ?? '')?.[1];
  if (basic) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon >= 0) ok = secretsEqual(decoded.slice(colon + 1), secret) || ok;
  }
  return ok;
}

/** A field decoded with the charset SendGrid names for it in `charsets` (default UTF-8). */
function decoded(form: FormBody, name: string, charsets: Record<string, string>): string | undefined {
  const bytes = fieldBytes(form, name);
  if (!bytes) return undefined;
  const charset = charsets[name];
  return charset && !/^utf-?8$/i.test(charset) && iconv.encodingExists(charset)
    ? iconv.decode(bytes, charset)
    : bytes.toString('utf8');
}

/**
 * The raw RFC 5322 mail of a SendGrid Inbound Parse POST (always multipart/form-data): the `email` field when
 * "POST the raw, full MIME message" is on, else rebuilt from the parsed fields — `headers` (the raw header block),
 * `text`, `html`, decoded per `charsets`, and the attachment files (`attachment1`…, described by `attachment-info`).
 * Throws a 400 AppError when there is no mail.
 */
export async function sendgridMail(form: FormBody): Promise<Buffer> {
  const raw = fieldBytes(form, 'email');
  if (raw?.length) return raw;
  let charsets: Record<string, string> = {};
  const charsetsJson = fieldText(form, 'charsets');
  if (charsetsJson) {
    try {
      const parsed = JSON.parse(charsetsJson) as unknown;
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        charsets = Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v === 'string')) as Record<
          string,
          string
        >;
    } catch {
      throw errors.invalidParameter('charsets', 'is not JSON');
    }
  }
  const headerBlock = fieldText(form, 'headers');
  if (!headerBlock) throw errors.missingParameter('headers');
  const headers = splitHeaderBlock(headerBlock);
  const has = (name: string) => headers.some(([n]) => n.toLowerCase() === name);
  const from = decoded(form, 'from', charsets);
  if (from && !has('from')) headers.push(['From', from]);
  const to = decoded(form, 'to', charsets);
  if (to && !has('to')) headers.push(['To', to]);
  const subject = decoded(form, 'subject', charsets);
  if (subject && !has('subject')) headers.push(['Subject', subject]);
  if (!has('from')) throw errors.missingParameter('from');
  const text = decoded(form, 'text', charsets);
  const html = decoded(form, 'html', charsets);
  let info: Record<string, { filename?: string; type?: string; name?: string }> = {};
  const infoJson = fieldText(form, 'attachment-info');
  if (infoJson) {
    try {
      info = JSON.parse(infoJson) as typeof info;
    } catch {
      throw errors.invalidParameter('attachment-info', 'is not JSON');
    }
  }
  return composeMime({
    headers,
    text,
    html,
    attachments: form.files.map((f) => ({
      filename: info[f.field]?.filename ?? info[f.field]?.name ?? f.filename,
      contentType: info[f.field]?.type ?? f.contentType,
      content: f.content,
    })),
  });
}
