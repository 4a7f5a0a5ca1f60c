import EmailReplyParser from 'email-reply-parser';
import EmailForwardParser from 'email-forward-parser';
import { createRequire } from 'node:module';
import type { convert as htmlToTextConvert } from 'html-to-text';

/**
 * What a mail's body says, in named steps: HTML → text, forwarded blocks split off, quoted history and
 * attribution lines removed, signature removed. Quote detection is email-reply-parser's (many languages, wrapped
 * "On … wrote:" lines, interleaved quoting); forward detection is email-forward-parser's (Gmail, Outlook, Apple
 * Mail, Thunderbird, … in many languages). Added here only what they lack for Russian mail: Yandex and Mail.ru
 * forward blocks, Russian attribution lines ("… пишет:", Yandex's `date, "Name" <addr>:`), Outlook's Russian
 * header block ("От: … Отправлено: …") and closing formulas ("С уважением,").
 */

/** A forwarded mail found inside another: who wrote it, its subject and its own new text. */
export type ForwardedMail = { from?: string; subject?: string; date?: string; text: string };

/** The body split into the author's own text and the mails they forwarded (outermost first). */
export type BodyParts = { text: string; forwards: ForwardedMail[] };

// Subject prefixes of replies and forwards: English, Russian (Outlook, Yandex, Mail.ru), German/Nordic clients.
const REPLY_PREFIX = /^\s*(re|ответ|отв|на|aw|sv|antw)\.?\s*(\[\d+\]|\(\d+\))?\s*:\s*/i;
const FORWARD_PREFIX = /^\s*(fwd?|fw|пересл|переслано|пересылка|wg|tr|doorst)\.?\s*(\[\d+\]|\(\d+\))?\s*:\s*/i;

/** The subject without any stack of `Re:`/`Fwd:`/`Ответ:`/`Отв:`/`FW:` prefixes. */
export function bareSubject(subject: string): string {
  let s = subject.replace(/\s+/g, ' ').trim();
  for (;;) {
    const next = s.replace(REPLY_PREFIX, '').replace(FORWARD_PREFIX, '');
    if (next === s) return s;
    s = next;
  }
}

/** Whether the subject carries a reply or forward prefix, i.e. it repeats an earlier mail's subject. */
export function subjectRepeatsThread(subject: string): boolean {
  const s = subject.trim();
  return REPLY_PREFIX.test(s) || FORWARD_PREFIX.test(s);
}

/** Whether the subject marks a forward (`Fwd:`, `FW:`, `Пересл:`). */
export function isForwardSubject(subject: string): boolean {
  return FORWARD_PREFIX.test(subject.trim().replace(REPLY_PREFIX, ''));
}

// ---- HTML ----------------------------------------------------------------------------------------------------

/**
 * HTML → readable text: table cells separated by a space and rows by line breaks, lists kept as `* item`,
 * entities decoded, images and link targets dropped. Quoted blocks become `> ` lines, so the plain-text steps
 * below decide about them (a `<blockquote type="cite">` holds Apple Mail's forwards too).
 */
