import { calendarText } from './calendar-text.js';
import { isTnefData, tnefContent, type TnefAttachment } from './tnef-text.js';
import { validUtf8 } from './utf8.js';
import {
  isEncryptedCms,
  isEncryptedSmime,
  isPkcs7Mime,
  MAX_SMIME_LAYERS,
  signedEntityOf,
  withEntityAsBody,
} from './smime-content.js';
import {
  namesUs,
  ownSubjectDigestsOf,
  subjectDigestsOf,
  ownTextDigestsOf,
  withoutOwnQuotedText,
} from './mail-own-text.js';
import type { AddressObject, HeaderValue, ParsedMail } from 'mailparser';
import iconv from 'iconv-lite';
import { createRequire } from 'node:module';
import type { analyse as chardetAnalyse } from 'chardet';
import {
  bareSubject,
  extractNewText,
  addressesIn,
  forwardedText,
  htmlToText,
  isForwardSubject,
  isReplySubject,
  splitForwards,
  subjectRepeatsThread,
  quotedSubjectOf,
  unmarkedHistoryHeadAt,
  visibleOrEmpty,
  type ForwardedMail,
} from './mail-text.js';
import { msgIdOf } from './message-id.js';

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
  /**
   * The Reply-To address as written (lower case), when there is one and it is not one of our own addresses (an
   * answer there would come back to this mailbox); where a reply goes is decided later.
   */
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

/** The msg-ids of an In-Reply-To or References field, in order, without control characters (as msgIdOf). */
function listOf(value: string | string[] | undefined): string[] {
  if (!value) return [];
  const joined = Array.isArray(value) ? value.join(' ') : value;
  return (joined.match(/<[^<>\s]+>/g) ?? []).map((id) => id.replace(/\p{Cc}/gu, '')).filter((id) => id !== '<>');
}

/**
 * An address as its mailbox sees it: case folded, a `+tag` subaddress (RFC 5233), a display name and a trailing
 * root dot of the domain (`bot@example.test.`, the fully qualified form DNS resolves the same) dropped.
 */
function mailboxOf(address: string): string {
  const bare = (/<([^<>]+)>/.exec(address)?.[1] ?? address).trim().toLowerCase().replace(/\.+$/, '');
  const at = bare.lastIndexOf('@');
  return at < 0 ? bare : `${bare.slice(0, at).split('+')[0]}${bare.slice(at)}`;
}

/** The display name of `Name <addr>` or `"Name" <addr>` (MAIL_FROM may carry one); undefined for a bare address. */
function displayNameOf(address: string): string | undefined {
  const name = /^\s*"?([^"<>]*?)"?\s*<[^<>]+>\s*$/.exec(address)?.[1]?.trim();
  return name || undefined;
}

type Headers = ParsedMail['headers'];

/**
 * Headers only autoresponders and mail robots write: `X-Autoreply`, `X-Autorespond`, `X-Mail-Autoreply` (older
 * autoresponders, Yandex), Exchange's `X-Autogenerated` (Reply, Forward, Group, Mirror), and `X-Loop`, which
 * vacation programs and procmail recipes add to what they send so that it is never answered.
 */
const AUTORESPONDER_HEADERS = ['x-autoreply', 'x-autorespond', 'x-mail-autoreply', 'x-autogenerated', 'x-loop'];

/**
 * The subjects autoresponders give their replies when they set none of the headers (Outlook's "Automatic reply:",
 * Yandex's "Автоответ:", Gmail's vacation responder configured so, German, French and Spanish Exchange), on a mail
 * that answers another. The word must be followed by a colon: "Автоответ не работает" is a person's request.
 */
const AUTORESPONDER_SUBJECT =
  /^\s*(automatic reply|auto[- ]?reply|autoresponse|out of office(?: reply| autoreply)?|автоответ|автоматический ответ|abwesenheitsnotiz|automatische antwort|réponse automatique|respuesta automática)\s*:/i;

/**
 * RFC 3834 §5 `Auto-Submitted` (only the keyword `no`, parameters may follow a `;`, marks mail a person sent), the
 * vendor headers of "I am an autoresponder" (AUTORESPONDER_HEADERS), and an autoresponder's subject.
 */
function autoSubmittedRule(h: Headers, subject: string | undefined): SkipReason | undefined {
  const autoSubmitted = headerText(h.get('auto-submitted'))?.trim().toLowerCase();
  if (autoSubmitted && autoSubmitted.split(';')[0]!.trim() !== 'no') return 'auto_submitted';
  if (AUTORESPONDER_HEADERS.some((name) => h.has(name))) return 'auto_submitted';
  // An autoresponder answers a mail, so its reply names it (RFC 5322 §3.6.4); a person's new mail titled
  // "Автоответ: как включить на время отпуска?" does not, and is a request.
  const answersAMail = h.has('in-reply-to') || h.has('references');
  if (subject && answersAMail && AUTORESPONDER_SUBJECT.test(subject)) return 'auto_submitted';
  if (!h.has('x-auto-response-suppress')) return undefined;
  const suppress = headerText(h.get('x-auto-response-suppress'))?.toLowerCase() ?? 'all';
  return /all|autoreply|oof/.test(suppress) ? 'auto_submitted' : undefined;
}

/**
 * The rules read from the raw header block, unfolded (mailparser folds List-* headers into one `list` object and joins
 * repeated headers; the raw block is the plain truth): `Precedence: bulk|list|junk|auto_reply`, any `List-Id`,
 * `List-Unsubscribe` or `List-Post` (RFC 2369/2919).
 */
