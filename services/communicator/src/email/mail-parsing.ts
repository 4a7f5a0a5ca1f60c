import { tnefText } from './tnef-text.js';
import type { AddressObject, HeaderValue, ParsedMail } from 'mailparser';
import iconv from 'iconv-lite';
import { createRequire } from 'node:module';
import type { analyse as chardetAnalyse } from 'chardet';
import {
  bareSubject,
  extractNewText,
  htmlToText,
  splitForwards,
  subjectRepeatsThread,
  type ForwardedMail,
} from './mail-text.js';

/** Why a mail gets no answer. Values are metric labels: keep them few and fixed. */
export type SkipReason =
  | 'auto_submitted'
  | 'precedence'
  | 'mailing_list'
  | 'delivery_report'
  | 'null_sender'
  | 'robot_sender'
  | 'own_address'
  | 'no_sender';

export type InboundMail = {
  /** Message-ID with angle brackets, when the mail has one. */
  messageId?: string;
  /** The From address, lower case. */
  from?: string;
  /** The Reply-To address as written (lower case), when there is one; where a reply goes is decided later. */
  replyTo?: string;
  /** The subject, decoded (RFC 2047 or raw 8-bit). */
  subject: string;
  /** The subject says something new: not empty and not a `Re:`/`Fwd:`/`Ответ:` of an earlier subject. */
  subjectIsNew: boolean;
  /** The author's own new text: quoted history, attribution lines and signature removed. */
  text: string;
  /** Mail forwarded inline or attached as message/rfc822, outermost first. */
  forwards: ForwardedMail[];
  /** Attachments that hold the only content we cannot read (TNEF winmail.dat, pictures). */
  unreadableAttachments: string[];
  /** Other attachments, by name (not passed on). */
  attachments: string[];
  /** The mail was larger than MAX_MAIL_BYTES and only its start was fetched. */
  truncated: boolean;
  /** The References chain plus the Message-ID, for the reply's References header. */
  references: string[];
  /** The conversation's root Message-ID (first of References, else In-Reply-To, else our own Message-ID). */
  threadRoot?: string;
  /** Set when the loop rules say this mail must not be answered. */
  skipReason?: SkipReason;
};

const ROBOT_LOCAL_PART = /^(mailer-daemon|postmaster|no-?reply|do-?not-?reply|bounces?|notifications?)([+.-].*)?$/i;

function headerText(value: HeaderValue | undefined): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return value.map((v) => headerText(v as HeaderValue) ?? '').join(' ');
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && 'value' in value && typeof value.value === 'string') return value.value;
  if (typeof value === 'object' && 'text' in value && typeof value.text === 'string') return value.text;
  return String(value);
}

function firstAddress(value: AddressObject | AddressObject[] | undefined): string | undefined {
  const list = Array.isArray(value) ? value : value ? [value] : [];
  for (const group of list) for (const a of group.value) if (a.address) return a.address.toLowerCase();
  return undefined;
}

function listOf(value: string | string[] | undefined): string[] {
  if (!value) return [];
  const joined = Array.isArray(value) ? value.join(' ') : value;
  return joined.match(/<[^<>\s]+>/g) ?? [];
}

/** An address as its mailbox sees it: case folded, a `+tag` subaddress (RFC 5233) and a display name dropped. */
function mailboxOf(address: string): string {
  const bare = (/<([^<>]+)>/.exec(address)?.[1] ?? address).trim().toLowerCase();
  const at = bare.lastIndexOf('@');
  return at < 0 ? bare : `${bare.slice(0, at).split('+')[0]}${bare.slice(at)}`;
}

type Headers = ParsedMail['headers'];

/**
 * RFC 3834 §5 `Auto-Submitted` (only the keyword `no`, parameters may follow a `;`, marks mail a person sent), and
 * the vendor spellings of "I am an autoresponder" (Exchange, Yandex and older autoresponders).
 */
function autoSubmittedRule(h: Headers): SkipReason | undefined {
  const autoSubmitted = headerText(h.get('auto-submitted'))?.trim().toLowerCase();
  if (autoSubmitted && autoSubmitted.split(';')[0]!.trim() !== 'no') return 'auto_submitted';
  if (h.has('x-autoreply') || h.has('x-autorespond')) return 'auto_submitted';
  if (!h.has('x-auto-response-suppress')) return undefined;
  const suppress = headerText(h.get('x-auto-response-suppress'))?.toLowerCase() ?? 'all';
  return /all|autoreply|oof/.test(suppress) ? 'auto_submitted' : undefined;
}

