import { simpleParser, type AddressObject, type HeaderValue, type ParsedMail } from 'mailparser';
import iconv from 'iconv-lite';
import { convert } from 'html-to-text';

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
  from?: string;
  /** Where an answer goes: Reply-To, else From. */
  replyTo?: string;
  subject: string;
  /** The request as the secretary sees it: quoted history and signature removed, attachments named, capped. */
  text: string;
  /** The References chain plus the Message-ID, for the reply's References header. */
  references: string[];
  /** The conversation's root Message-ID (first of References, else In-Reply-To, else our own Message-ID). */
  threadRoot?: string;
  attachments: string[];
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

/**
 * The loop rules (docs/architecture.md "No loops", RFC 3834 §2 and §5): never answer mail a machine sent.
 * Returns the first reason that applies.
 */
export function classifyAutomatic(
  parsed: ParsedMail,
  raw: string,
  ownAddresses: readonly string[],
  from: string | undefined,
): SkipReason | undefined {
  const h = parsed.headers;
  // RFC 3834 §5: only the keyword `no` (parameters may follow a `;`) marks mail a person sent.
  const autoSubmitted = headerText(h.get('auto-submitted'))?.trim().toLowerCase();
  if (autoSubmitted && autoSubmitted.split(';')[0]!.trim() !== 'no') return 'auto_submitted';
  // Vendor spellings of "I am an autoresponder" (Exchange, Yandex and older autoresponders).
  if (h.has('x-autoreply') || h.has('x-autorespond') || h.has('x-auto-response-suppress')) {
    const suppress = headerText(h.get('x-auto-response-suppress'))?.toLowerCase() ?? 'all';
    if (h.has('x-autoreply') || h.has('x-autorespond') || /all|autoreply|oof/.test(suppress)) return 'auto_submitted';
  }
  // mailparser folds List-* headers into one `list` object and joins repeated headers; the raw header block
  // is the plain truth.
  const head = raw.slice(0, Math.max(0, raw.search(/\r?\n\r?\n/))).replace(/\r?\n[ \t]+/g, ' ');
  if (/^precedence:[ \t]*(bulk|list|junk)[ \t]*(;.*)?$/im.test(head)) return 'precedence';
  if (/^list-(id|unsubscribe|post):/im.test(head)) return 'mailing_list';
  const contentType = headerText(h.get('content-type'))?.toLowerCase() ?? '';
  if (/multipart\/report|message\/delivery-status|message\/disposition-notification/.test(contentType))
    return 'delivery_report';
  // Return-Path is added by the delivering server; "<>" marks a bounce or another automatic message.
  const returnPath = /^return-path:[ \t]*(.*)$/im.exec(head)?.[1];
  if (returnPath !== undefined && /^<\s*>$/.test(returnPath.trim())) return 'null_sender';
  if (!from) return 'no_sender';
  const local = from.split('@')[0] ?? '';
  if (ROBOT_LOCAL_PART.test(local)) return 'robot_sender';
  if (ownAddresses.some((a) => mailboxOf(a) === mailboxOf(from))) return 'own_address';
  return undefined;
}

// ---- body text -------------------------------------------------------------------------------------------------

