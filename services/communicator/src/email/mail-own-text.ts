import { createHash, type Hash } from 'node:crypto';
import { addressesIn, bareSubject, unmarkedHistoryHeadAt } from './mail-text.js';

/**
 * Our own answers quoted without '>' marks. Outlook (desktop, web, mobile; Russian and English) and some other
 * clients quote the answered mail as plain lines under a header block ("От: … Отправлено: …") or an attribution
 * line, and the author may write below it or inside it. The communicator cannot tell those lines from the author's
 * by their form, but it knows what it sent: each mail it sends carries, in its Message-ID, a digest of its text
 * (`<workemon.{32 hex of the key}.{16 hex of the text's digest}.{8 hex of the subject's}@domain>`, smtp-mailer.ts
 * replyMessageId), and a
 * reply names that Message-ID in In-Reply-To or References (RFC 5322 §3.6.4). The lines of an unmarked history
 * block whose digest is that digest are our text, and only they are removed; what the author wrote above, below
 * or inside the history stays. Stateless: nothing is stored, every replica can read any reply.
 */

/** Hex digits of the text digest in our Message-IDs (64 bits: a chance match is out of the question). */
export const OWN_TEXT_DIGEST_HEX = 16;

/**
 * Our Message-ID with a text digest: `<workemon.{32 hex}.{16 hex}@domain>` (the digest is group 1). Message-IDs of
 * the older form `<workemon.{32 hex}@domain>` carry none.
 */
const OWN_MESSAGE_ID = /^<workemon\.[0-9a-f]{32}\.([0-9a-f]{16})(?:\.([0-9a-f]{8}))?@[^<>\s@]+>$/i;

/** Hex digits of the subject digest in our Message-IDs (32 bits: one thread's subject against another's). */
export const OWN_SUBJECT_DIGEST_HEX = 8;

/**
 * Characters of a subject's core the digest covers: Outlook cuts a reply's subject to 255 characters, prefix and
 * tags included ("RE: ", "RE : ", "Odp: ", "[support] "), so the digest is taken over the first 200 characters of
 * the core on both sides, leaving 55 for them; an edit past them is not read from the subject (the body is read as
 * always).
 */
const SUBJECT_CORE_CHARS = 200;

/**
 * A subject's core (subjectCore, its first SUBJECT_CORE_CHARS characters) as its digest sees it: lower case, the marks
 * a client writing a reply in KOI8-R or windows-1251 replaces (The Bat!'s best fit: «» → `"`, — → `-`, … → `...`)
 * made one (every dash `-`, every quotation mark left out, a run of dots left out), then digestForm (no white space,
 * no other mark outside ASCII). Other ASCII marks and where a dash stands count (`C#` and `C++`, `+` and `-`,
 * `1-15.11` and `11-5.11`, `10.2` and `1.02` differ).
 */
function subjectDigestForm(subject: string): string {
  const core = [...subjectCore(subject)].slice(0, SUBJECT_CORE_CHARS).join('');
  const plain = core.toLowerCase().replace(DASHES, '-').replace(QUOTES, '').replace(/…/g, '...');
  return digestForm(plain).replace(/\.{2,}/g, '');
}