function headerBlockRule(head: string): SkipReason | undefined {
  if (/^precedence:[ \t]*(bulk|list|junk|auto_reply)[ \t]*(;.*)?$/im.test(head)) return 'precedence';
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
 * Returns the first reason that applies, in this order: Auto-Submitted, vendor autoreply headers and autoreply
 * subjects, Precedence, List-*, delivery reports, null Return-Path, no sender, robot sender, our own address.
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
    autoSubmittedRule(parsed.headers, parsed.subject) ??
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

/**
 * Whether mailparser's text has unreadable characters (U+FFFD) inside it: the declared charset was wrong or missing.
 * Those at the very end do not count: a mail cut at MAX_MAIL_BYTES (or by its sender) may end inside a UTF-8
 * sequence, and taking that for a wrong label turned the whole text into a Cyrillic guess's mojibake.
 */
const garbled = (text: string) => text.replace(/\uFFFD+\s*$/, '').includes('\uFFFD');

type BodyText = { text: string; html: boolean };

/** A single-byte charset label anywhere in the mail: its text parts may be mislabelled (see relabelledCharset). */
const SINGLE_BYTE_IN_MAIL =
  /charset\s*=\s*"?(us-ascii|ascii|koi8-[ru]|windows-125\d|cp-?125\d|win-?125\d|iso-?8859-\d+|latin-?1|cp-?866|ibm-?866)"?(;|\s|$)/im;

// Charset labels mailparser's iconv-lite does not know under the name clients write, and the table they name: Apple
// Mail and old Mac clients label Cyrillic `x-mac-cyrillic` (iconv-lite: `maccyrillic`) and Ukrainian
// `x-mac-ukrainian` (`macukraine`); Windows ones sometimes `x-cp1251`.
const CHARSET_ALIASES: Record<string, string> = { 'mac-ukrainian': 'macukraine', 'x-mac-ukrainian': 'macukraine' };

/**
 * The iconv-lite name of a declared charset label that mailparser could not use: the label itself when iconv-lite
 * knows it, else an alias (CHARSET_ALIASES) or the label without its `x-` prefix (RFC 2045 §5.1's private-use
 * prefix, which clients put before registered names); undefined when none is known.
 */
export function knownCharset(label: string | undefined): string | undefined {
  if (!label) return undefined;
  const name = label.trim().toLowerCase();
  for (const candidate of [name, CHARSET_ALIASES[name], name.replace(/^x-/, '')])
    if (candidate && iconv.encodingExists(candidate)) return candidate;
  return undefined;
}

/** A text part's text repaired: replacement characters → a Cyrillic guess; a wrong single-byte label → re-read. */
function repairedText(part: { bytes: Buffer; charset?: string } | undefined, text: string, alone: boolean): string {
  if (!part) return text;
  if (garbled(text)) {
    // A label mailparser does not know by that name ("x-mac-cyrillic"): read by the table it names.
    const named = knownCharset(part.charset);
    if (named && named !== part.charset?.toLowerCase()) {
      const read = iconv.decode(part.bytes, named);
      if (!garbled(read)) return read;
    }
    return guessCyrillic(part.bytes);
  }
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
  if (hasPlainPart && plain.trim()) {
    if (!html || !HTML_NOTICE.test(plain) || plain.trim().length > HTML_NOTICE_MAX_CHARS)
      return { text: plain, html: false };
    // A plain part that only asks for HTML: the mail's text is in its HTML part.
    const converted = htmlToText(html);
    if (!sharesWords(plain, converted)) return { text: converted, html: true };
    return { text: plain, html: false };
  }
  if (html) return { text: htmlToText(html), html: true };
  return { text: plain, html: false };
}

/**
 * What a plain part says when its sender (a CRM, a service desk, a web form, a newsletter tool) wrote the mail only in
 * its HTML alternative: "This is an HTML message. Please use an HTML-capable mail program", "Для просмотра этого
 * письма используйте почтовую программу с поддержкой HTML", "View this email in your browser", "откройте его в
 * браузере". RFC 2046 §5.1.4 makes the alternatives equivalent; such a stub is not, so when a short plain part
 * (HTML_NOTICE_MAX_CHARS) says so and the HTML part's text has other words (sharesWords), the HTML is read instead.
 */
const HTML_NOTICE = /\bHTML\b|браузер|\bbrowser\b|web ?page|веб-?страниц/i;
/** The longest plain part taken for a stub, in characters: a real text mentioning HTML is longer. */
const HTML_NOTICE_MAX_CHARS = 400;

/**
 * Whether most (half or more) of the words of `plain` (three or more letters, any case; not those of links and
 * addresses) stand in `other`: two alternatives of one text do; a stub and the real text do not. True when `other`
 * has no words.
 */
function sharesWords(plain: string, other: string): boolean {
  const words = (text: string) => text.toLowerCase().match(/\p{L}{3,}/gu) ?? [];
  const theirs = new Set(words(other));
  if (theirs.size === 0) return true;
  // Links and addresses: the HTML shows them as their link text, so their words are not in its text.
  const ours = words(plain.replace(/(?:https?:\/\/|www\.|mailto:)\S+|\S+@\S+/giu, ' '));
  return ours.filter((w) => theirs.has(w)).length * 2 >= ours.length;
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

/** The S/MIME layers a mail may still have unwrapped (MAX_SMIME_LAYERS for the whole mail, forwards included). */
type SmimeBudget = { layersLeft: number };

/**
 * parseMime, with an opaque-signed S/MIME body (the whole mail one `smime.p7m`, smime-content.ts) replaced by the
 * entity it signs, while `budget` lasts (each unwrapping is one more parse of the mail: MAX_SMIME_LAYERS for the
 * whole mail bounds the work a hostile one can cause). Resolves to the parsed mail and the bytes it was parsed
 * from: the rebuilt mail (the same header fields, the signed entity as body) when one was unwrapped, else `source`.
 * Throws UnparseableMailError as parseMime does.
 */
async function parseMail(source: Buffer, budget: SmimeBudget): Promise<{ parsed: ParsedMail; source: Buffer }> {
  let parsed = await parseMime(source);
  let bytes = source;
  while (budget.layersLeft > 0) {
    const entity = await opaqueSignedEntity(parsed);
    if (!entity) break;
    budget.layersLeft -= 1;
    bytes = withEntityAsBody(bytes, entity);
    parsed = await parseMime(bytes);
  }
  return { parsed, source: bytes };
}

/** The `smime-type` parameter of a part's Content-Type (RFC 8551 §3.2.2), as mailparser read it. */
function smimeTypeOf(headers: ParsedMail['headers']): string | undefined {
  return (headers.get('content-type') as { params?: Record<string, string> } | undefined)?.params?.['smime-type'];
}

/**
 * The entity a mail signs when its whole body is S/MIME pkcs7-mime signed-data (RFC 8551 §3.5.2); undefined for any
 * other mail, an encrypted one (smime-type enveloped-data: unreadable, readAttachment), a damaged blob or signed
 * content that is not a MIME entity or text (smime-content.ts signedEntityOf).
 */
async function opaqueSignedEntity(parsed: ParsedMail): Promise<Buffer | undefined> {
  const contentType = parsed.headers.get('content-type') as { value?: string } | undefined;
  const [part, ...more] = parsed.attachments;
  if (!part || more.length || !isPkcs7Mime((contentType?.value ?? '').toLowerCase(), part.filename)) return undefined;
  if (isEncryptedSmime(smimeTypeOf(parsed.headers))) return undefined;
  return signedEntityOf(part.content);
}

/** What the text parts of a mail say (mail-parsing's content step). */
type MailContent = {
  subject: string;
  /** The thread's subject, when the mail says it: Outlook's Thread-Topic, or the quoted history's Subject line. */
  threadSubject?: string;
  /** Whether threadSubject is Outlook's Thread-Topic (the original subject) rather than read from the history. */
  threadTopic?: boolean;
  /** The subject digests our Message-IDs in In-Reply-To/References carry (ownSubjectDigestsOf): our replies'. */
  ownSubjects: string[];
  /**
   * The mail names no thread (no In-Reply-To, no References) and its body holds nothing, quoted history included:
   * whatever its subject starts with, the subject is all it says. "Re: <request>" so (typed so, or sent from a
   * mailto: link or a client that drops those fields) repeats no thread we can know: its subject is the request.
   */
  subjectOnly: boolean;
  text: string;
  forwards: ForwardedMail[];
  unreadable: string[];
  other: string[];
  /** Whether a body's text (this one's or a forwarded mail's) was cut to MAX_BODY_TEXT_CHARS. */
  cut: boolean;
};

/** The content gathered from a mail's attachments. */
type AttachmentContent = {
  /** Whether a forwarded mail's text was cut (boundedBodyText). */
  cut: boolean;
  forwards: ForwardedMail[];
  /** Text files attached (text/plain): read, and passed on after the author's text. */
  texts: { name: string; text: string }[];
  unreadable: string[];
  other: string[];
  tnefTexts: string[];
  /** What calendar invitations say (calendarText): the request of a mail that is an invitation and nothing else. */
  invitations: string[];
  /** Pictures shown inside HTML (multipart/related): a logo beside text, or all there is (a pasted screenshot). */
  inlinePictures: string[];
};

/**
 * Outlook's TNEF (`winmail.dat`, [MS-OXTNEF]) named `name`, read into `into`: its message text (tnefContent: text,
 * or HTML as text) joins `tnefTexts`, and the files inside it count like the mail's own attachments (readAttachment):
 * an embedded Outlook item, a `.msg` file or a picture is unreadable, a picture shown inside its HTML body is an
 * inline picture, any other file is named (once, when the mail's MIME parts already name it). The winmail.dat itself is unreadable when its body could not be read
 * (damaged) or when it holds neither text nor a file: then the mail may have nothing readable (M09a). A body that is
 * only empty (RTF with no text) beside a file is not: like MIME mail with an empty text part and a PDF, the subject is
 * the request and the file is named (s37 T04).
 */
function readTnef(content: Buffer, name: string, into: AttachmentContent): void {
  const tnef = tnefContent(content);
  const body = tnef?.text ?? (tnef?.html ? htmlToText(tnef.html) : undefined);
  const hasBody = !!body?.trim();
  if (hasBody) into.tnefTexts.push(body!);
  // A file the mail also carries as a MIME part of its own (a gateway that sends both) is named once.
  const named = new Set([...into.other, ...into.unreadable, ...into.inlinePictures]);
  for (const file of tnef?.attachments ?? []) if (!named.has(file.name)) tnefFileList(file, into).push(file.name);
  if (!hasBody && (!tnef || tnef.bodyUnreadable || !tnef.attachments.length)) into.unreadable.push(name);
}

/**
 * Where a file inside winmail.dat is named (readTnef): a picture shown inside the HTML body among the inline
 * pictures, an embedded Outlook item, a `.msg` or another picture among the unreadable, anything else among the rest.
 */
function tnefFileList(file: TnefAttachment, into: AttachmentContent): string[] {
  const picture = isPicture('', file.name);
  if (picture && file.inline) return into.inlinePictures;
  return file.message || picture || /\.msg$/i.test(file.name) ? into.unreadable : into.other;
}

/** A mail attached as a forward: message/rfc822, message/global (RFC 6532 §3.5: UTF-8 in its header), or a `.eml`. */
const isForwardedMail = (type: string, name: string, content: Buffer): boolean =>
  type === 'message/rfc822' || type === 'message/global' || isSavedMail(type, name, content);

/**
 * A mail saved as a file (`.eml`) and attached under a type its client guessed from the name (`text/plain`; an
 * `application/octet-stream` one mailparser already types by its name): forwarded like message/rfc822 when its
 * content starts as an RFC 5322 message does: a header block whose first line is a header field, holding a `From:`
 * field with an address (RFC 5322 §3.6.2) and one more of `Date:`, `Subject:`, `Message-ID:`, `MIME-Version:`,
 * `Received:`, `Return-Path:`. A text file that only has the name ("Date: 20.11.2026 / Сумма: 15000") is read as text.
 */
function isSavedMail(type: string, name: string, content: Buffer): boolean {
  if (type.startsWith('message/') || !/\.eml$/i.test(name)) return false;
  const head = content.subarray(0, 4000).toString('latin1').split(/\r?\n/, 40);
  const fields = head.findIndex((l) => !l.trim());
  const block = fields < 0 ? head : head.slice(0, fields);
  return (
    block.length > 1 &&
    /^[!-9;-~]+:/.test(block[0]!) &&
    block.some((l) => /^from:.*(@|<)/i.test(l)) &&
    block.some((l) => /^(subject|date|received|return-path|message-id|mime-version):/i.test(l))
  );
}

/** The signature a Compound File Binary starts with ([MS-CFB] §2.2, the header's `Header Signature`). */
const CFB_SIGNATURE = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);

/**
 * An Outlook item file (`.msg`, [MS-OXMSG]): named so (application/vnd.ms-outlook, x-msg, or a `.msg` name) and a
 * Compound File Binary ([MS-OXMSG] §2.1: a .msg is a CFB storage). A text log that happens to be called
 * `export-queue.msg` is read as the text file it is.
 */
const isOutlookMsg = (type: string, name: string, content: Buffer): boolean =>
  (type === 'application/vnd.ms-outlook' || type === 'application/x-msg' || /\.msg$/i.test(name)) &&
  content.subarray(0, CFB_SIGNATURE.length).equals(CFB_SIGNATURE);

/**
 * One attachment into `into`: a forward as attachment (message/rfc822, RFC 2046 §5.2.1, up to MAX_FORWARD_DEPTH):
 * its author, subject and text join the forwards; an Outlook `.msg` file: unreadable; TNEF: its text, else
 * unreadable; a picture that is not an inline logo of HTML mail: unreadable; any other named attachment: listed by
 * name only.
 */
async function readAttachment(
  a: ParsedMail['attachments'][number],
  depth: number,
  into: AttachmentContent,
  isOwnAddress: (address: string) => boolean,
  ownNames: readonly string[],
  smime: SmimeBudget,
) {
  const name = (a.filename ?? 'unnamed').replace(/[\r\n]/g, ' ').slice(0, 200);
  const type = a.contentType.toLowerCase();
  if (isForwardedMail(type, name, a.content) && depth < MAX_FORWARD_DEPTH) {
    const inner = await parseMail(a.content, smime);
    const read = await readContent(inner.parsed, inner.source, depth + 1, isOwnAddress, ownNames, smime);
    const from = inner.parsed.from;
    into.forwards.push({ from: addressText(from), subject: read.subject, text: read.text }, ...read.forwards);
    into.cut ||= read.cut;
    // The forwarded mail's own attachments are named like ours (not passed on); a picture there is not all we got.
    into.other.push(...read.other, ...read.unreadable);
  } else if (isOutlookMsg(type, name, a.content)) {
    // An Outlook item attached as a file: unreadable like a winmail.dat whose text cannot be read, so a mail with
    // nothing else gets the polite request for text, no secretary call (s34 U01). Not read: the one kept reader
    // (@kenjiuno/msgreader) allocates what a 20 KB hostile file declares, outside any heap limit (2 GB in a review).
    into.unreadable.push(name);
  } else if (await readContainer(a, type, name, into)) {
    // TNEF, a calendar invitation or encrypted S/MIME: read or marked unreadable (readContainer).
  } else if (SIGNATURE_TYPES.has(type)) {
    // The signature of a signed mail (RFC 8551 S/MIME, RFC 3156 OpenPGP/MIME) and the key a client attaches with it:
    // no attachment of the author's, so not named either.
  } else if (isPicture(type, name)) {
    (a.related ? into.inlinePictures : into.unreadable).push(name);
  } else if (isTextFile(a, type)) {
    // A request written in a .txt file and attached (the body empty or a line long): its text is read.
    const text = textAttachmentOf(a);
    if (text) into.texts.push({ name, text });
    else into.other.push(name);
  } else if (a.contentDisposition === 'attachment' || a.filename) {
    into.other.push(name);
  }
}

/**
 * An attachment that holds the mail's text in a format of its own, read into `into`: Outlook's TNEF (its text, else
 * named unreadable), a calendar invitation (calendarText; its text part, when there is one, says the same, so it
 * is used only when the mail has no other text: readContent) or S/MIME encrypted for our key (named unreadable).
 * Resolves to false for any other attachment.
 */
async function readContainer(
  a: ParsedMail['attachments'][number],
  type: string,
  name: string,
  into: AttachmentContent,
): Promise<boolean> {
  if (isPkcs7Mime(type, a.filename) && (await isEncryptedCms(smimeTypeOf(a.headers), a.content))) {
    // S/MIME encrypted for the recipient's key (RFC 8551 §3.3): nothing in it can be read. A signed blob we could
    // not open (damaged, a signed document, compressed data) is named like any attachment (readAttachment).
    into.unreadable.push(name);
    return true;
  }
  if (isTnef(type, name, a.content)) {
    readTnef(a.content, name, into);
    return true;
  }
  if (!isCalendar(type, name) || a.size > TEXT_ATTACHMENT_MAX_BYTES) return false;
  const invitation = await calendarText(textAttachmentOf(a) ?? '');
  if (invitation) into.invitations.push(invitation);
  return true;
}

/** A calendar invitation (RFC 5545 iCalendar: text/calendar, application/ics, or a `.ics` file). */
const isCalendar = (type: string, name: string): boolean =>
  type === 'text/calendar' || type === 'application/ics' || /\.ics$/i.test(name);

/**
 * What the mail's invitations say when nothing else is written and nothing forwarded (a meeting request sent to the
 * mailbox: the request is there); '' otherwise.
 */
const invitationOnly = (found: AttachmentContent): string =>
  found.forwards.length ? '' : found.invitations.join('\n\n');

/**
 * Outlook's TNEF part: application/ms-tnef or vnd.ms-tnef, the name `winmail.dat`, or content that starts with the
 * TNEF signature ([MS-OXTNEF] 2.1.3.1), whatever it is called and typed (a relay's application/octet-stream
 * `ATT00001.dat`, s37 T05).
 */
const isTnef = (type: string, name: string, content: Buffer): boolean =>
  type === 'application/ms-tnef' ||
  type === 'application/vnd.ms-tnef' ||
  /^winmail\.dat$/i.test(name) ||
  isTnefData(content);

/** A text file attached (text/plain with a name or as an attachment, at most TEXT_ATTACHMENT_MAX_BYTES). */
const isTextFile = (a: ParsedMail['attachments'][number], type: string): boolean =>
  type === 'text/plain' &&
  a.size <= TEXT_ATTACHMENT_MAX_BYTES &&
  (a.contentDisposition === 'attachment' || !!a.filename);

/** Parts that sign a mail rather than carry anything of the author's (with the public key sent along). */
const SIGNATURE_TYPES = new Set([
  'application/pkcs7-signature',
  'application/x-pkcs7-signature',
  'application/pgp-signature',
  'application/pgp-keys',
]);

/** A text/plain attachment larger than this (bytes) is only named: a log that size is cut from the request anyway. */
const TEXT_ATTACHMENT_MAX_BYTES = 200_000;

/** A text/plain attachment's text, in its declared charset (else UTF-8 when valid, else a Cyrillic guess). */
function textAttachmentOf(a: ParsedMail['attachments'][number]): string | undefined {
  const params = (a.headers.get('content-type') as { params?: Record<string, string> } | undefined)?.params;
  const charset = knownCharset(params?.['charset']);
  const text = charset
    ? iconv.decode(a.content, charset)
    : validUtf8(a.content)
      ? a.content.toString('utf8')
      : guessCyrillic(a.content);
  const visible = text.replace(/\r\n/g, '\n').trim();
  return /[\p{L}\p{N}]/u.test(visible) ? visible : undefined;
}

/**
 * A picture: an image/* type, or a picture file's name under another type (an iPhone's `IMG_4821.HEIC` sent as
 * application/octet-stream; HEIC/HEIF has no type most parsers know).
 */
function isPicture(type: string, name: string): boolean {
  return type.startsWith('image/') || /\.(png|jpe?g|gif|bmp|webp|tiff?|heic|heif)$/i.test(name);
}

/** The subject, decoded (RFC 2047 by mailparser, or raw 8-bit bytes in the body's charset), on one line. */
function subjectOf(parsed: ParsedMail, raw: Buffer, latin1: string): string {
  const charset = /charset="?([\w.:-]+)"?/i.exec(latin1.slice(0, 20_000))?.[1];
  let subject = decodeRawHeader(raw, 'subject', charset) ?? parsed.subject ?? '';
  if (garbled(subject)) subject = encodedWordsGuessed(latin1) ?? subject;
  return subject.replace(/[\r\n]+/g, ' ').trim();
}

/**
 * A header field's value with its RFC 2047 encoded words decoded (mailparser leaves the fields it does not know, such
 * as Outlook's Thread-Topic, as they came): B (base64) and Q (§4.2) words in a charset iconv-lite knows
 * (knownCharset); the white space between two words dropped (§6.2); a word in an unknown charset left as it is.
 */
function decodedWords(value: string): string {
  return value
    .replace(/(\?=)\s+(?==\?)/g, '$1')
    .replace(
      /=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bq])\?([^?\s]*)\?=/gi,
      (word, label: string, kind: string, data: string) => {
        const charset = knownCharset(label);
        if (!charset) return word;
        const bytes =
          kind.toLowerCase() === 'b'
            ? Buffer.from(data, 'base64')
            : Buffer.from(
                data
                  .replace(/_/g, ' ')
                  .replace(/=([0-9a-f]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
                'latin1',
              );
        return iconv.decode(bytes, charset);
      },
    )
    .trim();
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
  const word = /=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bq])\?([^?\s]*)\?=/gi;
  const words = [...value.matchAll(word)];
  if (!words.length) return undefined;
  // One label for all the words that names a table iconv-lite knows by another name ("x-mac-cyrillic"): read by it.
  const labels = new Set(words.map((m) => m[1]!.toLowerCase()));
  const named = labels.size === 1 ? knownCharset([...labels][0]) : undefined;
  // Whitespace between two encoded words is not part of the text (RFC 2047 §6.2).
  const joined = value.replace(/(\?=)\s+(?==\?)/g, '$1');
  const chunks: Buffer[] = [];
  let last = 0;
  for (const m of joined.matchAll(word)) {
    chunks.push(Buffer.from(joined.slice(last, m.index), 'latin1'));
    chunks.push(
      m[2]!.toLowerCase() === 'b'
        ? Buffer.from(m[3]!, 'base64')
        : Buffer.from(
            m[3]!
              .replace(/_/g, ' ')
              .replace(/=([0-9a-f]{2})/gi, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          ),
    );
    last = m.index + m[0].length;
  }
  chunks.push(Buffer.from(joined.slice(last), 'latin1'));
  const all = Buffer.concat(chunks);
  if (named && named !== [...labels][0]) return iconv.decode(all, named);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(all);
  } catch {
    return guessCyrillic(all);
  }
}

