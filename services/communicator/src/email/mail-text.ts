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

// Subject prefixes of replies and forwards: English, Russian (Outlook, Yandex, Mail.ru), German, Nordic, Polish,
// Italian, Spanish/Portuguese/French (`RV:`, `ENC:`, `TR:`) and Chinese clients; the colon may be CJK's full-width `：`.
const REPLY_PREFIX = /^\s*(re|ответ|отв|на|aw|sv|vs|antw|odp|rif|回复|答复)\.?\s*(\[\d+\]|\(\d+\))?\s*[:：]\s*/i;
const FORWARD_PREFIX =
  /^\s*(fwd?|fw|пересл|переслано|пересылка|wg|tr|doorst|enc|rv|vl|转发)\.?\s*(\[\d+\]|\(\d+\))?\s*[:：]\s*/i;
// A tag a mail gateway or list puts before the prefix: `[EXTERNAL] Re: …`, `[ВНЕШНЕЕ] RE: …`, `*EXT* FW: …`.
const GATEWAY_TAG = /^\s*(\[[^\][]{1,40}\]|\*{1,2}[^*]{1,40}\*{1,2})\s*/;

// The tags mail gateways put on mail from outside the company (`[EXT]`, `[EXTERNAL]`, `*EXTERNAL EMAIL*`,
// `[ВНЕШНИЙ]`, `[Внешнее письмо]`, `[CAUTION]`; Russian ones only in brackets, `**Внешний** контур` is words):
// never the author's words, whatever follows them. Other bracketed
// tags (`[Срочно]`, a list's `[fintech-dev]`) may be, and stay unless a reply or forward prefix follows them.
const KNOWN_GATEWAY_TAG =
  /^\s*(\[\s*(ext|external|external (email|e-mail|mail|sender|message)|caution|warning: external|внешн\p{L}*( (письмо|сообщение|отправитель|почта))?)\s*\]|\*{1,2}\s*(ext|external|external (email|e-mail|mail|sender|message)|caution)\s*\*{1,2})\s*:?\s*/iu;

/** The subject without its leading gateway tags: known ones (KNOWN_GATEWAY_TAG) always, any others when a reply
 * or forward prefix follows them (`[support][срочно] Re: …`, `[support] [#4521] Re: …`). */
function untagged(subject: string): string {
  // Gateways stack their tags (`[CAUTION] [EXT] Re: …`): every known one goes.
  for (let known = KNOWN_GATEWAY_TAG.exec(subject); known; known = KNOWN_GATEWAY_TAG.exec(subject))
    subject = subject.slice(known[0].length);
  let rest = subject;
  for (let tag = GATEWAY_TAG.exec(rest); tag; tag = GATEWAY_TAG.exec(rest)) rest = rest.slice(tag[0].length);
  return rest !== subject && (REPLY_PREFIX.test(rest) || FORWARD_PREFIX.test(rest)) ? rest : subject;
}

// Characters that show nothing: zero-width space, non-joiner, joiner, word joiner, byte order mark.
const INVISIBLE = /[\u200B-\u200D\u2060\uFEFF]/g;

/** `text`, or '' when it shows nothing at all (only white space and zero-width characters, as some clients send). */
export function visibleOrEmpty(text: string): string {
  return text.replace(INVISIBLE, '').trim() ? text : '';
}

/** The subject without any stack of `Re:`/`Fwd:`/`Ответ:`/`Отв:`/`FW:` prefixes (and gateway tags between them). */
export function bareSubject(subject: string): string {
  let s = visibleOrEmpty(subject).replace(/\s+/g, ' ').trim();
  for (;;) {
    const next = untagged(s).replace(REPLY_PREFIX, '').replace(FORWARD_PREFIX, '');
    if (next === s) return s;
    s = next;
  }
}

/**
 * Whether the subject repeats an earlier mail's subject: it carries a reply or forward prefix and, when the thread's
 * subject is known (`threadSubject`: Outlook's Thread-Topic field, or the Subject/Тема line of the quoted history),
 * says no more than it. "RE: Выгрузка возвратов - за октябрь, по дням" in a thread "Выгрузка возвратов" carries the
 * author's answer (Outlook users edit the subject to answer); compared bare (bareSubject), case and spaces aside.
 * `exact`: the thread's subject is the original's (Thread-Topic), so any other subject says more; otherwise (read
 * from the quoted history, which may hold another mail's header) only one that goes on from it does.
 */
export function subjectRepeatsThread(subject: string, threadSubject?: string, exact = true): boolean {
  const s = untagged(subject.trim());
  if (!REPLY_PREFIX.test(s) && !FORWARD_PREFIX.test(s)) return false;
  if (threadSubject === undefined || !bareSubject(threadSubject)) return true;
  const norm = (t: string) => bareSubject(t).toLowerCase().replace(/\s+/g, ' ');
  if (exact) return norm(subject) === norm(threadSubject);
  return !(norm(subject).startsWith(norm(threadSubject)) && norm(subject).length > norm(threadSubject).length);
}

/** The subject of the first header block (Subject/Тема … line, FIELD_NAMES) in a mail's quoted history; if any. */
export function quotedSubjectOf(text: string): string | undefined {
  return BLOCK_SUBJECT.exec(text)?.[2]?.trim() || undefined;
}

/** Whether the subject is a reply's (`Re:`, `RE[2]:`, `Ответ:`, `Отв:`, `AW:`, behind a gateway tag too). */
export function isReplySubject(subject: string): boolean {
  return REPLY_PREFIX.test(untagged(subject.trim()));
}

/**
 * Whether the subject marks a forward (`Fwd:`, `FW:`, `Пересл:`, behind gateway tags too): its first prefix is a
 * forward's. Every client adds its prefix in front of the subject it answers or forwards (RFC 5322 §3.6.5), so the
 * first prefix says what this mail is: "Fwd: Re: Доступ" forwards a reply, "Re: Fwd: Доступ" and Outlook's "RE: FW:
 * Доступ" answer a forward, and the forward in their quoted history is not the author's (M04a's kind).
 */
export function isForwardSubject(subject: string): boolean {
  return FORWARD_PREFIX.test(untagged(subject.trim()));
}

// ---- HTML ----------------------------------------------------------------------------------------------------

/** Characters of a mail's HTML that htmlToText converts at most (a 17,000-row table: about 1.5 s, 40 MB of heap). */
export const MAX_HTML_INPUT_CHARS = 500_000;

/**
 * At most MAX_HTML_INPUT_CHARS of `html`, in the pieces htmlToText converts one by one: all of it when it is
 * shorter, else its first three quarters' worth and its last quarter's (from the first tag in it: half a tag would
 * read as text). A request written under a long pasted table (an Excel paste of 1.4 MB of Outlook markup) is at the
 * end, an answer on top of a long history at the start. The pieces are converted apart (the head's unclosed table
 * would otherwise swallow the tail); the tail opens with as many `<blockquote>`s as the head left open, so a quoted
 * history cut in two stays quoted in both pieces (a colleague's quoted words are never the author's).
 */
function boundedHtml(html: string): string[] {
  if (html.length <= MAX_HTML_INPUT_CHARS) return [html];
  const head = html.slice(0, Math.floor(MAX_HTML_INPUT_CHARS * 0.75));
  const rest = html.slice(html.length - (MAX_HTML_INPUT_CHARS - head.length));
  const tagAt = rest.indexOf('<');
  let open = 0;
  for (const m of head.matchAll(/<(\/?)blockquote\b/gi)) open = Math.max(0, open + (m[1] ? -1 : 1));
  return [head, '<blockquote type="cite">'.repeat(open) + (tagAt >= 0 ? rest.slice(tagAt) : rest)];
}

/** The attribute markHiddenElements adds to an element the reader never sees (HTML_HIDDEN_SELECTOR skips it). */
const HIDDEN_MARK = 'data-workemon-hidden';
const HTML_HIDDEN_SELECTORS = [`[${HIDDEN_MARK}]`, '[hidden]'];

/** A CSS length or number that is zero (`0`, `0px`, `0.0em`, `0%`). */
const isZero = (value: string | undefined): boolean =>
  value !== undefined && /^[+-]?0*\.?0*(?:[a-z%]+)?$/.test(value) && /0/.test(value);

/**
 * Whether an inline style (`style` attribute's value) hides its element and everything in it: `display:none`,
 * Outlook's `mso-hide:all`, `opacity` 0, or a height or max-height of 0 with `overflow:hidden` (a newsletter's
 * preheader). CSS comments, spacing, case and `!important` are ignored. Not `visibility:hidden` (a child may be
 * `visible` again) nor a zero font size (templates set it on containers, their text sets its own; MJML does).
 */
function hidesElement(style: string): boolean {
  const declarations = new Map<string, string>();
  for (const d of style
    .replace(/\/\*[^]*?\*\//g, '')
    .toLowerCase()
    .split(';')) {
    const colon = d.indexOf(':');
    if (colon > 0)
      declarations.set(
        d.slice(0, colon).trim(),
        d
          .slice(colon + 1)
          .replace(/!important/g, '')
          .trim(),
      );
  }
  if (declarations.get('display') === 'none' || declarations.get('mso-hide') === 'all') return true;
  if (isZero(declarations.get('opacity'))) return true;
  const clipped = declarations.get('overflow') === 'hidden';
  return clipped && (isZero(declarations.get('height')) || isZero(declarations.get('max-height')));
}

/**
 * `html` with HIDDEN_MARK added to every start tag whose `style` hides it (hidesElement). Only start tags are read
 * (text stays as written), each once: linear.
 */
function markHiddenElements(html: string): string {
  return html.replace(/<[a-zA-Z][^<>]*>/g, (tag) => {
    const style = /\sstyle\s*=\s*(?:"([^"]*)"|'([^']*)')/i.exec(tag);
    if (!style || !hidesElement(style[1] ?? style[2] ?? '')) return tag;
    return tag.replace(/^<[a-zA-Z][\w-]*/, (name) => `${name} ${HIDDEN_MARK}`);
  });
}

/**
 * HTML → readable text: table cells separated by a space and rows by line breaks, lists kept as `* item`,
 * entities decoded, images and link targets dropped, hidden elements (markHiddenElements) left out. Quoted blocks
 * become `> ` lines, so the plain-text steps below decide about them (a `<blockquote type="cite">` holds Apple Mail's
 * forwards too). Reads at most MAX_HTML_INPUT_CHARS of `html`, its head and its tail (boundedHtml).
 */
export function htmlToText(html: string): string {
  // Required at the first HTML mail, not at load (docs/operations.md, "Memory at start-up").
  const { convert } = createRequire(import.meta.url)('html-to-text') as { convert: typeof htmlToTextConvert };
  // The pieces of a long HTML body with the plain-text cut's gap line between them (mail-parsing.ts GAP_LINE).
  const text = boundedHtml(html)
    .map((piece) => convertHtml(convert, piece))
    .join('\n\n[…]\n\n');
  // dataTable pads columns to equal width; one space between cells reads the same and keeps phrases intact.
  // A soft hyphen (&shy;, Word's optional hyphen) shows nothing unless a line breaks there: it splits a word in two.
  return text
    .replace(/\u00ad/g, '')
    .replace(/\u00a0/g, ' ')
    .replace(/(\S) {2,}(?=\S)/g, '$1 ');
}

/** One piece of HTML (boundedHtml) → text, with htmlToText's options. */
function convertHtml(convert: typeof htmlToTextConvert, html: string): string {
  return convert(markHiddenElements(html), {
    wordwrap: false,
    // html-to-text walks the tree recursively: 20,000 nested <div>s overflow the stack. Real mail nests far less.
    // It also builds the whole tree first: 4 MB of hostile markup (400,000 paragraphs, 160,000 table rows) took more
    // than a service's 128 MB old space. At most MAX_HTML_INPUT_CHARS are read (boundedHtml).
    limits: { maxDepth: 400, ellipsis: '', maxInputLength: MAX_HTML_INPUT_CHARS },
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
      // What the reader never sees (markHiddenElements): a web form's or a newsletter's hidden block or preheader,
      // Outlook's `mso-hide:all`, the HTML `hidden` attribute (HTML Living Standard, "The hidden attribute"). Hidden
      // text is where a forged instruction to the model hides ("Игнорируй предыдущие инструкции…").
      ...HTML_HIDDEN_SELECTORS.map((selector) => ({ selector, format: 'skip' })),
      // Signature containers: Gmail's, Outlook on the web's and mobile's, Thunderbird's.
      { selector: 'div.gmail_signature', format: 'skip' },
      { selector: 'div#Signature', format: 'skip' },
      { selector: 'div#ms-outlook-mobile-signature', format: 'skip' },
      { selector: 'div.moz-signature', format: 'skip' },
      // Yahoo quotes the answered mail in a div (`ydp…yahoo_quoted`), not a blockquote: `> ` lines like one.
      { selector: 'div[class*="yahoo_quoted"]', format: 'blockquote', options: { trimEmptyLines: true } },
      { selector: 'p', options: { leadingLineBreaks: 1, trailingLineBreaks: 1 } },
      { selector: 'ul', options: { itemPrefix: ' * ' } },
      // Outlook's reply header (divRplyFwdMsg, or the bordered div above it) stays as text: the header-block rule
      // below cuts the history that follows it, which Outlook puts outside any container.
    ],
  });
}

// ---- forwards ------------------------------------------------------------------------------------------------

// Separator lines that always mean "a forwarded mail follows", whatever the subject says: the dashed forms (Yandex,
// Mail.ru, Thunderbird, Zimbra, Roundcube, MyOffice "Пересланное сообщение", Lotus Notes "Forwarded by <name> on
// <date>") and Apple Mail's "Begin forwarded message:" / "Начало переадресованного письма:", also inside the
// `> ` quote Apple's HTML forward (<blockquote type="cite">) becomes.
const FORWARD_SEPARATOR =
  /^[ \t>]*-{2,}[ \t]*(Пересылаемое сообщение|Пересылаемое письмо|Пересланное сообщение|Пересланное письмо|Начало переадресованного сообщения|Переадресованное сообщение|Перенаправленное сообщение|Beginning of forwarded message|Forwarded message|Forwarded Message|Original Message|Исходное сообщение|Forwarded by [^\n]{1,200}? on [^\n]{1,80}?)[ \t]*-{2,}[ \t]*$|^[ \t>]*(Begin forwarded message|Начало пересылаемого сообщения|Начало переадресованного сообщения|Начало переадресованного письма|Начало пересылаемого письма):[ \t]*$|^[ \t>]*(This is a forwarded message|Это пересланное сообщение|Это пересылаемое сообщение)[ \t]*$(?=\r?\n[ \t>]*(?:From|От)[ \t]*:)/im;