/**
 * The rules read from the raw header block, unfolded (mailparser folds List-* headers into one `list` object and joins
 * repeated headers; the raw block is the plain truth): `Precedence: bulk|list|junk`, any `List-Id`,
 * `List-Unsubscribe` or `List-Post` (RFC 2369/2919).
 */
function headerBlockRule(head: string): SkipReason | undefined {
  if (/^precedence:[ \t]*(bulk|list|junk)[ \t]*(;.*)?$/im.test(head)) return 'precedence';
  if (/^list-(id|unsubscribe|post):/im.test(head)) return 'mailing_list';
  return undefined;
}

/** Delivery and read reports (RFC 6522 multipart/report, RFC 3464, RFC 8098). */
function deliveryReportRule(h: Headers): SkipReason | undefined {
  const contentType = headerText(h.get('content-type'))?.toLowerCase() ?? '';
  return /multipart\/report|message\/delivery-status|message\/disposition-notification/.test(contentType)
    ? 'delivery_report'
    : undefined;
}

/**
 * The sender: a null `Return-Path: <>` (a bounce or another automatic message; the header is added by the
 * delivering server), no From, a robot's local part (mailer-daemon, no-reply, …) or one of ours.
 */
function senderRule(head: string, from: string | undefined, ownAddresses: readonly string[]): SkipReason | undefined {
  const returnPath = /^return-path:[ \t]*(.*)$/im.exec(head)?.[1];
  if (returnPath !== undefined && /^<\s*>$/.test(returnPath.trim())) return 'null_sender';
  if (!from) return 'no_sender';
  if (ROBOT_LOCAL_PART.test(from.split('@')[0] ?? '')) return 'robot_sender';
  if (ownAddresses.some((a) => mailboxOf(a) === mailboxOf(from))) return 'own_address';
  return undefined;
}

/**
 * The loop rules (docs/architecture.md "No loops", RFC 3834 §2 and §5): never answer mail a machine sent.
 * Returns the first reason that applies, in this order: Auto-Submitted and vendor autoreply headers, Precedence,
 * List-*, delivery reports, null Return-Path, no sender, robot sender, our own address.
 */
export function classifyAutomatic(
  parsed: ParsedMail,
  raw: string,
  ownAddresses: readonly string[],
  from: string | undefined,
): SkipReason | undefined {
  // The raw header block, unfolded (RFC 5322 §2.2.3).
  const head = raw.slice(0, Math.max(0, raw.search(/\r?\n\r?\n/))).replace(/\r?\n[ \t]+/g, ' ');
  return (
    autoSubmittedRule(parsed.headers) ??
    headerBlockRule(head) ??
    deliveryReportRule(parsed.headers) ??
    senderRule(head, from, ownAddresses)
  );
}

// ---- body text -------------------------------------------------------------------------------------------------

// The Cyrillic single-byte tables chardet tells apart by their Russian letter statistics (ICU's detector).
const CYRILLIC_CHARSETS = ['windows-1251', 'koi8-r', 'iso-8859-5'];
// Labels of single-byte tables: bytes labelled so may be any of them (a mail server's or client's default label).
const SINGLE_BYTE_LABEL =
  /^(us-ascii|ascii|koi8-[ru]|windows-125\d|cp-?125\d|win-?125\d|iso-?8859-\d+|latin-?1|cp-?866|ibm-?866)$/i;

/** The Cyrillic table chardet finds most likely for `bytes` (its first 64 KiB), if its best match is Cyrillic. */
function detectCyrillic(bytes: Buffer): string | undefined {
  // Required at the first mail that needs it, like html-to-text (docs/operations.md, "Memory at start-up").
  const { analyse } = createRequire(import.meta.url)('chardet') as { analyse: typeof chardetAnalyse };
  const best = analyse(bytes.subarray(0, 65_536))[0]?.name.toLowerCase();
  return best && CYRILLIC_CHARSETS.includes(best) ? best : undefined;
}

/**
 * The charset to read a text part with instead of its label: when the label names a single-byte table (or none)
 * and chardet finds the bytes are Russian in another one (windows-1251 text labelled koi8-r or iso-8859-1, a
 * common misconfiguration of old clients and gateways); undefined when the label is right or not single-byte.
 */