/**
 * The lines a client writes into the plain-text part in place of a picture shown inline in its HTML part: Gmail's
 * `[image: image.png]`, Outlook's `[cid:image001.png@01DB3C00.5A1B2C30]`, Outlook for Mac's `<image001.png>`. They are no text of the author's: a mail
 * that has only them says nothing but the picture.
 */
const PICTURE_PLACEHOLDER =
  /^[ \t]*(?:\[(?:image: [^\]\n]{0,200}|cid:[^\]\s]{1,200})\]|<[^<>\s/:]{1,200}\.(?:png|jpe?g|gif|bmp|webp|tiff?|heic)>)[ \t]*$/gim;
/** Placeholders removed, and U+FFFC (OBJECT REPLACEMENT CHARACTER), which Apple's clients leave where a picture was. */
const withoutPicturePlaceholders = (text: string) => text.replace(PICTURE_PLACEHOLDER, '').replace(/\uFFFC/g, '');

// An OpenPGP cleartext signature (RFC 4880 §7): the armor line, its Hash headers, a blank line, the dash-escaped
// text, then the signature block.
const CLEARSIGNED =
  /^-----BEGIN PGP SIGNED MESSAGE-----\n(?:[A-Za-z-]+: [^\n]*\n)*\n([\s\S]*?)\n-----BEGIN PGP SIGNATURE-----\n[\s\S]*?\n-----END PGP SIGNATURE-----[ \t]*$/m;