const FORWARD_SEPARATOR_ALL = new RegExp(FORWARD_SEPARATOR.source, 'gim');

/**
 * The first forward separator line of `text`. One inside a `> ` quote counts only where it opens the quote (Apple
 * Mail's HTML forward): one below other quoted lines or below an attribution line is part of a quoted earlier
 * message (a reply quoting a forward), which the reply steps remove.
 */
function forwardSeparator(text: string): RegExpExecArray | null {
  for (const m of text.matchAll(FORWARD_SEPARATOR_ALL) as IterableIterator<RegExpExecArray>) {
    if (!/^[ \t]*>/.test(m[0])) return m;
    const above = text.slice(0, m.index).trimEnd().split('\n').at(-1) ?? '';
    if (!/^[ \t]*>/.test(above) && !isAttribution(above)) return m;
  }
  return null;
}
// The Bat! closes its forward's text with `===8<===========End of original message text===========`.
const FORWARD_END =
  /^[ \t]*-{2,}[ \t]*(Конец пересылаемого сообщения|Конец переадресованного сообщения|End of forwarded message)[ \t]*-{2,}[ \t]*$|^[ \t]*={2,}8<={2,}[ \t]*(End of original message text|Конец исходного текста сообщения|Конец исходного сообщения)[ \t]*={2,}[ \t]*$/im;
// The Bat!'s forward: "This is a forwarded message", its header block, then the text between
// `===8<==============Original message text===============` and the end line (FORWARD_END).
const BAT_TEXT_START =
  /^[ \t]*={2,}8<={2,}[ \t]*(Original message text|Исходный текст сообщения|Исходное сообщение)[ \t]*={2,}[ \t]*$/i;
// Yandex writes the forwarded author as `20.11.2026, 18:12, "Сидоров Пётр" <sidorov@example.test>:`.
const YANDEX_AUTHOR = /^[ \t]*(\d{1,2}\.\d{1,2}\.\d{2,4},?[ \t]+\d{1,2}:\d{2}),?[ \t]+(.+?)[ \t]*:[ \t]*$/;
// Mail.ru writes it as `Пятница, 20 ноября 2026, 18:12 +03:00 от Сидоров Пётр <sidorov@example.test>:` (or `from`).
const MAILRU_AUTHOR =
  /^[ \t]*(.{0,80}?\d{4},?[ \t]+\d{1,2}:\d{2}(?:[ \t]*[+-]\d{2}:?\d{2})?)[ \t]+(?:от|from)[ \t]+(.{1,200}?<[^<>\s]+@[^<>\s]+>)[ \t]*:[ \t]*$/i;
// Header-block field names by role, as mail clients write them in the languages of their interfaces: Russian,
// Ukrainian, English, German, French, Spanish, Portuguese, Italian, Polish, Dutch (Outlook's "От:/Від:/Von:/De:",
// Mail.ru's "От кого:", Zimbra's "Отправленные:"), with the fields some clients add: Outlook's Importance/Attachments
// ("Важность:", "Вложения:"), Thunderbird's Reply-To and Organization, Apple Mail's Reply-To. Italian "A:" and Polish
// "Do:" (To) are left out: a line of the author's could start so.
const FIELD_NAMES = {
  from: ['От кого', 'От', 'Отправитель', 'Від', 'From', 'Von', 'De', 'Da', 'Od', 'Van'],
  sent: [
    'Отправлено',
    'Отправленные',
    'Надіслано',
    'Sent',
    'Gesendet',
    'Envoyé',
    'Enviado',
    'Inviato',
    'Wysłano',
    'Wysłane',
    'Verzonden',
  ],
  date: ['Дата', 'Date', 'Datum', 'Fecha', 'Data'],
  to: ['Кому', 'Копия', 'Скрытая копия', 'Копія', 'To', 'Cc', 'Bcc', 'An', 'À', 'Para', 'Aan', 'Kopie'],
  subject: ['Тема', 'Subject', 'Betreff', 'Objet', 'Asunto', 'Assunto', 'Oggetto', 'Temat', 'Onderwerp'],
  other: [
    'Важность',
    'Вложения',
    'Организация',
    'Ответить',
    'Ответ для',
    'Importance',
    'Priority',
    'Attachments',
    'Reply-To',
    'Organization',
  ],
};
/** `(name|name…)`, longest first, for a regular expression. */
const fieldAlternation = (...names: string[][]) =>
  `(${names
    .flat()
    .sort((a, b) => b.length - a.length)
    .join('|')})`;
const lowered = (names: string[]) => names.map((n) => n.toLowerCase());
// A header-block line of a forwarded mail; Gmail's plain-text part writes a bold label as `*From:*`.
const HEADER_LINE = new RegExp(
  `^[ \\t]*\\*?${fieldAlternation(...Object.values(FIELD_NAMES))}[ \\t]*:\\*?[ \\t]*(.*)$`,
  'i',
);
// A wrapped To/Cc line's continuation (Outlook wraps plain text at 76 characters): addresses only, no field name.
const ADDRESS_CONTINUATION = /^[ \t]*[^:\n]*@[^:\n]*$/;
const ADDRESS_FIELDS = lowered(FIELD_NAMES.to);

function dequote(text: string): string {
  const lines = text.split('\n');
  if (lines.filter((l) => l.trim()).every((l) => /^[ \t]*>/.test(l)))
    return lines.map((l) => l.replace(/^[ \t]*> ?/, '')).join('\n');
  return text;
}

/** A forward split off a body: the author's note before it, the forwarded mail, and text after its end line. */
type ForwardSplit = { note: string; forward: ForwardedMail; rest: string };

/** Names of the header-block fields a forward's author, subject and date are read from. */
const FROM_FIELDS = lowered(FIELD_NAMES.from);
const SUBJECT_FIELDS = lowered(FIELD_NAMES.subject);
const DATE_FIELDS = lowered([...FIELD_NAMES.date, ...FIELD_NAMES.sent]);

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
  let headers = 0;
  // Whether the block is double-spaced (Apple Mail's HTML forward puts each line in a <div>): a blank line right
  // after its first line, with a header line below it. Then blank lines between its lines do not end it.
  let spaced = false;
  let field = '';
  for (; i < lines.length; i += 1) {
    const h = HEADER_LINE.exec(lines[i]!);
    if (!h && ADDRESS_FIELDS.includes(field) && ADDRESS_CONTINUATION.test(lines[i]!)) continue;
    if (!h) {
      if (lines[i]!.trim()) break;
      if (headers === 0) continue; // blank lines before the block
      const headerBelow = HEADER_LINE.test(lines[i + 1] ?? '');
      spaced ||= headers === 1 && !!lines[i - 1]!.trim() && headerBelow;
      if (spaced && headerBelow) continue;
      break;
    }
    headers += 1;
    field = h[1]!.toLowerCase();
    readHeaderField(forward, field, h[2]!.trim());
  }
  return i;
}

/** The forwarded part after a separator: up to the forward's end line (when there is one), and what follows it. */
function cutAtForwardEnd(after: string): { inside: string; rest: string } {
  const end = FORWARD_END.exec(after);
  if (!end) return { inside: after, rest: '' };
  return { inside: after.slice(0, end.index), rest: after.slice(end.index + end[0].length) };
}

/** A To/Кому (or Cc) field line of a header block. */
const TO_LINE = new RegExp(`^[ \\t*]*${fieldAlternation(FIELD_NAMES.to)}[ \\t*]*:`, 'i');

/**
 * The index after the fields Yandex's web client may list under a forward's author line, from `i` (blank lines
 * before them passed over), read into `forward`; `i` when there are none. Each such line ends in ';' ("Кому:
 * bot@example.test, Иван Петров <…>;" / "Тема: Акт сверки;"), and a blank line ends them: a forwarded text opening
 * "Тема: доступ к VPN" is the text.
 */
function readYandexFields(lines: string[], i: number, forward: ForwardedMail): number {
  let next = i;
  while (next < lines.length && !lines[next]!.trim()) next += 1;
  let fields = next;
  while (fields < lines.length && HEADER_LINE.test(lines[fields]!) && /;[ \t]*$/.test(lines[fields]!)) fields += 1;
  if (fields === next || lines[fields]?.trim()) return i;
  // Yandex lists the recipients first, with their addresses: "Кому: отдел кадров;" opening a memo is its text.
  if (!(TO_LINE.test(lines[next]!) && addressesIn(lines[next]!).length > 0)) return i;
  const end = readHeaderBlock(lines, i, forward);
  if (forward.subject) forward.subject = forward.subject.replace(/[ \t]*;$/, '');
  return end;
}

/** The index after The Bat!'s `===8<===…Original message text…===` line (BAT_TEXT_START) at `i`, else `i`. */
function afterBatTextStart(lines: string[], i: number): number {
  let start = i;
  while (start < lines.length && !lines[start]!.trim()) start += 1;
  return BAT_TEXT_START.test(lines[start] ?? '') ? start + 1 : i;
}

/** A forward in the form no library reads: a separator, then a Yandex author line or a header block. */
function splitRussianForward(text: string): ForwardSplit | undefined {
  const sep = forwardSeparator(text);
  if (!sep) return undefined;
  const note = text.slice(0, sep.index);
  const { inside, rest } = cutAtForwardEnd(dequote(text.slice(sep.index + sep[0].length).replace(/^\r?\n/, '')));
  const lines = inside.split('\n');
  let i = 0;
  while (i < lines.length && !lines[i]!.trim()) i += 1;
  const forward: ForwardedMail = { text: '' };
  const first = (lines[i] ?? '').slice(0, MAX_ATTRIBUTION_CHARS);
  const author = MAILRU_AUTHOR.exec(first) ?? YANDEX_AUTHOR.exec(first);
  if (author) {
    forward.date = author[1];
    forward.from = author[2]!.replace(/^"([^"]*)"/, '$1');
    i = readYandexFields(lines, i + 1, forward);
  } else {
    i = readHeaderBlock(lines, i, forward);
  }
  i = afterBatTextStart(lines, i);
  // Some clients quote the forwarded text itself with '>': it is the forwarded mail, not history. Mail.ru closes
  // the forward with a line of dashes.
  forward.text = dequote(lines.slice(i).join('\n').trim())
    .replace(/\n[ \t]*-{10,}[ \t]*$/, '')
    .trim();
  return { note, forward, rest };
}

/** Whether a separator line opens Outlook's quoted history ("Original Message") rather than a forward. */
const isHistorySeparator = (separator: string) => /Original Message|Исходное сообщение/i.test(separator);

/**
 * A forward's author as `Name <address>`, `address`, or `Name` alone (email-forward-parser's `from`, a mailbox or a
 * group).
 */
function authorOf(from: unknown): string | undefined {
  const mailbox =
    from && typeof from === 'object' && 'address' in from ? (from as { address?: string; name?: string }) : undefined;
  // Outlook gives a colleague of the same organisation by display name alone.
  if (!mailbox?.address) return mailbox?.name?.trim() || undefined;
  return mailbox.name ? `${mailbox.name} <${mailbox.address}>` : mailbox.address;
}

/**
 * A forward as email-forward-parser reads it (Gmail, Outlook, Apple Mail, Thunderbird, …). "-----Original
 * Message-----" and a bare From:/Sent: block start a forward when the subject says so (any client's prefix,
 * `ПЕРЕСЛ:` too: the library is given it as `Fwd:`), or when the mail is not a reply at all (a new mail that
 * carries another mail's header block forwards it, whatever its subject); in a reply they start Outlook's quoted
 * history, which the reply steps remove.
 */
function libraryForward(
  body: string,
  subject: string,
  explicit: RegExpExecArray | null,
  context: Required<ForwardContext>,
): ForwardSplit | undefined {
  const ask = askLibrary(subject, explicit, context.reply);
  if (!ask) return undefined;
  const { unprompted } = ask;
  const parsed = new EmailForwardParser().read(body, ask.subject);
  const email = forwardedEmail(parsed, body, unprompted);
  if (!email) return undefined;
  const note = parsed.message ?? '';
  const from = email.from as { address?: string | null; name?: string | null } | undefined;
  // Our own earlier answer under a header block is the history of a reply whose subject was changed (Outlook). A
  // From with a name and no address is how Outlook writes a colleague of the same organisation, with its Sent field
  // ("Отправлено:") below: a forward, unless the name is ours. Without that field, "От: отдел продаж / Кому:
  // бухгалтерия / Дата: …" lines are the author's memo.
  const block = body.slice(note.length).split('\n', 8);
  const ours = from?.address
    ? context.isOwnAddress(from.address)
    : !from?.name || context.isOwnAuthor(from.name) || !block.some((l) => OUTLOOK_SENT.test(l));
  if (unprompted && ours) return undefined;
  // Told a subject, the library answers with it: the block's own Subject line is the forwarded mail's (and tells
  // whether it forwarded another: Outlook's "FW: FW:" chain has no separator lines, only header blocks).
  const own = blockSubject(body.slice(note.length));
  const forward = forwardOf(
    email,
    unprompted ? own : (own ?? email.subject),
    textFollowsBlankLine(body.slice(note.length), email.body ?? ''),
  );
  return { note: withoutTrailingFields(note.replace(FORWARD_SEPARATOR, '')), forward, rest: '' };
}

/**
 * The mail email-forward-parser found forwarded in `body`, when it says something: its text, or, with no text, the
 * Subject line of its header block (a mail written only in its subject, forwarded from Outlook: the header block
 * ends the body) — only when the subject marks a forward (not `unprompted`): a header block the author pasted at the
 * end of a new mail ("вот заголовок последнего:") is their text, Sent and To lines included. Undefined when there is
 * no forward or it says nothing.
 */
function forwardedEmail(
  parsed: ReturnType<EmailForwardParser['read']>,
  body: string,
  unprompted: boolean,
): NonNullable<ReturnType<EmailForwardParser['read']>['email']> | undefined {
  if (!parsed.forwarded || !parsed.email) return undefined;
  if (parsed.email.body) return parsed.email;
  return !unprompted && blockSubject(body.slice((parsed.message ?? '').length)) ? parsed.email : undefined;
}