/** Dashes (‐ ‑ ‒ – — ― −): one `-`, as a single-byte charset's best fit writes them; where they stand counts. */
const DASHES = /[\u2010-\u2015\u2212]/g;
/** Quotation marks, typographic and ASCII (« » „ “ ” ‟ ‘ ’ ‚ ‛ " ' `): left out, a best fit turns one into another. */
const QUOTES = /[«»„“”‟‘’‚‛"'`]/g;

const subjectHex = (form: string) =>
  createHash('sha256').update(form, 'utf8').digest('hex').slice(0, OWN_SUBJECT_DIGEST_HEX);

/**
 * The digest of a subject we send (`Re: Выгрузка авторизаций`): the first OWN_SUBJECT_DIGEST_HEX hex digits of
 * SHA-256 over its digest form (subjectDigestForm: no `Re:`/`Fwd:` prefixes, no `[tags]` at its start or end, its
 * first 200 characters, lower case, no white space, none of the marks a charset conversion changes). A reply whose
 * subject has this digest (subjectDigestsOf) repeats the thread's subject.
 */
export function ownSubjectDigest(subject: string): string {
  return subjectHex(subjectDigestForm(subject));
}

/**
 * The digests a reply's subject may match among our Message-IDs' (ownSubjectDigestsOf): ownSubjectDigest's, and the
 * earlier form's (SHA-256 over the whole core in digestForm, marks kept), which Message-IDs sent before 2026-12-01
 * carry.
 */
export function subjectDigestsOf(subject: string): string[] {
  return [ownSubjectDigest(subject), subjectHex(digestForm(subjectCore(subject).toLowerCase()))];
}

/** A `[tag]` at the start or the end of a subject: a list's (`[support]`), a ticket system's (`[#4521]`), a gateway's. */
const LEADING_TAG = /^\[[^\]]{1,64}\]\s*/;
const TRAILING_TAG = /\s*\[[^\]]{1,64}\]$/;

/**
 * A subject without its reply and forward prefixes (bareSubject) and without every `[tag]` at its start or end,
 * wherever a list or a ticket system put it ("[#4521] Re: Запрос", "Re: [#4521] Запрос", "Re: Запрос [#4521]",
 * "[support][срочно] Re: Запрос" are one).
 */
function subjectCore(subject: string): string {
  const untag = (t: string) => bareSubject(t.replace(LEADING_TAG, '').replace(TRAILING_TAG, ''));
  let s = bareSubject(subject);
  for (let next = untag(s); next !== s; next = untag(s)) s = next;
  return s;
}

/**
 * The subject digests (ownSubjectDigest) our Message-IDs among `messageIds` (In-Reply-To and References) carry, lower
 * case, each once; [] when none is ours or none carries one (Message-IDs sent before the digest was added).
 */
export function ownSubjectDigestsOf(messageIds: readonly string[]): string[] {
  const digests = new Set<string>();
  for (const id of messageIds) {
    const digest = OWN_MESSAGE_ID.exec(id.trim())?.[2];
    if (digest) digests.add(digest.toLowerCase());
  }
  return [...digests];
}

/**
 * Every white space (`\s`: tabs, CR, LF, NBSP, …; `\p{Z}`: all Unicode space and separator characters) and every
 * invisible format character (`\p{Cf}`: zero-width space and joiners, soft hyphen, byte order mark).
 */
const NOT_TEXT = /[\s\p{Z}\p{Cf}]+/gu;

/**
 * A link as a client rewrites it in the text it quotes: Outlook's plain text gives `https://x` as
 * `https://x <https://x>` or `<https://x>`, an address as `a@b <mailto:a@b>`; a trailing sentence mark is not part of
 * the link (`https://x.` is the link `https://x` and a full stop).
 */
const LINK = /<?(?:(?:https?|ftp):\/\/|mailto:)[^\s<>]*[^\s<>.,;:!?)\]}'"»]>?/giu;

/**
 * What a legacy single-byte charset cannot hold becomes `?`: Outlook may send a plain-text reply in windows-1251 or
 * KOI8-R, so an emoji we sent is quoted back as `?` or `??`, and in KOI8-R also our guillemets, dashes, typographic
 * quotes, `…` and `№`. Every `?`, every punctuation mark and symbol outside ASCII (`\p{P}`, `\p{S}`: emoji, skin-tone
 * modifiers, arrows, typographic marks) and the emoji's variation selectors and keycap mark are left out on both
 * sides; letters, digits and ASCII punctuation other than `?` count.
 */
const UNENCODABLE = /\?|(?!\p{ASCII})[\p{P}\p{S}]|\p{Extended_Pictographic}|\uFE0E|\uFE0F|\u20E3/gu;