/**
 * `text` with an inline OpenPGP signature taken off: the text it signs, undone from its dash-escaping (RFC 4880
 * §7.1: "- " before every line that starts with '-'), in place of the armor and the signature block.
 */
function withoutClearsignFrame(text: string): string {
  if (!text.includes('-----BEGIN PGP SIGNED MESSAGE-----')) return text;
  return text.replace(CLEARSIGNED, (_m, signed: string) => signed.replace(/^- /gm, ''));
}

/**
 * Characters of a body's text the text steps read at most: ten times the longest request the secretary takes
 * (20,000, its OpenAPI `request` maxLength). Those steps (quotes, forwards, signatures) take about 300 ms and 50 MB
 * of heap per million characters, so a 4 MB text mail would exhaust a service's 128 MB old space and kill the
 * process (and with it every mail in flight).
 */
export const MAX_BODY_TEXT_CHARS = 200_000;

/** How far (characters) boundedBodyText looks for a line break to cut at. */
const LINE_SEARCH_CHARS = 2000;

/** The line that stands where headAndTail left text out. */
export const GAP_LINE = '\n\n[…]\n\n';

/**
 * `text` (UTF-16 code units) with its middle left out when it is longer than `keep`: its first three quarters of
 * `keep` and its last quarter, GAP_LINE between them, so the author's words are kept whether they stand above a long
 * block (top posting, a request above a pasted log) or below it (a reply written under the quote, a question under
 * the log). The cuts move to a line end within `lineSearch` characters when there is one (a quote line cut in two
 * would lose its '>' mark), else to a boundary between UTF-16 pairs: at most `keep` characters of `text` are kept,
 * plus GAP_LINE. `text` itself when it is no longer than `keep`.
 */