/**
 * How email-forward-parser is asked: with `Fwd: <subject>` when the subject marks a forward, or (`unprompted`)
 * when a header block with no forward separator sits in a mail that is no reply; without a subject when an explicit
 * forward separator speaks for itself; not at all (undefined) for a header block in a reply (its history).
 */
function askLibrary(
  subject: string,
  explicit: RegExpExecArray | null,
  reply: boolean,
): { subject: string | null; unprompted: boolean } | undefined {
  const forwardSubject = isForwardSubject(subject);
  const headerOnly = !explicit || isHistorySeparator(explicit[0]);
  if (forwardSubject) return { subject: `Fwd: ${bareSubject(subject)}`, unprompted: false };
  if (!headerOnly) return { subject: null, unprompted: false };
  return reply ? undefined : { subject: `Fwd: ${bareSubject(subject)}`, unprompted: true };
}

/**
 * Whether, in `block` (the forward from its header block on, as the mail has it), the forwarded text `text` (as
 * email-forward-parser gives it) starts below a blank line: the header block had ended, so header-like lines at the
 * text's start are the forwarded mail's own ("Кому: отдел сопровождения / Дата: 20.11.2026" of a memo). The
 * library drops Outlook's blank line (a lone space or no-break space) between the block and the text.
 */
function textFollowsBlankLine(block: string, text: string): boolean {
  const first = text
    .split('\n')
    .find((l) => l.trim())
    ?.trim();
  if (!first) return false;
  const lines = block.split('\n');
  const at = lines.findIndex((l) => l.trim() === first);
  return at > 0 && !lines[at - 1]!.replace(/\u00a0/g, ' ').trim();
}

/**
 * email-forward-parser's forwarded mail as ours (its text unquoted when every line is `>`-quoted; header lines the
 * library left at its start removed unless `afterBlank`: the text began below a blank line, textFollowsBlankLine).
 */
function forwardOf(
  email: { from?: unknown; date?: string | null; body?: string | null },
  subject: string | null | undefined,
  afterBlank = false,
): ForwardedMail {
  const text = dequote(email.body ?? '');
  return {
    from: authorOf(email.from),
    subject: subject ?? undefined,
    date: email.date ?? undefined,
    text: afterBlank ? text : withoutLeftoverHeaderLines(text),
  };
}

/**
 * The forwarded text without the header-block lines email-forward-parser leaves at its start (fields it does not
 * know: Outlook's Importance/"Важность:", Attachments/"Вложения:", Reply-To, Organization, and the To/Cc lines
 * after them).
 */
function withoutLeftoverHeaderLines(text: string): string {
  const lines = text.split('\n');
  // Only lines that go on from the block the library read: after a blank line the forwarded mail's text begins
  // ("Важность: высокая, нужно сегодня." there is the writer's).
  if (!HEADER_LINE.test(lines[0] ?? '')) return text;
  const end = readHeaderBlock(lines, 0, { text: '' });
  return lines
    .slice(end)
    .join('\n')
    .replace(/^\s*\n/, '');
}

const SUBJECT_OR_DATE_LINE = new RegExp(
  `^[ \\t]*${fieldAlternation(FIELD_NAMES.subject, FIELD_NAMES.date)}[ \\t]*:`,
  'i',
);
const BLOCK_SUBJECT = new RegExp(
  `^[ \\t*]*(?:${fieldAlternation(FIELD_NAMES.subject)})[ \\t*]*:\\*?[ \\t]*(.+)$`,
  'im',
);

/** The note without the fields the library leaves in it from Thunderbird's block (Subject, Date come before From). */
function withoutTrailingFields(note: string): string {
  const lines = note.trimEnd().split('\n');
  while (lines.length > 1 && SUBJECT_OR_DATE_LINE.test(lines.at(-1)!)) lines.pop();
  return lines.join('\n');
}

/** The Subject/Тема line of a forwarded mail's header block (the first one in `block`). */
function blockSubject(block: string): string | undefined {
  return BLOCK_SUBJECT.exec(block)?.[2]?.trim();
}

/**
 * The first forward of a body: a Russian-client forward behind an explicit separator, else the library's; an
 * Outlook "-----Исходное сообщение-----" block the library cannot read is a forward when the subject says so.
 */
function firstForward(body: string, subject: string, context: Required<ForwardContext>): ForwardSplit | undefined {
  const russian = splitRussianForward(body);
  const explicit = russian ? forwardSeparator(body) : null;
  if (russian && explicit && !isHistorySeparator(explicit[0]))
    return headerBlockForwardAbove(body, explicit.index, subject, context) ?? russian;
  const library = libraryForward(body, subject, explicit, context);
  if (library) return library;
  return russian?.forward.text && isForwardSubject(subject) ? russian : undefined;
}

/**
 * An Outlook forward (a header block "От:/Отправлено:" or "From:/Sent:", no separator line) above an explicit
 * separator at `before`: the outer forward of a chain (Outlook forwarding a Gmail or Yandex forward), so it is split
 * first and the separator below stays inside it (the recursion reads it). Only where a header block is a forward:
 * the subject marks one, or the mail answers none; never for a block whose From is ours (our answer quoted).
 */
function headerBlockForwardAbove(
  body: string,
  before: number,
  subject: string,
  context: Required<ForwardContext>,
): ForwardSplit | undefined {
  if (!isForwardSubject(subject) && context.reply) return undefined;
  const lines = body.slice(0, before).split('\n');
  const start = outlookHistoryIndex(lines);
  if (start < 0) return undefined;
  const all = body.split('\n');
  const forward: ForwardedMail = { text: '' };
  const blockAt = HISTORY_LINE.test(all[start]!) ? start + 1 : start;
  const end = readHeaderBlock(all, blockAt, forward);
  const address = forward.from && /[^\s<>"]+@[^\s<>"]+/.exec(forward.from)?.[0];
  if (end === blockAt || !forward.from) return undefined;
  if (address ? context.isOwnAddress(address) : context.isOwnAuthor(forward.from)) return undefined;
  forward.text = all.slice(end).join('\n').trim();
  return { note: lines.slice(0, start).join('\n'), forward, rest: '' };
}

/**
 * A forward quoted whole with `>` (its header block too: Apple Mail's plain text, its HTML `<blockquote type="cite">`
 * as text) with the author's text typed under it: `forward` is the body up to the separator line and the quoted block
 * unquoted, `rest` the author's text below it. Readers took that text for the forwarded mail's and lost the quoted
 * one (s38 F13–F15). Undefined when the mail has no forward separator, the first line under it is no quoted header
 * line, or nothing but blank lines follows the quoted block.
 */
function textBelowQuotedForward(body: string): { forward: string; rest: string } | undefined {
  const separator = forwardSeparator(body);
  if (!separator) return undefined;
  const end = separator.index + separator[0].length;
  const lines = body.slice(end).split('\n');
  let i = 1;
  while (i < lines.length && !lines[i]!.trim()) i += 1;
  if (i >= lines.length || !QUOTE_LINE.test(lines[i]!) || !HEADER_LINE.test(lines[i]!.replace(/^[ \t]*> ?/, '')))
    return undefined;
  let j = i;
  while (j < lines.length && (QUOTE_LINE.test(lines[j]!) || !lines[j]!.trim())) j += 1;
  if (j >= lines.length) return undefined;
  return {
    forward: `${body.slice(0, end)}\n${dequote(lines.slice(i, j).join('\n').trimEnd())}`,
    rest: lines.slice(j).join('\n'),
  };
}

/**
 * firstForward, for a forward quoted whole with the author's text under it too (textBelowQuotedForward): that text is
 * `rest`, and the note above the forward ends at its signature or phone footer, as above a quote.
 */
function forwardWithTextBelow(
  body: string,
  subject: string,
  context: Required<ForwardContext>,
): ForwardSplit | undefined {
  const below = textBelowQuotedForward(body);
  const split = firstForward(below?.forward ?? body, subject, context);
  if (!split || !below) return split;
  const rest = [split.rest, below.rest].filter((t) => t.trim()).join('\n\n');
  return { ...split, note: cutSignature(split.note), rest };
}

/**
 * What splitForwards knows about the mail beyond its body. `reply`: the mail answers another (In-Reply-To or
 * References; a `Re:` subject counts too), so an Outlook header block with no forward separator and no `Fwd:`
 * subject is its quoted history; in a mail that answers none it is a forward, unless `isOwnAddress` says its From
 * is ours (our own earlier answer quoted under a changed subject). Defaults: a reply, no address is ours.
 */
export type ForwardContext = {
  reply?: boolean;
  isOwnAddress?: (address: string) => boolean;
  /** Whether a From with no address (a display name alone) names us (mail-own-text.ts namesUs). Default: never. */
  isOwnAuthor?: (from: string) => boolean;
};

/**
 * Whether the first forward separator of a reply's body (FORWARD_SEPARATOR) lies in its quoted history, so that no
 * forward in the body is the author's: the separator is a `>` line and the subject is a reply's (isReplySubject: its
 * first prefix is `Re:`), or an unmarked history head stands above it (unmarkedHistoryAbove). A reply to a forward
 * ("Re: Fwd: …", "RE: FW: …") quotes the forward in its history, as a `>` quote that may open with the separator
 * (Gmail, Apple Mail, Thunderbird; RFC 3676 §4.5's marks) or unmarked under an attribution or Outlook's header block;
 * only the reply's new text is the author's (M04a's kind in the field cases). A separator below a marked quote, with
 * the author's text between (a forward bottom-posted under the quote), or above the history, is the author's
 * forward. Called only for a mail that answers another and is no forward by its subject (isForwardSubject).
 */
function forwardInQuotedHistory(body: string, subject: string): boolean {
  const separator = FORWARD_SEPARATOR.exec(body);
  if (!separator) return false;
  const lines = body.split('\n');
  const at = body.slice(0, separator.index).split('\n').length - 1;
  if (QUOTE_LINE.test(lines[at]!)) return isReplySubject(subject);
  // Only the lines above the separator: it and the header or author line under it are the forward's own head.
  return unmarkedHistoryAbove(lines, at);
}

/**
 * Whether an unmarked history head stands in `lines` above line `end`: Outlook's separator or header block
 * (outlookHistoryIndex), or a client's dated attribution line, also wrapped over two lines (isAttribution dated, of a
 * client's shape: isUnmarkedHead, as cutUnmarkedHistory reads it), with no `>` line under it (history that runs to
 * the end of the mail). "Вот что Петров пишет:" above a forward is the author's introduction, not a head.
 */
function unmarkedHistoryAbove(lines: string[], end: number): boolean {
  const above = lines.slice(0, end);
  if (outlookHistoryIndex(above) >= 0) return true;
  const next = nextTextIndexes(above);
  const head = (line: string) => isAttribution(line, true) && isUnmarkedHead(line);
  for (let i = 0; i < above.length; i += 1) {
    const line = above[i]!;
    if (!line.trim() || QUOTE_LINE.test(line)) continue;
    const single = head(line);
    const wrapped = !single && i + 1 < above.length && head(`${line.trim()} ${above[i + 1]!.trim()}`);
    if (!single && !wrapped) continue;
    const after = above[next[i + (wrapped ? 2 : 1)]!];
    if (after === undefined || !QUOTE_LINE.test(after)) return true;
  }
  return false;
}

/**
 * Splits off forwarded mail (inline forwards of every common client), recursively for nested forwards (depth 5).
 * The author's own note stays in `text`; each forward keeps its author, subject and its own new text (see
 * ForwardContext for when an Outlook header block is a forward). In a reply that is no forward by its subject
 * ("Re: Fwd: …", "RE: FW: …"), a forward inside the quoted history is no forward of the author's: the body stays
 * `text`, for extractNewText to remove the history (forwardInQuotedHistory).
 */
export function splitForwards(body: string, subject: string, depth = 0, context: ForwardContext = {}): BodyParts {
  if (depth > 5) return { text: body, forwards: [] };
  const isOwnAddress = context.isOwnAddress ?? (() => false);
  const isOwnAuthor = context.isOwnAuthor ?? (() => false);
  const reply = (context.reply ?? true) || isReplySubject(subject);
  // The author's own mail only (depth 0): inside a forwarded mail, a forward in its history is passed on with it.
  if (depth === 0 && reply && !isForwardSubject(subject) && forwardInQuotedHistory(body, subject))
    return { text: body, forwards: [] };
  const split = forwardWithTextBelow(body, subject, { reply, isOwnAddress, isOwnAuthor });
  if (!split) return { text: body, forwards: [] };
  const { note, forward, rest } = split;
  const inner = splitForwards(forward.text, forward.subject ?? '', depth + 1, { isOwnAddress, isOwnAuthor });
  const tail = rest.trim() ? splitForwards(rest, subject, depth + 1, context) : { text: '', forwards: [] };
  return {
    text: [note.trim(), tail.text.trim()].filter(Boolean).join('\n\n'),
    forwards: [{ ...forward, text: inner.text }, ...inner.forwards, ...tail.forwards],
  };
}

// ---- replies ---------------------------------------------------------------------------------------------------

// The verbs of clients' attribution lines ("… wrote:", "… пишет:"), in the languages of FIELD_NAMES: Russian, Ukrainian
// ("пише", "написав"), Belarusian, English, German, French, Spanish, Portuguese, Italian, Polish, Dutch, Czech.
const ATTRIBUTION_VERB =
  '(пишет|писал|писала|писали|писал\\(а\\)|написал|написала|написали|написал\\(а\\)|пише|писав|написав|написав\\(ла\\)|піша|напісаў|напісала|wrote|writes|schrieb|a écrit|escribió|escreveu|ha scritto|scrisse|pisze|napisał|napisała|napisał\\(a\\)|schreef|napsal|napsala|napsal\\(a\\))';