function relabelledCharset(bytes: Buffer, label: string | undefined): string | undefined {
  if (label && !SINGLE_BYTE_LABEL.test(label)) return undefined;
  // A word or two is too little to judge by (chardet can take "щи" in windows-1251 for koi8-r).
  let eightBit = 0;
  for (const b of bytes.subarray(0, 65_536)) if (b >= 0x80) eightBit += 1;
  if (eightBit < 12) return undefined;
  // UTF-8 under a single-byte label (a script's default header): valid UTF-8 of that length is never an accident.
  if (validUtf8(bytes)) return 'utf-8';
  const detected = detectCyrillic(bytes);
  const declared = label && iconv.encodingExists(label) ? iconv.decode(bytes, label) : undefined;
  return detected && iconv.decode(bytes, detected) !== declared ? detected : undefined;
}

/** Whether `bytes` are well-formed UTF-8. */
function validUtf8(bytes: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Bytes of unknown Cyrillic table: chardet's Cyrillic guess, else the one that reads as Russian prose (text decoded
 * with the wrong table comes out mostly upper case; Russian prose is not).
 */
function guessCyrillic(bytes: Buffer): string {
  const detected = detectCyrillic(bytes);
  if (detected) return iconv.decode(bytes, detected);
  const score = (text: string) => {
    let lower = 0;
    let upper = 0;
    for (const ch of text) {
      if (ch >= 'а' && ch <= 'я') lower += 1;
      else if (ch >= 'А' && ch <= 'Я') upper += 1;
    }
    return lower - upper;
  };
  const cp1251 = iconv.decode(bytes, 'windows-1251');
  const koi8 = iconv.decode(bytes, 'koi8-r');
  return score(koi8) > score(cp1251) ? koi8 : cp1251;
}

function decodeTransfer(body: string, encoding: string): Buffer {
  if (encoding === 'base64') return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (encoding === 'quoted-printable') {
    const unfolded = body.replace(/=\r?\n/g, '');
    return Buffer.from(
      unfolded.replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16))),
      'latin1',
    );
  }
  return Buffer.from(body, 'latin1');
}

/**
 * A minimal MIME walk over the raw bytes (as latin1) that returns the undecoded bytes of text parts. Used only
 * when the declared charset produced replacement characters: a missing or wrong charset label is common in
 * mail from old Russian clients, and then mailparser has nothing to go on.
 */
function rawTextParts(raw: string, depth = 0): Array<{ type: 'plain' | 'html'; bytes: Buffer; charset?: string }> {
  if (depth > 8) return [];
  const split = raw.search(/\r?\n\r?\n/);
  if (split < 0) return [];
  const head = raw.slice(0, split).replace(/\r?\n[ \t]+/g, ' ');
  const body = raw.slice(split).replace(/^\r?\n\r?\n/, '');
  const contentType = /^content-type:\s*([^\r\n]*)/im.exec(head)?.[1] ?? 'text/plain';
  const encoding = (/^content-transfer-encoding:\s*([^\s;]+)/im.exec(head)?.[1] ?? '7bit').toLowerCase();
  const disposition = /^content-disposition:\s*attachment/im.test(head);
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  if (type.startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
    if (!boundary) return [];
    const parts = body.split(
      new RegExp(`\\r?\\n?--${boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*\\r?\\n?`),
    );
    return parts.slice(1).flatMap((p) => rawTextParts(p, depth + 1));
  }
  if (disposition) return [];
  const charset = /charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType)?.[1];
  if (type === 'text/plain') return [{ type: 'plain', bytes: decodeTransfer(body, encoding), charset }];
  if (type === 'text/html') return [{ type: 'html', bytes: decodeTransfer(body, encoding), charset }];
  return [];
}

/** Limits of the MIME walk: mail beyond them is poison (retried at most MAX_ATTEMPTS times, then set aside). */
export const MAX_MIME_PARTS = 1000;
const MAX_FORWARD_DEPTH = 3;

/** Thrown when a mail cannot be parsed at all; `code` is a fixed label (EMAXLEN, parser_error). */
export class UnparseableMailError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UnparseableMailError';
  }
}

