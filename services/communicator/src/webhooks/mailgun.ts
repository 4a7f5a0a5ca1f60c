import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { errors } from '@workemon/service-kit';
import { fieldBytes, fieldText, type FormBody } from './form-body.js';
import { composeMime } from './mime-compose.js';

/** Why a Mailgun webhook was refused (401); never names or echoes the key. */
export type MailgunRefusal = 'missing' | 'bad-signature' | 'stale' | 'replayed';

/**
 * Mailgun's webhook signature ("Securing Webhooks"): `signature` is the hex HMAC-SHA256 of `timestamp + token`
 * (concatenated, no separator) keyed with the HTTP webhook signing key; `timestamp` is Unix seconds, `token` a
 * 50-character random string. Compared in constant time. A timestamp more than `maxAgeMs` from `nowMs` (past
 * or future) is refused. Returns the token (the replay key) or the refusal.
 */
export function verifyMailgunSignature(
  form: FormBody,
  signingKey: string,
  maxAgeMs: number,
  nowMs: number,
): { ok: true; token: string } | { ok: false; refusal: MailgunRefusal } {
  const timestamp = fieldText(form, 'timestamp');
  const token = fieldText(form, 'token');
  const signature = fieldText(form, 'signature');
  if (!timestamp || !token || !signature) return { ok: false, refusal: 'missing' };
  if (!/^\d{1,12}$/.test(timestamp) || token.length > 150 || !/^[0-9a-f]{64}$/i.test(signature))
    return { ok: false, refusal: 'bad-signature' };
  const expected = createHmac('sha256', signingKey)
    .update(timestamp + token)
    .digest();
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) return { ok: false, refusal: 'bad-signature' };
  if (Math.abs(nowMs - Number(timestamp) * 1000) > maxAgeMs) return { ok: false, refusal: 'stale' };
  return { ok: true, token };
}

/** The form fields Mailgun's signature is made of: what a replay keeps, so they are not part of the payload. */
const SIGNATURE_FIELDS = new Set(['timestamp', 'token', 'signature']);

/**
 * Hex SHA-256 of what a Mailgun post carries besides its signature: every other field (by name, each value in the
 * order sent) and every file (field, file name, content type, content), each part length-prefixed so no two
 * different forms hash alike. Independent of the multipart boundary and of the order of distinct fields, so a
 * retry of the same post hashes the same; a captured signature sent with any other mail does not. This is the
 * payload a token is reserved for (`POST /webhook-tokens` of the secretary).
 */
export function mailgunPayloadDigest(form: FormBody): string {
  const hash = createHash('sha256');
  const part = (bytes: Buffer | string) => {
    const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(buffer.length));
    hash.update(length).update(buffer);
  };
  const names = [...form.fields.keys()].filter((name) => !SIGNATURE_FIELDS.has(name)).sort();
  for (const name of names) {
    const values = form.fields.get(name)!;
    part(`field:${name}:${values.length}`);
    for (const value of values) part(value);
  }
  for (const file of form.files) {
    part(`file:${file.field}`);
    part(file.filename);
    part(file.contentType);
    part(file.content);
  }
  return hash.digest('hex');
}

/** Mailgun's `message-headers`: a JSON list of `[name, value]` pairs in the original order. */
function messageHeaders(form: FormBody): Array<[string, string]> {
  const json = fieldText(form, 'message-headers');
  if (!json) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw errors.invalidParameter('message-headers', 'is not JSON');
  }
  if (!Array.isArray(parsed) || !parsed.every((h) => Array.isArray(h) && h.length === 2 && h.every(isString)))
    throw errors.invalidParameter('message-headers', 'must be a JSON list of [name, value] pairs');
  return parsed as Array<[string, string]>;
}

const isString = (v: unknown): v is string => typeof v === 'string';

/**
 * The raw RFC 5322 mail of a Mailgun inbound route POST: `body-mime` when the route posts raw MIME (a forward()
 * URL ending in `mime`), else rebuilt from the parsed fields (`message-headers`, `body-plain`, `body-html`,
 * attachments as files `attachment-1`…). Header fields missing from `message-headers` are filled from `from`,
 * `recipient`, `subject`, `Message-Id`, `In-Reply-To`, `References`. Throws a 400 AppError when there is no mail.
 */
export async function mailgunMail(form: FormBody): Promise<Buffer> {
  const mime = fieldBytes(form, 'body-mime');
  if (mime?.length) return mime;
  const headers = messageHeaders(form);
  const has = (name: string) => headers.some(([n]) => n.toLowerCase() === name.toLowerCase());
  const fill: Array<[string, string | undefined]> = [
    ['From', fieldText(form, 'from') ?? fieldText(form, 'sender')],
    ['To', fieldText(form, 'To') ?? fieldText(form, 'recipient')],
    ['Subject', fieldText(form, 'subject')],
    ['Message-Id', fieldText(form, 'Message-Id')],
    ['In-Reply-To', fieldText(form, 'In-Reply-To')],
    ['References', fieldText(form, 'References')],
  ];
  for (const [name, value] of fill) if (value && !has(name)) headers.push([name, value]);
  const text = fieldText(form, 'body-plain');
  const html = fieldText(form, 'body-html');
  if (!has('from')) throw errors.missingParameter('from');
  if (text === undefined && html === undefined) throw errors.missingParameter('body-plain');
  return composeMime({
    headers,
    text,
    html,
    attachments: form.files.map((f) => ({ filename: f.filename, contentType: f.contentType, content: f.content })),
  });
}