// An attribution line (possibly two lines joined): it ends with ':' and names a writer or a date.
const ATTRIBUTION = [
  /^On\b.{1,300}\bwrote\s*:$/i,
  new RegExp(`^.{0,300}(^|[\\s,])${ATTRIBUTION_VERB}\\s*:$`, 'i'),
  // Yandex: `21.11.2026, 10:05, "Workemon" <bot@example.test>:`; Mail.ru: `Суббота, 21 ноября 2026, 10:05 +03:00 от X <x@y>:`
  /^.{0,120}\d{1,2}:\d{2}.{0,200}(<[^<>\s@]+@[^<>\s@]+>|[^\s@]+@[^\s@]+)\s*:$/,
  /^.{0,200}\sот\s.{0,200}(<[^<>\s@]+@[^<>\s@]+>|[^\s@]+@[^\s@]+)\s*:$/i,
  // Horde IMP's default `attrib_text` "Quoting %f:" (%f: the From as written, `Name <addr>`), and its German form
  // "Zitat von %f:": no verb, no date; only with an address, so "Quoting the contract:" stays the author's.
  /^(Quoting|Zitat von)\s.{0,300}(<[^<>\s@]+@[^<>\s@]+>|[^\s@]+@[^\s@]+)\s*:$/i,
  // Mutt's and the Linux kernel lists' `* %n <%a> [%Y-%m-%d %H:%M]:` (the name, the address, the date in brackets).
  /^\*\s.{0,200}(<[^<>\s@]+@[^<>\s@]+>|[^\s@]+@[^\s@]+)\s+\[[^\]]{4,80}\]\s*:$/,
  // Sup's and alot's `Excerpts from %n's message of %d:`.
  /^Excerpts from\s.{1,200}'s message of\s.{4,100}:$/i,
];
// The verb before the date and time: Roundcube (Russian) `Workemon писал 2026-11-21 10:05:`, The Bat! `Вы писали
// 21 ноября 2026 г., 10:05:05:`, Lotus Notes `"X" <x@y> wrote on 11/21/2026 10:05:43 AM:` and `… писал(а)
// 21.11.2026 10:05:43:`. Only an attribution when quoted lines follow it: "Клиент писал 20.11.2026 в 10:05:" above
// the client's words is the author's own.
const QUOTED_ATTRIBUTION = [
  new RegExp(`^.{1,200}\\s${ATTRIBUTION_VERB}\\s.{0,80}\\d{1,2}:\\d{2}(:\\d{2})?(\\s?[AaPp]\\.?[Mm]\\.?)?\\s*:$`, 'i'),
];
// No client writes a longer attribution line (two wrapped lines joined); longer lines are not tested at all, which
// also keeps the patterns above linear on a hostile mail of long lines.
const MAX_ATTRIBUTION_CHARS = 500;

// What every client's attribution line carries besides a name: a date (a year, or dd.mm[.yy]).
const ATTRIBUTION_DATE = /\d{4}|\b\d{1,2}[./]\d{1,2}([./]\d{2,4})?\b/;

/**
 * Whether a line is an attribution line ("On … wrote:", "… пишет:", Yandex, Mail.ru, Gmail RU). `dated`: it must
 * also carry a date, as a client's does; used where no quoted block follows to confirm it, so that a sentence of
 * the author's own ("Прошу к 10:00 прислать выгрузку на petrov@example.test:") is never taken for one.
 */
function isAttribution(line: string, dated = false): boolean {
  const t = line.trim();
  if (t.length > MAX_ATTRIBUTION_CHARS || !t.endsWith(':')) return false;
  if (dated) return ATTRIBUTION.some((r) => r.test(t)) && ATTRIBUTION_DATE.test(t);
  return ATTRIBUTION.some((r) => r.test(t)) || QUOTED_ATTRIBUTION.some((r) => r.test(t));
}

/** Drops attribution lines at the end of a block that a quote follows, including one wrapped over two lines. */
function dropTrailingAttribution(block: string): string {
  const lines = block.trimEnd().split('\n');
  const last = lines.length - 1;
  if (last < 0) return block;
  if (isAttribution(lines[last]!)) return lines.slice(0, last).join('\n');
  if (last >= 1 && isAttribution(`${lines[last - 1]!.trim()} ${lines[last]!.trim()}`))
    return lines.slice(0, last - 1).join('\n');
  return block;
}

// Outlook's quoted history has no '>' marks: it starts at a header block "From:/От:/Від:" with "Sent:/Отправлено:/
// Надіслано:/Дата:" (FIELD_NAMES, in every language listed there).
const OUTLOOK_HEADER_START = new RegExp(`^[ \\t*]*${fieldAlternation(FIELD_NAMES.from)}[ \\t*]*:[ \\t]*\\S`, 'i');
const OUTLOOK_HEADER_NEXT = new RegExp(
  `^[ \\t*]*${fieldAlternation(FIELD_NAMES.sent, FIELD_NAMES.date, FIELD_NAMES.to, FIELD_NAMES.subject)}[ \\t*]*:`,
  'i',
);
// What makes it a mail's header block and not the author's own "От: отдел продаж / Кому: бухгалтерия" lines: an
// address in the From line, or Outlook's own Sent/Отправлено field.
const OUTLOOK_SENT = new RegExp(`^[ \\t*]*${fieldAlternation(FIELD_NAMES.sent)}[ \\t*]*:`, 'i');
const HISTORY_LINE =
  /^[ \t]*(-{3,}[ \t]*(Original Message|Исходное сообщение|Исходное письмо)[ \t]*-{3,}|_{10,})[ \t]*$/i;

/**
 * Whether line `i` starts Outlook's header block (From with an address or a dated Sent field, then another field).
 * Outlook's Sent field always holds a date ("Sent: Friday, November 20, 2026 10:00 AM", "Отправлено: 20 ноября
 * 2026 г. 10:00"): "From: accounting / Sent: every Monday / Period: October" is the author's answer, not a header.
 */
function isOutlookHeaderAt(lines: string[], i: number): boolean {
  if (!OUTLOOK_HEADER_START.test(lines[i]!)) return false;
  const next = lines.slice(i + 1, i + 4);
  const mailHeader = lines[i]!.includes('@') || next.some((l) => OUTLOOK_SENT.test(l) && /\d/.test(l));
  return mailHeader && next.some((l) => OUTLOOK_HEADER_NEXT.test(l));
}

/** Index of the line where Outlook's unmarked history starts (its separator or header block); -1 when none. */
function outlookHistoryIndex(lines: string[]): number {
  for (let i = 0; i < lines.length; i += 1) {
    if (HISTORY_LINE.test(lines[i]!) || isOutlookHeaderAt(lines, i)) return i;
  }
  return -1;
}

/**
 * The head of a quoted earlier message that carries no '>' marks, starting at line `i`: `bodyStart` is the index of
 * the line after the head, where the quoted message's text begins; `from` is who wrote it as the head names it (a
 * header block's From/От value, or the whole attribution line), undefined when it names nobody.
 */
export type UnmarkedHistoryHead = { bodyStart: number; from?: string };

/**
 * Whether line `i` of `lines` starts the head of an unmarked quoted message, and where its text begins: Outlook's
 * separator ("-----Original Message-----", "-----Исходное сообщение-----", a line of underscores) with the header
 * block under it, Outlook's header block alone ("From:/Sent:", "От:/Отправлено:"), or an attribution line ("On …
 * wrote:", "… пишет:", Yandex's, Mail.ru's; also wrapped over two lines). Undefined for any other line, for a
 * separator with no header block under it, and for a '>' line (marked quotes are extractNewText's).
 */
export function unmarkedHistoryHeadAt(lines: string[], i: number): UnmarkedHistoryHead | undefined {
  const line = lines[i];
  if (line === undefined || !line.trim() || QUOTE_LINE.test(line)) return undefined;
  if (HISTORY_LINE.test(line) || isOutlookHeaderAt(lines, i)) {
    const block: ForwardedMail = { text: '' };
    const blockAt = HISTORY_LINE.test(line) ? i + 1 : i;
    const end = readHeaderBlock(lines, blockAt, block);
    return block.from === undefined ? undefined : { bodyStart: end, from: block.from };
  }
  if (isAttribution(line)) return { bodyStart: i + 1, from: line.trim() };
  // Wrapped over two lines ("… <" / "bot@example.test> wrote:"), unless the next line is a whole dated attribution
  // of its own: then this line is the author's last one above it.
  const next = lines[i + 1];
  if (next === undefined || isAttribution(next, true)) return undefined;
  const joined = `${line.trim()} ${next.trim()}`;
  return isAttribution(joined) ? { bodyStart: i + 2, from: joined } : undefined;
}

function cutOutlookHistory(text: string): string {
  const lines = text.split('\n');
  const start = outlookHistoryIndex(lines);
  return start < 0 ? text : lines.slice(0, start).join('\n');
}

// Signatures: the RFC 3676 "-- " delimiter, and the footers phone and webmail apps add ("Sent from my iPhone",
// "Отправлено из мобильной Яндекс Почты", "Sent with Proton Mail"): each names its device or app, so that a line
// of the author's own ("Отправлено через СЭД вчера", "Sent via DHL on Monday") is not taken for one.
const SIGNATURE_START = [
  /^--\s*$/,
  /^(Sent from (my|Mail|Yahoo|Outlook|Samsung|AOL|Gmail|Proton|Zoho|myMail|Mail\.ru|Yandex|BlueMail|Spark)|Sent (with|via) (Proton|Spark|BlueMail|Superhuman|Samsung|BlackBerry|Android|Outlook|Yahoo|Mail for|the (Samsung|Yahoo|Outlook|Gmail|Mail))|Отправлено (с|со|из) (моего|моей|мобильн|iPhone|iPad|Android|Samsung|Galaxy|Huawei|Honor|Xiaomi|Redmi|Яндекс|Mail\.ru|myMail|почты|Почты|приложения|Outlook|смартфона|телефона|планшета|устройства (Galaxy|Samsung|HUAWEI|HONOR|Xiaomi|Redmi|POCO|realme|OPPO|vivo|Android|iPhone|iPad)|помощью (Spark|BlueMail|Outlook|myMail|Mail\.ru|Яндекс))|Get Outlook for|Скачайте Outlook|Загрузите Outlook|Получить Outlook для|Получите Outlook для)/i,
];

/** Closing formulas: the formula alone, or followed by a name ("С уважением, Иван Петров", "Thanks, John"). */
const CLOSING_FORMULA =
  /^(с уважением( и (наилучшими пожеланиями|благодарностью))?|с ув|с наилучшими пожеланиями|с благодарностью|искренне ваш[аи]?|всех благ|з повагою|mit freundlichen grüßen|viele grüße|всего доброго|всего хорошего|(with )?(best|kind|kindest|warm|warmest) regards|regards|best wishes|best|cheers|(yours )?(sincerely|faithfully|truly)|respectfully|(заранее )?спасибо( заранее| большое)?|(заранее )?благодарю( заранее)?|many thanks|thanks( in advance| again| a lot)?|thank you( in advance| again)?)(?=[\s,.!]|$)/i;
/**
 * The closing formulas that only ever close a letter (not thanks, which may open the text; not "С благодарностью!"
 * or a bare "Sincerely," either, which open a text or stand in a quoted template: those close only with a name under
 * them and nothing else below, CLOSING_FORMULA).
 */
const REGARDS_FORMULA =
  /^(с уважением( и (наилучшими пожеланиями|благодарностью))?|с ув|с наилучшими пожеланиями|искренне ваш[аи]?|(with )?(best|kind|kindest|warm|warmest) regards|regards|best wishes|yours (sincerely|faithfully|truly)|з повагою|mit freundlichen grüßen|viele grüße)(?=[\s,.!]|$)/i;
/** What may follow a closing formula on its line: punctuation, then up to three capitalised words of a name. */
const CLOSING_TAIL = /^[,.!]*\s*(\p{Lu}[\p{L}'’.-]*(\s+\p{Lu}[\p{L}'’.-]*){0,2})?[.!]?$/u;

/**
 * A closing formula line. "Спасибо, ноутбук заработал" or "Thanks, the VPN works now" go on with the author's
 * text and are not one: only a name may follow the formula.
 */
function isClosing(line: string): boolean {
  const formula = CLOSING_FORMULA.exec(line);
  return !!formula && CLOSING_TAIL.test(line.slice(formula[0].length).trim());
}

function cutSignature(text: string): string {
  const lines = text.split('\n');
  let end = lines.findIndex((l) => SIGNATURE_START.some((r) => r.test(l)));
  if (end < 0) end = lines.length;
  // Only the signature's own start cuts here: a paragraph that reads like a disclaimer or a name over a job title is
  // often the request itself ("Прошу уведомить получателя, что платёж отправлен по ошибке…", "Прошу выдать доступ
  // новому сотруднику. / Петрова Анна / Ведущий аналитик"), so those are cut only below a quote
  // (withoutFooterBelowQuote), where the author's answer stands above them. A wish over a name alone ("Хорошего дня!
  // / Иван") under the author's text closes it like a closing formula.
  const kept = lines.slice(0, end);
  const wish = closingWishAt(kept);
  if (wish >= 0) kept.length = wish;
  const nonEmpty = kept.map((l, i) => [l.trim(), i] as const).filter(([l]) => l);
  for (const [k, [line, index]] of nonEmpty.entries()) {
    // A closing formula among the last lines, with text above it and only signature lines below, starts the signature.
    // So does a regards formula that opens the text with a signature under it: the whole body is a signature (an
    // Outlook automatic one under a request written in the subject). A thanks first is the author's ("Спасибо!" /
    // "Нужен доступ к Jira").
    const regards = REGARDS_FORMULA.test(line);
    const opening = k === 0 && regards && nonEmpty.length > 1;
    if ((k === 0 && !opening) || nonEmpty.length - k - 1 > 8 || !isClosing(line)) continue;
    // Thanks may also open the next paragraph ("Спасибо!" / "Теперь нужна такая же выгрузка за ноябрь"): it closes
    // the letter only when a name or a contact line comes next, not the author's text (opensText). What follows the
    // name (a title, a phone, a slogan, a printing notice) is the signature's, as under a regards formula.
    const below = nonEmpty.slice(k + 1).map(([l]) => l);
    if (below.every(isSignatureLine) && (regards || !opensText(below[0] ?? ''))) return kept.slice(0, index).join('\n');
  }
  return kept.join('\n');
}

/** Words as a reader counts them in a line: runs of three or more letters (not initials, units or numbers). */
const wordsIn = (line: string): number => line.match(/\p{L}{3,}/gu)?.length ?? 0;

