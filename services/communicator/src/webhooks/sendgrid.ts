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

/** Attachment descriptions of the `attachment-info` field, by form field name (`attachment1`…). */
type AttachmentInfo = Record<string, { filename?: string; type?: string; name?: string }>;

/**
 * The raw RFC 5322 mail of a SendGrid Inbound Parse POST (always multipart/form-data): the `email` field when
 * "POST the raw, full MIME message" is on, else rebuilt from the parsed fields — `headers` (the raw header block),
 * `text`, `html`, decoded per `charsets`, and the attachment files (`attachment1`…, described by `attachment-info`).
 * Throws a 400 AppError when there is no mail.
 */
export async function sendgridMail(form: FormBody): Promise<Buffer> {
  const raw = fieldBytes(form, 'email');
  if (raw?.length) return raw;
  const charsets = charsetsOf(form);
  const headers = headersOf(form, charsets);
  const info = (jsonField(form, 'attachment-info') ?? {}) as AttachmentInfo;
  return composeMime({
    headers,
    text: decoded(form, 'text', charsets),
    html: decoded(form, 'html', charsets),
    attachments: form.files.map((f) => ({
      filename: info[f.field]?.filename ?? info[f.field]?.name ?? f.filename,
      contentType: info[f.field]?.type ?? f.contentType,
      content: f.content,
    })),
  });
}

/** A form field holding JSON, parsed; undefined when absent; 400 (`invalid_parameter` naming it) when not JSON. */
function jsonField(form: FormBody, name: string): unknown {
  const json = fieldText(form, name);
  if (!json) return undefined;
  try {
    return JSON.parse(json) as unknown;
  } catch {
    throw errors.invalidParameter(name, 'is not JSON');
  }
}

/** The `charsets` field (`{"text": "iso-8859-1", …}`): the string entries of its JSON object; {} when absent. */
function charsetsOf(form: FormBody): Record<string, string> {
  const parsed = jsonField(form, 'charsets');
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return {};
  return Object.fromEntries(Object.entries(parsed).filter(([, v]) => typeof v === 'string')) as Record<string, string>;
}

/**
 * The header fields of the rebuilt mail: the `headers` block, plus From, To and Subject from their own fields
 * where the block lacks them. 400 without `headers` or without any From.
 */
function headersOf(form: FormBody, charsets: Record<string, string>): Array<[string, string]> {
  const headerBlock = fieldText(form, 'headers');
  if (!headerBlock) throw errors.missingParameter('headers');
  const headers = splitHeaderBlock(headerBlock);
  for (const [field, name] of [
    ['from', 'From'],
    ['to', 'To'],
    ['subject', 'Subject'],
  ] as const) {
    const value = decoded(form, field, charsets);
    if (value && !headers.some(([n]) => n.toLowerCase() === field)) headers.push([name, value]);
  }
  if (!headers.some(([n]) => n.toLowerCase() === 'from')) throw errors.missingParameter('from');
  return headers;
}
