import { isAppError } from '@workemon/service-kit';
import { GAP_LINE, headAndTail, type InboundMail } from './mail-parsing.js';
import { bareSubject, isReplySubject, type ForwardedMail } from './mail-text.js';

/** Every text an employee can receive from the email channel that is not the secretary's answer: Russian, polite. */
export const USER_MESSAGES = {
  /** Nothing readable: empty mail, a picture only, a TNEF winmail.dat no library can open. */
  unreadable:
    'Здравствуйте! Не получилось прочитать ваше письмо: в нём нет текста, который можно разобрать ' +
    '(например, только картинка или вложение winmail.dat). Пожалуйста, напишите ваш запрос обычным текстом ' +
    'в теле письма.',
  /** The secretary refused the sender (401/403: not in the directory, not allowed). */
  forbidden:
    'Здравствуйте! К сожалению, мы не можем обработать ваш запрос автоматически: ваш адрес не найден среди ' +
    'сотрудников или у него нет доступа. Пожалуйста, обратитесь в службу поддержки напрямую.',
  /** The secretary is limiting this sender (429). */
  tooMany: 'Здравствуйте! Сейчас от вас поступает слишком много запросов. Пожалуйста, повторите запрос немного позже.',
  /** Any other refusal (400, 404, 409, 413, 422). */
  rejected:
    'Здравствуйте! К сожалению, не удалось обработать ваш запрос автоматически. Пожалуйста, переформулируйте ' +
    'его или обратитесь в службу поддержки напрямую.',
  /** The secretary answered with an empty text. */
  emptyAnswer:
    'Здравствуйте! Ваш запрос получен, но подготовить ответ автоматически не удалось. Пожалуйста, уточните, ' +
    'что именно вам нужно.',
} as const;

/**
 * The Russian message for a secretary refusal (a 4xx that is not worth retrying). The secretary's own message is
 * written for developers (`Parameter 'request' …`) and is never mailed to an employee: it goes to the log only.
 */
export function refusalMessage(err: unknown): string {
  const status = isAppError(err) ? err.status : 0;
  if (status === 401 || status === 403) return USER_MESSAGES.forbidden;
  if (status === 429) return USER_MESSAGES.tooMany;
  return USER_MESSAGES.rejected;
}

/** Appended when a request is cut to the secretary's limit. */
export const CUT_MARKER = '\n\n[…письмо обрезано: оно длиннее, чем можно передать на обработку]';

/** How far (characters) fitToLimit moves a cut to reach a line end: both cuts lose at most twice this of the room. */
const REQUEST_LINE_SEARCH_CHARS = 60;

/**
 * `text` cut to at most `maxChars` characters (UTF-16 code units; the secretary contract's `request` maxLength,
 * 20,000), never splitting a surrogate pair: its head and its tail kept (mail-parsing.ts headAndTail: three quarters
 * and a quarter of the room, at line ends, GAP_LINE where the middle was), CUT_MARKER at the end. A question
 * written under a long pasted log or blob is the request, so it reaches the secretary with the subject and the
 * greeting above the paste (s34 L01, L03); a request above a paste keeps its place at the top.
 */
export function fitToLimit(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const keep = Math.max(0, maxChars - CUT_MARKER.length - GAP_LINE.length);
  return `${headAndTail(text, keep, REQUEST_LINE_SEARCH_CHARS)}${CUT_MARKER}`.slice(0, maxChars);
}

/**
 * Build-request step: the text the secretary receives for a mail, or undefined when the mail says nothing we
 * can read (then no LLM call, and the sender is asked for text). In order: the subject (unless it only repeats
 * the thread), the author's new text, each forwarded mail marked as such with its author and subject, a note of
 * attachments not passed on; cut to `maxChars` (the secretary contract's maxLength) with a marker.
 */