/**
 * A text as a digest sees it: Unicode NFC, with no white space, no invisible characters, no links, no `?` and no
 * punctuation or symbols outside ASCII at all. What mail clients do to a plain-text mail they quote changes only
 * those: re-wrapping long lines (Outlook wraps at 76 characters), CRLF line ends, NBSP and other Unicode spaces, a
 * quoted HTML copy's paragraph spacing (htmlToText), format=flowed's trailing and stuffed spaces (RFC 3676 §4.2,
 * §4.4), Outlook's
 * `https://x <https://x>` and `a@b <mailto:a@b>` (LINK), an emoji or typographic mark sent back as `?` in a
 * single-byte charset (UNENCODABLE). Letters, digits and ASCII punctuation other than `?` count.
 */
export function digestForm(text: string): string {
  return text.normalize('NFC').replace(LINK, '').replace(UNENCODABLE, '').replace(NOT_TEXT, '');
}

/** The hex of a finished digest, cut to OWN_TEXT_DIGEST_HEX digits. */
const hexOf = (hash: Hash) => hash.digest('hex').slice(0, OWN_TEXT_DIGEST_HEX);

/** The digest of a text we send: the first 16 hex digits of SHA-256 over its UTF-8 digestForm. */
export function ownTextDigest(text: string): string {
  return hexOf(createHash('sha256').update(digestForm(text), 'utf8'));
}

/**
 * The text digests our Message-IDs among `messageIds` carry (In-Reply-To and References, each `<…>`), lower case,
 * each once; [] when none is ours or none carries a digest.
 */
export function ownTextDigestsOf(messageIds: readonly string[]): string[] {
  const digests = new Set<string>();
  for (const id of messageIds) {
    const digest = OWN_MESSAGE_ID.exec(id.trim())?.[1];
    if (digest) digests.add(digest.toLowerCase());
  }
  return [...digests];
}

/**
 * How far a search goes in one mail: at most this many history heads are tried; under each, our text may start at
 * any of its first MAX_START_LINES lines (a gateway's "CAUTION: external sender" banner put above our text as the
 * author's mail server received it) and run at most MAX_OWN_LINES lines (a few hundred lines hold any answer we
 * send, re-wrapped); and at most MAX_DIGESTS digests are taken in all. Keeps a hostile mail of many heads cheap.
 */
const MAX_HEADS_TRIED = 20;
const MAX_START_LINES = 8;
const MAX_OWN_LINES = 1000;
const MAX_DIGESTS = 50_000;
/**
 * Lines searched for our text with the author's answer inside it (ownTextAround): the search takes up to n³/6
 * digests for n lines, so only the first 60 non-blank lines under a head (about 4,500 characters re-wrapped).
 */
const MAX_INTERLEAVED_LINES = 60;

/** The address a head names (`Name <addr>`, `addr`, `Name [mailto:addr]`, an attribution line), if any. */
const addressIn = (from: string | undefined): string | undefined => addressesIn(from ?? '')[0];

/** The lines of one body in digestForm, each computed once, when first asked for. */
type DigestLines = { count: number; at: (j: number) => string };

function digestLines(lines: readonly string[]): DigestLines {
  const forms = new Array<string | undefined>(lines.length);
  return { count: lines.length, at: (j) => (forms[j] ??= digestForm(lines[j]!)) };
}

/** Digests left to take in one mail (MAX_DIGESTS at the start). */
type Budget = { left: number };

/**
 * Where our text lies under a head whose text begins at line `start`: `from` its first line (one of the first
 * MAX_START_LINES non-blank lines from `start`), `to` the line after its last; undefined when no run of lines there
 * is exactly one of the texts `digests` name, in digestForm. From each possible first line the digest runs over the
 * lines once, a copy finished at each line end.
 */