export function htmlToText(html: string): string {
  // Required at the first HTML mail, not at load (docs/operations.md, "Memory at start-up").
  const { convert } = createRequire(import.meta.url)('html-to-text') as { convert: typeof htmlToTextConvert };
  const text = convert(html, {
    wordwrap: false,
    selectors: [
      { selector: 'a', options: { ignoreHref: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'style', format: 'skip' },
      { selector: 'head', format: 'skip' },
      {
        selector: 'table',
        format: 'dataTable',
        options: { colSpacing: 1, rowSpacing: 0, uppercaseHeaderCells: false, maxColumnWidth: 10_000 },
      },
      { selector: 'hr', format: 'skip' },
      { selector: 'p', options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
      { selector: 'ul', options: { itemPrefix: ' * ' } },
      // Outlook's reply header (divRplyFwdMsg, or the bordered div above it) stays as text: the header-block rule
      // below cuts the history that follows it, which Outlook puts outside any container.
    ],
  });
  // dataTable pads columns to equal width; one space between cells reads the same and keeps phrases intact.
  return text.replace(/\u00a0/g, ' ').replace(/(\S) {2,}(?=\S)/g, '$1 ');
}

// ---- forwards ------------------------------------------------------------------------------------------------

// Separator lines that always mean "a forwarded mail follows", whatever the subject says.
const FORWARD_SEPARATOR =
  /^[ \t]*-{2,}[ \t]*(Пересылаемое сообщение|Начало переадресованного сообщения|Переадресованное сообщение|Перенаправленное сообщение|Forwarded message|Forwarded Message|Original Message|Исходное сообщение)[ \t]*-{2,}[ \t]*$|^[ \t]*(Begin forwarded message|Начало пересылаемого сообщения|Начало переадресованного сообщения):[ \t]*$/im;
const FORWARD_END =
  /^[ \t]*-{2,}[ \t]*(Конец пересылаемого сообщения|Конец переадресованного сообщения|End of forwarded message)[ \t]*-{2,}[ \t]*$/im;
// Yandex writes the forwarded author as `20.11.2026, 18:12, "Сидоров Пётр" <sidorov@example.test>:`.
const YANDEX_AUTHOR = /^[ \t]*(\d{1,2}\.\d{1,2}\.\d{2,4},?[ \t]+\d{1,2}:\d{2}),?[ \t]+(.+?)[ \t]*:[ \t]*$/;
// Header-block lines of a forwarded mail (Mail.ru "От кого:", Outlook, Thunderbird, in both languages).
const HEADER_LINE =
  /^[ \t]*(От кого|От|Кому|Копия|Дата|Тема|Отправлено|Отправитель|From|To|Cc|Date|Sent|Subject)[ \t]*:[ \t]*(.*)$/i;

function dequote(text: string): string {
  const lines = text.split('\n');
  if (lines.filter((l) => l.trim()).every((l) => /^[ \t]*>/.test(l)))
    return lines.map((l) => l.replace(/^[ \t]*> ?/, '')).join('\n');
  return text;
}

/** A forward split off a body: the author's note before it, the forwarded mail, and text after its end line. */
type ForwardSplit = { note: string; forward: ForwardedMail; rest: string };

/** Names of the header-block fields a forward's author, subject and date are read from. */
const FROM_FIELDS = ['от кого', 'от', 'from', 'отправитель'];
const SUBJECT_FIELDS = ['тема', 'subject'];
const DATE_FIELDS = ['дата', 'date', 'sent', 'отправлено'];

/** One header-block line into the forward (the first of each field wins). */
function readHeaderField(forward: ForwardedMail, name: string, value: string): void {
  if (FROM_FIELDS.includes(name)) forward.from ??= value;
  else if (SUBJECT_FIELDS.includes(name)) forward.subject ??= value;
  else if (DATE_FIELDS.includes(name)) forward.date ??= value;
}

/**
 * Reads a forwarded mail's header block (Mail.ru "От кого:", Outlook, Thunderbird) from line `i` into `forward`,
 * blank lines before it skipped; returns the index of the first line after the block.
 */
function readHeaderBlock(lines: string[], i: number, forward: ForwardedMail): number {
  let sawHeader = false;
  for (; i < lines.length; i += 1) {
    const h = HEADER_LINE.exec(lines[i]!);
    if (!h) {
      if (!lines[i]!.trim() && !sawHeader) continue;
      break;
    }
    sawHeader = true;
    readHeaderField(forward, h[1]!.toLowerCase(), h[2]!.trim());
  }
  return i;
}

/** The forwarded part after a separator: up to the forward's end line (when there is one), and what follows it. */
function cutAtForwardEnd(after: string): { inside: string; rest: string } {
  const end = FORWARD_END.exec(after);
  if (!end) return { inside: after, rest: '' };
  return { inside: after.slice(0, end.index), rest: after.slice(end.index + end[0].length) };
}

/** A forward in the form no library reads: a separator, then a Yandex author line or a header block. */
function splitRussianForward(text: string): ForwardSplit | undefined {
  const sep = FORWARD_SEPARATOR.exec(text);
  if (!sep) return undefined;
  const note = text.slice(0, sep.index);
  const { inside, rest } = cutAtForwardEnd(dequote(text.slice(sep.index + sep[0].length).replace(/^\r?\n/, '')));
  const lines = inside.split('\n');
  let i = 0;
  while (i < lines.length && !lines[i]!.trim()) i += 1;
  const forward: ForwardedMail = { text: '' };
  const yandex = YANDEX_AUTHOR.exec(lines[i] ?? '');
  if (yandex) {
    forward.date = yandex[1];
    forward.from = yandex[2]!.replace(/^"([^"]*)"/, '$1');
    i += 1;
  } else {
    i = readHeaderBlock(lines, i, forward);
  }
  // Some clients quote the forwarded text itself with '>': it is the forwarded mail, not history.
  forward.text = dequote(lines.slice(i).join('\n').trim());
  return { note, forward, rest };
}

/** Whether a separator line opens Outlook's quoted history ("Original Message") rather than a forward. */
const isHistorySeparator = (separator: string) => /Original Message|Исходное сообщение/i.test(separator);

/** A forward's author as `Name <address>` or `address` (email-forward-parser's `from`, a mailbox or a group). */
function authorOf(from: unknown): string | undefined {
  const mailbox =
    from && typeof from === 'object' && 'address' in from ? (from as { address?: string; name?: string }) : undefined;
  if (!mailbox?.address) return undefined;
  return mailbox.name ? `${mailbox.name} <${mailbox.address}>` : mailbox.address;
}

/**
 * A forward as email-forward-parser reads it (Gmail, Outlook, Apple Mail, Thunderbird, …). "-----Original
 * Message-----" and a bare From:/Sent: block start a forward only when the subject says so; otherwise they start
 * Outlook's quoted reply history, which the reply steps remove.
 */
function libraryForward(body: string, subject: string, explicit: RegExpExecArray | null): ForwardSplit | undefined {
  const forwardSubject = isForwardSubject(subject);
  const parsed = new EmailForwardParser().read(body, forwardSubject ? subject : null);
  const email = parsed.email;
  const headerOnly = !explicit || isHistorySeparator(explicit[0]);
  if (!parsed.forwarded || !email?.body || (headerOnly && !forwardSubject)) return undefined;
  const forward: ForwardedMail = {
    from: authorOf(email.from),
    subject: email.subject ?? undefined,
    date: email.date ?? undefined,
    text: dequote(email.body),
  };
  return { note: (parsed.message ?? '').replace(FORWARD_SEPARATOR, ''), forward, rest: '' };
}

/** The first forward of a body: a Russian-client forward behind an explicit separator, else the library's. */
function firstForward(body: string, subject: string): ForwardSplit | undefined {
  const russian = splitRussianForward(body);
  const explicit = russian ? FORWARD_SEPARATOR.exec(body) : null;
  if (russian && explicit && !isHistorySeparator(explicit[0])) return russian;
  return libraryForward(body, subject, explicit);
}

/**
 * Splits off forwarded mail (inline forwards of every common client), recursively for nested forwards (depth 5).
 * The author's own note stays in `text`; each forward keeps its author, subject and its own new text.
 */
export function splitForwards(body: string, subject: string, depth = 0): BodyParts {
  if (depth > 5) return { text: body, forwards: [] };
  const split = firstForward(body, subject);
  if (!split) return { text: body, forwards: [] };
  const { note, forward, rest } = split;
  const inner = splitForwards(forward.text, forward.subject ?? '', depth + 1);
  const tail = rest.trim() ? splitForwards(rest, subject, depth + 1) : { text: '', forwards: [] };
  return {
    text: [note.trim(), tail.text.trim()].filter(Boolean).join('\n\n'),
    forwards: [{ ...forward, text: inner.text }, ...inner.forwards, ...tail.forwards],
  };
}

// ---- replies ---------------------------------------------------------------------------------------------------

// An attribution line (possibly two lines joined): it ends with ':' and names a writer or a date.
const ATTRIBUTION = [
  /^On\b.{1,300}\bwrote\s*:$/i,
  /^.{0,300}(^|[\s,])(пишет|писал|написал|написала|написал\(а\)|wrote|schrieb|a écrit|escribió)\s*:$/i,
  // Yandex: `21.11.2026, 10:05, "Workemon" <bot@example.test>:`; Mail.ru: `Суббота, 21 ноября 2026, 10:05 +03:00 от X <x@y>:`
  /^.{0,120}\d{1,2}:\d{2}.{0,200}(<[^<>\s]+@[^<>\s]+>|\S+@\S+)\s*:$/,
  /^.{0,200}\sот\s.{0,200}(<[^<>\s]+@[^<>\s]+>|\S+@\S+)\s*:$/i,
];

function isAttribution(line: string): boolean {
  const t = line.trim();
  return t.endsWith(':') && ATTRIBUTION.some((r) => r.test(t));
}

/** Drops attribution lines at the end of a block that a quote follows, including one wrapped over two lines. */
function dropTrailingAttribution(block: string): string {
  const lines = block.replace(/\s+$/, '').split('\n');
  const last = lines.length - 1;
  if (last < 0) return block;
  if (isAttribution(lines[last]!)) return lines.slice(0, last).join('\n');
  if (last >= 1 && isAttribution(`${lines[last - 1]!.trim()} ${lines[last]!.trim()}`))
    return lines.slice(0, last - 1).join('\n');
  return block;
}

// Outlook's quoted history has no '>' marks: it starts at a header block "From:/От:" with "Sent:/Отправлено:/Дата:".
const OUTLOOK_HEADER_START = /^[ \t*]*(From|От|От кого)[ \t*]*:[ \t]*\S/i;
const OUTLOOK_HEADER_NEXT = /^[ \t*]*(Sent|Date|Отправлено|Дата|To|Кому|Subject|Тема)[ \t*]*:/i;
const HISTORY_LINE =
  /^[ \t]*(-{3,}[ \t]*(Original Message|Исходное сообщение|Исходное письмо)[ \t]*-{3,}|_{10,})[ \t]*$/i;

function cutOutlookHistory(text: string): string {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i += 1) {
    if (HISTORY_LINE.test(lines[i]!)) return lines.slice(0, i).join('\n');
    if (OUTLOOK_HEADER_START.test(lines[i]!)) {
      const next = lines.slice(i + 1, i + 4);
      if (next.some((l) => OUTLOOK_HEADER_NEXT.test(l))) return lines.slice(0, i).join('\n');
    }
  }
  return text;
}