/** Raw 8-bit header bytes (no RFC 2047): UTF-8 when they are valid UTF-8, else the body's charset, else a guess. */
function decodeRawHeader(raw: Buffer, name: string, bodyCharset: string | undefined): string | undefined {
  const headEnd = raw.indexOf('\r\n\r\n') >= 0 ? raw.indexOf('\r\n\r\n') : raw.indexOf('\n\n');
  const head = raw.subarray(0, headEnd < 0 ? raw.length : headEnd);
  const match = new RegExp(`(?:^|\\n)${name}:[ \\t]*((?:[^\\r\\n]|\\r?\\n[ \\t])*)`, 'i').exec(head.toString('latin1'));
  if (!match) return undefined;
  const bytes = Buffer.from(match[1]!.replace(/\r?\n[ \t]+/g, ' '), 'latin1');
  if (!bytes.some((b) => b >= 0x80)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).trim();
  } catch {
    // not UTF-8: decode as the body is decoded
  }
  if (bodyCharset && !/^(utf-?8|us-ascii)$/i.test(bodyCharset) && iconv.encodingExists(bodyCharset))
    return iconv.decode(bytes, relabelledCharset(bytes, bodyCharset) ?? bodyCharset).trim();
  return guessCyrillic(bytes).trim();
}

/** Whether mailparser's text has unreadable characters, i.e. the declared charset was wrong or missing. */
const garbled = (text: string) => text.includes('\uFFFD');

type BodyText = { text: string; html: boolean };

/** A single-byte charset label anywhere in the mail: its text parts may be mislabelled (see relabelledCharset). */
const SINGLE_BYTE_IN_MAIL =
  /charset\s*=\s*"?(us-ascii|ascii|koi8-[ru]|windows-125\d|cp-?125\d|win-?125\d|iso-?8859-\d+|latin-?1|cp-?866|ibm-?866)"?(;|\s|$)/im;

/** A text part's text repaired: replacement characters → a Cyrillic guess; a wrong single-byte label → re-read. */
function repairedText(part: { bytes: Buffer; charset?: string } | undefined, text: string, alone: boolean): string {
  if (!part) return text;
  if (garbled(text)) return guessCyrillic(part.bytes);
  // Only a part that is the only one of its kind is re-read: with several, mailparser's joined text is kept.
  const charset = alone ? relabelledCharset(part.bytes, part.charset) : undefined;
  return charset ? iconv.decode(part.bytes, charset) : text;
}

/**
 * The body as text: the plain part when there is one, else the HTML part converted; charset repaired (replacement
 * characters: the label was wrong or missing; a single-byte label on bytes chardet reads as Russian in another table).
 */
function bodyTextOf(parsed: ParsedMail, raw: string): BodyText {
  let plain = parsed.text ?? '';
  let html = typeof parsed.html === 'string' ? parsed.html : '';
  if (garbled(plain) || garbled(html) || SINGLE_BYTE_IN_MAIL.test(raw)) {
    const parts = rawTextParts(raw);
    const plains = parts.filter((x) => x.type === 'plain');
    const htmls = parts.filter((x) => x.type === 'html');
    plain = repairedText(plains[0], plain, plains.length === 1);
    html = repairedText(htmls[0], html, htmls.length === 1);
  }
  const hasPlainPart = /content-type:\s*text\/plain/i.test(raw) || !/content-type:/i.test(raw);
  if (hasPlainPart && plain.trim()) return { text: plain, html: false };
  if (html) return { text: htmlToText(html), html: true };
  return { text: plain, html: false };
}

/** The display form of an address header: `Name <addr>` or `addr`. */
function addressText(value: AddressObject | AddressObject[] | undefined): string | undefined {
  const first = (Array.isArray(value) ? value : value ? [value] : [])[0]?.value[0];
  if (!first?.address) return undefined;
  return first.name ? `${first.name} <${first.address}>` : first.address;
}

/** Parses with mailparser; EMAXLEN (over 1000 MIME parts or a 1 MB header) and crashes become UnparseableMailError. */
async function parseMime(source: Buffer): Promise<ParsedMail> {
  // Loaded with the first mail: a communicator with no mail channel never loads the MIME stack (docs/operations.md).
  const { simpleParser } = await import('mailparser');
  try {
    return await simpleParser(source, {
      skipImageLinks: true,
      skipTextToHtml: true,
      skipHtmlToText: true,
      maxHtmlLengthToParse: 2_000_000,
    });
  } catch (err) {
    const code = (err as { code?: string }).code === 'EMAXLEN' ? 'EMAXLEN' : 'parser_error';
    throw new UnparseableMailError(code, `mail cannot be parsed: ${(err as Error).message}`, { cause: err });
  }
}