function ownTextAt(
  lines: DigestLines,
  start: number,
  digests: ReadonlySet<string>,
  budget: Budget,
): { from: number; to: number } | undefined {
  let starts = 0;
  for (let from = start; from < lines.count && starts < MAX_START_LINES; from += 1) {
    if (!lines.at(from)) continue;
    starts += 1;
    const hash = createHash('sha256');
    for (let j = from; j < lines.count && j < from + MAX_OWN_LINES; j += 1) {
      const part = lines.at(j);
      if (!part) continue;
      if ((budget.left -= 1) < 0) return undefined;
      hash.update(part, 'utf8');
      if (digests.has(hexOf(hash.copy()))) return { from, to: j + 1 };
    }
  }
  return undefined;
}

/**
 * Our text with one run of the author's lines inside it (an answer typed between our paragraphs): `from` our first
 * line (one of the first MAX_START_LINES non-blank lines at `start`: the author may also have typed above our text),
 * `inside` the author's run (from its first line to the line after its last) and `to` the line after our last;
 * undefined when no split of MAX_INTERLEAVED_LINES non-blank lines from there into ours, theirs, ours gives one of
 * the texts `digests` name. Tried only where our text is not found whole; the nearest start is tried first.
 */
function ownTextAround(
  lines: DigestLines,
  start: number,
  digests: ReadonlySet<string>,
  budget: Budget,
): { from: number; inside: [number, number]; to: number } | undefined {
  const all: number[] = [];
  for (let j = start; j < lines.count && all.length < MAX_INTERLEAVED_LINES + MAX_START_LINES; j += 1) {
    if (lines.at(j)) all.push(j);
  }
  for (let s = 0; s < MAX_START_LINES && s < all.length && budget.left > 0; s += 1) {
    const text = all.slice(s, s + MAX_INTERLEAVED_LINES);
    const prefix = createHash('sha256');
    // Ours: text[0..k); theirs: text[k..r); ours again: text[r..e].
    for (let k = 1; k < text.length - 1; k += 1) {
      prefix.update(lines.at(text[k - 1]!), 'utf8');
      for (let r = k + 1; r < text.length; r += 1) {
        const hash = prefix.copy();
        for (let e = r; e < text.length; e += 1) {
          if ((budget.left -= 1) < 0) return undefined;
          hash.update(lines.at(text[e]!), 'utf8');
          if (digests.has(hexOf(hash.copy())))
            return { from: text[0]!, inside: [text[k]!, text[r]!], to: text[e]! + 1 };
        }
      }
    }
  }
  return undefined;
}

/**
 * A mail gateway's external-sender banner, as Exchange Online, Proofpoint, Mimecast and Russian corporate gateways
 * put it above an incoming mail ("CAUTION: This email originated from outside of the organization…", "[EXTERNAL]",
 * "Внимание: письмо от внешнего отправителя…"): what tells it from an author's line is that it speaks of the mail
 * coming from outside.
 */
const GATEWAY_BANNER = new RegExp(
  [
    String.raw`\b(originated|came|comes|is|was sent) from (an? )?(outside|external)`,
    String.raw`outside (of )?(the|your|our) (organi[sz]ation|company|network)`,
    String.raw`external (sender|email|e-mail|message|mail)`,
    String.raw`\[EXTERNAL\]`,
    String.raw`(письмо|сообщение) (пришло |получено |отправлено )?(от внешн|из-за предел|извне|с внешн)`,
    String.raw`внешн\p{L}* (отправител|адрес|источник|организац|домен)`,
    String.raw`за пределами (организации|компании|сети)`,
  ].join('|'),
  'iu',
);

/**
 * The lines between a head (its text begins at `start`) and our text found at `from`: the author's answer typed at
 * the top of the quoted mail stays, a gateway's banner (a paragraph matching GATEWAY_BANNER) does not.
 */
function authorLinesAbove(lines: readonly string[], start: number, from: number): string[] {
  const kept: string[] = [];
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length && !GATEWAY_BANNER.test(paragraph.join(' '))) kept.push(...paragraph, '');
    paragraph = [];
  };
  for (let j = start; j < from; j += 1) {
    if (lines[j]!.trim()) paragraph.push(lines[j]!);
    else flush();
  }
  flush();
  return kept;
}