export function headAndTail(text: string, keep: number, lineSearch = LINE_SEARCH_CHARS): string {
  if (text.length <= keep) return text;
  let head = Math.floor((keep * 3) / 4);
  let tail = text.length - (keep - head);
  const lineEnd = text.lastIndexOf('\n', head);
  if (lineEnd > head - lineSearch) head = lineEnd;
  else if (/[\uD800-\uDBFF]/.test(text.charAt(head - 1))) head -= 1;
  const lineStart = text.indexOf('\n', tail);
  if (lineStart >= 0 && lineStart < tail + lineSearch) tail = lineStart + 1;
  else if (/[\uDC00-\uDFFF]/.test(text.charAt(tail))) tail += 1;
  return `${text.slice(0, head)}${GAP_LINE}${text.slice(tail)}`;
}

/** A line longer than this (characters) starts no quoted history: header fields and attributions are short. */
const MAX_HISTORY_HEAD_LINE_CHARS = 1000;
/** Lines historyStartOf tests per chunk, and the lines below a chunk it lets a head's test read. */
const HISTORY_SCAN_CHUNK_LINES = 4096;
const HISTORY_SCAN_LOOKAHEAD_LINES = 64;

/** Up to `count` lines of `text` from `offset` (a line start), split at `\n`. */
function linesFrom(text: string, offset: number, count: number): string[] {
  const lines: string[] = [];
  let at = offset;
  while (lines.length < count && at <= text.length) {
    const end = text.indexOf('\n', at);
    lines.push(text.slice(at, end < 0 ? text.length : end));
    if (end < 0) break;
    at = end + 1;
  }
  return lines;
}