/**
 * A line of the author's text that no signature block holds: a sentence (three or more words ending in `.`, `!`, `?`,
 * `;`), a line that introduces what follows (two or more words and `:`, "Ещё нужно:"), a list item (`* `, `- `,
 * `1. `), or a line of nine or more words. A name, a title, a department, a phone or an address line is none of these
 * ("Ведущий аналитик", "Тел.: +7 (495) 123-45-67, доб. 4412", "г. Москва, ул. Тверская, д. 1").
 */
function isTextLine(line: string): boolean {
  const t = line.trim();
  const words = wordsIn(t);
  if (/^([*•·–-]|\d{1,2}[.)])\s/.test(t) || words >= 9) return true;
  return (/[.!?;]$/.test(t) && words >= 3) || (t.endsWith(':') && words >= 2);
}

/** A word of a name: capitalised (`Петров`, `O'Neil`, `Анна-Мария`), or an initial (`И.`). */
const NAME_WORD = String.raw`(?:\p{Lu}[\p{L}'’-]*\.?|\p{Lu}\.)`;
/** A full name: two to four such words ("Иван Петров", "John A. Smith"). */
const FULL_NAME = new RegExp(`^${NAME_WORD}(?:\\s+${NAME_WORD}){1,3}$`, 'u');
/** A first name alone on its line ("Иван", "Anna."). */
const ONE_NAME = new RegExp(`^${NAME_WORD}[.!]?$`, 'u');
/** A contact line: a phone, an address or a link alone, or one labelled as such ("Тел.: …", "E-mail: …"). */
const CONTACT_LINE =
  /^(?:(?:тел|tel|phone|моб|mob|e-?mail|почта|skype|telegram)(?=[\s.:]|$)|www\.|https?:\/\/|\S+@\S+$|[+\d(][\d\s().-]{6,}$)/iu;
/** A wish that closes a letter like a closing formula ("Хорошего дня!", "Have a nice day"). */
const CLOSING_WISH =
  /^(?:хорошего (?:дня|вечера)|удачного дня|всего наилучшего|have a (?:nice|good|great) (?:day|one|weekend))/i;

/**
 * Where a closing wish over a name starts, when those two lines end `lines` (after blank lines) with the author's
 * text above them: "Хорошего дня! / Иван" (CLOSING_WISH over FULL_NAME or ONE_NAME). -1 when they do not.
 */
function closingWishAt(lines: readonly string[]): number {
  let last = lines.length;
  while (last > 0 && !lines[last - 1]!.trim()) last -= 1;
  if (last < 3) return -1;
  const wish = lines[last - 2]!.trim();
  const name = lines[last - 1]!.trim();
  if (!CLOSING_WISH.test(wish) || !(FULL_NAME.test(name) || ONE_NAME.test(name))) return -1;
  return lines.slice(0, last - 2).some((l) => l.trim()) ? last - 2 : -1;
}

/**
 * Whether the line right under a thanks line is the author's text going on rather than the first line of a signature.
 * A signature opens with the author's name ("Иван Петров", "Иван Петров, ведущий аналитик", "John A. Smith | Payments",
 * "Иван"), a contact line, another closing formula or a wish ("С уважением", "Хорошего дня!"); anything else is the
 * author's text: "Теперь нужна такая же выгрузка за ноябрь", "И за ноябрь тоже", "Jira не открывается", "Ещё по b2b",
 * "Коллеги, нужна выгрузка" (one word before the comma is an address to readers, not a name). s34 T01–T05.
 */
function opensText(line: string): boolean {
  const t = line.trim();
  if (!t || isClosing(t) || CLOSING_WISH.test(t) || CONTACT_LINE.test(t) || ONE_NAME.test(t)) return false;
  return !FULL_NAME.test(t.split(/\s*[,|–—(]\s*/)[0]!);
}

/**
 * A line of pasted structured content, never of a signature: indented by two or more spaces or a tab (code, YAML,
 * a log's continuation, a table's columns), or ending or starting with code's brackets (`CREATE TABLE x (`, `{`,
 * `);`, `}`).
 */
function isStructuredLine(line: string): boolean {
  return /^(?: {2,}|\t)\S/.test(line) || /[{[(;]\s*$/.test(line) || /^\s*[)}\]]/.test(line);
}

/**
 * A line that can stand in a signature block under a closing formula: a name, a title, a phone, an address — short,
 * and not a postscript or a question (text the author still means: "P.S. И ещё доступ к Jira?").
 */
function isSignatureLine(line: string): boolean {
  return line.length <= 80 && !/^(p\.?\s?s\b|п\.?\s?с\.)/i.test(line) && !line.endsWith('?');
}

/**
 * The addresses written in a line of text, in order: bare, in angle brackets (`Name <addr>`), or after `mailto:`
 * (`Name [mailto:addr]`); a sentence's full stop after one is not part of it. As written (case kept).
 */
export function addressesIn(line: string): string[] {
  // Token by token, linear in the line (a global regex rescanning a 40,000-character token from each position
  // took seconds on a hostile mail): `local@domain` pairs of a token, left to right, as a global match finds them.
  const found: string[] = [];
  for (const token of line.split(/[\s<>"'[\]():;,]+/)) {
    if (!token.includes('@')) continue;
    const parts = token.split('@');
    for (let k = 0; k + 1 < parts.length; k += 1) {
      if (!parts[k] || !parts[k + 1]) continue;
      found.push(`${parts[k]}@${parts[k + 1]}`.replace(/\.+$/, ''));
      k += 1;
    }
  }
  return found;
}

/**
 * An attribution line that names one of our own addresses ("Workemon <bot@example.test> wrote:"): a client's
 * attribution of our message even without a date (Thunderbird's and K-9's "Name wrote:" forms), since the author
 * does not introduce their own words with our address.
 */
function isOwnAttribution(line: string, isOwnAddress?: (address: string) => boolean): boolean {
  return !!isOwnAddress && isAttribution(line) && addressesIn(line).some((a) => isOwnAddress(a));
}

/** A time of day as clients write it in attribution lines: `18:12`, `6:12`. */
const TIME = /\b\d{1,2}:\d{2}\b/;

/**
 * Whether a dated attribution line with no quote under it is a client's head, not a sentence of the author's that
 * ends in an address ("С 01.12.2026 09:00 прошу перенаправлять входящую почту с sales@example.test:", or a pasted log
 * line "2026-11-21 08:00:01 ERROR … Failed to deliver notification to ivan@example.test:"). A verb form ("On … wrote:",
 * "… пишет:") counts with a time or an address in it, as every client writes it; "Клиент 20.11 в чате написал:" above
 * the client's words is the author relaying them (s34 R01). The time-and-address forms (Yandex `21.11.2026, 10:05, "Workemon" <bot@…>:`, Gmail
 * RU `… в 10:05, Служба поддержки <bot@…>:`, Mail.ru `… 10:05 +03:00 от X <x@…>:`) only with no more than a name
 * between the time (or "от") and the address: nothing but punctuation before a bare address, at most six words
 * before one in angle brackets.
 */
function isUnmarkedHead(line: string): boolean {
  const t = line.trim();
  // Every client's verb form carries a time or an address ("20.11.2026 18:12, Workemon пишет:", "On …, 6:12 PM
  // Workemon <bot@…> wrote:"); "Клиент 20.11 в чате написал:" has a date alone and introduces the client's words.
  if (ATTRIBUTION[0]!.test(t) || ATTRIBUTION[1]!.test(t)) return TIME.test(t) || addressesIn(t).length > 0;
  const address = /(<[^<>\s@]+@[^<>\s@]+>|[^\s@<>]+@[^\s@<>]+)\s*:$/.exec(t);
  if (!address) return false;
  const before = t.slice(0, address.index);
  let from = -1;
  for (const m of before.matchAll(/\d{1,2}:\d{2}(?::\d{2})?|\sот\s/gi)) from = m.index + m[0].length;
  if (from < 0) return false;
  const between = before
    .slice(from)
    .replace(/^[\s,]*(?:(?:GMT|UTC|MSK)?[ \t]*[+-]\d{1,2}:?\d{2}|GMT|UTC|MSK|[AaPp]\.?[Mm]\.?)?[\s,]*/, '')
    .trim();
  if (!address[1]!.startsWith('<')) return between === '';
  return between.split(/\s+/).length <= 6;
}

/**
 * History some clients quote without '>' marks: an attribution line (or two) with new text above it and no quoted
 * line below it starts the history, which runs to the end. The attribution must carry a date and have a client's
 * shape (isUnmarkedHead), or name one of our own addresses (`isOwnAddress`, isOwnAttribution). In a mail that answers
 * none (`reply` false) only the latter: there is no history to cut, and a dated line of the author's ending in an
 * address and a colon is their text.
 */
function cutUnmarkedHistory(
  body: string,
  isOwnAddress?: (address: string) => boolean,
  reply = true,
  answersOurs = false,
): string {
  const lines = body.split('\n');
  // A dated head above the client's marked quote of our mail is the author relaying someone's words
  // (ourMarkedHeadIndex).
  const markedHead = reply ? ourMarkedHeadIndex(lines, nextTextIndexes(lines), answersOurs) : -1;
  let i = 1;
  const attribution = (line: string) =>
    (reply && markedHead <= i && isAttribution(line, true) && isUnmarkedHead(line)) ||
    isOwnAttribution(line, isOwnAddress);
  const nextText = (from: number) => {
    for (let j = from; j < lines.length; j += 1) if (lines[j]!.trim()) return lines[j];
    return undefined;
  };
  // Whether some line above i is the author's own (not quoted): kept as the loop goes, not recounted per line.
  let before = false;
  for (; i < lines.length; i += 1) {
    before ||= !!lines[i - 1]!.trim() && !/^[ \t]*>/.test(lines[i - 1]!);
    const single = attribution(lines[i]!);
    const wrapped = !single && i + 1 < lines.length && attribution(`${lines[i]!.trim()} ${lines[i + 1]!.trim()}`);
    if (!single && !wrapped) continue;
    const after = nextText(i + (wrapped ? 2 : 1));
    if (before && after !== undefined && !/^[ \t]*>/.test(after)) return lines.slice(0, i).join('\n');
  }
  return body;
}

// A quote marker is '>' at the start of a line (RFC 3676 §4.5: one '>' per level, then the quoted text). '>='
// is not one: it is the author's "at least" (`>=3 попыток`), never written by a client quoting a line.
const QUOTE_LINE = /^[ \t]*>(?!=)/;
// What marks an author's own '>' line while email-reply-parser and the quote filters run (they take any line
// starting with '>' for a quote); taken off again at the end. A private-use character: no text means it, and
// the input's own copies are removed first.
const OWN_LINE_MARK = '\uE000';

// The Bat!'s and FidoNet's quoting writes the quoted author's initials before the mark: "W> …", "ИП> …".
const INITIALS_QUOTE = /^([ \t]*)(\p{Lu}{1,3})>(?=[ \t>]|$)/u;

/**
 * `body` with initials quote marks ("W> ", "ИП> ": The Bat!'s and FidoNet's style) made plain '>' marks, so that the
 * quote steps see the quote. Only a run of two or more lines with the same initials (blank lines between allowed),
 * or one such line right under an attribution line: "A> B" written once by the author stays as it is.
 */
function plainQuoteMarks(body: string): string {
  if (!body.includes('>')) return body;
  const lines = body.split('\n');
  const initials = lines.map((l) => (l.length <= 2000 ? INITIALS_QUOTE.exec(l)?.[2] : undefined));
  let above: string | undefined;
  for (let i = 0; i < lines.length; i += 1) {
    const mark = initials[i];
    if (!mark) {
      if (lines[i]!.trim()) above = lines[i];
      continue;
    }
    let j = i;
    while (initials[j + 1] === mark || (!lines[j + 1]?.trim() && j + 2 < lines.length && initials[j + 2] === mark))
      j += initials[j + 1] === mark ? 1 : 2;
    if (j > i || (above !== undefined && isAttribution(above)))
      for (let k = i; k <= j; k += 1) lines[k] = lines[k]!.replace(INITIALS_QUOTE, '$1>');
    above = lines[j];
    i = j;
  }
  return lines.join('\n');
}

/** Index of the first non-empty line at or after each index (lines.length when none): one pass, from the end. */
function nextTextIndexes(lines: string[]): number[] {
  const next = new Array<number>(lines.length + 1).fill(lines.length);
  for (let i = lines.length - 1; i >= 0; i -= 1) next[i] = lines[i]!.trim() ? i : next[i + 1]!;
  return next;
}

/**
 * Index of the first dated attribution line (also one wrapped over two lines) that a quoted ('>') line follows, in a
 * mail that answers one of ours (`answersOurs`): history is quoted newest first, so that is where the client's marked
 * quote of our mail, the one answered, begins; -1 when none or when the mail answers none of ours. An unmarked dated
 * head above it ("Клиент 20.11 в 14:30 написал:", "On 20.11 at 14:30 the customer wrote:") is not the history of an
 * earlier message: it is the author relaying someone's words in their new text (s34 review A01–A03). In a mail that
 * answers someone else a marked head proves nothing: in a thread that mixes clients, a colleague's unmarked quoted
 * reply carries its own marked quote of an older mail (s35 review R1).
 */
function ourMarkedHeadIndex(lines: string[], next: number[], answersOurs: boolean): number {
  if (!answersOurs) return -1;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    if (!line.trim() || QUOTE_LINE.test(line)) continue;
    const single = isAttribution(line, true);
    const wrapped = !single && i + 1 < lines.length && isAttribution(`${line.trim()} ${lines[i + 1]!.trim()}`, true);
    if (!single && !wrapped) continue;
    const after = lines[next[i + (wrapped ? 2 : 1)]!];
    if (after !== undefined && QUOTE_LINE.test(after)) return i;
  }
  return -1;
}

/**
 * Whether the unquoted line `i` (alone, or wrapped with the next) is an attribution that starts history: a quoted
 * line follows it, or it is a dated head of a client's shape with the author's text below (isUnmarkedHead).
 */
function headsHistory(lines: string[], i: number, next: number[], dated: boolean, markedHead: number): boolean {
  const line = lines[i]!;
  const single = isAttribution(line, dated);
  const joined = i + 1 < lines.length ? `${line.trim()} ${lines[i + 1]!.trim()}` : undefined;
  const wrapped = !single && joined !== undefined && isAttribution(joined, dated);
  if (!single && !wrapped) return false;
  const after = lines[next[i + (wrapped ? 2 : 1)]!];
  if (after === undefined) return false;
  const head = wrapped ? joined! : line;
  return QUOTE_LINE.test(after) || (markedHead <= i && isAttribution(head, true) && isUnmarkedHead(head));
}

/**
 * Index of the line where the history of the previous message starts; -1 when none is recognised. That is an
 * attribution line (also one wrapped over two lines) that a quoted line follows; one that is itself quoted and
 * dated (Apple Mail quotes its "… написал(а):" line with the message); a dated attribution with unquoted text
 * below it (cutUnmarkedHistory); or Outlook's separator or header block — whichever comes first. `dated`: every
 * attribution must carry a date, as a client's does (in a mail that answers none, "Клиент пишет:" above a quote is
 * the author introducing their own quote).
 */
function historyStart(lines: string[], dated: boolean, answersOurs = false): number {
  const outlook = outlookHistoryIndex(lines);
  const end = outlook < 0 ? lines.length : outlook;
  const next = nextTextIndexes(lines);
  const markedHead = ourMarkedHeadIndex(lines, next, answersOurs);
  for (let i = 0; i < end; i += 1) {
    const line = lines[i]!;
    if (!line.trim()) continue;
    if (QUOTE_LINE.test(line)) {
      if (isAttribution(line.replace(/^([ \t]*>)+/, ''), true)) return i;
      continue;
    }
    if (headsHistory(lines, i, next, dated, markedHead)) return i;
  }
  return outlook;
}

/** A `\` continuation: the shell's next line follows. */
const LINE_CONTINUED = '\\';

/**
 * What a line of a shell command leaves open: LINE_CONTINUED when it ends with `\` after a space (`curl -X POST \`),
 * or, typed without the space, on a line that starts with a shell prompt (`$ curl https://x/api\`; a path such as
 * `\\fs01\exports\` or `В корень диска D:\` ends with a backslash too, s34 review Q01, s35 review Q1–Q5); a
 * here-document's delimiter (`cat <<EOF`, `<<-'END'`, `<<EOF >> out.txt`, `cat <<EOF>/tmp/x.json`; not typed
 * guillemets `<<Romashka>>`, `<<Romashka>>.`, Q02), else undefined. `continuing`: the line continues a command
 * already (a `> ` continuation line), where a backslash at its end continues it again, space or not.
 */
function shellOpening(line: string, continuing = false): string | undefined {
  const end = line.trimEnd();
  if (end.endsWith('\\') && (continuing || /[ \t]\\$/.test(end) || /^[ \t]*[$#%][ \t]/.test(end)))
    return LINE_CONTINUED;
  const heredoc =
    /<<[-~]?[ \t]?(['"]?)([A-Za-z_]\w*)\1(?:(?=[ \t;|&)]|$)|(>>?[~/.$-]*[\w/][\w./~$-]*)(?:[ \t;|&]|$))/.exec(line);
  if (!heredoc) return undefined;
  // A redirect typed against it (`<<EOF>/tmp/x.json`) only with a quoted or upper-case delimiter, as here-documents
  // are written: `<<Report>>_v2` and `<<Romashka>>/<<Vasilek>>` are names in typed guillemets (s35 review Q3, Q5).
  if (heredoc[3] !== undefined && !heredoc[1] && !/^[A-Z_][A-Z0-9_]*$/.test(heredoc[2]!)) return undefined;
  return heredoc[2];
}

/**
 * Marks (OWN_LINE_MARK, in place) the '>' lines of a shell command copied from a terminal: bash's and sh's
 * continuation prompt (PS2) is `> `, so the lines after one ending in `\` (`curl … \` / `> -H …`) or opening a
 * here-document (`cat <<EOF` / `> text` / `> EOF`) start with '>' — wherever they stand, above or below the quoted
 * history (s34 R02). The run ends at a line that leaves nothing open, at the delimiter, or at a line that is not one.
 */
function markShellContinuations(lines: string[]): void {
  let open: string | undefined;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    if (open === undefined || !QUOTE_LINE.test(line)) {
      open = QUOTE_LINE.test(line) ? undefined : shellOpening(line);
      continue;
    }
    lines[i] = OWN_LINE_MARK + line;
    const content = line.replace(/^[ \t]*> ?/, '');
    if (open === LINE_CONTINUED) open = shellOpening(content, true);
    else if (content.trim() === open) open = undefined;
  }
}

/**
 * Marks the author's own '>' lines (OWN_LINE_MARK before them) so that only the quoted previous message is dropped:
 * - `>=` lines are never quotes;
 * - above the start of the history (an attribution line, Outlook's block), a '>' line below some text of the
 *   author's is theirs: a top-posted request quoting a figure or a markdown-style quote
 *   (`> 5 000 операций в день не проходят`);
 * - in a mail that answers none (`reply` false: no In-Reply-To/References, no `Re:` subject) with no history
 *   found (only a dated attribution counts there), there is no previous message to quote: every '>' line is the
 *   author's;
 * - in a reply with no attribution, '>' lines stay quotes: interleaved answers under the quoted questions, or the
 *   answered message quoted at the bottom — this function cannot compare them with that message, so it keeps the
 *   rule that drops them.
 */
function markOwnQuoteLines(body: string, reply: boolean, answersOurs = false): string {
  const lines = body.split(OWN_LINE_MARK).join('').split('\n');
  markShellContinuations(lines);
  const start = historyStart(lines, !reply, answersOurs);
  const ownUntil = start >= 0 ? start : reply ? 0 : lines.length;
  let textAbove = !reply && start < 0;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    if (/^[ \t]*>=/.test(line)) lines[i] = OWN_LINE_MARK + line;
    else if (!QUOTE_LINE.test(line)) textAbove ||= i < ownUntil && !!line.trim();
    else if (i < ownUntil && textAbove) lines[i] = OWN_LINE_MARK + line;
  }
  return lines.join('\n');
}

/**
 * An attribution wrapped over two lines right above a quote ("В Сб, 21/11/2026 в 10:05 +0300, Служба …" /
 * "пишет:", Evolution's and Thunderbird's wrapping) joined into one line, so the quote-splitting steps see it whole
 * (email-reply-parser takes only the second half into the quote). Not when the second line is a whole dated
 * attribution of its own ("12.03 Пётр написал:"): the first is then the author's last line above it.
 */
/**
 * Whether `line` and `second` are one attribution wrapped in two (`joined`): neither alone is one (a dated second
 * line is a whole attribution of its own), and the two carry a date or an address, as a client's head does
 * ("… он / написал:" above a quote is the author's sentence).
 */
function isWrappedAttribution(line: string, second: string, joined: string): boolean {
  if (isAttribution(line) || isAttribution(second, true)) return false;
  return isAttribution(joined, true) || (isAttribution(joined) && addressesIn(joined).length > 0);
}

/**
 * How many lines, from `lines[i]`, make one wrapped attribution above a quoted line: 2 or 3 (Gmail wraps at 78
 * columns, so a long display name puts the address on a third line, "<" / "bot@…>:"; three only when they name an
 * address), 1 when the line is no wrapped attribution. `next` is nextTextIndexes(lines).
 */
function wrappedAttributionLines(lines: string[], next: number[], i: number): 1 | 2 | 3 {
  const line = lines[i]!;
  const unquotedText = (l: string | undefined): l is string => l !== undefined && !!l.trim() && !QUOTE_LINE.test(l);
  const quotedAt = (k: number) => {
    const l = lines[next[k] ?? lines.length];
    return l !== undefined && QUOTE_LINE.test(l);
  };
  const second = lines[i + 1];
  if (!unquotedText(line) || second === undefined || QUOTE_LINE.test(second)) return 1;
  const joined = `${line.trim()} ${second.trim()}`;
  if (quotedAt(i + 2) && isWrappedAttribution(line, second, joined)) return 2;
  const third = lines[i + 2];
  if (!second.trim() || third === undefined || QUOTE_LINE.test(third) || !quotedAt(i + 3)) return 1;
  const joined3 = `${joined} ${third.trim()}`;
  const three =
    joined3.length <= MAX_ATTRIBUTION_CHARS &&
    !isAttribution(joined) &&
    addressesIn(joined3).length > 0 &&
    isWrappedAttribution(line, `${second.trim()} ${third.trim()}`, joined3);
  return three ? 3 : 1;
}

function joinWrappedAttributions(body: string): string {
  const lines = body.split('\n');
  const next = nextTextIndexes(lines);
  const out: string[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const n = wrappedAttributionLines(lines, next, i);
    out.push(
      n === 1
        ? lines[i]!
        : lines
            .slice(i, i + n)
            .map((l) => l.trim())
            .join(' '),
    );
    i += n - 1;
  }
  return out.join('\n');
}

/**
 * Marks (OWN_LINE_MARK) the lines of header blocks ("От: … / Отправлено: … / Кому: … / Тема: …") that the author
 * pasted into their answer — the header of the mail they ask about — so that they are not taken for the start of
 * the quoted history (Outlook's unmarked history starts at such a block) and the author's text below them is kept.
 * A block is pasted when the author's line right above it introduces it (ends with ':', "Вот это письмо:"; a client
 * puts nothing but a blank or a separator line above the history it quotes) and its From is not ours. Where it is
 * is all there is to go on: a block of the author's own older mail, quoted in our answer under the text of ours
 * that mail-own-text.ts took out, looks the same.
 */
/** Whether the author's last line above line `i` (blank lines passed over) introduces it: it ends with ':'. */
function introducedAt(lines: string[], i: number): boolean {
  let above = i - 1;
  while (above >= 0 && !lines[above]!.trim()) above -= 1;
  return above >= 0 && lines[above]!.trimEnd().endsWith(':') && !isAttribution(lines[above]!);
}

/**
 * Index of the first line of `lines` that starts a head (unmarkedHistoryHeadAt: Outlook's header block or separator,
 * an attribution line) naming one of our addresses; -1 when none does. One pass.
 */
function firstOwnHeadIndex(lines: string[], isOwnAddress: (address: string) => boolean): number {
  for (let k = 0; k < lines.length; k += 1) {
    if (lines[k]!.length > MAX_ATTRIBUTION_CHARS) continue;
    const head = unmarkedHistoryHeadAt(lines, k);
    if (head && addressesIn(head.from ?? '').some((a) => isOwnAddress(a))) return k;
  }
  return -1;
}

function markPastedHeaderBlocks(
  body: string,
  isOwnAddress?: (address: string) => boolean,
  answersOurs = false,
): string {
  if (!body.includes(':')) return body;
  const lines = body.split('\n');
  let changed = false;
  // In a mail that answers ours, the history the client quotes starts with our mail's head: a header block of
  // someone else above that head is one the author pasted, introduced or not (s37 reply review G08, G15).
  let ownHead: number | undefined;
  const aboveOwnHead = (i: number) => {
    if (!answersOurs || !isOwnAddress) return false;
    ownHead ??= firstOwnHeadIndex(lines, isOwnAddress);
    return i < ownHead;
  };
  for (let i = 0; i < lines.length; i += 1) {
    if (!isOutlookHeaderAt(lines, i)) continue;
    const from = unmarkedHistoryHeadAt(lines, i)?.from ?? '';
    if (isOwnAddress && addressesIn(from).some((a) => isOwnAddress(a))) break;
    if (!introducedAt(lines, i) && !aboveOwnHead(i)) break;
    const end = readHeaderBlock(lines, i, { text: '' });
    for (let k = i; k < end; k += 1) if (lines[k]!.trim()) lines[k] = OWN_LINE_MARK + lines[k];
    changed = true;
    i = end - 1;
  }
  return changed ? lines.join('\n') : body;
}

/** How many non-empty lines below a separator signatureFollows reads before it takes them for a signature. */
const SIGNATURE_BLOCK_LINES = 40;

/**
 * Whether a signature starts at line `i`, which email-reply-parser or SIGNATURE_START takes for a signature
 * separator or a phone app's footer (`--`, `-- `, `---`, `==`, `__`, "Sent from …", "Отправлено с iPhone"): the line
 * is no sentence itself (a footer names a device or an app; "Sent from the Android app (version 5.2.1), every top-up
 * is declined with code 51; …" is the author's), and what follows it, up to the quoted history (a '>' line, an
 * attribution, Outlook's header block, a forward's separator) or the end, is a signature block: its first line a
 * name or contact line (no sentence, no longer than 80 characters, not an intro ending in ':') or another footer
 * (`isStart`: "-- " / "Sent from my Android device with K-9 Mail. Please excuse my brevity."), and no line of pasted
 * structured content (isStructuredLine) anywhere in it. `pg_dump` writes `--` around its comments and YAML starts a
 * document with `---`: such pastes, and the author's text under them, are kept (s34 P01–P03). Past
 * SIGNATURE_BLOCK_LINES non-empty lines, a signature as before.
 */
/**
 * Whether `line`, the first under a separator, opens a signature: another footer (`isStart`), a name, contact or
 * closing line (opensText says it is not text; a name also with a title and company after it in one sentence,
 * "Иван Петров, ведущий аналитик, ООО «Ромашка».", which Outlook users type "--" above), or a short line that is
 * no sentence and no intro ending in ':'.
 */
function opensSignature(line: string, isStart: (line: string) => boolean): boolean {
  const t = line.trim();
  return isStart(line) || !opensText(t) || (!isTextLine(t) && isSignatureLine(t) && !t.endsWith(':'));
}

/**
 * A bare rule line (`--`, `---`, `___`, `====` without RFC 3676's trailing space): weaker evidence of a signature
 * than `-- `, since SQL writes `--` around its comments, YAML starts a document with `---` and Markdown draws a rule
 * with it.
 */
const BARE_RULE = /^\s*(?:-{2,}|_{2,}|={2,})\s*$/;
/**
 * A line of pasted code, configuration or data: a SQL comment (`-- monthly totals`, not a rule of dashes) or
 * statement (keyword pairs: `select … from`, `update … set`, `delete from`, …; a clause opening an upper-case line),
 * `key: value` / `key = value` with a lower-case identifier key (YAML, properties, INI), `KEY=value` (env), JSON, an
 * INI section, a Markdown table row, tab-separated columns (a spreadsheet), a shell prompt or `curl`, an HTTP request
 * or status line, a log line opening with a timestamp.
 */
const CODE_LINES = [
  /^--\s*[^-\s]/,
  /^(?:select\b.*\bfrom|insert\s+into|update\s+\S+\s+set|delete\s+from|(?:create|alter|drop)\s+(?:table|index|view|schema|database|function)|grant\b.*\bon\b.*\bto|with\s+\w+\s+as\s*\()\b/i,
  /^(?:SELECT|FROM|WHERE|JOIN|LEFT JOIN|GROUP BY|ORDER BY|HAVING|LIMIT|UNION)\b/,
  /^[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*\s*[:=]\s*\S/,
  /^[A-Z_][A-Z0-9_]*=\S/,
  /^\{\s*"/,
  /^\[[a-z0-9_.-]+\]$/,
  /^\|.*\|$/,
  /\S\t+\S/,
  /^(?:\$ |curl\s|(?:GET|POST|PUT|PATCH|DELETE|HEAD) (?:\/|https?:)|HTTP\/\d)/,
  /^\[?\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}|^\[?\d{2}:\d{2}:\d{2}\b/,
];
/** Words of a request: asking someone to do something (what the author wants answered). */
const REQUEST_WORDS =
  /(?:^|[\s,])(?:пожалуйста|прошу|просим|просьба|помогите|подскажите|проверьте|посмотрите|пришлите|перезапустите|сделайте|дайте|верните|отмените|разблокируйте|продлите|разберитесь|уточните|нужн[аоыеу]?|надо|хочу|хотим|please|kindly|could you|can you|would you|i need|we need|let me know)(?=[\s,.!?]|$)/iu;
/** Politeness that makes even a two-word line a request ("Разблокируйте, пожалуйста."). */
const PLEASE = /(?:^|[\s,])(?:пожалуйста|please)(?=[\s,.!?]|$)/iu;
/**
 * What only a signature's footer says, even when it says "please" or asks: disclaimers, printing notices, courtesy
 * and service lines, slogans ("Остались вопросы? Звоните…", "Please don't hesitate to contact me").
 */
const FOOTER_WORDS =
  /конфиденц|адресат|получател|по ошибке|уведом|перед печатью|распечатыв|не отвечайте|отпис|обращайтесь|звоните|пишите нам|свяж[иеу]|обратите внимание|направлять|(?:остались|есть|возникли|возникнут) (?:ли )?вопрос|нужна помощь|confidential|intended|recipient|in error|notify|before printing|excuse|brevity|do not reply|unsubscribe|hesitate|contact (?:me|us)|please note|visit us|have a question|need help/iu;
/**
 * Legal and bank lines of a company signature (`ООО «…»`, `ИНН`, `IBAN:`, `LLC`). Letters around the Cyrillic
 * abbreviations are looked for by Unicode class: JavaScript's `\b` knows ASCII word characters only.
 */
const LEGAL_LINE =
  /^(?:ООО|ОАО|ЗАО|ПАО|АО|ИП)\s|(?<![\p{L}\p{N}])(?:ИНН|КПП|ОГРН|БИК|INN|KPP|OGRN|IBAN|BIC|SWIFT|VAT)(?![\p{L}\p{N}])|\b(?:LLC|Ltd|GmbH|Inc)\b\.?/u;
/** A bare site (`www.corp.example`, `https://corp.example/`): a signature's, where a pasted link has a path. */
const BARE_SITE = /^(?:https?:\/\/)?(?:www\.)?[\w-]+(?:\.[\w-]+)+\/?$/i;

/** A line of digits alone, no `+`, spaces or dashes: an operation, account or card number, or an unformatted phone. */
const BARE_NUMBER = /^\d{7,}$/;

/** A bare number shaped like a phone number written without separators (`89161234567`, `4951234567`). */
const PHONE_SHAPED = /^(?:[78]\d{10}|\d{10})$/;

/**
 * Whether `block` lists numbers one per line: operation, transaction or account numbers pasted as data — two or more
 * BARE_NUMBER lines, one of them at least not shaped like a phone. A signature gives phones, mostly written as phones
 * (`+7 495 123-45-67`, `тел. …`); unformatted phones alone, however many, still read as a signature.
 */
function listsNumbers(block: string[]): boolean {
  const numbers = block.filter((l) => BARE_NUMBER.test(l));
  return numbers.length >= 2 && numbers.some((n) => !PHONE_SHAPED.test(n));
}

/** Whether a block below a bare rule shows a signature: a name or closing first, or a contact, legal or footer line. */
function signatureEvidence(block: string[]): boolean {
  const first = block[0]!;
  const [head, ...rest] = first.split(/\s*[,|–—(]\s*/);
  const named = FULL_NAME.test(first) || (FULL_NAME.test(head!) && !/\d/.test(rest.join(' ')));
  if (named || isClosing(first)) return true;
  const numberList = listsNumbers(block);
  return block.some(
    (l) =>
      (CONTACT_LINE.test(l) && !/^https?:\/\/\S+\/\S/.test(l) && !(numberList && BARE_NUMBER.test(l))) ||
      BARE_SITE.test(l) ||
      LEGAL_LINE.test(l) ||
      FOOTER_WORDS.test(l),
  );
}

/**
 * A mail gateway's banner, put at the very end of a mail, below any quote: one paragraph that names an outside
 * sender and warns ("Внешнее письмо. Не открывайте вложения и ссылки…", "CAUTION: This email originated from outside
 * of the organization. Do not click links…"), or an antivirus' stamp ("Это сообщение проверено антивирусом Kaspersky
 * …", "This email has been scanned for viruses").
 */
const BANNER_SENDER =
  /внешн(?:ее|ий|его|яя)\s+(?:письм|отправител|почт)|вне\s+(?:организации|компании)|external\s+(?:e-?mail|sender|message)|outside\s+(?:of\s+)?(?:the|your)\s+organi[sz]ation/iu;
const BANNER_WARNING =
  /не\s+(?:открывайте|переходите|нажимайте)|будьте\s+осторожн|осторожн\w*\s+(?:с|со)\s+(?:ссылк|вложени)|do\s+not\s+(?:click|open)|don'?t\s+(?:click|open)|unless\s+you\s+recogni[sz]e|use\s+caution/iu;
const ANTIVIRUS_STAMP =
  /(?:проверено|проверен[оа]?)\s+(?:антивирус|на\s+вирусы)|has\s+been\s+scanned\s+(?:for\s+viruses|by)|virus[- ]?free/iu;

/** A job title in a signature's second line ("Ведущий аналитик", "Senior Analyst | Payments"). */
const JOB_TITLE =
  /аналитик|менеджер|руководител|директор|специалист|инженер|бухгалтер|экономист|юрист|разработчик|администратор|начальник|заместител|консультант|ведущ|старш|главн|head\s+of|manager|analyst|engineer|director|officer|specialist|developer|accountant|consultant|administrator|\blead\b|\b(?:ceo|cto|cfo|coo)\b/iu;

/** Distinct FOOTER_WORDS a disclaimer paragraph holds at least (with DISCLAIMER_MIN_CHARS): an answer rarely has two. */
const DISCLAIMER_MIN_WORDS = 2;
/** The shortest paragraph taken for a disclaimer below a quote, in characters. */
const DISCLAIMER_MIN_CHARS = 120;
const FOOTER_WORDS_ALL = new RegExp(FOOTER_WORDS.source, 'giu');

/**
 * Whether `paragraph` (its non-empty lines, trimmed), the last of what stands below a quote, is what a mail server
 * or the client appended rather than the author's answer: a gateway's banner, an antivirus stamp or a disclaimer
 * (isServerFooter); a signature block (a closing formula or a wish over a name, or a name over a job title; lines of
 * 80 characters at most, none a request or question). A name, a phone, an address or a company given as the answer to a question
 * ("Иван Сидоров / +7 916 …", "ООО «Ромашка», ИНН …") is none of these.
 */
function isAppendedParagraph(paragraph: string[]): boolean {
  if (isServerFooter(paragraph)) return true;
  if (paragraph.length < 2 || paragraph.some((l) => l.length > 80 || authorsLine(l))) return false;
  const [first, second] = paragraph as [string, string];
  const name = (line: string) => FULL_NAME.test(line.split(/\s*[,|–—(]\s*/)[0]!) || ONE_NAME.test(line);
  return (
    ((isClosing(first) || CLOSING_WISH.test(first)) && name(second)) ||
    (FULL_NAME.test(first.split(/\s*[,|–—(]\s*/)[0]!) && JOB_TITLE.test(second))
  );
}

/**
 * Whether `paragraph` (its non-empty lines, trimmed) is what a mail server or a company's client template appends,
 * whoever wrote the rest: a gateway's banner (BANNER_SENDER with BANNER_WARNING), an antivirus stamp, or a disclaimer
 * (DISCLAIMER_MIN_CHARS or more holding DISCLAIMER_MIN_WORDS distinct FOOTER_WORDS, no question). Never an answer.
 */
function isServerFooter(paragraph: string[]): boolean {
  const text = paragraph.join(' ');
  if ((BANNER_SENDER.test(text) && BANNER_WARNING.test(text)) || ANTIVIRUS_STAMP.test(text)) return true;
  const footerWords = new Set((text.match(FOOTER_WORDS_ALL) ?? []).map((w) => w.toLowerCase()));
  return text.length >= DISCLAIMER_MIN_CHARS && footerWords.size >= DISCLAIMER_MIN_WORDS && !text.includes('?');
}

/**
 * A fragment below a quote without what was appended under the author's answer: from a signature separator or phone
 * footer line (SIGNATURE_START, a bare rule) with no line of the author's after it (a request, a question, code:
 * authorsLine), and the last paragraphs that isAppendedParagraph takes for a banner, a disclaimer or a signature
 * block. Losing an answer is worse than passing a footer to the model: only such clear evidence cuts. Before session
 * 38 a footer above the quote cut the whole mail from there, these lines with it.
 */
function withoutFooterBelowQuote(content: string): string {
  const lines = content.split('\n');
  const bare = lines.map(unmarked);
  let end = lines.length;
  for (let k = 0; k < bare.length; k += 1) {
    if (!bare[k] || !(SIGNATURE_START.some((r) => r.test(bare[k]!)) || BARE_RULE.test(bare[k]!))) continue;
    if (bare.slice(k + 1).some((l) => l && authorsLine(l) && !FOOTER_WORDS.test(l))) continue;
    end = k;
    break;
  }
  end = withoutAppendedParagraphs(bare, end);
  while (end > 0 && !bare[end - 1]) end -= 1;
  return lines.slice(0, end).join('\n');
}

/** A line without the OWN_LINE_MARK a step put before it, trimmed. */
function unmarked(line: string): string {
  return (line.startsWith(OWN_LINE_MARK) ? line.slice(OWN_LINE_MARK.length) : line).trim();
}

/**
 * Where the text of `bare` (trimmed lines) ends when the last paragraphs above line `end` that isAppendedParagraph
 * takes for appended (a disclaimer, a gateway's banner, an antivirus stamp, a signature block) are left out: the
 * index of the first line of those paragraphs, or `end` when there are none. A paragraph under a line ending in ':'
 * is the text that line introduces, and stays.
 */
function withoutAppendedParagraphs(
  bare: readonly string[],
  end: number,
  appended: (paragraph: string[]) => boolean = isAppendedParagraph,
): number {
  let kept = end;
  for (;;) {
    let last = kept;
    while (last > 0 && !bare[last - 1]) last -= 1;
    let start = last;
    while (start > 0 && bare[start - 1]) start -= 1;
    if (start === last || !appended(bare.slice(start, last))) return kept;
    // A paragraph the author's line introduces ("Прошу завести учётную запись сотруднику:" above a name and a
    // title) is what that line is about.
    let above = start;
    while (above > 0 && !bare[above - 1]) above -= 1;
    if (above > 0 && bare[above - 1]!.endsWith(':')) return kept;
    kept = start;
  }
}

/**
 * Whether a line below a bare rule is the author's: code or data (CODE_LINES, or a number of a list of them), a
 * question, or a request.
 */
function authorsLine(line: string, numberList = false): boolean {
  return CODE_LINES.some((r) => r.test(line)) || asksOrRequests(line) || (numberList && BARE_NUMBER.test(line));
}

/**
 * Whether `line` asks (a question mark) or requests (REQUEST_WORDS in three words or more, or in two with
 * "пожалуйста"/"please": "Разблокируйте, пожалуйста.").
 */
function asksOrRequests(line: string): boolean {
  if (line.includes('?')) return true;
  const words = wordsIn(line);
  return REQUEST_WORDS.test(line) && (words >= 3 || (words >= 2 && PLEASE.test(line)));
}

/**
 * Whether what stands below the bare rule at `lines[i]` (BARE_RULE), up to the quoted history or the end, is the
 * author's and no signature: it shows nothing of a signature (signatureEvidence: a name or a closing formula first,
 * a contact, a site, a legal or footer line) and holds a line of code or data, a question or a request (s34 review
 * P01–P03, s36 review: a YAML config, a Markdown rule above a summary, SQL comments above a query, a log or a table
 * and the request under it were cut as a signature). When in doubt, a signature, as before.
 */
function authorsTextBelowRule(lines: string[], i: number): boolean {
  const block: string[] = [];
  for (let j = i + 1; j < lines.length && block.length < SIGNATURE_BLOCK_LINES; j += 1) {
    const l = lines[j]!.replace(/\s+$/, '');
    if (!l.trim() || BARE_RULE.test(l)) continue;
    if (QUOTE_LINE.test(l) || FORWARD_SEPARATOR.test(l) || unmarkedHistoryHeadAt(lines, j)) break;
    block.push(l.trimStart());
  }
  const numberList = listsNumbers(block);
  return block.length > 0 && !signatureEvidence(block) && block.some((l) => authorsLine(l, numberList));
}

function signatureFollows(lines: string[], i: number, isStart: (line: string) => boolean): boolean {
  if (BARE_RULE.test(lines[i]!) && authorsTextBelowRule(lines, i)) return false;
  // Its words without a link's (Yahoo's "Sent from Yahoo Mail on Android<https://go.onelink.me/…&af_sub1=…>").
  const line = lines[i]!.trim().replace(/<?\bhttps?:\/\/[^\s>]*>?/g, '');
  if (wordsIn(line) >= 9 || /;/.test(line)) return false;
  let seen = 0;
  for (let j = i + 1; j < lines.length && seen < SIGNATURE_BLOCK_LINES; j += 1) {
    const l = lines[j]!;
    if (!l.trim()) continue;
    if (QUOTE_LINE.test(l) || FORWARD_SEPARATOR.test(l) || unmarkedHistoryHeadAt(lines, j)) return true;
    if (isStructuredLine(l)) return false;
    if (seen === 0 && !opensSignature(l, isStart)) return false;
    seen += 1;
  }
  return true;
}

/**
 * Marks (OWN_LINE_MARK) the lines email-reply-parser (its signature patterns, read by running it over `body`) or
 * SIGNATURE_START take for the start of a signature where no signature follows them (signatureFollows): both cut
 * from such a line to the end, which lost a pasted SQL schema, a YAML config or a log and the request written under
 * it.
 */
/** The signature separator line of RFC 3676 §4.3: two dashes and a space. */
const SIG_SEPARATOR = '-- ';

function markPastedSeparators(body: string): string {
  const starts = new Set(
    new EmailReplyParser()
      .read(body)
      .getFragments()
      .filter((f) => f.isSignature())
      .map((f) => f.getContent().split('\n', 1)[0]!.trim()),
  );
  const isStart = (line: string) => starts.has(line.trim()) || SIGNATURE_START.some((r) => r.test(line));
  const lines = body.split('\n');
  let changed = false;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    // "-- " with its space is the signature separator of RFC 3676 §4.3 (Google Groups' and mailing lists' footers
    // under it are sentences): a signature whatever follows. pg_dump's and SQL's "--" have no trailing space.
    if (!line.trim() || !isStart(line) || line === SIG_SEPARATOR || signatureFollows(lines, i, isStart)) continue;
    lines[i] = OWN_LINE_MARK + line;
    changed = true;
  }
  return changed ? lines.join('\n') : body;
}

/** Options of extractNewText. */
export type NewTextOptions = {
  /**
   * Whether the mail answers one of ours (its In-Reply-To is our Message-ID): an unmarked dated head above the
   * client's marked quote of our mail is then the author's text (ourMarkedHeadIndex). Default false.
   */
  answersOurs?: boolean;
  /**
   * Whether the mail answers another (In-Reply-To or References, or a `Re:` subject). Default true: '>' lines
   * without an attribution above them are then taken for quotes of the answered message.
   */
  reply?: boolean;
  /**
   * Whether an address is one of ours (the bot's mailbox): an attribution line naming it starts quoted history even
   * without a date (cutUnmarkedHistory). Default: none is.
   */
  isOwnAddress?: (address: string) => boolean;
};

/**
 * The text this mail adds: quoted blocks and their attribution lines removed wherever they are (top-posting,
 * bottom-posting, interleaved), Outlook's unmarked history cut, the signature dropped. The author's own lines
 * starting with '>' in the new text stay (markOwnQuoteLines says which those are).
 */
export function extractNewText(body: string, options: NewTextOptions = {}): string {
  const prepared = cutUnmarkedHistory(
    markPastedHeaderBlocks(
      markOwnQuoteLines(joinWrappedAttributions(plainQuoteMarks(body)), options.reply ?? true, options.answersOurs),
      options.isOwnAddress,
      options.answersOurs,
    ),
    options.isOwnAddress,
    options.reply ?? true,
    options.answersOurs,
  );
  const fragments = new EmailReplyParser().read(markPastedSeparators(prepared)).getFragments();
  const kept: string[] = [];
  let belowQuote = false;
  for (const [i, fragment] of fragments.entries()) {
    if (fragment.isQuoted()) belowQuote = true;
    if (fragment.isQuoted() || fragment.isSignature()) continue;
    let content = fragment.getContent();
    const next = fragments[i + 1];
    // Above a quote, a fragment ends where the author's text ends: its signature or a phone's footer ("Отправлено с
    // iPhone", "-- ", "С уважением, Иван") is cut there, not from there to the end of the mail. An answer written
    // under the quote (bottom-posting, interleaving: iOS Mail puts its footer above the quote) is the author's.
    if (next?.isQuoted()) content = cutSignature(dropTrailingAttribution(content));
    // Below a quote, what a mail server or the client appends (a disclaimer, a gateway's banner, a signature) is not.
    if (belowQuote) content = withoutFooterBelowQuote(content);
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
  // Line ends trimmed line by line: /[ \t]+$/gm is quadratic in a long run of spaces inside a line.
  const trimmed = cutSignature(text)
    .split('\n')
    .map((l) => (l.startsWith(OWN_LINE_MARK) ? l.slice(OWN_LINE_MARK.length) : l).trimEnd())
    .join('\n');
  return visibleOrEmpty(trimmed.replace(/\n{3,}/g, '\n\n').trim());
}

/**
 * The text of a forwarded mail as the secretary reads it: what its author wrote (extractNewText) and, below it, the
 * history that mail quoted, its `>` marks and attribution lines taken off. A colleague forwarding a thread
 * ("Fwd: Re: …", "FW: RE: …") passes on the request in that history, not only the last "please pass it on" line
 * above it. Outlook's unmarked history (its header blocks) is kept as it stands. Our own message in that history
 * (its header block or attribution names one of our addresses, `isOwnAddress`) ends it: the thread is passed on up
 * to what we answered, never our answer. Text typed below the forwarded mail's signature (the forwarder's note under
 * a Gmail or Outlook forward, a postscript) is kept after it (textBelowSignature). Empty when the mail says nothing.
 */
export function forwardedText(
  text: string,
  isOwnAuthor: (from: string) => boolean = () => false,
  isOwnAddress?: (address: string) => boolean,
): string {
  // Only above a message of ours in the history: our answer (its rules, its "Спасибо!") is never a signature with
  // the forwarder's note under it, and nothing of it is passed on.
  const below = textBelowSignature(beforeOwnMessage(text, isOwnAuthor));
  if (!below) return forwardedMailText(text, isOwnAuthor, isOwnAddress);
  const note = extractNewText(below.below, { isOwnAddress });
  return [forwardedMailText(below.above, isOwnAuthor, isOwnAddress), note].filter(Boolean).join('\n\n');
}

/**
 * `text` up to the head of a message of ours in its quoted history (ownMessageStart, as forwardedMailText cuts the
 * history there), or all of it when it holds none.
 */
function beforeOwnMessage(text: string, isOwnAuthor: (from: string) => boolean): string {
  const { lines, ours } = historyOf(text, isOwnAuthor);
  return ours < 0 ? text : lines.slice(0, ours).join('\n');
}

/**
 * `text`'s lines (quote marks made plain: plainQuoteMarks), the same without their `>` marks (`bare`), where its
 * quoted history starts (historyStart, -1: none) and where a message of ours in it starts (ownMessageStart, -1:
 * none).
 */
function historyOf(
  text: string,
  isOwnAuthor: (from: string) => boolean,
): { lines: string[]; bare: string[]; start: number; ours: number } {
  const lines = plainQuoteMarks(text).split('\n');
  const start = historyStart(lines, false);
  const bare = lines.map((line) => line.replace(/^([ \t]*>(?!=)[ \t]?)+/, ''));
  return { lines, bare, start, ours: start < 0 ? -1 : ownMessageStart(bare, start, isOwnAuthor) };
}

/**
 * What a footer under a signature says besides FOOTER_WORDS: disclaimers' other wording, printing and social
 * notices, office hours, messenger handles ("tg: @petr", "WhatsApp: +7 …").
 */
const FOOTER_BELOW_SIGNATURE =
  /privileged|by mistake|received (?:it|this)|delete (?:it|this)|before you print|save paper|follow us|linkedin|twitter|facebook|instagram|our (?:new )?office|office hours|working hours|работает с|часы работы|режим работы|(?:^|\s)(?:tg|whatsapp|viber|vk|wa|signal)\s*:/iu;

/**
 * Whether a paragraph below a forwarded mail's signature (its non-empty lines, trimmed) is text someone typed there
 * rather than more of the signature: a line of it asks (a question mark) or requests (REQUEST_WORDS, as authorsLine
 * reads a request), none of its lines is a footer's (FOOTER_WORDS, FOOTER_BELOW_SIGNATURE: a disclaimer, "Остались
 * вопросы? Звоните…", a messenger handle), a legal or contact line or a closing wish, and it is no banner,
 * disclaimer or signature block (isAppendedParagraph). A statement, a `key: value` line or a slogan is the
 * signature's: when in doubt, cut, as before.
 */
function typedParagraph(paragraph: string[]): boolean {
  const footer = (l: string) =>
    FOOTER_WORDS.test(l) ||
    FOOTER_BELOW_SIGNATURE.test(l) ||
    LEGAL_LINE.test(l) ||
    CONTACT_LINE.test(l) ||
    CLOSING_WISH.test(l);
  if (paragraph.some(footer)) return false;
  return paragraph.some(asksOrRequests) && !isAppendedParagraph(paragraph);
}

/**
 * A forwarded mail's text split where text typed below its signature begins: `above` is the mail up to there (its
 * signature included, which extractNewText cuts as always), `below` the rest; undefined when there is no such text.
 * Gmail's forward ("---------- Forwarded message ---------" and its From/Date/Subject/To lines) and Outlook's (the
 * "From:/Sent:/To:/Subject:" block, in Russian "От:/Отправлено:/Кому:/Тема:"), as email-forward-parser reads them,
 * have no end line: the forwarded mail runs to the end of the body, so a note the forwarder types below it (M04a's
 * kind in the field cases: the note and the request both reach the secretary), and a postscript of the forwarded
 * mail's own author, stand after the forwarded mail's signature, and the signature cut (from the signature to the
 * end) lost them. Which of the two wrote it cannot be told, so it stays in the forwarded mail's text, after it.
 * The signature is the first one below the mail's last quoted history (a `>` line, an attribution, Outlook's header
 * block or a forward separator: text under a quote is extractNewText's, which keeps it): a line SIGNATURE_START or
 * BARE_RULE takes for one (RFC 3676 §4.3's "-- ", a phone app's footer, a rule) or a closing formula (isClosing,
 * "С уважением,", "Best regards,"), with text above it. Below it, the first line of the author's (authorsLine) in
 * the signature's own paragraph, else the first later paragraph (blank lines between) typedParagraph says was typed
 * there, begins `below`: names, titles, phones, sites, company lines and disclaimers stay the signature's.
 * Conservative, as withoutFooterBelowQuote is: a note that is no request or question ("Иван, глянь", "Это для
 * аудита.") is cut with the signature as before, and so are footers however they are worded (typedParagraph). Only
 * above a message of ours in the history (beforeOwnMessage): our answer's rules and closings are not looked at.
 */
function textBelowSignature(text: string): { above: string; below: string } | undefined {
  const lines = text.split('\n');
  const signature = signatureBelowHistory(lines);
  const start = signature < 0 ? -1 : typedTextStart(lines, signature);
  return start < 0 ? undefined : { above: lines.slice(0, start).join('\n'), below: lines.slice(start).join('\n') };
}

/**
 * Index of the first signature line (SIGNATURE_START, BARE_RULE, a closing formula: isClosing) below the last quoted
 * history of `lines` (a `>` line, a forward separator, an unmarked head: unmarkedHistoryHeadAt), with text above it;
 * -1 when none.
 */
function signatureBelowHistory(lines: string[]): number {
  let signature = -1;
  let textAbove = false;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    const t = line.trim();
    if (!t) continue;
    if (QUOTE_LINE.test(line) || FORWARD_SEPARATOR.test(line) || unmarkedHistoryHeadAt(lines, i)) signature = -1;
    else if (
      signature < 0 &&
      textAbove &&
      (SIGNATURE_START.some((r) => r.test(t)) || BARE_RULE.test(t) || isClosing(t))
    )
      signature = i;
    textAbove = true;
  }
  return signature;
}

/**
 * Index of the line where text typed below the signature at `signature` begins (textBelowSignature), -1 when none:
 * a line of the author's in the signature's own paragraph (an HTML forward made text has no blank line between the
 * forwarded mail's <div> and the note's), else the first line of a later paragraph typedParagraph accepts.
 */
function typedTextStart(lines: string[], signature: number): number {
  let start = signature + 1;
  for (; start < lines.length && lines[start]!.trim(); start += 1) {
    const t = lines[start]!.trim();
    if (typedParagraph([t])) return start;
  }
  while (start < lines.length) {
    while (start < lines.length && !lines[start]!.trim()) start += 1;
    let end = start;
    while (end < lines.length && lines[end]!.trim()) end += 1;
    if (end > start && typedParagraph(lines.slice(start, end).map((l) => l.trim()))) return start;
    start = end;
  }
  return -1;
}

/** forwardedText for one forwarded mail's text, with no text typed below its signature (textBelowSignature). */
function forwardedMailText(
  text: string,
  isOwnAuthor: (from: string) => boolean,
  isOwnAddress?: (address: string) => boolean,
): string {
  const fresh = extractNewText(text, { isOwnAddress });
  const { lines, bare, start, ours } = historyOf(text, isOwnAuthor);
  if (start < 0) return fresh;
  const outlook = outlookHistoryIndex(lines);
  const history = lines
    .slice(start, ours < 0 ? lines.length : ours)
    // Below Outlook's header block every line is history; elsewhere only the quoted lines and the attribution
    // above them are (an answer written under the quote is `fresh` already). Attributions stay: they say who
    // wrote what is quoted.
    .flatMap((line, k) =>
      !HISTORY_LINE.test(line) &&
      ((outlook >= 0 && start + k >= outlook) || k === 0 || QUOTE_LINE.test(line) || !line.trim())
        ? [bare[start + k]!]
        : [],
    )
    .join('\n');
  const quoted = visibleOrEmpty(history.replace(/\n{3,}/g, '\n\n').trim());
  return [fresh, quoted].filter(Boolean).join('\n\n');
}

/**
 * Index (in `bare`, the lines without quote marks, from `start`) of the head of a message of ours: a header block or
 * an attribution, also one wrapped over two lines (unmarkedHistoryHeadAt), whose author `isOwnAuthor` says is us
 * (our address, or our display name alone as Outlook writes it from the address book); -1 when none.
 */
function ownMessageStart(bare: string[], start: number, isOwnAuthor: (from: string) => boolean): number {
  for (let i = start; i < bare.length; i += 1) {
    const head = unmarkedHistoryHeadAt(bare, i);
    if (head?.from !== undefined && isOwnAuthor(head.from)) return i;
  }
  return -1;
}