export function buildRequestText(mail: InboundMail, maxChars: number): string | undefined {
  const forwards = mail.forwards.filter((f) => f.text || f.subject);
  const hasContent = !!mail.text || forwards.length > 0;
  // Only an unreadable attachment (TNEF, a picture) and no text: the subject alone is not the request. Nor is a
  // reply's `Re:` subject: it only repeats the thread's subject, so a reply with no new text and nothing attached
  // says nothing — unless the author answered in the subject itself (subjectIsNew: it says more than the
  // thread's subject). A reply carrying a document (the signed form asked for) still goes on, its attachment named.
  const saysNothing = isReplySubject(mail.subject) && !mail.subjectIsNew && !mail.attachments.length;
  if (!hasContent && (mail.unreadableAttachments.length || saysNothing)) return undefined;
  const subject = requestSubject(mail, hasContent);
  if (!subject && !mail.text && !forwards.length) return undefined;
  const notPassed = [...mail.attachments, ...mail.unreadableAttachments];
  return fitParts(
    {
      subject,
      own: mail.text,
      forwards: forwards.map(forwardBlock),
      note: notPassed.length ? `[Вложения (не переданы): ${notPassed.join(', ')}]` : undefined,
      truncated: mail.truncated ? '\n\n[…письмо было слишком большим и прочитано не полностью]' : '',
    },
    maxChars,
  );
}

/** The parts of a request, in their order: subject, the author's text, forwarded mails, the attachments' note. */
type RequestParts = { subject?: string; own: string; forwards: string[]; note?: string; truncated: string };

/**
 * The parts joined, at most `maxChars` long. When they are longer, the forwarded mails give way first (each cut at its
 * end, together to what the author's text leaves of the room, but never below a quarter of it), then the author's own text keeps its head and its tail
 * (headAndTail: a question under a long log, s34 L01, F01); fitToLimit makes sure of the limit.
 */
function fitParts(p: RequestParts, maxChars: number): string {
  let { own, forwards } = p;
  const joined = () => [p.subject, own, ...forwards, p.note].filter(Boolean).join('\n\n') + p.truncated;
  if (joined().length <= maxChars || !own) return fitToLimit(joined(), maxChars);
  // The forwards keep what the author's text leaves, and at least a quarter of the room.
  const forwardsLength = forwards.reduce((n, b) => n + b.length, 0);
  const spare =
    maxChars - (joined().length - forwardsLength) - CUT_MARKER.length - forwards.length * FORWARD_GAP.length;
  forwards = fitForwards(forwards, Math.max(Math.floor(maxChars / 4), spare));
  // The author's text only when it must: its head and tail, GAP_LINE between them.
  const room = maxChars - (joined().length - own.length) - CUT_MARKER.length;
  if (own.length > room && room > GAP_LINE.length)
    own = headAndTail(own, room - GAP_LINE.length, REQUEST_LINE_SEARCH_CHARS);
  const text = joined();
  // Cut here: the marker says so, as fitToLimit's does (its end gives way if the marker does not fit).
  if (text.length + CUT_MARKER.length <= maxChars) return `${text}${CUT_MARKER}`;
  return `${text.slice(0, maxChars - CUT_MARKER.length).replace(/[\uD800-\uDBFF]$/, '')}${CUT_MARKER}`;
}

/** What ends a forwarded mail cut by fitForwards. */
const FORWARD_GAP = GAP_LINE.trimEnd();

/** Forwarded-mail blocks cut to `room` characters together: each keeps its head, its share in proportion to its size. */
function fitForwards(blocks: string[], room: number): string[] {
  const total = blocks.reduce((n, b) => n + b.length, 0);
  if (total <= room) return blocks;
  return blocks.map((b) => {
    const share = Math.max(200, Math.floor((b.length / total) * room));
    return b.length <= share ? b : `${b.slice(0, share).replace(/[\uD800-\uDBFF]$/, '')}${FORWARD_GAP}`;
  });
}

/**
 * The subject as the request's first part: when it says something new (or is all there is) and the text does not
 * already start with it; undefined otherwise.
 */
function requestSubject(mail: InboundMail, hasContent: boolean): string | undefined {
  const subject = bareSubject(mail.subject);
  if (!subject || (!mail.subjectIsNew && hasContent)) return undefined;
  return mail.text.toLowerCase().startsWith(subject.toLowerCase()) ? undefined : subject;
}

/** A forwarded mail as a request part: marked `[Пересланное письмо]`, with its author and subject when known. */
function forwardBlock(f: ForwardedMail): string {
  const head = ['[Пересланное письмо]'];
  if (f.from) head.push(`От: ${f.from}`);
  if (f.subject) head.push(`Тема: ${f.subject}`);
  return [...head, f.text].filter(Boolean).join('\n');
}