/**
 * Where the quoted history of `text` (lines split at `\n`) starts: the offset (UTF-16 code units) of the first line
 * that begins the head of an unmarked quoted message (mail-text.ts unmarkedHistoryHeadAt: Outlook's separator and
 * header block, Outlook's header block alone, an attribution line), or -1 when there is none. One pass over the
 * lines, each tested once (lines longer than MAX_HISTORY_HEAD_LINE_CHARS skipped), stopping at the first head; the
 * lines are taken in chunks (HISTORY_SCAN_CHUNK_LINES, with HISTORY_SCAN_LOOKAHEAD_LINES below each for a header
 * block's test), so time is linear in `text` and memory does not grow with it: it may run on a whole 10 MB body.
 */
function historyStartOf(text: string): number {
  let offset = 0;
  for (;;) {
    const lines = linesFrom(text, offset, HISTORY_SCAN_CHUNK_LINES + HISTORY_SCAN_LOOKAHEAD_LINES);
    const tested = Math.min(lines.length, HISTORY_SCAN_CHUNK_LINES);
    for (let i = 0; i < tested; i += 1) {
      if (lines[i]!.length <= MAX_HISTORY_HEAD_LINE_CHARS && unmarkedHistoryHeadAt(lines, i)) return offset;
      offset += lines[i]!.length + 1;
    }
    if (lines.length <= HISTORY_SCAN_CHUNK_LINES) return -1;
  }
}