/** What the text parts of a mail say (mail-parsing's content step). */
type MailContent = { subject: string; text: string; forwards: ForwardedMail[]; unreadable: string[]; other: string[] };

/** The content gathered from a mail's attachments. */
type AttachmentContent = {
  forwards: ForwardedMail[];
  unreadable: string[];
  other: string[];
  tnefTexts: string[];
  /** Pictures shown inside HTML (multipart/related): a logo beside text, or all there is (a pasted screenshot). */
  inlinePictures: string[];
};

/** Outlook's TNEF (`winmail.dat`, application/ms-tnef): its message text, or undefined when none can be read. */
function tnefBodyOf(content: Buffer): string | undefined {
  const tnef = tnefText(content);
  const body = tnef?.text ?? (tnef?.html ? htmlToText(tnef.html) : undefined);
  return body?.trim() ? body : undefined;
}

/**
 * One attachment into `into`: a forward as attachment (message/rfc822, RFC 2046 §5.2.1, up to MAX_FORWARD_DEPTH):
 * its author, subject and text join the forwards; TNEF: its text, else unreadable; a picture that is not an
 * inline logo of HTML mail: unreadable; any other named attachment: listed by name only.
 */
async function readAttachment(
  a: ParsedMail['attachments'][number],
  depth: number,
  into: AttachmentContent,
  isOwnAddress: (address: string) => boolean,
) {
  const name = (a.filename ?? 'unnamed').replace(/[\r\n]/g, ' ').slice(0, 200);
  const type = a.contentType.toLowerCase();
  if (type === 'message/rfc822' && depth < MAX_FORWARD_DEPTH) {
    const inner = await parseMime(a.content);
    const read = await readContent(inner, a.content, depth + 1, isOwnAddress);
    into.forwards.push({ from: addressText(inner.from), subject: read.subject, text: read.text }, ...read.forwards);
    // The forwarded mail's own attachments are named like ours (not passed on); a picture there is not all we got.
    into.other.push(...read.other, ...read.unreadable);
  } else if (type === 'application/ms-tnef' || type === 'application/vnd.ms-tnef' || /^winmail\.dat$/i.test(name)) {
    const body = tnefBodyOf(a.content);
    if (body) into.tnefTexts.push(body);
    else into.unreadable.push(name);
  } else if (type.startsWith('image/')) {
    (a.related ? into.inlinePictures : into.unreadable).push(name);
  } else if (a.contentDisposition === 'attachment' || a.filename) {
    into.other.push(name);
  }
}

/** The subject, decoded (RFC 2047 by mailparser, or raw 8-bit bytes in the body's charset), on one line. */
function subjectOf(parsed: ParsedMail, raw: Buffer, latin1: string): string {
  const charset = /charset="?([\w.:-]+)"?/i.exec(latin1.slice(0, 20_000))?.[1];
  let subject = decodeRawHeader(raw, 'subject', charset) ?? parsed.subject ?? '';
  if (garbled(subject)) subject = encodedWordsGuessed(latin1) ?? subject;
  return subject.replace(/[\r\n]+/g, ' ').trim();
}

/**
 * The Subject's RFC 2047 encoded words whose charset mailparser could not use (`=?unknown-8bit?B?…?=`, written by
 * MTAs that wrap raw 8-bit headers, or a misspelt label): their bytes (B: base64, Q: RFC 2047 §4.2) joined and read
 * as UTF-8 when valid, else as the Cyrillic table chardet finds; the text between words is kept.
 */
function encodedWordsGuessed(latin1: string): string | undefined {
  const head = latin1.slice(0, Math.max(0, latin1.search(/\r?\n\r?\n/)));
  const value = /^subject:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)/im.exec(head)?.[1]?.replace(/\r?\n[ \t]+/g, ' ');
  if (!value) return undefined;
  const word = /=\?[^?\s]+\?([bq])\?([^?\s]*)\?=/gi;
  if (!value.match(word)) return undefined;
  // Whitespace between two encoded words is not part of the text (RFC 2047 §6.2).
  const joined = value.replace(/(\?=)\s+(?==\?)/g, '$1');
  const chunks: Buffer[] = [];
  let last = 0;
  for (const m of joined.matchAll(word)) {
    chunks.push(Buffer.from(joined.slice(last, m.index), 'latin1'));
    chunks.push(
      m[1]!.toLowerCase() === 'b'
        ? Buffer.from(m[2]!, 'base64')
        : Buffer.from(
            m[2]!
              .replace(/_/g, ' ')
              .replace(/=([0-9a-f]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          ),
    );
    last = m.index + m[0].length;
  }
  chunks.push(Buffer.from(joined.slice(last), 'latin1'));
  const all = Buffer.concat(chunks);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(all);
  } catch {
    return guessCyrillic(all);
  }
}

