import { createRequire } from 'node:module';
import type MailComposerClass from 'nodemailer/lib/mail-composer/index.js';

/** A mail a provider posted already parsed: its original header fields, text and HTML bodies and attachments. */
export type ParsedFields = {
  /** The original header fields in order, `[name, value]` (Mailgun's `message-headers`, SendGrid's `headers`). */
  headers: Array<[string, string]>;
  text?: string;
  html?: string;
  attachments: Array<{ filename: string; contentType: string; content: Buffer }>;
};

// The body is rebuilt, so the original's MIME structure headers would lie about it.
const BODY_HEADERS = new Set([
  'content-type',
  'content-transfer-encoding',
  'mime-version',
  'content-disposition',
  'content-id',
  'content-length',
]);
// nodemailer formats these itself (address lists, dates): they are passed as plain values, the rest as prepared.
const FORMATTED = new Set(['from', 'sender', 'to', 'cc', 'bcc', 'reply-to', 'date', 'references']);

/** A raw header block (`Name: value` lines, folded continuation lines) into `[name, value]` pairs, in order. */
export function splitHeaderBlock(block: string): Array<[string, string]> {
  const unfolded = block.replace(/\r?\n(?=[ \t])/g, '');
  const out: Array<[string, string]> = [];
  for (const line of unfolded.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return out;
}

/**
 * Rebuilds one RFC 5322 message from a provider's parsed fields (nodemailer's MailComposer), so a webhook in
 * parsed mode reaches the same pipeline as raw MIME: the original header fields (loop-rule headers, Message-ID,
 * In-Reply-To, References, Authentication-Results) are kept as sent, the body becomes text/plain and text/html
 * alternatives plus the attachments. A mail that had no Message-ID gets none (MailComposer's own is removed), so
 * the pipeline falls back to its content key instead of a made-up id.
 */
export async function composeMime(fields: ParsedFields): Promise<Buffer> {
  const headers: Array<{ key: string; value: string | { prepared: true; value: string } }> = [];
  let hasMessageId = false;
  for (const [name, value] of fields.headers) {
    const lower = name.toLowerCase();
    if (BODY_HEADERS.has(lower) || !/^[\x21-\x39\x3b-\x7e]+$/.test(name)) continue;
    if (lower === 'message-id') hasMessageId = true;
    const clean = value.replace(/[\r\n]+/g, ' ');
    headers.push({ key: name, value: FORMATTED.has(lower) ? clean : { prepared: true, value: clean } });
  }
  // Required at the first webhook mail, not at load (docs/operations.md, "Memory at start-up").
  const MailComposer = createRequire(import.meta.url)(
    'nodemailer/lib/mail-composer/index.js',
  ) as typeof MailComposerClass;
  const composer = new MailComposer({
    headers: headers as never,
    text: fields.text,
    html: fields.html,
    attachments: fields.attachments.map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: a.content,
    })),
  });
  const built = await new Promise<Buffer>((resolve, reject) =>
    composer.compile().build((err, message) => (err ? reject(err) : resolve(message))),
  );
  if (hasMessageId) return built;
  const end = built.indexOf('\r\n\r\n');
  const head = built.subarray(0, end).toString('latin1');
  const stripped = head.replace(/^Message-ID:[^\r\n]*(\r\n[ \t][^\r\n]*)*\r\n/im, '');
  return Buffer.concat([Buffer.from(stripped, 'latin1'), built.subarray(end)]);
}