/**
 * A body's text (CRLF line ends made LF) cut to MAX_BODY_TEXT_CHARS (plus at most two GAP_LINEs) for the text steps;
 * `cut` when anything was left out. Never splits a surrogate pair. The cut knows where the quoted history starts
 * (historyStartOf, found on the whole text): the author's part above it and the history are cut apart by headAndTail
 * (each keeps its first three quarters and its last quarter, at line ends, `[…]` between), the history keeping what
 * the author's part leaves but at least a quarter of the room. So a question written under a long pasted log and
 * above a long quoted thread stays with the author's text, and the history's head (Outlook's header block) stays
 * whole, so the history is still recognised and removed (s37 L06: one cut of the whole text fell inside the header
 * block and passed a colleague's quoted words on as the author's). With no history head (or one on the first line:
 * a bottom-posted reply, a forward) the whole text is cut so.
 */
export function boundedBodyText(text: string): { text: string; cut: boolean } {
  if (text.length <= MAX_BODY_TEXT_CHARS) return { text, cut: false };
  const lf = text.replace(/\r\n/g, '\n');
  if (lf.length <= MAX_BODY_TEXT_CHARS) return { text: lf, cut: false };
  const start = historyStartOf(lf);
  if (start <= 0) return { text: headAndTail(lf, MAX_BODY_TEXT_CHARS), cut: true };
  const own = lf.slice(0, start);
  const history = lf.slice(start);
  const historyKeep = Math.min(
    history.length,
    Math.max(Math.floor(MAX_BODY_TEXT_CHARS / 4), MAX_BODY_TEXT_CHARS - own.length),
  );
  const ownKeep = MAX_BODY_TEXT_CHARS - historyKeep;
  return { text: `${headAndTail(own, ownKeep)}${headAndTail(history, historyKeep)}`, cut: true };
}

/** A Message-ID we minted, of any form (`<workemon.{32 hex}@…>`, `<workemon.{32 hex}.{digests}@…>`). */
const OUR_MESSAGE_ID = /^<workemon\.[0-9a-f]{32}[.@]/i;

/** Whether the mail's In-Reply-To is a Message-ID we minted (OUR_MESSAGE_ID): it answers one of ours. */
const answersOurs = (parsed: ParsedMail): boolean => listOf(parsed.inReplyTo).some((id) => OUR_MESSAGE_ID.test(id));

/** The words of a text as repeatsText compares them: runs of letters and digits, lower case, `ё` as `е`. */
const wordsOf = (text: string): string[] =>
  text
    .toLowerCase()
    .replace(/ё/g, 'е')
    .match(/[\p{L}\p{N}]+/gu) ?? [];

/** How many of a TNEF body's distinct words the text part must hold for the TNEF body to be a copy of it. */
const REPEATED_WORDS_SHARE = 0.8;

/**
 * Whether `tnefBody` (a winmail.dat's message text) says nothing the mail's own text part (`ownText`) does not: at
 * least REPEATED_WORDS_SHARE of its distinct words (wordsOf) are words of `ownText`. Exchange writes the text part
 * from the same message whose properties, the body among them, it puts into winmail.dat, so the two say the same in
 * different renderings (s37 T01b, T06): RTF or HTML made text, a signature or a gateway's disclaimer in one of them
 * only, links written out. A text part with no words (empty, only picture
 * placeholders) repeats nothing; a TNEF body that says more than a few words the text part lacks (a stub text part,
 * a different message) is read too. Linear in both texts.
 */
function repeatsText(tnefBody: string, ownText: string): boolean {
  const tnefWords = new Set(wordsOf(tnefBody));
  if (!tnefWords.size) return true;
  const ownWords = new Set(wordsOf(ownText));
  if (!ownWords.size) return false;
  let held = 0;
  for (const w of tnefWords) if (ownWords.has(w)) held += 1;
  return held >= tnefWords.size * REPEATED_WORDS_SHARE;
}

/**
 * MailContent.subjectOnly: the mail answers none (`reply` false: no In-Reply-To, no References), its body (`plain`)
 * shows nothing, so nothing of the author's (`text`) or quoted, and nothing is forwarded or attached.
 */
const isSubjectOnly = (reply: boolean, text: string, plain: string, found: AttachmentContent): boolean =>
  !reply && !text && !visibleOrEmpty(plain) && !found.forwards.length && !found.other.length;