/** Cyrillic single-byte text decoded with the wrong table comes out mostly upper case; Russian prose is not. */
function guessCyrillic(bytes: Buffer): string {
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
function rawTextParts(raw: string, depth = 0): Array<{ type: 'plain' | 'html'; bytes: Buffer }> {
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
  if (type === 'text/plain') return [{ type: 'plain', bytes: decodeTransfer(body, encoding) }];
  if (type === 'text/html') return [{ type: 'html', bytes: decodeTransfer(body, encoding) }];
  return [];
}

function htmlToText(html: string): string {
  return convert(html, {
    wordwrap: false,
    selectors: [
      // Quoted history in HTML mail lives in these containers (generic, Gmail, Yandex, Outlook).
      { selector: 'blockquote', format: 'skip' },
      { selector: 'div.gmail_quote', format: 'skip' },
      { selector: 'div.yandex_quote', format: 'skip' },
      { selector: 'div#divRplyFwdMsg', format: 'skip' },
      { selector: 'a', options: { ignoreHref: true } },
      { selector: 'img', format: 'skip' },
    ],
  });
}

// Lines where quoted history starts: "On … wrote:", "… пишет:", Outlook's separators, forwarded blocks.
const HISTORY_START = [
  /^On .{1,200} wrote:\s*$/i,
  /^.{0,200}(пишет|написал\(а\)|написал|написала):\s*$/i,
  /^-{2,}\s*(Original Message|Исходное сообщение|Пересылаемое сообщение|Forwarded message)\s*-{2,}/i,
  /^_{10,}\s*$/,
  /^(From|От|Отправлено|Sent):\s.+/i,
];
// Signature markers: the RFC 3676 "-- " delimiter, phone footers, and closing formulas near the end.
const SIGNATURE_START = [/^--\s*$/, /^(Sent from my|Отправлено с|Отправлено из)\b/i];
const CLOSING = /^(с уважением|с наилучшими пожеланиями|best regards|kind regards|regards|спасибо,?\s*$|thanks,?\s*$)/i;

/** Removes quoted history and the signature: the secretary should see what this mail adds, not the thread. */
export function stripHistoryAndSignature(text: string): string {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const kept: string[] = [];
  for (const line of lines) {
    const trimmed = line.trim();
    if (HISTORY_START.some((r) => r.test(trimmed)) || SIGNATURE_START.some((r) => r.test(line))) break;
    if (trimmed.startsWith('>')) continue;
    kept.push(line);
  }
  // A closing formula in the last few lines starts the signature.
  const nonEmpty = kept.map((l, i) => [l.trim(), i] as const).filter(([l]) => l);
  for (const [line, index] of nonEmpty.slice(-6)) {
    if (CLOSING.test(line) && nonEmpty.findIndex(([, i]) => i === index) > 0) {
      kept.length = index;
      break;
    }
  }
  return kept
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function capText(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  return `${text.slice(0, maxChars)}\n[…message cut at ${maxChars} characters]`;
}

/** Parses a raw mail into what the handler needs; the text is untrusted and passed on as data only. */
export async function parseInboundMail(
  source: Buffer,
  options: { ownAddresses: readonly string[]; maxRequestChars: number; truncated?: boolean },
): Promise<InboundMail> {
  const parsed = await simpleParser(source, { skipImageLinks: true, skipTextToHtml: true });
  const raw = source.toString('latin1');
  const from = firstAddress(parsed.from);
  const replyTo = firstAddress(parsed.replyTo) ?? from;

  let plain = parsed.text ?? '';
  let html = typeof parsed.html === 'string' ? parsed.html : '';
  if (plain.includes('\uFFFD') || html.includes('\uFFFD')) {
    const parts = rawTextParts(raw);
    const p = parts.find((x) => x.type === 'plain');
    const h = parts.find((x) => x.type === 'html');
    if (p && plain.includes('\uFFFD')) plain = guessCyrillic(p.bytes);
    if (h && html.includes('\uFFFD')) html = guessCyrillic(h.bytes);
  }
  // A plain part beats HTML; mailparser's own HTML→text keeps quotes, ours skips them.
  const hasPlainPart = /content-type:\s*text\/plain/i.test(raw) || !/content-type:/i.test(raw);
  const bodyText = hasPlainPart && plain.trim() ? plain : html ? htmlToText(html) : plain;

  const attachments = parsed.attachments
    .filter((a) => a.contentDisposition === 'attachment' || a.filename)
    .map((a) => (a.filename ?? 'unnamed').replace(/[\r\n]/g, ' ').slice(0, 200));
  let text = stripHistoryAndSignature(bodyText);
  if (attachments.length) text += `\n\n[Вложения (не переданы): ${attachments.join(', ')}]`;
  text = capText(text.trim(), options.maxRequestChars);
  if (options.truncated) text += '\n[…the mail was larger than the limit and was cut]';

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
    subject: (parsed.subject ?? '').replace(/[\r\n]+/g, ' ').trim(),
    text: text.trim(),
    references: messageId ? [...references.filter((r) => r !== messageId), messageId] : references,
    threadRoot: references[0] ?? inReplyTo ?? messageId,
    attachments,
    skipReason: classifyAutomatic(parsed, raw, options.ownAddresses, from),
  };
}

/** "Re: " once, however many the subject already carries in whichever language. */
export function replySubject(subject: string): string {
  const bare = subject.trim();
  if (/^(re|ответ|на)\s*(\[\d+\])?\s*:/i.test(bare)) return bare;
  return `Re: ${bare || '(без темы)'}`;
}