/** The text parts of a mail (and, recursively, of mail attached as message/rfc822) reduced to what they say. */
async function readContent(
  parsed: ParsedMail,
  raw: Buffer,
  depth: number,
  isOwnAddress: (address: string) => boolean,
): Promise<MailContent> {
  const latin1 = raw.toString('latin1');
  const subject = subjectOf(parsed, raw, latin1);
  const body = bodyTextOf(parsed, latin1);
  // A mail that answers none (no In-Reply-To, no References) and carries a header block forwards it (mail-text.ts).
  const reply = !!parsed.inReplyTo || listOf(parsed.references).length > 0;
  // A run of 20 or more spaces or tabs (log alignment, or a hostile mail) becomes one space: it means nothing to
  // the reader, and email-forward-parser's patterns take time quadratic in such a run (30,000 spaces: 2 s).
  const bodyText = body.text.replace(/\r\n/g, '\n').replace(/[ \t]{20,}/g, ' ');
  const split = splitForwards(bodyText, subject, 0, { reply, isOwnAddress });
  const found: AttachmentContent = {
    forwards: split.forwards.map((f) => ({ ...f, text: extractNewText(f.text) })),
    unreadable: [],
    other: [],
    tnefTexts: [],
    inlinePictures: [],
  };
  for (const a of parsed.attachments) await readAttachment(a, depth, found, isOwnAddress);
  const own = [split.text, ...found.tnefTexts.map((t) => t.replace(/\r\n/g, '\n'))]
    .filter((t) => t.trim())
    .join('\n\n');
  const text = extractNewText(own);
  // A picture inside HTML with no text around it (Outlook's pasted screenshot) is all the mail says: unreadable.
  const pictureOnly = !text && !found.forwards.some((f) => f.text) && found.inlinePictures.length > 0;
  return {
    subject,
    text,
    forwards: found.forwards,
    unreadable: pictureOnly ? [...found.unreadable, ...found.inlinePictures] : found.unreadable,
    other: found.other,
  };
}

/**
 * Parse step: raw RFC 5322 bytes → what the mail says and who sent it. The text is untrusted and passed on as
 * data only. Throws UnparseableMailError for mail mailparser cannot read (poison mail).
 */
export async function parseInboundMail(
  source: Buffer,
  options: { ownAddresses: readonly string[]; truncated?: boolean },
): Promise<InboundMail> {
  const parsed = await parseMime(source);
  const raw = source.toString('latin1');
  const from = firstAddress(parsed.from);
  const replyTo = firstAddress(parsed.replyTo);
  const own = options.ownAddresses.map(mailboxOf);
  const content = await readContent(parsed, source, 0, (address) => own.includes(mailboxOf(address)));

  const messageId = parsed.messageId
    ? parsed.messageId.startsWith('<')
      ? parsed.messageId
      : `<${parsed.messageId}>`
    : undefined;
  const references = listOf(parsed.references);
  const inReplyTo = listOf(parsed.inReplyTo)[0];
  return {
    messageId,
    from,
    replyTo,
    subject: content.subject,
    subjectIsNew: !!bareSubject(content.subject) && !subjectRepeatsThread(content.subject),
    text: content.text,
    forwards: content.forwards.filter((f) => f.text || f.subject),
    unreadableAttachments: content.unreadable,
    attachments: content.other,
    truncated: !!options.truncated,
    references: messageId ? [...references.filter((r) => r !== messageId), messageId] : references,
    threadRoot: references[0] ?? inReplyTo ?? messageId,
    skipReason: classifyAutomatic(parsed, raw, options.ownAddresses, from),
  };
}

/** "Re: " once, however many the subject already carries in whichever language. */
export function replySubject(subject: string): string {
  const bare = subject.trim();
  if (/^(re|ответ|отв|на)\.?\s*(\[\d+\])?\s*:/i.test(bare)) return bare;
  return `Re: ${bare || '(без темы)'}`;
}