/** The text parts of a mail (and, recursively, of mail attached as message/rfc822) reduced to what they say. */
async function readContent(
  parsed: ParsedMail,
  raw: Buffer,
  depth: number,
  isOwnAddress: (address: string) => boolean,
  ownNames: readonly string[],
  smime: SmimeBudget,
): Promise<MailContent> {
  const latin1 = raw.toString('latin1');
  // Who wrote a quoted message, as its head names them: us by our address, or by our display name alone.
  const isOwnAuthor = (from: string) => addressesIn(from).some(isOwnAddress) || namesUs(from, ownNames);
  const subject = subjectOf(parsed, raw, latin1);
  const body = bodyTextOf(parsed, latin1);
  const bounded = boundedBodyText(body.text);
  // A mail that answers none (no In-Reply-To, no References) and carries a header block forwards it (mail-text.ts).
  const reply = !!parsed.inReplyTo || listOf(parsed.references).length > 0;
  // A run of 20 or more spaces or tabs (log alignment, or a hostile mail) becomes one space: it means nothing to
  // the reader, and email-forward-parser's patterns take time quadratic in such a run (30,000 spaces: 2 s).
  const plainText = withoutClearsignFrame(
    withoutPicturePlaceholders(bounded.text.replace(/\r\n/g, '\n').replace(/[ \t]{20,}/g, ' ')),
  );
  // Our own answer quoted without '>' marks (Outlook's header block, an unmarked attribution), known by the digest
  // our Message-ID carries: removed, so the author's text below or inside it is read (mail-own-text.ts). Not in a
  // forward (its subject says so): our answer forwarded by a colleague is its content, passed on as a forward.
  const digests = isForwardSubject(subject)
    ? []
    : ownTextDigestsOf([...listOf(parsed.inReplyTo), ...listOf(parsed.references)]);
  const bodyText = withoutOwnQuotedText(plainText, { digests, isOwnAddress, ownNames });
  const split = splitForwards(bodyText, subject, 0, { reply, isOwnAddress, isOwnAuthor });
  const found: AttachmentContent = {
    cut: false,
    forwards: split.forwards.map((f) => ({ ...f, text: forwardedText(f.text, isOwnAuthor, isOwnAddress) })),
    texts: [],
    unreadable: [],
    other: [],
    tnefTexts: [],
    invitations: [],
    inlinePictures: [],
  };
  for (const a of parsed.attachments) await readAttachment(a, depth, found, isOwnAddress, ownNames, smime);
  // A TNEF body is bounded like the mail's own (boundedBodyText): it goes through the same text steps. Exchange
  // sends the body twice, as the text part and inside winmail.dat: a TNEF body the text part already says is
  // dropped (repeatsText), so the request says it once (s37 T01b, T06).
  const tnef = found.tnefTexts
    .map((t) => boundedBodyText(t.replace(/\r\n/g, '\n')))
    .filter((t) => !repeatsText(t.text, plainText));
  const own = [split.text, ...tnef.map((t) => t.text)].filter((t) => t.trim()).join('\n\n');
  // The author's own '>' lines are told from quotes of the answered message by whether there is one (mail-text.ts).
  // A mail attached as a forward (depth > 0) keeps the history it quotes: the request may be there (forwardedText).
  const written =
    depth > 0
      ? forwardedText(own, isOwnAuthor, isOwnAddress)
      : extractNewText(own, {
          reply: reply || isReplySubject(subject),
          isOwnAddress,
          // It answers one of ours: its In-Reply-To is a Message-ID we minted (smtp-mailer.ts replyMessageId, also
          // the older form without digests).
          answersOurs: answersOurs(parsed),
        });
  const text = [written || invitationOnly(found), ...found.texts.map((t) => `[Вложение: ${t.name}]\n${t.text}`)]
    .filter(Boolean)
    .join('\n\n');
  // A picture inside HTML with no text around it (Outlook's pasted screenshot) is all the mail says: unreadable.
  const pictureOnly = !text && !found.forwards.some((f) => f.text) && found.inlinePictures.length > 0;
  const topicField = parsed.headers.get('thread-topic');
  const topic = typeof topicField === 'string' ? decodedWords(topicField) : undefined;
  return {
    subject,
    subjectOnly: isSubjectOnly(reply, text, plainText, found),
    ...(reply ? { threadSubject: topic ?? quotedSubjectOf(plainText), threadTopic: topic !== undefined } : {}),
    ownSubjects: ownSubjectDigestsOf([...listOf(parsed.inReplyTo), ...listOf(parsed.references)]),
    text,
    forwards: found.forwards,
    unreadable: pictureOnly ? [...found.unreadable, ...found.inlinePictures] : found.unreadable,
    other: found.other,
    cut: bounded.cut || found.cut || tnef.some((t) => t.cut),
  };
}

/**
 * Whether the subject says something new (InboundMail.subjectIsNew): not empty, and not a `Re:`/`Fwd:` of the
 * thread's subject (subjectRepeatsThread). When the mail answers one of ours, the thread's subject is our reply's,
 * whose digest our Message-ID carries (ownSubjects, smtp-mailer.ts replyMessageId): compared by digest
 * (subjectDigestsOf: tags, prefixes, case, spaces and marks aside; the first 120 letters and digits), for every
 * client (Gmail, Thunderbird, Yandex, Mail.ru and Apple send no Thread-Topic and quote no Subject line), so a request
 * written in an edited subject ("Re: и за сентябрь тоже, пожалуйста") is read (s34 S01, S02). Otherwise Outlook's
 * Thread-Topic or the quoted history's Subject line; with none of them known, a `Re:` subject repeats the thread —
 * unless the mail names no thread at all and its body is empty (subjectOnly): "Re: Нужна выгрузка…" alone is the request.
 */
function subjectSaysMore(content: MailContent): boolean {
  if (!bareSubject(content.subject)) return false;
  if (content.subjectOnly) return true;
  // Our digest decides alone when there is one: stacked or trailing list tags ("[support][срочно] Re: …",
  // "Re: … [#4521]") hide the `Re:` from subjectRepeatsThread but not from the digest (subjectCore).
  if (content.ownSubjects.length > 0)
    return !subjectDigestsOf(content.subject).some((d) => content.ownSubjects.includes(d));
  return !subjectRepeatsThread(content.subject, content.threadSubject, content.threadTopic ?? true);
}

/**
 * Parse step: raw RFC 5322 bytes → what the mail says and who sent it. The text is untrusted and passed on as
 * data only. Throws UnparseableMailError for mail mailparser cannot read (poison mail).
 */
export async function parseInboundMail(
  source: Buffer,
  options: { ownAddresses: readonly string[]; truncated?: boolean },
): Promise<InboundMail> {
  const smime: SmimeBudget = { layersLeft: MAX_SMIME_LAYERS };
  const { parsed, source: read } = await parseMail(source, smime);
  const raw = read.toString('latin1');
  const from = firstAddress(parsed.from);
  const own = options.ownAddresses.map(mailboxOf);
  // A Reply-To naming one of our own addresses would aim the answer at this mailbox: the answer goes to From.
  const replyTo = [firstAddress(parsed.replyTo)].find((a) => a !== undefined && !own.includes(mailboxOf(a)));
  const content = await readContent(
    parsed,
    read,
    0,
    (address) => own.includes(mailboxOf(address)),
    options.ownAddresses.flatMap((a) => displayNameOf(a) ?? []),
    smime,
  );

  const messageId = msgIdOf(parsed.messageId);
  const references = listOf(parsed.references);
  const inReplyTo = listOf(parsed.inReplyTo)[0];
  return {
    messageId,
    from,
    replyTo,
    subject: content.subject,
    subjectIsNew: subjectSaysMore(content),
    text: content.text,
    forwards: content.forwards.filter((f) => f.text || f.subject),
    unreadableAttachments: content.unreadable,
    attachments: content.other,
    truncated: !!options.truncated || content.cut,
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
