import busboy from 'busboy';
import { Readable } from 'node:stream';
import { errors } from '@workemon/service-kit';

/** One uploaded file of a multipart form (an attachment a provider posts). */
export type FormFile = { field: string; filename: string; contentType: string; content: Buffer };

/**
 * A form's fields as the bytes that were sent (a field may repeat: every value is kept, in order), and its files.
 * Bytes, not strings, because a provider may send fields in another charset (SendGrid's `charsets`) or raw MIME
 * that is not UTF-8 (Mailgun's `body-mime`).
 */
export type FormBody = { fields: Map<string, Buffer[]>; files: FormFile[] };

/** The first value of a field as bytes, undefined when absent. */
export const fieldBytes = (form: FormBody, name: string): Buffer | undefined => form.fields.get(name)?.[0];

/** The first value of a field decoded as UTF-8, undefined when absent. */
export const fieldText = (form: FormBody, name: string): string | undefined => fieldBytes(form, name)?.toString('utf8');

function percentDecode(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i += 1) {
    const ch = text.charCodeAt(i);
    if (ch === 0x2b) bytes.push(0x20);
    else if (ch === 0x25 && /^[0-9a-fA-F]{2}$/.test(text.slice(i + 1, i + 3))) {
      bytes.push(parseInt(text.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (ch < 0x80) bytes.push(ch);
    else bytes.push(...Buffer.from(text[i]!, 'utf8'));
  }
  return Buffer.from(bytes);
}

/** `application/x-www-form-urlencoded` (WHATWG URL §5.1) into bytes per field; `+` is a space. */
export function parseUrlEncoded(body: Buffer): FormBody {
  const fields = new Map<string, Buffer[]>();
  for (const pair of body.toString('latin1').split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const name = percentDecode(eq < 0 ? pair : pair.slice(0, eq)).toString('utf8');
    const value = percentDecode(eq < 0 ? '' : pair.slice(eq + 1));
    fields.set(name, [...(fields.get(name) ?? []), value]);
  }
  return { fields, files: [] };
}

/**
 * `multipart/form-data` (RFC 7578) with busboy. Field values keep their bytes (decoded as latin1, which maps
 * byte to char one to one, and turned back into a Buffer). Throws a 400 AppError for a body busboy cannot read.
 */
export function parseMultipart(body: Buffer, contentType: string, maxBytes: number): Promise<FormBody> {
  return new Promise((resolve, reject) => {
    const fields = new Map<string, Buffer[]>();
    const files: FormFile[] = [];
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: { 'content-type': contentType },
        defCharset: 'latin1',
        defParamCharset: 'utf8',
        limits: { fieldSize: maxBytes, fileSize: maxBytes, fields: 1000, files: 100, parts: 1100 },
      });
    } catch (err) {
      reject(errors.badRequest(`The multipart body cannot be read: ${(err as Error).message}`));
      return;
    }
    parser.on('field', (name, value) => {
      fields.set(name, [...(fields.get(name) ?? []), Buffer.from(value, 'latin1')]);
    });
    parser.on('file', (field, stream, info) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () =>
        files.push({
          field,
          filename: info.filename ?? field,
          contentType: info.mimeType || 'application/octet-stream',
          content: Buffer.concat(chunks),
        }),
      );
    });
    parser.on('error', (err: Error) => reject(errors.badRequest(`The multipart body cannot be read: ${err.message}`)));
    parser.on('close', () => resolve({ fields, files }));
    Readable.from([body]).pipe(parser);
  });
}

/** A form body of either encoding; anything else is a 415-like 400 (the providers only send these two). */
export async function parseForm(body: Buffer, contentType: string | undefined, maxBytes: number): Promise<FormBody> {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'application/x-www-form-urlencoded') return parseUrlEncoded(body);
  if (type === 'multipart/form-data') return parseMultipart(body, contentType!, maxBytes);
  throw errors.badRequest(
    `Content-Type '${type || '(none)'}' is not a form: expected multipart/form-data or application/x-www-form-urlencoded`,
  );
}