/** What withoutOwnQuotedText needs to know about the mail beyond its body. */
export type OwnTextContext = {
  /** Digests of our texts this mail answers (ownTextDigestsOf its In-Reply-To and References). */
  digests: readonly string[];
  /** Whether an address is one of ours (EMAIL_FROM, the IMAP user), compared as mailboxes. */
  isOwnAddress: (address: string) => boolean;
  /**
   * Our display names (MAIL_FROM's `Name` in `Name <addr>`): a head that names no address counts only when it names
   * one of these (namesUs). None given: such heads never count.
   */
  ownNames?: readonly string[];
};

/** Letters and digits of a name, lower case, words one space apart, for comparing names as a reader would. */
const nameForm = (name: string) =>
  ` ${name
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, ' ')
    .trim()} `;

/**
 * Whether a head with no address (`from`: a header block's From value, or an attribution line) names us: it holds
 * one of `names` as whole words. Outlook on the web gives a sender of the same organisation by display name only
 * ("From: Workemon"), and so it gives anyone else of that organisation: a head naming some other person is their
 * mail, even if a Message-ID in the reply carries a digest of text under it. Message-IDs are written by whoever
 * sends a mail, so without this check a colleague could send a mail whose Message-ID has our form and the digest of
 * its first lines; replying to it (to the bot, by its Reply-To), the victim's quote of that mail would lose those
 * lines and pass the hidden rest below them to the secretary as the victim's words.
 */
export function namesUs(from: string | undefined, names: readonly string[]): boolean {
  if (!from) return false;
  const text = nameForm(from);
  return names.some((name) => nameForm(name).trim() !== '' && text.includes(nameForm(name)));
}

/**
 * `body` without the first unmarked quote of our own text: the history head (Outlook's separator and header block,
 * or an attribution line; mail-text.ts unmarkedHistoryHeadAt), the lines under it that are exactly a text we sent
 * (its digest is among `digests`) and a gateway's banner between the two are replaced by one blank line; the
 * author's lines above, below and between the head and our text (authorLinesAbove) stay, and so does any older
 * history below our text (extractNewText cuts it then, and the signature). Where our text is not found whole, one
 * run of the author's lines inside it (an answer between our paragraphs) is looked for and kept (ownTextAround); two
 * or more runs are not. A head naming another address than ours is someone else's mail and is passed over; a head
 * naming no address counts only when it names one of `ownNames` (namesUs) and the text under it matches. No digests,
 * no head, no match: `body` unchanged, so a reply quoting our text with nothing new says nothing, as before.
 */
export function withoutOwnQuotedText(body: string, context: OwnTextContext): string {
  if (!context.digests.length) return body;
  const digests = new Set(context.digests.map((d) => d.toLowerCase()));
  const lines = body.split('\n');
  const forms = digestLines(lines);
  const budget: Budget = { left: MAX_DIGESTS };
  let tried = 0;
  for (let i = 0; i < lines.length && tried < MAX_HEADS_TRIED && budget.left > 0; i += 1) {
    const head = unmarkedHistoryHeadAt(lines, i);
    if (!head) continue;
    const address = addressIn(head.from);
    if (address ? !context.isOwnAddress(address) : !namesUs(head.from, context.ownNames ?? [])) continue;
    tried += 1;
    const ours = ownTextAt(forms, head.bodyStart, digests, budget);
    if (ours) {
      const above = authorLinesAbove(lines, head.bodyStart, ours.from);
      return [...lines.slice(0, i), '', ...above, ...lines.slice(ours.to)].join('\n');
    }
    const around = ownTextAround(forms, head.bodyStart, digests, budget);
    if (around) {
      const [from, to] = around.inside;
      const above = authorLinesAbove(lines, head.bodyStart, around.from);
      return [...lines.slice(0, i), '', ...above, ...lines.slice(from, to), '', ...lines.slice(around.to)].join('\n');
    }
  }
  return body;
}