// Signatures: the RFC 3676 "-- " delimiter, phone footers; closing formulas near the end.
const SIGNATURE_START = [/^--\s*$/, /^(Sent from my|Отправлено с|Отправлено из|Get Outlook for)\b/i];
const CLOSING =
  /^(с уважением|с наилучшими пожеланиями|всего доброго|best regards|kind regards|regards|спасибо,?\s*$|thanks,?\s*$)/i;

function cutSignature(text: string): string {
  const lines = text.split('\n');
  let end = lines.findIndex((l) => SIGNATURE_START.some((r) => r.test(l)));
  if (end < 0) end = lines.length;
  const kept = lines.slice(0, end);
  const nonEmpty = kept.map((l, i) => [l.trim(), i] as const).filter(([l]) => l);
  for (const [k, [line, index]] of nonEmpty.entries()) {
    // A closing formula among the last few lines, with text above it, starts the signature.
    if (k > 0 && k >= nonEmpty.length - 4 && CLOSING.test(line)) return kept.slice(0, index).join('\n');
  }
  return kept.join('\n');
}

/**
 * History some clients quote without '>' marks: an attribution line (or two) with new text above it and no quoted
 * line below it starts the history, which runs to the end.
 */
function cutUnmarkedHistory(body: string): string {
  const lines = body.split('\n');
  const nextText = (from: number) => lines.slice(from).find((l) => l.trim());
  for (let i = 1; i < lines.length; i += 1) {
    const single = isAttribution(lines[i]!);
    const wrapped = !single && i + 1 < lines.length && isAttribution(`${lines[i]!.trim()} ${lines[i + 1]!.trim()}`);
    if (!single && !wrapped) continue;
    const after = nextText(i + (wrapped ? 2 : 1));
    const before = lines.slice(0, i).some((l) => l.trim() && !/^[ \t]*>/.test(l));
    if (before && after !== undefined && !/^[ \t]*>/.test(after)) return lines.slice(0, i).join('\n');
  }
  return body;
}

/**
 * The text this mail adds: quoted blocks and their attribution lines removed wherever they are (top-posting,
 * bottom-posting, interleaved), Outlook's unmarked history cut, the signature dropped.
 */
export function extractNewText(body: string): string {
  const fragments = new EmailReplyParser().read(cutUnmarkedHistory(body)).getFragments();
  const kept: string[] = [];
  for (const [i, fragment] of fragments.entries()) {
    if (fragment.isQuoted() || fragment.isSignature()) continue;
    let content = fragment.getContent();
    const next = fragments[i + 1];
    if (next?.isQuoted()) content = dropTrailingAttribution(content);
    // A quoted fragment email-reply-parser recognised by its attribution line alone may carry new text below
    // it: keep the lines that are not quoted.
    kept.push(content);
  }
  let text = kept.join('\n');
  // Lines email-reply-parser left whole: a stray attribution or '>' line inside a fragment.
  text = text
    .split('\n')
    .filter((l) => !/^[ \t]*>/.test(l))
    .join('\n');
  text = dropTrailingAttribution(cutOutlookHistory(text));
  return cutSignature(text)
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}
