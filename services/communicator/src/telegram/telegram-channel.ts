import type { CallbackQuery, Message, Update, UserFromGetMe } from 'telegraf/types';
import { createHash, randomUUID } from 'node:crypto';
import { AppError, getRequestId, isAppError, runWithRequestId, type Logger } from '@workemon/service-kit';
// Every wait, deadline and retry of the channel comes from the service-kit resilience module.
import {
  backoffMs,
  cutText,
  retry,
  sleep,
  spreadMs,
  untilAborted,
  withDeadline,
  type RetryOptions,
} from '@workemon/service-kit';
import {
  ACTION_CLARIFY,
  parseApprovalCallbackData,
  type AnalysisResponse,
  type AnalyzeRequest,
} from '@workemon/contracts';
import type { TelegramSettings } from '../config.js';
import type { ChannelMetrics } from '../channel-metrics.js';
import { replyTextOf, type HandledOutcome, type SecretaryClient } from '../secretary-client.js';
import { secretaryRetry } from '../secretary-retry.js';
import { rateLimitKey, type RateLimitVerdict, type SenderRateLimit } from '../sender-rate-limit.js';
import { auditEventId, type AuditReporter, type AuditSkipReason } from '../audit-reporter.js';
import { splitMessage, type BotApiFailure, type TelegramBotApi } from './telegram-bot-api.js';
import { createOffsetTracker, type OffsetTracker } from './telegram-offset.js';
import {
  PARKED_PRESS_MAX_AGE_MS,
  createUpdateParking,
  parkingCandidates,
  type UpdateParking,
} from './telegram-parking.js';
import {
  CAPTION_MAX_CHARS,
  SPLIT_PART_MIN_CHARS,
  TEXT_MAX_CHARS,
  attachmentNoteOf,
  attachmentsOf,
  classifyUpdate,
  forwardHeaderOf,
  forwardOriginOf,
  handledKeyOf,
  hasCaptionedMedia,
  isGreetingOnly,
  mediaGroupOf,
  ownTextOf,
  BOT_WORDS_MAX_CHARS,
  requestTextOf,
  type Classified,
} from './telegram-update.js';
import { checkApprovalPress } from './approval-press.js';

export const HELP_TEXT = [
  'Здравствуйте! Я Workemon — секретарь службы поддержки.',
  'Напишите свой вопрос или просьбу обычным текстом одним сообщением: я уточню детали, если их не хватит,',
  'и отвечу сам или передам запрос нужному сотруднику (задача в Jira, сообщение коллеге, письмо в рассылку).',
  'Команды: /help — эта справка.',
].join('\n');
export const TEXT_ONLY_REPLY =
  'Я понимаю только текст. Пожалуйста, опишите вопрос словами (стикеры, фото без подписи, голосовые и файлы я не читаю).';
export const NOT_APPROVER_REPLY = 'Согласовывать действия Workemon можно только из чата согласующего.';
/** The answer to a message sent on behalf of a group or channel (an anonymous admin): who asks must be known. */
export const ANONYMOUS_REPLY =
  'Я не могу принять запрос, отправленный от имени группы или канала: мне нужно знать, кто спрашивает. Пожалуйста, напишите от своего аккаунта.';
export const GAVE_UP_REPLY = 'Извините, не удалось обработать ваше сообщение. Пожалуйста, повторите его чуть позже.';
/**
 * What the user reads when the secretary refuses a request (a 4xx not worth retrying): the secretary's own message
 * is written for developers (`Parameter 'request' …`, `The request together with the earlier question is too
 * long …`) and goes to the log only, as in the email channel.
 */
export const REFUSAL_REPLIES = {
  /** 401/403: not in the employee directory, or not allowed. */
  forbidden:
    'Извините, я не могу обработать ваш запрос: вас нет в справочнике сотрудников или у вас нет доступа. ' +
    'Обратитесь, пожалуйста, к администратору Workemon.',
  /** 413: the request (with the conversation before it) is longer than the secretary takes. */
  tooLong:
    'Извините, сообщение слишком длинное, чтобы я мог его обработать. Пожалуйста, сократите его ' +
    'или опишите вопрос короче, без длинных вставок.',
  /** Any other refusal (400, 404, 409, 422). */
  rejected:
    'Извините, не удалось обработать ваш запрос автоматически. Пожалуйста, переформулируйте его ' +
    'или обратитесь в службу поддержки напрямую.',
} as const;
/** Appended to a request cut to MAX_REQUEST_CHARS (counts towards the limit), so the secretary knows. */
export const REQUEST_CUT_MARKER = '\n\n[…сообщение обрезано: оно длиннее, чем можно передать на обработку]';
/**
 * Put between the head and the tail of a request of several messages cut to MAX_REQUEST_CHARS (jobRequestWithin):
 * the secretary knows that the middle was left out.
 */
export const REQUEST_MIDDLE_CUT_MARKER =
  '\n\n[…середина сообщения пропущена: оно длиннее, чем можно передать на обработку]\n\n';
/** How many answered albums are remembered, so a part Telegram delivers late gets no reply of its own. */
const ANSWERED_ALBUMS_KEPT = 1000;
/** How many sent answer pieces `sentAnswers` remembers (a Map of about 100 bytes each). */
const SENT_ANSWERS_KEPT = 10_000;
/**
 * How long (s, by Message.date) after an answered text over CAPTION_MAX_CHARS without media the sender's media
 * without text is still taken for that text's media: clients send the over-long caption first and upload the
 * media after it, which may take longer than the merge window. Such media gets no "text only" reply.
 */
export const LATE_CAPTION_MEDIA_S = 60;

/**
 * How long (s, by Message.date) after a greeting alone the sender's next message, already queued when the greeting's
 * wait (the merge window) ends, is still taken for its question: a greeting and the question typed after it reach
 * the bot together after the user was offline, or the bot was.
 */
export const GREETING_JOIN_S = 300;

/** How long (ms) a part cut inside a word at TEXT_MAX_CHARS waits for its next part (endsInHardCut). */
export const HARD_CUT_WAIT_MS = 30_000;
/** How far apart (s, by Message.date) such a part and its next part may be and still join (endsInHardCut). */
export const HARD_CUT_JOIN_S = 60;

/**
 * How long (ms; at least the merge window) a text of SPLIT_PART_MIN_CHARS or more that is no hard cut waits for its
 * next part (endsInLongPart): a cut after punctuation, on a space the server trimmed (4095 units), after an emoji, or
 * Telegram Desktop's cut at a paragraph break. The client sends the next part right after it, but a phone's upload of
 * 4 KB, the server and the poll may put seconds between their arrivals (variants of field case T10: 2.5 s). Only
 * such long texts wait this long; shorter ones keep the merge window.
 */
export const SPLIT_PART_WAIT_MS = 5000;
/** How far apart (s, by Message.date) such a long part and its next part may be and still join (endsInLongPart). */
export const SPLIT_PART_JOIN_S = 5;

/**
 * How long (s, by Message.date) after the sender's text message (not a command) their media without words (a
 * screenshot, a file, a video; not a voice message: isBareScreenshot) in that chat is the text's attachment: people
 * type the question, then pick the screenshot it refers to and send it (a tap into the gallery and an upload: about
 * 2 s). The same span as a client-split paste's parts (SPLIT_PART_JOIN_S): two things the user sent as one, that
 * a phone's upload put seconds apart. Joined to the text's job when both are queued (belongsTo; the request names it,
 * `[Вложения (не переданы): фото]`), else (the text answered at once, on the fast path) recorded `skipped`
 * (`text_screenshot`) without the "text only" note (lateMediaOf). Later media, or media alone, gets the note.
 */
export const SCREENSHOT_AFTER_TEXT_S = SPLIT_PART_JOIN_S;

/**
 * How long (s, by Message.date) after the "text only" note (TEXT_ONLY_REPLY) the same sender's messages without
 * words in that chat get no note again: three stickers in a row get one note, not three. Each such message starts
 * the quiet time anew.
 */
export const TEXT_ONLY_QUIET_S = 60;

/**
 * How long (s, by Message.date) after a sender's last message with words in a chat a sticker alone from them is a
 * reaction (👍 after an answer, 👋 after "Привет"): it gets no "text only" note (`sticker_reaction`).
 */
export const STICKER_REACTION_S = 600;

/**
 * How long (s, by Message.date) after the bot answered a member's greeting alone in a group (`@bot привет`) that
 * member's next message in the chat (and forum topic) is taken as the question it announced, without a mention of its
 * own: the bot's answer to a greeting asks for it (answeredGreetingOf).
 */
export const GROUP_GREETING_QUESTION_S = 120;

/** At most this many greetings in a row wait for a question ("Привет" "Добрый день" …); the next is a job of its own. */
export const GREETING_CHAIN_MAX = 3;

/**
 * How many merge windows a held part (tentativeOf) waits for its sender's message addressed to the bot before it is
 * confirmed as not addressed: the addressed part of an album or paste comes within one window of the part before.
 */
export const HELD_PARTS_WAIT_WINDOWS = 2;

/**
 * Delays (ms) between sends of one answer after 5xx or network errors: fast first (a blip of the Bot API),
 * then seconds, then the last one again until SEND_RETRY_MAX_FAILURES, when the update is given up
 * (`workemon_replies_failed_total{reason="unavailable"}`).
 */
export const SEND_RETRY_DELAYS_MS = [250, 750, 2000, 5000, 10_000, 20_000, 30_000, 30_000];
/**
 * 5xx/network failures of one piece before its update is given up: the SEND_RETRY_DELAYS_MS steps, then one try
 * every last step (30 s) — about 15 minutes in all. An outage of the Bot API or of the egress proxy of a few minutes
 * is common; the answer, already decided, waits it out instead of being lost. The chat's later messages wait behind
 * it; other chats do not.
 */
export const SEND_RETRY_MAX_FAILURES = 36;
/** Delays (ms) between tries to record an update as handled, or to look it up, while the secretary is away. */
const RECORD_RETRY_DELAYS_MS = [200, 500, 1000, 2000, 5000];
/** While some update is pending the offset cannot move past it, so getUpdates answers at once: poll this often. */
const BUSY_POLL_MS = 300;
/** The typing indicator lasts ~5 s on the client: renewed this often (ms) while the secretary works. */
const TYPING_RENEW_MS = 4500;
/** Longest wait (ms) between tries of a rate-limit check or an approval press while the secretary is away. */
const SECRETARY_WAIT_CAP_MS = 5000;
/** Wait (ms) after getUpdates answers 401/404 (a revoked token): a person has to fix the configuration. */
const UNAUTHORIZED_WAIT_MS = 60_000;
/** Cap (ms) of the getUpdates backoff after network errors and 5xx. */
const POLL_BACKOFF_CAP_MS = 30_000;
/** Wait (ms) before a job that failed on a bug (not on Telegram or the secretary) is tried again. */
const BUG_RETRY_MS = 5000;
/** How long (ms) the final getUpdates on stop, which confirms what was handled, may take. */
const FINAL_CONFIRM_MS = 3000;

export type TelegramChannel = {
  start: () => void;
  stop: (deadlineMs: number) => Promise<void>;
  /**
   * `lastError`: the last failed getMe/deleteWebhook/getUpdates, as `<call>: <kind> (HTTP <status>): <message>`
   * (token scrubbed), cleared by the next successful call; shown in /health while polling fails.
   */
  health: () => { bot?: string; lastPollAt?: number; pollTimeoutS: number; lastError?: string };
  api: TelegramBotApi;
};

/** An update waiting in its chat's queue. */
type Queued = {
  update: Update;
  classified: Extract<Classified, { kind: 'message' | 'callback' }>;
  arrivedAt: number;
  /**
   * A group message not addressed to the bot, queued only as the continuation of its sender's message before it
   * (`follows`: continuationOf) or as a part of an album or paste another part of which mentions the bot
   * (`tentative`: tentativeOf, held until then): answered only in a job with a message addressed to the bot.
   */
  continuation?: 'follows' | 'tentative';
};
type QueuedMessage = Queued & { classified: { kind: 'message'; message: Message; text: string } };
const isMessage = (q: Queued): q is QueuedMessage => q.classified.kind === 'message';

/** The answer to one job, before delivery; `skip` means nothing is sent. */
type Reply =
  | {
      send: true;
      chatId: number;
      text: string;
      replyTo?: number;
      /** The forum topic (`message_thread_id`) every piece goes to. */
      threadId?: number;
      /** The secretary's answer (not a fixed text): a clarifying question or not, and who asked (sentAnswers). */
      answer?: { question: boolean; askedUserId?: number };
      outcome: HandledOutcome;
      reason?: string;
    }
  | { send: false; outcome: HandledOutcome; reason: string };

/** The audit log's skip reason of each reason a job ends without an answer. */
const AUDIT_SKIP_REASONS: Record<string, AuditSkipReason> = {
  rate_limited: 'rate-limited',
  no_reply: 'no-reply',
  not_approver: 'untrusted',
  stale_press: 'not-addressed',
  unsupported_callback: 'not-addressed',
  album_part: 'duplicate',
  caption_media: 'duplicate',
  text_screenshot: 'duplicate',
  text_only_repeat: 'unreadable',
  sticker_reaction: 'not-addressed',
};

/** Thrown out of a job when the channel stops: the job is left unconfirmed for the next process. */
class Stopped extends Error {}

/**
 * Most jobs running at once, over all chats. Before parking the getUpdates `limit` (100, Bot API) bounded the updates
 * in flight; parking lets the offset move past waiting updates, so this bound keeps a burst (or a parked backlog
 * loaded at start) from putting thousands of analyses on the secretary at once. A job waits for a slot in order of
 * asking; its update stays pending meanwhile, so parking still moves the offset past it.
 */
export const JOBS_IN_FLIGHT_MAX = 100;

/**
 * A counting semaphore of `size` slots, first come first served. `acquire` resolves once a slot is taken (the caller
 * must `release` it once); it rejects with Stopped once `signal` aborted (every waiter at once, one listener).
 */
export function createJobSlots(size: number, signal: AbortSignal) {
  let free = size;
  const waiting: Array<{ take: () => void; stop: (err: Stopped) => void }> = [];
  signal.addEventListener(
    'abort',
    () => {
      for (const w of waiting.splice(0)) w.stop(new Stopped('stopped'));
    },
    { once: true },
  );
  return {
    acquire(): Promise<void> {
      if (signal.aborted) return Promise.reject(new Stopped('stopped'));
      if (free > 0 && waiting.length === 0) {
        free -= 1;
        return Promise.resolve();
      }
      return new Promise<void>((take, stop) => waiting.push({ take, stop }));
    },
    release(): void {
      const next = waiting.shift();
      if (next) next.take();
      else free += 1;
    },
    /** Jobs running now. */
    busy: (): number => size - free,
    /** Jobs waiting for a slot. */
    queued: (): number => waiting.length,
  };
}

/** How long (ms) a merge waits past its window for a getUpdates that started after the window closed. */
export const MERGE_POLL_GRACE_MS = 3000;

/**
 * Whether the wait for more parts of a merge is over: `mergeWindowMs` passed since the last part arrived, and a
 * getUpdates that started after that answered (`polledAt`: the start, ms, of the last getUpdates that answered),
 * so parts Telegram already held — an album split across two batches — are in the queue. Without such a poll
 * (getUpdates failing) the merge goes ahead `graceMs` (default MERGE_POLL_GRACE_MS) later. Returns the wait (ms), 0
 * when over.
 */
export function mergeWaitMs(
  lastArrivedAt: number,
  now: number,
  mergeWindowMs: number,
  polledAt = now,
  graceMs = MERGE_POLL_GRACE_MS,
): number {
  const closes = lastArrivedAt + mergeWindowMs;
  if (now < closes) return closes - now;
  if (polledAt < closes && now < closes + graceMs) return Math.min(BUSY_POLL_MS, closes + graceMs - now);
  return 0;
}

/**
 * Step "per-chat queue → merge": the next job of a chat — the head update plus what belongs to it — or how long
 * to wait for the rest of it (`mergeWaitMs`). A job is made of units: a message, or an album (every part with one
 * `media_group_id`, complete once no part arrived for `mergeWindowMs`, or bareAlbumWaitMs while no part in hand has
 * words and it starts the job). After the head's unit, the next unit of the
 * same sender (Message.date within the window of the job's last part; in a group, other members' messages in
 * between are passed over and stay queued, answered after this job) joins when it is:
 * - the next part of a long paste the client split (the job's last text has at least SPLIT_PART_MIN_CHARS
 *   characters; a message without text of the same sender in between, a photo sent along, does not end it);
 * - a forward, single or an album: a comment and the messages it forwards, or several forwards, are one job;
 * - media without a caption (`CAPTIONED_MEDIA_FIELDS`: photo, document, video, voice, audio, animation) after a
 *   job with text, or after media without text: the text of a caption over CAPTION_MAX_CHARS that the client
 *   sent as a message of its own, just before the media; or, but for a voice message, the screenshot a text refers
 *   to, sent right after it (within SCREENSHOT_AFTER_TEXT_S by Message.date, however short the merge window);
 * - a text message after a job of media without any text: that caption sent just after the media; or after media
 *   whose caption fills the limit (hasFullCaption): the rest of a longer caption;
 * - media with a caption (an album or a single file) after a job of media without any text (not a voice message):
 *   media sent as several albums (over ten files) or messages with the caption on a later one;
 * - any message but a command after a job of greetings alone (isGreetingOnly, "Привет!"), by Message.date within
 *   GREETING_JOIN_S of it: the question the greeting announced, answered once instead of "how can I help?" first.
 * Anything else starts a job of its own. Every message job waits for a getUpdates that started after its last part
 * arrived (`mergeWaitMs`, window 0), so parts already at Telegram are in; the whole window when more is expected:
 * after media without text (its text may follow), after a full caption (its rest may follow), after a text over
 * CAPTION_MAX_CHARS without media (its media may follow, uploaded after it) and after a greeting alone (its question may follow); after a long paste part longer
 * (continuationWaitMs: SPLIT_PART_WAIT_MS, HARD_CUT_WAIT_MS after a cut inside a word), its next part joining within
 * SPLIT_PART_JOIN_S / HARD_CUT_JOIN_S by Message.date (joinWindowS) rather than the merge window.
 *
 * @param polledAt start (ms) of the last getUpdates that answered; default `now` (no wait for a poll).
 * @param partGraceMs how long (ms) a job that expects more parts (an album; a long paste's part, media without text,
 *   a greeting alone: a window above) waits past its window for such a poll (mergeWaitMs): the channel gives it
 *   TELEGRAM_REQUEST_TIMEOUT on top of MERGE_POLL_GRACE_MS, so a poll that went silent, answered slowly or met a 409
 *   with the next part at Telegram is given up and the next one brings it; answering the parts in hand would answer
 *   the rest apart ("text only" for album parts, half a paste, "how can I help?" to a greeting: s31-03, s35 A1–A4).
 *   A job that expects nothing more waits MERGE_POLL_GRACE_MS at most.
 */
export function nextJob(
  items: Queued[],
  now: number,
  mergeWindowMs: number,
  polledAt = now,
  partGraceMs = MERGE_POLL_GRACE_MS,
): { job: Queued[] } | { waitMs: number } {
  const head = items[0]!;
  if (!isMessage(head)) return { job: [head] };
  const windowS = Math.ceil(mergeWindowMs / 1000);
  const job: QueuedMessage[] = [];
  for (let unit = unitOf(items, head); ;) {
    if (mediaGroupOf(unit[0]!.classified.message) !== undefined) {
      // An album that starts the job with no caption in hand waits longer: its captioned part may come later — unless
      // its sender has sent something else since (the caption typed as a text, a command): the album is whole then.
      const waitsForCaption =
        job.length === 0 &&
        !unit.some(hasWords) &&
        !items.some((q) => !unit.includes(q as QueuedMessage) && senderIdOf(q) === senderIdOf(head));
      const window = waitsForCaption ? bareAlbumWaitMs(mergeWindowMs) : mergeWindowMs;
      const waitMs = mergeWaitMs(lastArrivalOf(unit), now, window, polledAt, partGraceMs);
      if (waitMs > 0) return { waitMs };
    }
    job.push(...unit);
    // In a group other members' messages may come between the parts: they keep their place, after this job.
    const next = items.find((q) => !job.includes(q as QueuedMessage) && senderIdOf(q) === senderIdOf(head));
    if (!next) {
      const window = continuationWaitMs(job, mergeWindowMs);
      const grace = window > 0 ? partGraceMs : MERGE_POLL_GRACE_MS;
      const waitMs = mergeWaitMs(lastArrivalOf(job), now, window, polledAt, grace);
      return waitMs > 0 ? { waitMs } : { job };
    }
    if (!isMessage(next)) return { job };
    unit = unitOf(items, next);
    if (!belongsTo(job, unit, windowS)) return { job };
  }
}

/**
 * How long (ms, from the arrival of its last part in hand; at least the merge window) an album waits for more parts
 * while none of its parts in hand has words: Bot API delivers an album as one message per part, and the part carrying
 * the caption (the first, a middle or the last one) may come in a later getUpdates batch, seconds after the others (a
 * phone still uploading it, a busy server; 2.5 and 3.5 s in the T02 variants of telegram-s42.test.ts). Answered at the merge window, the
 * parts in hand got the "text only" note and the caption a second answer. An album with a caption in hand keeps the
 * merge window: a late part without one is recorded `skipped` (`album_part`) without a reply; so does an album whose
 * sender has sent another message since (the caption typed as a text 0.3 s later is answered at once with it).
 */
export const bareAlbumWaitMs = (mergeWindowMs: number): number => Math.max(mergeWindowMs, SPLIT_PART_WAIT_MS);

/** The handled-record key of an album (`tg:<chat>:album:<media_group_id>`), recorded with its parts' keys. */
const albumKeyOf = (chatId: number, album: string): string => `tg:${chatId}:album:${album}`.slice(0, 200);

/** The albumKeyOf keys of the albums among a job's messages, once each. */
function albumKeysOf(job: Queued[]): string[] {
  const keys = job.filter(isMessage).flatMap((q) => {
    const album = mediaGroupOf(q.classified.message);
    return album === undefined ? [] : [albumKeyOf(q.classified.message.chat.id, album)];
  });
  return [...new Set(keys)];
}

/** Who sent a queued update: the message's sender, or whoever pressed the button. */
const senderIdOf = (q: Queued): number | undefined =>
  q.classified.kind === 'message' ? q.classified.message.from?.id : q.classified.query.from.id;

/** The unit `first` starts: every queued part of its album, or the message alone. */
function unitOf(items: Queued[], first: QueuedMessage): QueuedMessage[] {
  const group = mediaGroupOf(first.classified.message);
  if (group === undefined) return [first];
  return items.filter((q): q is QueuedMessage => isMessage(q) && mediaGroupOf(q.classified.message) === group);
}

/** When (ms) the last of `parts` arrived. */
const lastArrivalOf = (parts: Queued[]): number => Math.max(...parts.map((q) => q.arrivedAt));

/** The last part of `job` with text (its words, forward header included), if any. */
const lastTextOf = (job: QueuedMessage[]): string | undefined =>
  job.findLast((q) => q.classified.text)?.classified.text;

/**
 * Whether a part says something: its own words, or, for a text message whose words were only the bot's mention, what
 * it replies to (`@bot` as a reply to a colleague's question). A context on media without a caption, or on a sticker,
 * is no words of its own (see jobRequestTextOf).
 */
const hasWords = (q: QueuedMessage): boolean =>
  q.classified.text !== '' || (q.classified.context !== undefined && 'text' in q.classified.message);

/** Media without words (a photo, a document … whose caption, if any, came as a message of its own). */
const isBareMedia = (q: QueuedMessage): boolean => !q.classified.text && hasCaptionedMedia(q.classified.message);

/**
 * Media without words that shows something (a screenshot, a file, a video), not a voice message: a voice message is
 * the question said aloud, which the bot cannot hear, so it gets the "text only" note rather than joining a greeting.
 */
const isBareScreenshot = (q: QueuedMessage): boolean => isBareMedia(q) && !('voice' in q.classified.message);

/**
 * How far apart (s, by Message.date) `job`'s last part and the next may be: HARD_CUT_JOIN_S after a hard cut
 * (endsInHardCut), SPLIT_PART_JOIN_S after another long part (endsInLongPart), else `windowS` (the merge window).
 */
const joinWindowS = (job: QueuedMessage[], windowS: number): number =>
  endsInHardCut(job) ? HARD_CUT_JOIN_S : endsInLongPart(job) ? Math.max(SPLIT_PART_JOIN_S, windowS) : windowS;

/**
 * How long (ms, from the arrival of `job`'s last part) `job` waits for its next unit once none is queued (see
 * nextJob): HARD_CUT_WAIT_MS after a hard cut; after another long part SPLIT_PART_WAIT_MS, but no longer than until
 * SPLIT_PART_JOIN_S + 1 s past the part's Message.date: a part that waited at Telegram (a backlog after the bot was
 * away) was sent long ago, and a next part that could still join it (sent within SPLIT_PART_JOIN_S) is at Telegram
 * already, brought by the getUpdates mergeWaitMs waits for; at least `mergeWindowMs` either way (also when our clock
 * runs ahead of Telegram's). The merge window when more may come (expectsMore), else 0 (only a getUpdates that started
 * after the last part arrived must have answered).
 */
function continuationWaitMs(job: QueuedMessage[], mergeWindowMs: number): number {
  if (endsInHardCut(job)) return Math.max(HARD_CUT_WAIT_MS, mergeWindowMs);
  if (endsInLongPart(job)) {
    const joinableUntilMs = (job.at(-1)!.classified.message.date + SPLIT_PART_JOIN_S + 1) * 1000;
    return Math.max(mergeWindowMs, Math.min(SPLIT_PART_WAIT_MS, joinableUntilMs - lastArrivalOf(job)));
  }
  return expectsMore(job) ? mergeWindowMs : 0;
}

/** Whether `unit` (of the same sender, in the window) belongs to `job` (see nextJob). */
function belongsTo(job: QueuedMessage[], unit: QueuedMessage[], windowS: number): boolean {
  const first = unit[0]!;
  // One anonymous admin cannot be told from another (one fake sender): their messages are answered one by one.
  if ([first, ...job].some((q) => q.classified.anonymous)) return false;
  if (waitsForQuestion(job)) return joinsAnnounced(job, unit);
  if (!sameSenderWithin(first, job.at(-1)!, unitJoinWindowS(job, unit, windowS))) return false;
  if (forwardOriginOf(first.classified.message) !== undefined) return true;
  const lastText = lastTextOf(job);
  const album = mediaGroupOf(first.classified.message) !== undefined;
  if (lastText !== undefined && lastText.length >= SPLIT_PART_MIN_CHARS && !album) return true;
  // A command (`/start`) is answered on its own: it takes no media, and joins none.
  if (unit.every(isBareMedia)) return lastText === undefined ? job.every(isBareMedia) : !isCommand(lastText);
  const plainText = !album && 'text' in first.classified.message && hasWords(first);
  if (isCommand(first.classified.text)) return false;
  return captionedAfterBareMedia(job, unit) || (plainText && captionGoesOn(job, lastText));
}

/**
 * Whether `unit` is media (an album or a single file: CAPTIONED_MEDIA_FIELDS) after a `job` of media without any words
 * (not a voice message: isBareScreenshot; it keeps its "text only" note): media sent as several albums (over ten
 * files; photos and files apart) or messages carries the caption on one of them, a later one too, and the media before
 * it is its media, not a message of its own (which got the "text only" note).
 */
const captionedAfterBareMedia = (job: QueuedMessage[], unit: QueuedMessage[]): boolean =>
  job.every(isBareScreenshot) && unit.every((q) => hasCaptionedMedia(q.classified.message));

/**
 * How far apart (s, by Message.date) `job`'s last part and `unit` may be: joinWindowS, and at least
 * SCREENSHOT_AFTER_TEXT_S for media without words (not a voice message) right after a text (endsInOwnText), however
 * short the merge window.
 */
const unitJoinWindowS = (job: QueuedMessage[], unit: QueuedMessage[], windowS: number): number =>
  unit.every(isTextScreenshot) && endsInOwnText(job)
    ? Math.max(joinWindowS(job, windowS), SCREENSHOT_AFTER_TEXT_S)
    : joinWindowS(job, windowS);

/**
 * Media without words (not a voice message: isBareScreenshot) that may be the screenshot of its sender's text sent
 * just before it (SCREENSHOT_AFTER_TEXT_S): not a reply to someone else's message (Bot API Message
 * `reply_to_message`; the root of a forum topic, which every topic message replies to, does not count): media sent as a
 * reply to the bot's answer answers that, and gets the "text only" note.
 */
function isTextScreenshot(q: QueuedMessage): boolean {
  const message = q.classified.message;
  const replied = (message as { reply_to_message?: Message }).reply_to_message;
  const toOther = !!replied && replied.from?.id !== message.from?.id && replied.message_id !== topicOf(message);
  return isBareScreenshot(q) && !toOther;
}

/**
 * Whether `job`'s last part is a text message (Bot API Message `text`) with words that is no command (`/help`): the
 * text a screenshot sent right after it illustrates (SCREENSHOT_AFTER_TEXT_S).
 */
function endsInOwnText(job: ReadonlyArray<QueuedMessage>): boolean {
  const last = job.at(-1)!;
  return 'text' in last.classified.message && last.classified.text !== '' && !isCommand(last.classified.text);
}

/**
 * Whether a text message of the sender goes on with `job`'s media: as their caption, after media without any text
 * (`lastText` undefined), or as the rest of a caption cut at the limit (endsInFullCaption).
 */
const captionGoesOn = (job: QueuedMessage[], lastText: string | undefined): boolean =>
  (lastText === undefined && job.some((q) => hasCaptionedMedia(q.classified.message))) || endsInFullCaption(job);

/**
 * Characters a caption may fall short of CAPTION_MAX_CHARS and still be one cut at the limit: the white space the
 * server trims at the cut, a mention removed in a group.
 */
export const FULL_CAPTION_SLACK_CHARS = 64;

/**
 * Whether `message` is media whose caption fills Telegram's caption limit (CAPTION_MAX_CHARS, less
 * FULL_CAPTION_SLACK_CHARS): a client that cut a longer caption there sends the rest as a text message right after
 * it, which joins it (nextJob).
 */
function hasFullCaption(message: Message): boolean {
  const caption = (message as { caption?: string }).caption;
  return (
    caption !== undefined &&
    caption.length >= CAPTION_MAX_CHARS - FULL_CAPTION_SLACK_CHARS &&
    hasCaptionedMedia(message) &&
    forwardOriginOf(message) === undefined
  );
}

/** Whether the last part of `job` with words is media with a full caption (hasFullCaption): its rest may follow. */
function endsInFullCaption(job: QueuedMessage[]): boolean {
  const last = job.findLast((q) => q.classified.text);
  return !!last && hasFullCaption(last.classified.message);
}

/**
 * A greeting still unanswered takes the sender's next message with words (not a command), however long they typed
 * it (GREETING_JOIN_S); a sticker or a voice message is not the question it announced.
 */
function isQuestionAfterGreeting(job: QueuedMessage[], unit: QueuedMessage[]): boolean {
  const first = unit[0]!;
  return (
    // In a group, a part held for an album or paste of its own was not checked for being the question (continuationOf).
    first.continuation !== 'tentative' &&
    sameSenderWithin(first, job.at(-1)!, GREETING_JOIN_S) &&
    unit.some(hasWords) &&
    !isCommand(first.classified.text)
  );
}

/**
 * A message that is the sender's own sticker and nothing else: a reaction, not a request (no words, nothing to
 * read). A forwarded sticker is what someone else sent: content, named in the request like any attachment.
 */
const isStickerOnly = (q: { classified: { message: Message; text: string } }): boolean =>
  !q.classified.text && 'sticker' in q.classified.message && forwardOriginOf(q.classified.message) === undefined;

/**
 * A sticker, or media without words (a screenshot whose explanation is still being typed; not a voice message), that
 * the sender of a
 * greeting still unanswered sends before the question (within GREETING_JOIN_S): it joins the greeting, which goes on
 * waiting for the question, and gets no "text only" note of its own.
 */
function isWordlessAfterGreeting(job: QueuedMessage[], unit: QueuedMessage[]): boolean {
  const first = unit[0]!;
  return (
    first.continuation !== 'tentative' &&
    unit.every((q) => isStickerOnly(q) || isBareScreenshot(q)) &&
    sameSenderWithin(first, job.at(-1)!, GREETING_JOIN_S)
  );
}

/** What a job that waits for its question (waitsForQuestion) takes: the question, or a sticker or screenshot before it. */
const joinsAnnounced = (job: QueuedMessage[], unit: QueuedMessage[]): boolean =>
  isQuestionAfterGreeting(job, unit) || isWordlessAfterGreeting(job, unit);

/** A job that announces a question to come: greetings (isGreetingJob), or a private chat's stickers (isStickerJob). */
const waitsForQuestion = (job: QueuedMessage[]): boolean => isGreetingJob(job) || isStickerJob(job);

/**
 * A private chat's job of the sender's stickers alone (at most GREETING_CHAIN_MAX): a wave that opens a conversation,
 * so its question may follow and is waited for as after a greeting. In a group a sticker is never a call to the bot.
 */
const isStickerJob = (job: QueuedMessage[]): boolean =>
  job.length <= GREETING_CHAIN_MAX && job[0]!.classified.message.chat.type === 'private' && job.every(isStickerOnly);

/**
 * Whether `job` ends with a text message of TEXT_MAX_CHARS or more (not a forward) whose last character is a letter or
 * a digit: a part Android's and iOS's apps cut at exactly 4096 characters, inside a word. Its next part is certain to
 * follow, however slow the phone's network: it is waited for HARD_CUT_WAIT_MS and joined within HARD_CUT_JOIN_S
 * (Message.date). A 4096-character text ending in punctuation may be whole and gets the usual window.
 */
function endsInHardCut(job: QueuedMessage[]): boolean {
  const message = job.at(-1)!.classified.message;
  return (
    'text' in message &&
    forwardOriginOf(message) === undefined &&
    message.text.length >= TEXT_MAX_CHARS &&
    /[\p{L}\p{N}]$/u.test(message.text)
  );
}

/**
 * Whether the last part of `job` with words is a text message (not a forward, not a caption) of SPLIT_PART_MIN_CHARS
 * UTF-16 units or more: maybe the first part of a paste its client split (Android and iOS at exactly 4096 units,
 * whatever the character; Telegram Desktop at a paragraph or space after half the limit), so its next part is waited
 * for SPLIT_PART_WAIT_MS and joined within SPLIT_PART_JOIN_S (Message.date). Media without words sent after it (a
 * photo between the parts) does not end that. A hard cut (endsInHardCut) waits longer still.
 */
function endsInLongPart(job: QueuedMessage[]): boolean {
  const last = job.findLast((q) => q.classified.text);
  const message = last?.classified.message;
  return (
    !!message &&
    'text' in message &&
    forwardOriginOf(message) === undefined &&
    last!.classified.text.length >= SPLIT_PART_MIN_CHARS
  );
}

/** A command answered with the help (`/start`, `/help …`, `/settings` alone; not `/var/log is full`): fixedReplyOf. */
const isCommand = (text: string): boolean => text !== '' && fixedReplyOf(text) === HELP_TEXT;

/** Whether `job` may go on past a poll: the whole merge window is waited for its next unit (see nextJob). */
function expectsMore(job: QueuedMessage[]): boolean {
  if (waitsForQuestion(job)) return true;
  const lastText = lastTextOf(job);
  if (lastText === undefined) return job.some(isBareMedia);
  if (lastText.length >= SPLIT_PART_MIN_CHARS || endsInFullCaption(job)) return true;
  return lastText.length > CAPTION_MAX_CHARS && !job.some((q) => hasCaptionedMedia(q.classified.message));
}

/**
 * A job of greetings alone (isGreetingOnly: "Привет!", "Добрый день"; text messages, not forwards; at most
 * GREETING_CHAIN_MAX of them): its question follows. So does the bot's mention alone (`@bot` in a group: its
 * request text is empty), a call for attention as a greeting is; with no question after it, it gets the help.
 */
function isGreetingJob(job: QueuedMessage[]): boolean {
  // A private chat's stickers may come first (isStickerJob); stickers and screenshots sent after the greeting wait with
  // it (isWordlessAfterGreeting). Media first is not a greeting's job (its caption came apart).
  const lead = job.findIndex((q) => !isStickerOnly(q));
  if (lead < 0 || (lead > 0 && !isStickerJob(job.slice(0, lead)))) return false;
  const words = job.slice(lead).filter((q) => !isStickerOnly(q) && !isBareScreenshot(q));
  return isGreetingPart(job[lead]!) && words.length <= GREETING_CHAIN_MAX && words.every(isGreetingPart);
}

/**
 * One greeting of a greeting's job: a text (not a forward, not a reply carrying a context) that is a greeting alone,
 * or the bot's mention alone.
 */
const isGreetingPart = (q: QueuedMessage): boolean =>
  !q.classified.anonymous &&
  // A reply that carries what it answers (`@bot` as a reply to a colleague's question) asks about that: no greeting.
  q.classified.context === undefined &&
  'text' in q.classified.message &&
  forwardOriginOf(q.classified.message) === undefined &&
  (isGreetingOnly(q.classified.text) || (q.classified.text === '' && !!ownTextOf(q.classified.message)?.trim()));

/** Whether `next` comes from the sender of `previous` within `windowS` seconds of it (Message.date). */
function sameSenderWithin(next: QueuedMessage, previous: QueuedMessage, windowS: number): boolean {
  const a = previous.classified.message;
  const b = next.classified.message;
  return b.from?.id === a.from?.id && topicOf(b) === topicOf(a) && b.date - a.date <= windowS;
}

/** The forum topic a message was written in (`message_thread_id` of a topic message; Bot API Message). */
const topicOf = (message: Message): number | undefined => {
  const topic = message as { is_topic_message?: boolean; message_thread_id?: number };
  return topic.is_topic_message ? topic.message_thread_id : undefined;
};

/** What the Telegram channel is built from (see createTelegramChannel). */
export type TelegramChannelDeps = {
  settings: TelegramSettings;
  api: TelegramBotApi;
  secretary: SecretaryClient;
  rateLimit: SenderRateLimit;
  /** Audit events of every update (received, skipped, the answer delivered or failed); default: none reported. */
  audit?: AuditReporter;
  metrics: ChannelMetrics;
  logger: Logger;
  /** Backoff after network errors and 5xx of getUpdates (ms, doubled per failure, full jitter). */
  errorBaseDelayMs?: number;
};

/** One chat's ordered queue and the worker draining it. */
type ChatQueue = { items: Queued[]; running?: Promise<void>; wake?: () => void };

/** The channel's state, shared by its steps (one per createTelegramChannel). */
type ChannelState = TelegramChannelDeps & {
  errorBaseDelayMs: number;
  me?: UserFromGetMe;
  lastPollAt?: number;
  /** The last poll-side failure (TelegramChannel.health's `lastError`); undefined after a success. */
  lastPollError?: string;
  stopping: boolean;
  loop?: Promise<void>;
  /** Ends waits (retries, back-off, merge windows) at once on stop. */
  stopController: AbortController;
  /** Ends calls in flight once the shutdown deadline has passed. */
  abort: AbortController;
  offsets: OffsetTracker;
  /** Pending updates (taken from a poll, not handled yet) by update_id: what parking stores (telegram-parking.ts). */
  pendingUpdates: Map<number, Update>;
  /**
   * Parked updates loaded at start that no poll of this process returned: the offset tracker does not know them, so
   * their handling never moves the offset (it must not confirm updates Telegram still holds below them).
   */
  loadedParked: Set<number>;
  /**
   * Parked updates loaded at start, routed only together with the first poll's updates in update_id order: an
   * earlier update of the same chat that was never parked (too large, refused) comes back from that poll and must
   * be answered first. Undefined once routed.
   */
  loadedBacklog?: Update[];
  parking: UpdateParking;
  /** JOBS_IN_FLIGHT_MAX slots: a chat's job runs only once it has one. */
  jobSlots: ReturnType<typeof createJobSlots>;
  chats: Map<string, ChatQueue>;
  /** A group that became a supergroup (400 with migrate_to_chat_id): where its answers go now. */
  migratedChats: Map<number, number>;
  /** When (ms) a sendMessage last succeeded, to any chat: tells an outage from one chat's failure (sendRetryStep). */
  lastSentAt?: number;
  wakePoll?: () => void;
  /** Start (ms) of the last getUpdates that answered: merges wait for one that started after their window. */
  polledAt?: number;
  /** `<chat>:<media_group_id>` of albums answered lately (oldest first, at most ANSWERED_ALBUMS_KEPT). */
  answeredAlbums: Set<string>;
  /**
   * `<chat>:<sender>` → Message.date (s) of the last answered text over CAPTION_MAX_CHARS without media, whose media
   * may still come (LATE_CAPTION_MEDIA_S; oldest first, at most ANSWERED_ALBUMS_KEPT).
   */
  answeredCaptions: Map<string, number>;
  /**
   * `<chat>:<sender>` → Message.date (s) of the sender's last handled job that ended in a text (endsInOwnText), whose
   * screenshot may still come (SCREENSHOT_AFTER_TEXT_S; oldest first, at most ANSWERED_ALBUMS_KEPT).
   */
  answeredTexts: Map<string, number>;
  /**
   * `<chat>:<sender>` → Message.date (s) of the sender's last message without words there that got the "text only"
   * note or came within TEXT_ONLY_QUIET_S of it (textOnlyRepeated; oldest first, at most ANSWERED_ALBUMS_KEPT).
   */
  textOnlyNoted: Map<string, number>;
  /**
   * `<chat>:<sender>` → Message.date (s) of the sender's last job with words there (STICKER_REACTION_S; oldest first,
   * at most ANSWERED_ALBUMS_KEPT).
   */
  lastWordsAt: Map<string, number>;
  /**
   * `<chat>:<sender>:<topic>` → Message.date (s) of a greeting alone in a group that the bot answered, whose question
   * may follow without a mention (GROUP_GREETING_QUESTION_S; taken once; oldest first, at most ANSWERED_ALBUMS_KEPT).
   */
  answeredGreetings: Map<string, number>;
  /** `<chat>:<sender>:<topic>` → tentative parts held out of the queue (hold), oldest first. */
  held: Map<string, QueuedMessage[]>;
  /**
   * `<chat>:<message_id>` of the pieces of the secretary's answers this process sent → whether the answer was a
   * clarifying question and whom it asked (keepsBotWords; oldest first, at most SENT_ANSWERS_KEPT).
   */
  sentAnswers: Map<string, { question: boolean; askedUserId?: number }>;
  /**
   * `<chat>:<user>` of members whose last answer from the bot there was a clarifying question (answersBot; oldest
   * first, at most SENT_ANSWERS_KEPT): "👍" from them is the answer to it, not a reaction.
   */
  openQuestions: Set<string>;
};

/** An answer that is sent (the `send: true` side of Reply). */
type SentReply = Extract<Reply, { send: true }>;
/** Where an answer goes: the chat, and in groups the message it answers. */
type ReplyTarget = { chatId: number; replyTo?: number; threadId?: number };

/**
 * The Telegram channel, as small steps: poll (getUpdates) → classify (telegram-update.ts, then `dispatch`) →
 * per-chat queue (merging albums and split pastes: `nextJob`) → decide (`decideMessage` / `handleCallback`: the
 * secretary, or a fixed reply) → deliver (`deliver`: sendMessage, errors by kind) → confirm (`recordHandled` in
 * the secretary, then `confirm` moves the offset over the handled prefix).
 *
 * Guarantees (docs/communicator.md "Telegram: exactly once"):
 * - each chat is an ordered queue of its own; a chat waiting on a retry, a 429 or a slow analysis never delays
 *   another chat, and polling never waits on a chat;
 * - an update is confirmed as soon as it and every update below it are handled; handled updates are recorded
 *   durably first, so a restart that sees them again does not answer them. The one window: a crash after
 *   sendMessage succeeded and before the record was written answers that update again — at most one update
 *   per chat, since a chat's next update starts only after the record is written;
 * - permanent Bot API errors are not retried; 429 waits `retry_after` in that chat only; 5xx and network errors
 *   are retried soon, with the stored answer (never a new analysis).
 */
export function createTelegramChannel(deps: TelegramChannelDeps): TelegramChannel {
  const stopController = new AbortController();
  const state: ChannelState = {
    ...deps,
    errorBaseDelayMs: deps.errorBaseDelayMs ?? 1000,
    stopping: false,
    stopController,
    abort: new AbortController(),
    offsets: createOffsetTracker(),
    pendingUpdates: new Map(),
    loadedParked: new Set(),
    jobSlots: createJobSlots(JOBS_IN_FLIGHT_MAX, stopController.signal),
    parking: createUpdateParking({
      client: deps.secretary,
      // The bot's id is the token's part before ':' (as its poller lease is named); the secret part never is.
      resource: `telegram:${deps.settings.token.split(':')[0]}`,
      logger: deps.logger,
      metrics: deps.metrics,
      signal: stopController.signal,
    }),
    chats: new Map(),
    migratedChats: new Map(),
    answeredAlbums: new Set(),
    answeredCaptions: new Map(),
    answeredTexts: new Map(),
    textOnlyNoted: new Map(),
    lastWordsAt: new Map(),
    sentAnswers: new Map(),
    openQuestions: new Set(),
    answeredGreetings: new Map(),
    held: new Map(),
  };
  return {
    api: deps.api,
    start: () => {
      state.loop ??= pollLoop(state).catch((err: unknown) => {
        state.logger.error('Telegram polling loop ended unexpectedly', { err: err instanceof Error ? err : undefined });
      });
    },
    stop: (deadlineMs) => stopChannel(state, deadlineMs),
    health: () => ({
      bot: state.me?.username,
      lastPollAt: state.lastPollAt,
      pollTimeoutS: deps.settings.pollTimeoutS,
      ...(state.lastPollError ? { lastError: state.lastPollError } : {}),
    }),
  };
}

/**
 * Stops the channel: waits end at once, a job in flight (an analysis, a send, its record) gets until
 * `deadlineMs`, then calls in flight are cut (the job stays unconfirmed for the next process); finally the
 * offset of what was handled is sent, so a restart does not even fetch it again (as telegraf does on stop).
 */
async function stopChannel(state: ChannelState, deadlineMs: number): Promise<void> {
  state.stopping = true;
  state.stopController.abort();
  const running = [...state.chats.values()].flatMap((c) => (c.running ? [c.running] : []));
  await withDeadline(deadlineMs, (signal) => untilAborted(Promise.all(running), signal, stopped)).catch(
    () => undefined,
  );
  state.abort.abort();
  await state.loop;
  await Promise.all(running);
  // Rows of updates handled just now are removed; one left over is found handled at the next start.
  await withDeadline(FINAL_CONFIRM_MS, (signal) => untilAborted(state.parking.settle(), signal, stopped)).catch(
    () => undefined,
  );
  const { me, api, offsets } = state;
  if (me)
    await withDeadline(FINAL_CONFIRM_MS, (signal) => api.getUpdates(offsets.offset(), 0, signal)).catch(
      () => undefined,
    );
}

// ---- waits, cancellation and retries (all timing from @workemon/service-kit resilience) ----

const stopped = () => new Stopped('stopped');

/** A call in flight, cut short (Stopped) once the shutdown deadline has passed. */
function untilStopped<T>(state: ChannelState, work: Promise<T>): Promise<T> {
  return untilAborted(work, state.abort.signal, stopped);
}

/** Waits `ms`, or less when the wake function handed to `onWake` is called or the channel stops. */
async function waitFor(state: ChannelState, ms: number, onWake?: (wake: () => void) => void): Promise<void> {
  if (state.stopping) return;
  const cut = new AbortController();
  const done = () => cut.abort();
  state.stopController.signal.addEventListener('abort', done, { once: true });
  onWake?.(done);
  await sleep(ms, { signal: cut.signal });
  state.stopController.signal.removeEventListener('abort', done);
}

/**
 * service-kit `retry` until the channel stops: every failure is retried (unless `shouldRetry` says no, which
 * throws that error), and a stop during a wait throws Stopped, as does a Stopped thrown by `attempt`.
 */
async function retryUntilStopped<T>(
  state: ChannelState,
  attempt: (retry: number) => Promise<T>,
  options: Pick<RetryOptions, 'delayMs' | 'onRetry' | 'shouldRetry'>,
): Promise<T> {
  let refused = false;
  try {
    return await retry(attempt, {
      ...options,
      maxRetries: Number.POSITIVE_INFINITY,
      signal: state.stopController.signal,
      shouldRetry: (err, n) => {
        if (err instanceof Stopped) return false;
        refused = !(options.shouldRetry?.(err, n) ?? true);
        return !refused;
      },
    });
  } catch (err) {
    if (err instanceof Stopped || refused) throw err;
    throw new Stopped('stopping');
  }
}

/** The short reason of an error for a log line: the AppError code, else the message. */
const whyOf = (err: unknown): string => (isAppError(err) ? err.code : (err as Error).message);

// ---- audit (docs/audit-and-limits.md): ids `telegram:<handled key>:<outcome>` and `…:reply` ----

/** The audit sender of an update: `tg:<user id>` of whoever sent the message or pressed the button. */
function senderOf(update: Update): string | undefined {
  const from =
    'callback_query' in update ? update.callback_query.from : 'message' in update ? update.message.from : undefined;
  return from ? `tg:${from.id}` : undefined;
}

/** Audit event of an inbound update: `received`, or `skipped` with the audit skip reason. */
function auditInbound(
  state: ChannelState,
  update: Update,
  outcome: 'received' | 'skipped',
  reason?: AuditSkipReason,
  detail?: string,
): void {
  const messageId = handledKeyOf(update);
  state.audit?.report({
    event_id: auditEventId('telegram', messageId, outcome),
    channel: 'telegram',
    direction: 'inbound',
    outcome,
    message_id: messageId,
    sender: senderOf(update),
    request_id: getRequestId(),
    ...(reason ? { reason } : {}),
    ...(detail ? { detail } : {}),
  });
}

/** The notes of a sent answer for its audit event (a refusal, an apology, one answer to several updates). */
export function replyNotesOf(reply: { reason?: string }, updates: number): string[] {
  return [
    reply.reason === 'rejected' ? 'the secretary refused the request; a standard message was sent' : undefined,
    reply.reason === 'secretary_failed' ? 'the secretary kept failing; an apology was sent' : undefined,
    updates > 1 ? `one answer to ${updates} updates (album or split message)` : undefined,
  ].filter((note): note is string => note !== undefined);
}

/** The answer's delivery: `delivered` once Telegram accepted every piece, else `failed` with the Bot API reason. */
function auditReply(
  state: ChannelState,
  update: Update,
  reply: SentReply,
  delivered: { outcome: HandledOutcome; reason?: string },
  updates: number,
): void {
  const messageId = handledKeyOf(update);
  const failed = delivered.outcome === 'failed' && delivered.reason !== 'secretary_failed';
  const notes = replyNotesOf(reply, updates);
  state.audit?.report({
    event_id: auditEventId('telegram', messageId, 'reply'),
    channel: 'telegram',
    direction: 'outbound',
    outcome: failed ? 'failed' : 'delivered',
    message_id: messageId,
    sender: senderOf(update),
    request_id: getRequestId(),
    recipient: String(state.migratedChats.get(reply.chatId) ?? reply.chatId),
    ...(failed ? { reason: `telegram-${(delivered.reason ?? 'failed').replace(/_/g, '-')}` } : {}),
    ...(notes.length ? { detail: notes.join('; ') } : {}),
  });
}

// ---- step: poll ----

/**
 * How long to wait after a failed getMe/deleteWebhook/getUpdates (ms): 409 (another poller or a webhook)
 * `conflictWaitMs`; 429 its `retry_after`; 401/404 a minute; anything else (5xx, network) exponential backoff
 * from `baseMs` (capped at 30 s, full jitter) plus any `retry_after` the 5xx carried; 0 for an abort.
 *
 * @param failures failures in a row so far (the exponent of the backoff, counted from 0 or 1 by the caller).
 */
export function pollRetryDelayMs(
  failure: BotApiFailure,
  failures: number,
  options: { conflictWaitMs: number; baseMs: number },
): number {
  switch (failure.kind) {
    case 'aborted':
      return 0;
    case 'conflict':
      return options.conflictWaitMs;
    case 'rate_limited':
      return (failure.retryAfterS ?? 1) * 1000;
    case 'unauthorized':
      return UNAUTHORIZED_WAIT_MS;
    default:
      return (
        (failure.retryAfterS ? failure.retryAfterS * 1000 : 0) +
        backoffMs(Math.min(failures, 10), { baseMs: options.baseMs, maxMs: POLL_BACKOFF_CAP_MS })
      );
  }
}

/** Retry options of a poll-side Bot API call (`during`: what failed, for the log); `firstFailure` 0 or 1. */
function pollRetryOptions(state: ChannelState, during: string, firstFailure: number) {
  const options = { conflictWaitMs: state.settings.conflictWaitMs, baseMs: state.errorBaseDelayMs };
  return {
    delayMs: (n: number, err: unknown) => pollRetryDelayMs(state.api.describe(err), n + firstFailure, options),
    onRetry: (err: unknown, _n: number, waitMs: number) => reportPollFailure(state, err, during, waitMs),
  };
}

/** Counts and logs a failed poll-side call (401/404 as an error: the token needs a person); never throws. */
function reportPollFailure(state: ChannelState, err: unknown, during: string, waitMs: number): void {
  const f = state.api.describe(err);
  if (f.kind === 'aborted' || state.stopping) return;
  state.metrics.pollError('tg', f.kind);
  state.lastPollError = `${during}: ${f.kind}${f.status ? ` (HTTP ${f.status})` : ''}: ${f.message}`;
  const level = f.kind === 'unauthorized' ? 'error' : 'warn';
  state.logger[level](`Telegram ${during} failed (${f.kind}); retrying in ${Math.round(waitMs)} ms`, {
    error: { message: f.message, code: f.status },
  });
}

/** getMe and deleteWebhook (long polling needs no webhook), retried until they succeed or the channel stops. */
async function connect(state: ChannelState): Promise<void> {
  await retryUntilStopped(
    state,
    async () => {
      state.me = await state.api.getMe();
      await state.api.deleteWebhook();
      state.lastPollError = undefined;
    },
    pollRetryOptions(state, 'start', 0),
  );
  state.logger.info(`Telegram bot @${state.me?.username} ready`);
}

/** Connects, queues the parked updates, then polls until the channel stops. */
async function pollLoop(state: ChannelState): Promise<void> {
  try {
    await connect(state);
    await loadParked(state);
    while (!state.stopping) await pollOnce(state);
  } catch (err) {
    if (!(err instanceof Stopped)) throw err;
  }
}

/**
 * One getUpdates call; while an update is pending Telegram answers at once (it still holds it): no long poll.
 * `offset` is the offset it asked with.
 */
async function fetchUpdates(state: ChannelState): Promise<{ updates: Update[]; offset: number }> {
  const busy = state.offsets.pendingCount() > 0 || (state.loadedBacklog?.length ?? 0) > 0;
  const timeoutS = busy ? 0 : state.settings.pollTimeoutS;
  const startedAt = Date.now();
  const offset = state.offsets.offset();
  const updates = await state.api.getUpdates(offset, timeoutS, state.abort.signal).catch(async (err: unknown) => {
    await removeWebhookAfterConflict(state, err);
    throw err;
  });
  state.lastPollAt = Date.now();
  state.lastPollError = undefined;
  state.polledAt = startedAt;
  state.metrics.success('tg');
  return { updates, offset };
}

/**
 * After a 409 "Conflict: can't use getUpdates method while webhook is active" (Bot API getUpdates: it "will not work
 * if an outgoing webhook is set up"), a webhook was set for this bot after start — by hand, or a stale deployment:
 * it is removed again, as at start (`connect`; pending updates kept), so polling resumes after the conflict wait.
 * Any other failure, and a failing deleteWebhook, change nothing (the poll's retry goes on).
 */
async function removeWebhookAfterConflict(state: ChannelState, err: unknown): Promise<void> {
  const failure = state.api.describe(err);
  if (failure.kind !== 'conflict' || !/webhook/i.test(failure.message) || state.stopping) return;
  state.logger.warn('a webhook was set for this bot while it long-polls; removing it (pending updates kept)', {
    error: { message: failure.message, code: failure.status },
  });
  await state.api
    .deleteWebhook()
    .catch((e: unknown) =>
      state.logger.warn('deleteWebhook failed; polling retries', { error: { message: state.api.describe(e).message } }),
    );
}

/** One poll: fetch (retried with backoff), dispatch each update, then wait a little if some chat is busy. */
async function pollOnce(state: ChannelState): Promise<void> {
  parkStalled(state);
  const { updates, offset } = await retryUntilStopped(
    state,
    () => fetchUpdates(state),
    pollRetryOptions(state, 'getUpdates', 1),
  );
  const backlog = state.loadedBacklog ?? [];
  state.loadedBacklog = undefined;
  // Loaded parked updates and this poll's, by update_id (a loaded one before its polled repeat): each chat's order.
  const merged = [
    ...backlog.map((update) => ({ update, loaded: true })),
    ...updates.map((update) => ({ update, loaded: false })),
  ].sort((a, b) => a.update.update_id - b.update.update_id || Number(b.loaded) - Number(a.loaded));
  for (const { update, loaded } of merged) {
    if (loaded) {
      routeLoaded(state, update);
      continue;
    }
    // Telegram returns no update below the offset asked for, unless it restarted the sequence lower.
    if (update.update_id < offset && state.offsets.rebase(update.update_id))
      state.logger.warn('Telegram restarted its update_id sequence below our offset; following it', {
        telegram: { update_id: update.update_id, offset },
      });
    dispatchOrDrop(state, update);
  }
  releaseExpiredHeld(state);
  // A chat holding a merge open waits for this poll (an album split across two batches): look again now.
  for (const chat of state.chats.values()) chat.wake?.();
  state.metrics.oldestPendingUpdate(state.offsets.oldestPendingAgeMs());
  state.metrics.oldestParkedUpdate(state.parking.oldestParkedAgeMs());
  // Nothing new while some chat works: look again soon, or as soon as the offset can move.
  if (state.offsets.pendingCount() > 0) await waitFor(state, BUSY_POLL_MS, (wake) => (state.wakePoll = wake));
  state.wakePoll = undefined;
}

// ---- step: classify ----

// ---- step: park (telegram-parking.ts) ----

/**
 * Parks, in the background, the pending updates that held the offset back too long (parkingCandidates); once the
 * secretary stored them the offset moves past them (the poll is woken). Never waits.
 */
function parkStalled(state: ChannelState): void {
  const ids = parkingCandidates(
    state.offsets.pendingEntries(),
    state.offsets.highestSeen(),
    Date.now(),
    state.parking.excluded,
  );
  const updates = ids.flatMap((id) => state.pendingUpdates.get(id) ?? []);
  state.parking.parkInBackground(
    updates,
    (id) => state.pendingUpdates.has(id),
    (parked) => {
      let moved = false;
      for (const id of parked) moved = state.offsets.park(id) || moved;
      if (!moved) return;
      state.logger.info(`parked ${parked.length} Telegram updates that held the offset back`, {
        telegram: { update_ids: parked.slice(0, 10), offset: state.offsets.offset() },
      });
      state.metrics.oldestPendingUpdate(state.offsets.oldestPendingAgeMs());
      state.wakePoll?.();
    },
  );
}

/**
 * Loads the parked updates an earlier process (or replica) left, before the first poll; the first poll routes them
 * with its own updates in update_id order (`loadedBacklog`), so each keeps its place in its chat. Retried while the
 * secretary cannot answer. Malformed or too old rows are dropped by `load` (telegram-parking.ts). An update already
 * handled is found by its job's handled-record look-up and only has its row removed.
 */
async function loadParked(state: ChannelState): Promise<void> {
  const updates = await retryUntilStopped(state, () => untilStopped(state, state.parking.load()), {
    delayMs: recordRetryDelayMs,
    // A secretary older than parking (a rolling upgrade) has no parked updates to give.
    shouldRetry: (err) => !(isAppError(err) && err.code === 'upstream_rejected' && err.status === 404),
    onRetry: (err) =>
      state.logger.warn('loading parked Telegram updates failed; retrying before polling', {
        error: { message: (err as Error).message },
      }),
  }).catch((err: unknown) => {
    if (err instanceof Stopped) throw err;
    state.logger.warn('the secretary has no parked Telegram updates route (404); polling without parking', {
      error: { message: whyOf(err) },
    });
    return [];
  });
  if (updates.length)
    state.logger.info(`queueing ${updates.length} parked Telegram updates`, {
      telegram: { update_ids: updates.slice(0, 10).map((u) => u.update_id) },
    });
  for (const update of updates) state.loadedParked.add(update.update_id);
  state.loadedBacklog = updates;
}

/**
 * Routes one loaded parked update. One that cannot be routed (a shape `load` let through that still throws) is
 * logged, dropped and its row removed: one bad row must never end the polling loop, here or at any restart.
 */
function routeLoaded(state: ChannelState, update: Update): void {
  try {
    route(state, update);
  } catch (err) {
    state.loadedParked.delete(update.update_id);
    state.parking.release([update.update_id]);
    state.metrics.parkedDropped(1);
    state.logger.error('a parked Telegram update could not be routed; it is dropped, never answered', {
      err: err instanceof Error ? err : undefined,
      telegram: { update_id: update.update_id },
    });
  }
}

/**
 * A poll returned an update that is parked and queued already (loaded at start: the offset had not moved past it
 * yet): not queued again; the offset moves past it, its park being durable.
 */
function confirmParkedRepeat(state: ChannelState, updateId: number): void {
  state.loadedParked.delete(updateId);
  if (state.offsets.add(updateId)) state.offsets.park(updateId);
  state.wakePoll?.();
}

/**
 * dispatch, for an update the code cannot take (a message without `chat`, a callback query without `from`: the Bot
 * API's Update never lacks them, a proxy or a gateway in front of it might): logged, counted as skipped
 * (`malformed_update`) and confirmed, so the offset moves past it. One bad update must never end the polling loop,
 * nor end it again at every restart (routeLoaded does the same for parked rows).
 */
function dispatchOrDrop(state: ChannelState, update: Update): void {
  try {
    dispatch(state, update);
  } catch (err) {
    state.logger.error('a Telegram update could not be handled; it is skipped, never answered', {
      err: err instanceof Error ? err : undefined,
      telegram: { update_id: update.update_id },
    });
    state.metrics.skipped('tg', 'malformed_update');
    confirm(state, [update]);
  }
}

/** Takes one polled update: queues it in its chat, or confirms it at once. False for a repeat. */
function dispatch(state: ChannelState, update: Update): boolean {
  if (state.loadedParked.has(update.update_id)) {
    confirmParkedRepeat(state, update.update_id);
    return false;
  }
  if (!state.offsets.add(update.update_id)) return false;
  state.pendingUpdates.set(update.update_id, update);
  state.metrics.received('tg');
  auditInbound(state, update, 'received');
  route(state, update);
  return true;
}

/** Classifies a taken update in its chat and queues it (or holds it aside), or confirms it at once when ignored. */
function route(state: ChannelState, update: Update): void {
  noteMigration(state, update);
  const { classified, continuation } = classifyInChat(state, update);
  if (classified.kind === 'ignore') {
    state.metrics.skipped('tg', classified.reason);
    const reason = classified.reason === 'bot_sender' ? 'automatic' : 'not-addressed';
    auditInbound(state, update, 'skipped', reason, classified.reason);
    confirm(state, [update]);
    return;
  }
  const item: Queued = { update, classified, arrivedAt: Date.now(), ...(continuation ? { continuation } : {}) };
  if (continuation === 'tentative' && isMessage(item) && !hasAddressedAlbumPart(state, item)) {
    hold(state, item);
    return;
  }
  // A message addressed to the bot takes its sender's held parts along (the mention at the end of a paste).
  enqueue(state, ...(continuation ? [] : takeHeld(state, item)), item);
}

/**
 * An update classified with what its chat holds: a continuation of a queued job (continuationOf: `follows`), the
 * question after an answered group greeting (answeredGreetingOf: addressed to the bot, not a continuation), a group
 * part that may belong to something addressed (tentativeOf: `tentative`), else as any update (classifyUpdate).
 */
function classifyInChat(
  state: ChannelState,
  update: Update,
): { classified: Classified; continuation?: 'follows' | 'tentative' } {
  const continued = continuationOf(state, update);
  if (continued) return { classified: continued, continuation: 'follows' };
  const asked = answeredGreetingOf(state, update);
  if (asked) return { classified: asked };
  const tentative = tentativeOf(state, update);
  if (tentative) return { classified: tentative, continuation: 'tentative' };
  const classified = classifyUpdate(update, state.me, (m, r) => keepsBotWords(state, m, r));
  // A member who asks with a mention or a reply to the bot has asked the greeting's question.
  if (classified.kind === 'message') state.answeredGreetings.delete(greetingKeyOf(classified.message));
  return { classified };
}

/** `<chat>:<sender>:<forum topic>`: the key of a sender's held parts in a chat (and topic). */
const heldKeyOf = (q: QueuedMessage): string =>
  `${q.classified.chatKey}:${senderIdOf(q)}:${topicOf(q.classified.message) ?? ''}`;

/** Whether the chat's queue holds a part of `item`'s album, from its sender, that is addressed to the bot. */
function hasAddressedAlbumPart(state: ChannelState, item: Queued): boolean {
  const album = isMessage(item) ? mediaGroupOf(item.classified.message) : undefined;
  const chat = state.chats.get(item.classified.chatKey);
  return (
    album !== undefined &&
    !!chat?.items.some(
      (q) =>
        !q.continuation &&
        isMessage(q) &&
        senderIdOf(q) === senderIdOf(item) &&
        mediaGroupOf(q.classified.message) === album,
    )
  );
}

/**
 * Holds a tentative part (tentativeOf) aside, out of the chat's queue, so it delays nobody: it goes
 * into the queue with its sender's next message addressed to the bot (takeHeld), or is given up (releaseExpiredHeld)
 * once HELD_PARTS_WAIT_WINDOWS merge windows passed and a getUpdates that started after that answered. It stays
 * unconfirmed, for the next process, on stop.
 */
function hold(state: ChannelState, item: QueuedMessage): void {
  const key = heldKeyOf(item);
  const held = state.held.get(key) ?? [];
  state.held.set(key, held);
  held.push(item);
}

/** Takes the held parts of `item`'s sender, chat and topic (hold), oldest first: they go into the queue before it. */
function takeHeld(state: ChannelState, item: Queued): Queued[] {
  if (!isMessage(item)) return [];
  const key = heldKeyOf(item);
  const held = state.held.get(key) ?? [];
  state.held.delete(key);
  return held;
}

/**
 * Step "poll", after a batch is dispatched: gives up each held part whose wait (HELD_PARTS_WAIT_WINDOWS merge
 * windows from its arrival) ended before the getUpdates that just answered started, so a message mentioning the bot
 * that Telegram already held is not missed: confirmed as not addressed, no answer, no record at the secretary.
 */
function releaseExpiredHeld(state: ChannelState): void {
  const polledAt = state.polledAt ?? 0;
  const waitMs = state.settings.mergeWindowMs * HELD_PARTS_WAIT_WINDOWS;
  for (const [key, held] of state.held) {
    const expired = held.filter((q) => q.arrivedAt + waitMs < polledAt);
    if (expired.length === 0) continue;
    const kept = held.filter((q) => !expired.includes(q));
    if (kept.length > 0) state.held.set(key, kept);
    else state.held.delete(key);
    for (const q of expired) {
      state.metrics.skipped('tg', 'group_not_mentioned');
      auditInbound(state, q.update, 'skipped', 'not-addressed', 'group_not_mentioned');
    }
    confirm(
      state,
      expired.map((q) => q.update),
    );
  }
}

/** The answeredGreetings key of a group message: its chat, sender and forum topic. */
const greetingKeyOf = (message: Message): string => `${message.chat.id}:${message.from?.id}:${topicOf(message) ?? ''}`;

/**
 * Remembers a group job of greetings alone as it is answered (answeredGreetingOf takes its question), unless a message
 * of the member addressed to the bot is already queued after it in that chat and topic: that is the question.
 */
function rememberAnsweredGreeting(state: ChannelState, job: QueuedMessage[]): void {
  const last = job.at(-1)!.classified.message;
  if (last.chat.type === 'private' || !isGreetingJob(job)) return;
  const key = greetingKeyOf(last);
  const asked = state.chats
    .get(String(last.chat.id))
    ?.items.some((q) => isMessage(q) && !q.continuation && greetingKeyOf(q.classified.message) === key);
  if (asked) return;
  keepRecent(state.answeredGreetings, key, last.date);
}

/**
 * In a group, the message with words a member sends within GROUP_GREETING_QUESTION_S (Message.date) after the bot
 * answered their greeting alone (`@bot привет` → "Здравствуйте! Чем помочь?"), in the same chat and forum topic,
 * without a mention of its own: the question the greeting announced, classified as addressed to the bot (once per
 * greeting). Not when plainly meant for someone else: a command, a reply to another message, a mention. Undefined
 * for anything else (classified as usual). Kept in memory: after a restart such a question needs a mention.
 */
function answeredGreetingOf(state: ChannelState, update: Update): Classified | undefined {
  if (!('message' in update)) return undefined;
  const message = update.message;
  if (message.chat.type === 'private' || !message.from) return undefined;
  const key = greetingKeyOf(message);
  const greetedAt = state.answeredGreetings.get(key);
  if (greetedAt === undefined || message.date < greetedAt || message.date - greetedAt > GROUP_GREETING_QUESTION_S)
    return undefined;
  const text = ownTextOf(message)?.trim();
  if (!text || text.startsWith('/') || repliesToSomeoneElse(message, state.me) || mentionsSomeone(message))
    return undefined;
  const classified = classifyUpdate(update, state.me, (m, r) => keepsBotWords(state, m, r));
  if (classified.kind !== 'ignore' || classified.reason !== 'group_not_mentioned') return undefined;
  state.answeredGreetings.delete(key);
  return { kind: 'message', chatKey: String(message.chat.id), message, text: requestTextOf(message, text) };
}

/**
 * In a group only the first part of a paste the client split carries the mention: a message there that is not
 * addressed to the bot, from the sender of the long part last queued in that chat (at least
 * SPLIT_PART_MIN_CHARS characters) and within the merge window of it, is that paste's next part and queued as a
 * message (`nextJob` joins it). So is a forward (a single message, or an album part, with or without a caption)
 * its sender sent along with what they last queued there: the comment carries the mention, the forwards do not.
 * So is the next message of a member whose greeting to the bot (`@bot добрый день`, isGreetingOnly) is still queued:
 * the question after it. Undefined for anything else (classified as usual).
 */
function continuationOf(state: ChannelState, update: Update): Classified | undefined {
  if (!('message' in update)) return undefined;
  const message = update.message;
  if (message.chat.type === 'private' || !message.from) return undefined;
  const forward = forwardOriginOf(message) !== undefined;
  const album = forward ? undefined : mediaGroupOf(message);
  // An album is the question after a greeting (screenshots with the question as caption): its first part follows
  // the greeting, its other parts follow that part.
  if (album !== undefined) {
    if (!albumFollows(state, message, album) && !followsGreeting(state, message)) return undefined;
  } else if (!followsLongPart(state, message, forward)) return undefined;
  const classified = classifyUpdate(update, state.me, (m, r) => keepsBotWords(state, m, r));
  if (classified.kind !== 'ignore' || classified.reason !== 'group_not_mentioned') return undefined;
  const text = ownTextOf(message);
  if (!text && !forward && album === undefined) return undefined;
  return { kind: 'message', chatKey: String(message.chat.id), message, text: requestTextOf(message, text) };
}

/**
 * In a group, a message not addressed to the bot that may still be part of something addressed to it: an album part
 * (the mention may be in another part's caption) or a part of a long paste the client split (at least
 * SPLIT_PART_MIN_CHARS; the mention may be at the paste's end, in its last part). Queued as a continuation: answered
 * only with a part of its job that is addressed to the bot (nextJob joins them), otherwise recorded skipped.
 * Undefined for anything else (classified as usual).
 */
function tentativeOf(state: ChannelState, update: Update): Classified | undefined {
  if (!('message' in update)) return undefined;
  const message = update.message;
  if (message.chat.type === 'private' || !message.from || forwardOriginOf(message) !== undefined) return undefined;
  const text = ownTextOf(message) ?? '';
  const album = mediaGroupOf(message);
  if (
    album === undefined ? text.length < SPLIT_PART_MIN_CHARS : state.answeredAlbums.has(`${message.chat.id}:${album}`)
  )
    return undefined;
  const classified = classifyUpdate(update, state.me, (m, r) => keepsBotWords(state, m, r));
  if (classified.kind !== 'ignore' || classified.reason !== 'group_not_mentioned') return undefined;
  return { kind: 'message', chatKey: String(message.chat.id), message, text: requestTextOf(message, text) };
}

/**
 * Whether the last message `message`'s sender queued in its chat (another member's may follow it) is in the window
 * and a long part (or media with a full caption, hasFullCaption) that is not an album (or any message, an album part
 * too, when `message` is a forward sent along with it). After an album part, what `message` follows is the album's
 * part with a full caption, if it has one (fullCaptionPartOf): clients send the rest of a caption over
 * CAPTION_MAX_CHARS as a text message right after the album, and only the caption carries the mention. The window
 * (Message.date) is the one nextJob joins with (joinWindowS): longer after a long part.
 */
function followsLongPart(state: ChannelState, message: Message, forward: boolean): boolean {
  // Another member's message may have come in between (it is a job of its own: nextJob).
  const items = state.chats.get(String(message.chat.id))?.items ?? [];
  const last = items.findLast((q) => senderIdOf(q) === message.from?.id);
  if (!last || !isMessage(last)) return false;
  const album = forward ? undefined : mediaGroupOf(last.classified.message);
  const part = album === undefined ? last.classified.message : fullCaptionPartOf(items, last, album);
  if (!part) return false;
  if (part.from?.id !== message.from?.id || topicOf(part) !== topicOf(message)) return false;
  if (isGreetingJob([last])) return isGroupQuestionAfterGreeting(state, last, message);
  const windowS = joinWindowS([last], Math.ceil(state.settings.mergeWindowMs / 1000));
  return message.date - part.date <= windowS && (forward || isLongPart(part));
}

/**
 * The part of `album` queued by the sender of `last` (one of its parts) whose caption fills the limit
 * (hasFullCaption), or undefined: the part the rest of that caption, sent as a text, continues.
 */
function fullCaptionPartOf(items: Queued[], last: QueuedMessage, album: string): Message | undefined {
  return items.find(
    (q): q is QueuedMessage =>
      isMessage(q) &&
      senderIdOf(q) === senderIdOf(last) &&
      mediaGroupOf(q.classified.message) === album &&
      hasFullCaption(q.classified.message),
  )?.classified.message;
}

/** A text of SPLIT_PART_MIN_CHARS or more, or media with a full caption (hasFullCaption): its rest may follow. */
function isLongPart(part: Message): boolean {
  return (ownTextOf(part)?.length ?? 0) >= SPLIT_PART_MIN_CHARS || hasFullCaption(part);
}

/** Whether another part of `album` is queued in `message`'s chat as following what its sender queued before. */
function albumFollows(state: ChannelState, message: Message, album: string): boolean {
  return !!state.chats
    .get(String(message.chat.id))
    ?.items.some(
      (q) =>
        isMessage(q) &&
        q.continuation === 'follows' &&
        q.classified.message.from?.id === message.from?.id &&
        mediaGroupOf(q.classified.message) === album,
    );
}

/** Whether the last message `message`'s sender queued in its chat is a greeting to the bot that `message` answers. */
function followsGreeting(state: ChannelState, message: Message): boolean {
  const last = state.chats.get(String(message.chat.id))?.items.findLast((q) => senderIdOf(q) === message.from?.id);
  if (!last || !isMessage(last) || topicOf(last.classified.message) !== topicOf(message)) return false;
  return isGreetingJob([last]) && isGroupQuestionAfterGreeting(state, last, message);
}

/**
 * The question after a greeting addressed to the bot (`@bot добрый день`) does not mention it again. Taken only
 * while the greeting waits for it (brought by a getUpdates that started within the merge window of the greeting's
 * arrival, or the poll right after it: a busy chat queue does not stretch that), and not when plainly meant for
 * someone else: a command, a reply to another message, a mention.
 */
function isGroupQuestionAfterGreeting(state: ChannelState, greeting: QueuedMessage, message: Message): boolean {
  // Judged by when the getUpdates that brought it started (state.polledAt): a question sent within the window may come
  // only with the poll that ends the greeting's wait, which starts up to BUSY_POLL_MS after the window closed.
  const polledAt = state.polledAt ?? Date.now();
  return (
    polledAt - greeting.arrivedAt <= state.settings.mergeWindowMs + BUSY_POLL_MS &&
    message.date - greeting.classified.message.date <= GREETING_JOIN_S &&
    !ownTextOf(message)?.trimStart().startsWith('/') &&
    !repliesToSomeoneElse(message, state.me) &&
    !mentionsSomeone(message)
  );
}

/**
 * Whether `message` replies to a message not from this bot (Bot API Message `reply_to_message`; in a forum topic
 * every message "replies" to the topic's first message, which does not count).
 */
function repliesToSomeoneElse(message: Message, me: UserFromGetMe | undefined): boolean {
  const replied = (message as { reply_to_message?: Message }).reply_to_message;
  if (!replied || (me !== undefined && replied.from?.id === me.id)) return false;
  // A reply to one's own message (the question added to one's `@bot привет`) is meant for whoever that was for.
  if (replied.from?.id !== undefined && replied.from.id === message.from?.id) return false;
  const topic = topicOf(message);
  return !(topic !== undefined && replied.message_id === topic);
}

/** Whether `message` mentions a user (`mention`, `text_mention` entities of its text or caption; Bot API). */
function mentionsSomeone(message: Message): boolean {
  const entities =
    (message as { entities?: { type: string }[] }).entities ??
    (message as { caption_entities?: { type: string }[] }).caption_entities ??
    [];
  return entities.some((e) => e.type === 'mention' || e.type === 'text_mention');
}

/**
 * A group upgraded to a supergroup announces it with a service message carrying `migrate_to_chat_id` (Bot API
 * Message): answers still due in the old group go to the supergroup at once, without a 400 first.
 */
function noteMigration(state: ChannelState, update: Update): void {
  if (!('message' in update)) return;
  const to = (update.message as { migrate_to_chat_id?: number }).migrate_to_chat_id;
  if (typeof to !== 'number') return;
  state.migratedChats.set(update.message.chat.id, to);
  state.logger.info('Telegram group became a supergroup; sending there', {
    telegram: { chat_id: update.message.chat.id, migrate_to_chat_id: to },
  });
}

// ---- step: per-chat queue ----

/** Appends updates (of one chat) to its queue and starts the chat's worker if none runs. */
function enqueue(state: ChannelState, ...items: Queued[]): void {
  const key = items[0]!.classified.chatKey;
  let chat = state.chats.get(key);
  if (!chat) {
    chat = { items: [] };
    state.chats.set(key, chat);
  }
  const queue = chat;
  // All at once: the worker must not see the first of them (a released held part) without the rest.
  queue.items.push(...items);
  queue.wake?.();
  queue.running ??= runChat(state, key, queue).finally(() => {
    queue.running = undefined;
    if (queue.items.length === 0 && state.chats.get(key) === queue) state.chats.delete(key);
  });
}

/** Drains one chat's queue, one job at a time, in order; a job that fails on a bug is tried again in 5 s. */
async function runChat(state: ChannelState, chatKey: string, chat: ChatQueue): Promise<void> {
  while (chat.items.length > 0 && !state.stopping) {
    const next = nextJob(
      chat.items,
      Date.now(),
      state.settings.mergeWindowMs,
      state.polledAt ?? 0,
      state.settings.requestTimeoutMs + MERGE_POLL_GRACE_MS,
    );
    if ('waitMs' in next) {
      await waitFor(state, next.waitMs, (wake) => (chat.wake = wake));
      chat.wake = undefined;
      continue;
    }
    chat.items = chat.items.filter((q) => !next.job.includes(q));
    try {
      // One request id per job: sent to the secretary and put on the job's audit events.
      await runInSlot(state, () => runWithRequestId(randomUUID(), () => runJob(state, next.job)));
      confirm(
        state,
        next.job.map((q) => q.update),
      );
    } catch (err) {
      if (err instanceof Stopped) return;
      // A bug, not a failure of Telegram or the secretary: keep the job at the head and try again later.
      state.logger.error('Telegram update could not be handled; retrying in 5 s', {
        err: err instanceof Error ? err : undefined,
        telegram: { chat_id: chatKey, update_id: next.job[0]!.update.update_id },
      });
      chat.items.unshift(...next.job);
      await waitFor(state, BUG_RETRY_MS);
    }
  }
}

/** Runs `work` once one of the JOBS_IN_FLIGHT_MAX slots is free, then frees it; Stopped when the channel stops first. */
async function runInSlot<T>(state: ChannelState, work: () => Promise<T>): Promise<T> {
  await state.jobSlots.acquire();
  try {
    return await work();
  } finally {
    state.jobSlots.release();
  }
}

/** One job, start to end: already handled? → decide → deliver → record. Throws only Stopped. */
async function runJob(state: ChannelState, whole: Queued[]): Promise<void> {
  const endTimer = state.metrics.startTimer('tg');
  // Nothing addressed to the bot (continuations that joined nothing addressed): nothing is sent, so nothing needs a
  // record — a restart decides the same again.
  if (whole.every((q) => q.continuation)) {
    for (const q of whole) {
      state.metrics.skipped('tg', 'group_not_mentioned');
      auditInbound(state, q.update, 'skipped', 'not-addressed', 'group_not_mentioned');
    }
    endTimer('skipped');
    return;
  }
  const handled = await lookupHandled(
    state,
    whole.map((q) => handledKeyOf(q.update)),
  );
  // Handled by a previous process that stopped before the offset moved past them. That process may have joined
  // fewer parts (a forward or a paste's part that came in a later batch then): only the rest is handled now.
  const job = whole.filter((q) => !handled.has(handledKeyOf(q.update)));
  if (job.length === 0) {
    state.metrics.skipped('tg', 'duplicate');
    auditInbound(state, whole[0]!.update, 'skipped', 'duplicate', 'recorded as handled by an earlier process');
    endTimer('skipped');
    return;
  }
  const head = job[0]!;
  const keys = job.map((q) => handledKeyOf(q.update));
  if (job.length < whole.length) rememberAnsweredAlbumsOf(state, job);
  // Group messages taken as continuations (continuationOf, tentativeOf) with nothing addressed to the bot in their
  // job (what they continued did not join them, an earlier process handled it, or no part of the album or paste
  // mentioned the bot): not answered, here as in a process that ignored them.
  const unaddressed = job.every((q) => q.continuation);
  if (unaddressed) state.metrics.skipped('tg', 'group_not_mentioned');
  // From now on the member's next message is the greeting's question, also while its answer is being made.
  if (isMessage(head) && !unaddressed) rememberAnsweredGreeting(state, job.filter(isMessage));
  const reply: Reply = unaddressed
    ? { send: false, outcome: 'skipped', reason: 'group_not_mentioned' }
    : isMessage(head)
      ? await decideMessage(state, job.filter(isMessage))
      : await handleCallback(state, (head.classified as { query: CallbackQuery }).query, head.arrivedAt);
  const { outcome, reason } = await deliverAndAudit(state, head.update, reply, keys.length);
  // The albums of the job are recorded too: a part of one that comes after a restart is known as answered.
  await recordHandled(state, [...keys, ...albumKeysOf(job)], outcome, reason);
  rememberAnsweredAlbumsOf(state, job);
  if (isMessage(head)) rememberAnsweredCaption(state, job.filter(isMessage));
  endTimer(outcome);
}

// ---- step: classify (rate limit) ----

/**
 * Asks the secretary's durable limit (`telegram:<user id>`); while the secretary cannot answer, retried within
 * seconds (secretary-retry.ts) and the update stays unconfirmed: it is never answered without a check.
 */
function consumeBudget(state: ChannelState, userId: number, updateId: number): Promise<RateLimitVerdict> {
  return retryUntilStopped(state, () => untilStopped(state, state.rateLimit.consume([rateLimitKey.telegram(userId)])), {
    delayMs: (n, err) => cappedSecretaryDelayMs(state, err, n),
    onRetry: (err) =>
      state.logger.warn('the rate limit could not be checked (secretary); retrying', {
        telegram: { update_id: updateId },
        error: { message: whyOf(err) },
      }),
  });
}

/** The secretary-retry delay (ms) of retry `n` (0-based), at most 5 s: for checks that are cheap to repeat. */
function cappedSecretaryDelayMs(state: ChannelState, err: unknown, n: number): number {
  return Math.min(secretaryRetry(err, n + 1, state.settings.retryBaseDelayMs).delayMs, SECRETARY_WAIT_CAP_MS);
}

// ---- step: decide ----

/** The request text of a job: its messages' texts, one per line (empty for an album without a caption). */
export function jobTextOf(job: ReadonlyArray<{ classified: { text: string } }>): string {
  return job
    .map((q) => q.classified.text)
    .filter(Boolean)
    .join('\n')
    .trim();
}

/** The units of a job in order: each album's parts together (they are contiguous in a job), every other message. */
function unitsOfJob<T extends { classified: { message: Message } }>(job: ReadonlyArray<T>): T[][] {
  const units: T[][] = [];
  for (const q of job) {
    const group = mediaGroupOf(q.classified.message);
    const last = units.at(-1);
    if (group !== undefined && last && mediaGroupOf(last[0]!.classified.message) === group) last.push(q);
    else units.push([q]);
  }
  return units;
}

/**
 * The text one unit (a message or an album) gives a request: its words (a forward's origin once in front, not per
 * caption), then, when `noted`, the note of its attachments (`attachmentNoteOf`). Empty when it has neither.
 */
function unitTextOf(unit: ReadonlyArray<{ classified: { message: Message; text: string } }>, noted: boolean): string {
  const origin = forwardOriginOf(unit[0]!.classified.message);
  const header = origin === undefined ? undefined : forwardHeaderOf(origin);
  const words = unit
    .map(({ classified: { text } }) =>
      header && text.startsWith(`${header}\n`) ? text.slice(header.length + 1) : text,
    )
    .filter(Boolean);
  // The sender's own sticker is a reaction, not something sent with the words: it is not named (a forwarded one is).
  const sent = unit.filter((q) => !isStickerOnly(q));
  const note = noted ? attachmentNoteOf(sent.flatMap((q) => attachmentsOf(q.classified.message))) : undefined;
  const lines = note ? [...words, note] : words;
  return lines.length && header ? [header, ...lines].join('\n') : lines.join('\n');
}

/**
 * The request text of a message job: what it replies to (each distinct Classified `context`, once, at the top: an
 * album's or a split paste's parts all carry the same reply), then its words unit by unit (`unitTextOf`), one per
 * line, joined as if no context were there (a part cut inside a word goes straight on: isHardCut). When the job joins
 * several units (a comment and what it forwards, a text and the media it was the caption of) and has words at all,
 * each unit's attachments are named (`[Вложения (не переданы): фото ×3]`), so the secretary knows what came with the
 * words; a single message or album is its words alone. Empty when the job has no words (then no secretary call) — the
 * context alone counts as words only for a text message whose own words were the bot's mention (`@bot` as a reply to
 * a colleague's question asks that question), never for media without a caption or a sticker.
 */
export function jobRequestTextOf(
  job: ReadonlyArray<{ classified: { message: Message; text: string; context?: string } }>,
): string {
  const units = unitsOfJob(job);
  const asks = job.some((q) => q.classified.context && 'text' in q.classified.message);
  if (!jobTextOf(job) && !asks) return '';
  const noted = units.length > 1;
  let text = '';
  for (const [i, unit] of units.entries()) {
    const part = unitTextOf(unit, noted);
    if (!part) continue;
    // A part of TEXT_MAX_CHARS the client cut inside a word: the next part goes straight on.
    text += text && !isHardCut(units[i - 1], part) ? `\n${part}` : part;
  }
  const contexts = [...new Set(job.flatMap((q) => q.classified.context ?? []))];
  return [...contexts, text.trim()].filter(Boolean).join('\n').trim();
}

/**
 * Whether `unit` is one text message of TEXT_MAX_CHARS (not a forward) that a client cut inside a word: it ends with
 * a letter or digit and `next` (the next part's text) goes on with a lower-case letter or a digit. Clients trim the
 * white space at a cut, so a cut between words or paragraphs keeps its line break.
 */
function isHardCut(unit: ReadonlyArray<{ classified: { message: Message } }> | undefined, next: string): boolean {
  const message = unit?.length === 1 ? unit[0]!.classified.message : undefined;
  return (
    !!message &&
    'text' in message &&
    forwardOriginOf(message) === undefined &&
    message.text.length >= TEXT_MAX_CHARS &&
    /[\p{L}\p{N}]$/u.test(message.text) &&
    /^[\p{Ll}\p{N}]/u.test(next)
  );
}

/**
 * The request text of a job of several messages (a long paste the client split into parts, a comment and its
 * forwards) within `maxChars` (UTF-16 units, MAX_REQUEST_CHARS): unchanged when it fits; else its first three
 * quarters and its last quarter (each cut at a white space near the cut when there is one, never inside a surrogate
 * pair), REQUEST_MIDDLE_CUT_MARKER between them. People put the question at the start or at the end of a long paste
 * (T10: "…конец лога. Вопрос: почему выгрузка пустая?" in the last part): cut at the end, a paste of five parts or
 * more (or fewer under a lower MAX_REQUEST_CHARS) lost its last part, and the answer never saw the question. A single
 * message keeps the cut at its end (analyzeRequestOf); a limit too small for both pieces too.
 */
export function jobRequestWithin(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const room = maxChars - REQUEST_MIDDLE_CUT_MARKER.length;
  if (room < 4 * REQUEST_EDGE_MIN_CHARS) return text;
  const tailChars = Math.floor(room / 4);
  let headEnd = room - tailChars;
  const space = text.lastIndexOf(' ', headEnd);
  const newline = text.lastIndexOf('\n', headEnd);
  const boundary = Math.max(space, newline);
  if (boundary > headEnd - REQUEST_EDGE_MIN_CHARS) headEnd = boundary;
  if (/[\uD800-\uDBFF]/.test(text.charAt(headEnd - 1))) headEnd -= 1;
  let tailStart = text.length - tailChars;
  const after = text.slice(tailStart, tailStart + REQUEST_EDGE_MIN_CHARS).search(/\s/);
  if (after >= 0) tailStart += after + 1;
  if (/[\uDC00-\uDFFF]/.test(text.charAt(tailStart))) tailStart += 1;
  return `${text.slice(0, headEnd).trimEnd()}${REQUEST_MIDDLE_CUT_MARKER}${text.slice(tailStart).trimStart()}`;
}

/** How far (UTF-16 units) jobRequestWithin looks for a white space to cut at; a piece is at least this long. */
const REQUEST_EDGE_MIN_CHARS = 100;

/**
 * The fixed answer that needs no secretary: the help for /start and /help (with any argument, e.g. a deep-link
 * payload) and for any other command sent alone (`/settings`: we have no other commands), the text-only note for
 * no text. A command followed by words (`/var is full`) may be a path: it goes to the secretary.
 */
export function fixedReplyOf(text: string): string | undefined {
  if (/^\/(start|help)(@\w+)?(\s|$)/i.test(text)) return HELP_TEXT;
  if (/^\/[A-Za-z0-9_]{1,32}(@\w+)?$/.test(text)) return HELP_TEXT;
  // One reply for an album without a caption, however many photos it has.
  if (!text) return TEXT_ONLY_REPLY;
  return undefined;
}

/**
 * The secretary request of a message job: `message` its first message (the sender, the chat), `last` its last (the
 * `message_id`, `tg:<chat>:<last message>`), `text` capped at `maxRequestChars`.
 */
export function analyzeRequestOf(
  message: Message,
  text: string,
  maxRequestChars: number,
  last: Message = message,
): AnalyzeRequest {
  const from = message.from!;
  const chatId = message.chat.id;
  return {
    channel: 'tg',
    username: from.username ?? String(from.id),
    telegram_user_id: String(from.id),
    // Cut on a character boundary (never inside a surrogate pair), saying so.
    request: cutText(text, maxRequestChars, { marker: REQUEST_CUT_MARKER, at: 'character' }),
    // The job's last message names it: which messages a job joins depends on when they arrived, and a process that
    // restarts may join more to a first message whose analysis the secretary already stored (a greeting analysed
    // alone, then killed before it answered). Under the first message's id the secretary would give that stored
    // answer back and the rest would never be analysed; the last one is new to it whenever the job grew.
    message_id: `tg:${chatId}:${last.message_id}`,
    thread_key: message.chat.type === 'private' ? `tg:${chatId}` : `tg:${chatId}:${from.id}`,
  };
}

/**
 * Where a message's answer goes: its chat, as a reply to it in groups (a private chat needs no quote), in its forum
 * topic when it was written in one.
 */
function replyTargetOf(message: Message): ReplyTarget {
  // In a forum supergroup the answer goes to the question's topic (Bot API `message_thread_id`).
  const topic = message as { is_topic_message?: boolean; message_thread_id?: number };
  return {
    chatId: message.chat.id,
    replyTo: message.chat.type === 'private' ? undefined : message.message_id,
    ...(topic.is_topic_message && topic.message_thread_id !== undefined ? { threadId: topic.message_thread_id } : {}),
  };
}

/** A message job: a fixed reply, or (within the sender's hourly limit) the secretary's answer. */
async function decideMessage(state: ChannelState, job: QueuedMessage[]): Promise<Reply> {
  const message = job[0]!.classified.message;
  const updateId = job[0]!.update.update_id;
  // In a group the answer quotes the message that addressed the bot, not a part held for its album or paste.
  const target = replyTargetOf((job.find((q) => !q.continuation) ?? job[0]!).classified.message);
  const text = jobRequestTextOf(job);
  const late = text ? undefined : await lateMediaOf(state, job);
  if (late) {
    state.metrics.skipped('tg', late.reason);
    state.logger.info(`Telegram ${late.what} arrived after it was answered; no reply`, {
      telegram: { update_id: updateId },
    });
    return { send: false, outcome: 'skipped', reason: late.reason };
  }
  // Sent on behalf of a group or channel: nobody to check against the directory, so no analysis and no budget.
  if (job.some((q) => q.classified.anonymous)) return { send: true, ...target, text: ANONYMOUS_REPLY, outcome: 'sent' };
  // Words that were only the bot's mention (`@bot` alone in a group): a call for help, not a picture.
  const mentionOnly = !text && job.some((q) => ownTextOf(q.classified.message)?.trim());
  if (isReaction(state, job, text)) {
    state.metrics.skipped('tg', 'sticker_reaction');
    return { send: false, outcome: 'skipped', reason: 'sticker_reaction' };
  }
  const fixed = mentionOnly ? HELP_TEXT : fixedReplyOf(text);
  if (fixed === TEXT_ONLY_REPLY && textOnlyRepeated(state, job.at(-1)!.classified.message)) {
    state.metrics.skipped('tg', 'text_only_repeat');
    return { send: false, outcome: 'skipped', reason: 'text_only_repeat' };
  }
  if (fixed !== undefined) return { send: true, ...target, text: fixed, outcome: 'sent' };
  if (!(await consumeBudget(state, message.from!.id, updateId)).allowed) {
    state.metrics.skipped('tg', 'rate_limited');
    state.logger.warn('Telegram sender over the hourly limit; no reply', { telegram: { update_id: updateId } });
    return { send: false, outcome: 'skipped', reason: 'rate_limited' };
  }
  const max = state.settings.maxRequestChars;
  const bounded = unitsOfJob(job).length > 1 ? jobRequestWithin(text, max) : text;
  const request = analyzeRequestOf(message, bounded, max, job.at(-1)!.classified.message);
  return withTyping(state, target, () => askSecretary(state, request, target, updateId, message.from?.id));
}

/**
 * Whether a job is a reaction — wordless (isWordless) soon after its sender's own words (followsOwnWords), and not an
 * answer to the bot (answersBot) — remembering a job with words for the next one.
 */
function isReaction(state: ChannelState, job: QueuedMessage[], text: string): boolean {
  const last = job.at(-1)!.classified.message;
  const wordless = isWordless(job, text) && !answersBot(state, job);
  if (text && !wordless) rememberWords(state, last);
  return wordless && followsOwnWords(state, last);
}

/**
 * Whether a job says nothing in words: the sender's stickers alone, or emoji typed alone ("👍", "🙏": clients show
 * them big, the Bot API delivers them as `text`). Soon after the sender's own words it is a reaction (followsOwnWords).
 */
const isWordless = (job: QueuedMessage[], text: string): boolean =>
  (!text && job.every(isStickerOnly)) || job.every((q) => q.classified.emojiOnly);

/**
 * Whether emoji typed alone answer the bot rather than react to it: the bot's last answer to this sender in this chat
 * was a clarifying question ("Отправить отчёт Иванову?" — "👍" means yes), or they reply to a bot message not known as
 * a plain answer (one sent before a restart may have been a question). Such emoji go to the secretary as the answer.
 */
function answersBot(state: ChannelState, job: QueuedMessage[]): boolean {
  if (!job.every((q) => q.classified.emojiOnly)) return false;
  const last = job.at(-1)!.classified.message;
  if (state.openQuestions.has(`${last.chat.id}:${last.from?.id}`)) return true;
  const replied = (last as { reply_to_message?: Message }).reply_to_message;
  if (!replied || replied.from?.id === undefined || replied.from.id !== state.me?.id) return false;
  return state.sentAnswers.get(`${replied.chat.id}:${replied.message_id}`)?.question !== false;
}

/** Whether `last` (a sticker) comes within STICKER_REACTION_S after its sender's last message with words there. */
function followsOwnWords(state: ChannelState, last: Message): boolean {
  const at = state.lastWordsAt.get(`${last.chat.id}:${last.from?.id}`);
  return at !== undefined && last.date - at <= STICKER_REACTION_S;
}

/**
 * Remembers `last` (the last message of a job with words) for followsOwnWords; the sender's words end the quiet time
 * of their "text only" note (textOnlyRepeated): a message without words after them gets the note again.
 */
function rememberWords(state: ChannelState, last: Message): void {
  const key = `${last.chat.id}:${last.from?.id}`;
  state.textOnlyNoted.delete(key);
  keepRecent(state.lastWordsAt, key, Math.max(last.date, state.lastWordsAt.get(key) ?? 0));
}

/**
 * Whether the "text only" note for `last` (the last message of a job without words) would repeat the one its sender
 * got in that chat less than TEXT_ONLY_QUIET_S before (Message.date): then no note is sent. Either way `last` starts
 * the quiet time anew. Kept in memory: after a restart a sender may get the note once more.
 */
function textOnlyRepeated(state: ChannelState, last: Message): boolean {
  const key = `${last.chat.id}:${last.from?.id}`;
  const notedAt = state.textOnlyNoted.get(key);
  keepRecent(state.textOnlyNoted, key, Math.max(last.date, notedAt ?? 0));
  return notedAt !== undefined && last.date - notedAt <= TEXT_ONLY_QUIET_S;
}

/**
 * A job without words that belongs to a request already answered, so it gets no reply of its own: a part of an
 * answered album Telegram delivered in a later getUpdates batch (`album_part`; answered by this process, or by an
 * earlier one, whose handled record names the album: albumKeysOf), or media without text of the
 * sender of an answered text over CAPTION_MAX_CHARS, within LATE_CAPTION_MEDIA_S of it (`caption_media`: that
 * text was its caption, and the upload took longer than the merge window), or media without words but a voice message,
 * not replying to someone else (isTextScreenshot), of the sender within SCREENSHOT_AFTER_TEXT_S after their text (`text_screenshot`: the screenshot
 * the text refers to, sent after the text was taken on the fast path).
 */
async function lateMediaOf(
  state: ChannelState,
  job: QueuedMessage[],
): Promise<{ reason: 'album_part' | 'caption_media' | 'text_screenshot'; what: string } | undefined> {
  const message = job[0]!.classified.message;
  const album = mediaGroupOf(message);
  // Answered here lately, or (after a restart) recorded as handled by an earlier process (albumKeysOf).
  if (
    album !== undefined &&
    (state.answeredAlbums.has(`${message.chat.id}:${album}`) ||
      (await lookupHandled(state, [albumKeyOf(message.chat.id, album)])).size > 0)
  )
    return { reason: 'album_part', what: 'album part' };
  const captionAt = state.answeredCaptions.get(`${message.chat.id}:${message.from?.id}`);
  const late = captionAt !== undefined && message.date >= captionAt && message.date - captionAt <= LATE_CAPTION_MEDIA_S;
  if (late && job.every(isBareMedia)) return { reason: 'caption_media', what: 'media of a long caption sent apart' };
  const textAt = state.answeredTexts.get(`${message.chat.id}:${message.from?.id}`);
  const shown = textAt !== undefined && message.date >= textAt && message.date - textAt <= SCREENSHOT_AFTER_TEXT_S;
  if (shown && job.every(isTextScreenshot)) return { reason: 'text_screenshot', what: 'screenshot of a text' };
  return undefined;
}

/**
 * Remembers an answered job that is a text over CAPTION_MAX_CHARS without media (its media may still come:
 * `lateMediaOf`); any other job of the sender with words forgets the one remembered (media without words, which
 * may be more of that media, does not). Likewise a job ending in a text (endsInOwnText) in `answeredTexts`, for the
 * screenshot sent right after it (SCREENSHOT_AFTER_TEXT_S).
 */
function rememberAnsweredCaption(state: ChannelState, job: QueuedMessage[]): void {
  if (job.every(isBareMedia)) return;
  const last = job.at(-1)!.classified.message;
  const key = `${last.chat.id}:${last.from?.id}`;
  // A job ending in a text: its screenshot may still come (SCREENSHOT_AFTER_TEXT_S); other words end that wait.
  if (endsInOwnText(job)) keepRecent(state.answeredTexts, key, last.date);
  else if (jobTextOf(job)) state.answeredTexts.delete(key);
  state.answeredCaptions.delete(key);
  const text = lastTextOf(job);
  if (text === undefined || text.length <= CAPTION_MAX_CHARS) return;
  if (job.some((q) => hasCaptionedMedia(q.classified.message))) return;
  keepRecent(state.answeredCaptions, key, last.date);
}

/** Remembers the albums among a job's messages as answered: by this job, or by an earlier process. */
function rememberAnsweredAlbumsOf(state: ChannelState, job: Queued[]): void {
  for (const q of job) {
    if (!isMessage(q)) continue;
    const album = mediaGroupOf(q.classified.message);
    if (album !== undefined) rememberAlbum(state, `${q.classified.message.chat.id}:${album}`);
  }
}

/**
 * Sets `key` to `value` in `map` as its newest entry (a Map iterates in insertion order), forgetting the oldest beyond
 * ANSWERED_ALBUMS_KEPT: the bounded memories of the channel state.
 */
function keepRecent<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > ANSWERED_ALBUMS_KEPT) map.delete(map.keys().next().value!);
}

/** Remembers an answered album (the oldest is forgotten beyond ANSWERED_ALBUMS_KEPT). */
function rememberAlbum(state: ChannelState, key: string): void {
  state.answeredAlbums.delete(key);
  state.answeredAlbums.add(key);
  if (state.answeredAlbums.size > ANSWERED_ALBUMS_KEPT) {
    state.answeredAlbums.delete(state.answeredAlbums.values().next().value!);
  }
}

/**
 * Runs `work` while showing "typing…" in the chat, in the answer's topic (renewed every 4.5 s). A failed indicator is not retried and
 * never fails the job; after a 429 it waits the `retry_after` (s), after a refusal it stops for this job.
 */
async function withTyping<T>(state: ChannelState, target: ReplyTarget, work: () => Promise<T>): Promise<T> {
  const { chatId, threadId } = target;
  // No indicator until a 429's retry_after has passed (Telegram's flood control), nor after a refusal (blocked …).
  let quietUntil = 0;
  const typing = () => {
    if (Date.now() < quietUntil) return;
    // In the question's topic (Bot API sendChatAction `message_thread_id`), not in General.
    void state.api.sendTyping(state.migratedChats.get(chatId) ?? chatId, threadId).catch((err: unknown) => {
      const f = state.api.describe(err);
      if (f.kind === 'rate_limited') quietUntil = Date.now() + (f.retryAfterS ?? 1) * 1000;
      else if (f.kind === 'rejected' || f.kind === 'migrated') quietUntil = Number.POSITIVE_INFINITY;
    });
  };
  typing();
  const timer = setInterval(typing, TYPING_RENEW_MS);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

/** The user's message for a secretary refusal, by its status (REFUSAL_REPLIES). */
export function refusalReplyOf(err: unknown): string {
  const status = isAppError(err) ? err.status : 0;
  if (status === 401 || status === 403) return REFUSAL_REPLIES.forbidden;
  if (status === 413) return REFUSAL_REPLIES.tooLong;
  return REFUSAL_REPLIES.rejected;
}

/** A 4xx of the secretary other than 429 that is not retryable: a refusal (e.g. an unknown sender) for the user. */
export function isSecretaryRefusal(err: unknown): boolean {
  return isAppError(err) && err.status >= 400 && err.status < 500 && err.status !== 429 && !err.retryable;
}

/** One analysis under the handler deadline (TELEGRAM_HANDLER_TIMEOUT): a late answer is a 504 `handler_timeout`. */
function analyzeOnce(state: ChannelState, request: AnalyzeRequest): Promise<AnalysisResponse> {
  const ms = state.settings.handlerTimeoutMs;
  const timeout = () => new AppError('handler_timeout', 504, `handling took longer than ${ms} ms`);
  return withDeadline(ms, (signal) =>
    untilAborted(untilStopped(state, state.secretary.analyze(request)), signal, timeout),
  );
}

/**
 * Asks the secretary, retried as secretary-retry.ts says: failures that count (500, 502, 504) up to
 * MAX_ATTEMPTS, then an apology; a refusal (4xx) gets the standard message of its status (`refusalReplyOf`).
 */
async function askSecretary(
  state: ChannelState,
  request: AnalyzeRequest,
  target: ReplyTarget,
  updateId: number,
  askedUserId: number | undefined,
): Promise<Reply> {
  let counted = 0;
  let delayMs = 0;
  try {
    const analysis = await retryUntilStopped(state, () => analyzeOnce(state, request), {
      shouldRetry: (err, n) => {
        if (isSecretaryRefusal(err)) return false;
        const verdict = secretaryRetry(err, n + 1, state.settings.retryBaseDelayMs);
        if (verdict.counts) counted += 1;
        delayMs = verdict.delayMs;
        return counted < state.settings.maxAttempts;
      },
      delayMs: () => delayMs,
      onRetry: (err, _n, waitMs) =>
        state.logger.warn(`Telegram update failed (${whyOf(err)}); retrying in ${Math.round(waitMs)} ms`, {
          telegram: { update_id: updateId },
        }),
    });
    return analysisReply(state, analysis, target, updateId, askedUserId);
  } catch (err) {
    if (err instanceof Stopped) throw err;
    return secretaryFailureReply(state, err, target, updateId);
  }
}

/** The secretary's answer as a reply; a category that gets no reply is handled without sending anything. */
function analysisReply(
  state: ChannelState,
  analysis: AnalysisResponse,
  target: ReplyTarget,
  updateId: number,
  askedUserId: number | undefined,
): Reply {
  if (analysis.no_reply) {
    state.metrics.skipped('tg', 'no_reply');
    state.logger.info('Telegram message not answered: its category gets no reply', {
      telegram: { update_id: updateId },
      classification: { category: analysis.category },
    });
    return { send: false, outcome: 'skipped', reason: 'no_reply' };
  }
  const text = replyTextOf(analysis);
  if (!text) return { send: true, ...target, text: GAVE_UP_REPLY, outcome: 'sent' };
  const answer = { question: analysis.action === ACTION_CLARIFY, ...(askedUserId !== undefined && { askedUserId }) };
  return { send: true, ...target, text, answer, outcome: 'sent' };
}

/** The reply after the secretary said no (its message, meant for the user) or kept failing (an apology). */
function secretaryFailureReply(state: ChannelState, err: unknown, target: ReplyTarget, updateId: number): Reply {
  if (isSecretaryRefusal(err)) {
    state.metrics.reply('tg', 'rejected');
    state.logger.warn('the secretary refused the Telegram request; the user gets a standard message', {
      telegram: { update_id: updateId },
      error: { message: (err as Error).message, code: (err as AppError).status },
    });
    return { send: true, ...target, text: refusalReplyOf(err), outcome: 'sent', reason: 'rejected' };
  }
  state.logger.error('Telegram update given up after repeated failures', {
    telegram: { update_id: updateId },
    reason: whyOf(err),
  });
  state.metrics.reply('tg', 'failed');
  state.metrics.repliesFailed('tg', 'secretary_failed');
  return { send: true, ...target, text: GAVE_UP_REPLY, outcome: 'failed', reason: 'secretary_failed' };
}

/** An approval button's `callback_data` (`action:approve:<id>` / `action:reject:<id>`), or undefined. */
export const parseApprovalCallback = parseApprovalCallbackData;

/** Answers a callback query (stops the spinner; `text` as a toast or alert); a refusal by Telegram is ignored. */
async function answerQuery(state: ChannelState, query: CallbackQuery, text?: string, alert?: boolean): Promise<void> {
  await state.api.answerCallbackQuery(query.id, text, alert).catch((err: unknown) => {
    // Telegram refuses answers to queries older than about 15 s (a retried update): nothing to do.
    state.logger.debug('answerCallbackQuery failed', { error: { message: state.api.describe(err).message } });
  });
}

/**
 * A pressed approval button (`action:approve:<id>` / `action:reject:<id>`, sent by the secretary through
 * POST /send): only presses in the approver chat are passed on, as `POST /action-executions/<id>/<decision>`.
 * The buttons are removed once decided (or found decided: 409), and the approver is told the result.
 * The secretary being unreachable is retried (seconds) like a message. A press that reached its job more than
 * PARKED_PRESS_MAX_AGE_MS after it arrived (`arrivedAt`, ms) is skipped (`stale_press`), never passed on.
 */
async function handleCallback(state: ChannelState, query: CallbackQuery, arrivedAt: number): Promise<Reply> {
  const press = parseApprovalCallback('data' in query ? query.data : undefined);
  if (!press) {
    await answerQuery(state, query);
    state.metrics.skipped('tg', 'unsupported_callback');
    return { send: false, outcome: 'skipped', reason: 'unsupported_callback' };
  }
  // A press that waited (parked, a long 429 of the approver chat) past PARKED_PRESS_MAX_AGE_MS decides nothing: an
  // approval must be a current decision. The buttons stay, so the approver can press again.
  if (Date.now() - arrivedAt > PARKED_PRESS_MAX_AGE_MS) {
    state.logger.warn('approval button press too old; not passed on', {
      telegram: { action_execution: press.id, age_ms: Date.now() - arrivedAt },
    });
    state.metrics.skipped('tg', 'stale_press');
    return { send: false, outcome: 'skipped', reason: 'stale_press' };
  }
  const chat = query.message?.chat.id;
  const check = checkApprovalPress({ chatId: chat, userId: query.from.id }, state.settings);
  if (!check.ok) {
    state.logger.warn(`approval button press refused (${check.reason})`, {
      telegram: { chat_id: chat, user_id: query.from.id, action_execution: press.id },
    });
    await answerQuery(state, query, NOT_APPROVER_REPLY, true);
    state.metrics.skipped('tg', 'not_approver');
    return { send: false, outcome: 'skipped', reason: 'not_approver' };
  }
  const decided = await passOnDecision(state, press, check.by);
  await answerQuery(state, query, decided.toast);
  await removeButtons(state, query);
  return {
    send: true,
    chatId: chat ?? query.from.id,
    text: decided.result,
    replyTo: query.message?.message_id,
    outcome: 'sent',
  };
}

/** The toast and the chat message after a decision was taken (`status`) or found settled (409) / missing (404). */
export function decisionTextOf(
  press: { decision: 'approve' | 'reject'; id: number },
  by: string,
  answer: { status: string } | { error: AppError },
): { toast: string; result: string } {
  const { decision, id } = press;
  if ('status' in answer) {
    const done = decision === 'approve' ? 'одобрено' : 'отклонено';
    return {
      toast: decision === 'approve' ? 'Одобрено' : 'Отклонено',
      result: `Действие №${id} ${done} (${by}); статус: ${answer.status}.`,
    };
  }
  const settled = answer.error.status === 409;
  return {
    toast: settled ? 'Уже решено' : 'Действие не найдено',
    result: `Действие №${id}: ${settled ? 'уже решено' : 'не найдено'}. ${answer.error.message}`,
  };
}

/** Passes a press on to the secretary, retried (≤ 5 s apart) until it answers; 409/404 are answers too. */
function passOnDecision(
  state: ChannelState,
  press: { decision: 'approve' | 'reject'; id: number },
  by: string,
): Promise<{ toast: string; result: string }> {
  const attempt = async () => {
    try {
      const decided = await untilStopped(state, state.secretary.decideAction(press.id, press.decision, by));
      return decisionTextOf(press, by, decided);
    } catch (err) {
      if (isAppError(err) && (err.status === 409 || err.status === 404))
        return decisionTextOf(press, by, { error: err });
      throw err;
    }
  };
  return retryUntilStopped(state, attempt, {
    delayMs: (n, err) => cappedSecretaryDelayMs(state, err, n),
    onRetry: () =>
      state.logger.warn('approval press not passed on yet; retrying', { action_execution: { id: press.id } }),
  });
}

/** Removes the pressed message's buttons; "message is not modified" (already gone, a retried update) is ignored. */
async function removeButtons(state: ChannelState, query: CallbackQuery): Promise<void> {
  const chat = query.message?.chat.id;
  if (chat === undefined || !query.message) return;
  await state.api.removeButtons(chat, query.message.message_id).catch((err: unknown) => {
    state.logger.debug('editMessageReplyMarkup failed', { error: { message: state.api.describe(err).message } });
  });
}

// ---- step: deliver ----

/**
 * What to do after a failed sendMessage of one piece (Bot API errors by kind):
 * - `migrate`: 400 with migrate_to_chat_id, the first time in this answer → send to the supergroup at once;
 * - `give_up`: a permanent refusal (403 blocked, 400 chat not found, a second migration …), or 5xx/network
 *   SEND_RETRY_MAX_FAILURES times (`reason: 'unavailable'`) — or once the SEND_RETRY_DELAYS_MS steps are used up
 *   when the failure is this chat's alone (`othersDelivered`): the Bot API answered other chats meanwhile, so it is
 *   no outage to wait out, and this update would only hold the getUpdates offset (and, after 100 updates behind
 *   it, every other chat) for the quarter of an hour;
 * - `wait`: 429 → `retry_after` seconds (this chat only; not counted); 401/404 (the token was revoked) → a minute,
 *   for as long as it lasts: the answer is kept, never given up — a person fixes the token, and on a stop the update
 *   stays unconfirmed for the next process;
 * - `retry`: 5xx/network → the next SEND_RETRY_DELAYS_MS step (its last once they are used up), ±20 %.
 *
 * @param failures 5xx/network failures of this piece before this one.
 * @param othersDelivered whether a sendMessage to any chat succeeded since this piece first failed.
 */
export function sendRetryStep(
  failure: BotApiFailure,
  failures: number,
  migrated: boolean,
  random: () => number = Math.random,
  othersDelivered = false,
):
  | { action: 'migrate'; migrateToChatId: number; delayMs: 0 }
  | { action: 'give_up'; reason: string }
  | { action: 'wait' | 'retry'; delayMs: number } {
  if (failure.kind === 'migrated' && failure.migrateToChatId !== undefined && !migrated)
    return { action: 'migrate', migrateToChatId: failure.migrateToChatId, delayMs: 0 };
  if (failure.kind === 'rejected' || failure.kind === 'migrated') return { action: 'give_up', reason: failure.reason };
  if (failure.kind === 'rate_limited') return { action: 'wait', delayMs: (failure.retryAfterS ?? 1) * 1000 };
  if (failure.kind === 'unauthorized') return { action: 'wait', delayMs: UNAUTHORIZED_WAIT_MS };
  if (failures >= (othersDelivered ? SEND_RETRY_DELAYS_MS.length : SEND_RETRY_MAX_FAILURES))
    return { action: 'give_up', reason: 'unavailable' };
  const step = SEND_RETRY_DELAYS_MS[Math.min(failures, SEND_RETRY_DELAYS_MS.length - 1)]!;
  return { action: 'retry', delayMs: spreadMs(step, 0.2, random) };
}

/** Delivers a reply (see `deliver`), then reports its audit event. */
async function deliverAndAudit(
  state: ChannelState,
  update: Update,
  reply: Reply,
  updates: number,
): Promise<{ outcome: HandledOutcome; reason?: string }> {
  if (!reply.send) {
    auditInbound(state, update, 'skipped', AUDIT_SKIP_REASONS[reply.reason] ?? 'not-addressed', reply.reason);
    return { outcome: reply.outcome, reason: reply.reason };
  }
  const delivered = await deliver(state, reply, handledKeyOf(update));
  auditReply(state, update, reply, delivered, updates);
  return delivered.outcome === 'failed' ? delivered : { outcome: reply.outcome, reason: reply.reason };
}

/**
 * The handled-record keys of a long answer's pieces, in the order the pieces are sent: `<the update's handled
 * key>#part:<16 hex of SHA-256 of the piece>`, and `.<n>` after it for the n-th repeat of the same text in this
 * answer (at most about 70 characters; the secretary takes 200). Named by text, not place, so a piece Telegram made
 * us halve is known by its halves. Returns a function to call once per piece, in order.
 */
export function answerPartKeys(handledKey: string): (piece: string) => string {
  const seen = new Map<string, number>();
  return (piece) => {
    const digest = createHash('sha256').update(piece).digest('hex').slice(0, 16);
    const repeat = seen.get(digest) ?? 0;
    seen.set(digest, repeat + 1);
    return `${handledKey}#part:${digest}${repeat ? `.${repeat}` : ''}`;
  };
}

/**
 * Sends the answer, piece by piece (a retry never repeats a piece already sent), handling Bot API errors by
 * kind (`sendRetryStep`). An answer of several pieces (over MAX_MESSAGE_LENGTH, or halved when Telegram found one too
 * long) records each piece but the last as delivered once Telegram took it (`answerPartKeys`, secretary `POST
 * /deliveries`; the last is covered by the update's own record) and skips the pieces recorded before: an answer cut
 * short by a crash or a stop goes on, after the restart, from its first piece not recorded. At most the piece in
 * flight at the crash is sent twice. These records are a help, not a condition: while the secretary cannot take or
 * tell them (three tries, `partRecordCall`), the answer goes on without them.
 */
async function deliver(
  state: ChannelState,
  reply: SentReply,
  handledKey: string,
): Promise<{ outcome: HandledOutcome; reason?: string }> {
  const keyOf = answerPartKeys(handledKey);
  const pieces = splitMessage(reply.text).map((piece) => ({ piece, key: keyOf(piece) }));
  const delivered = pieces.length > 1 ? await deliveredParts(state, pieces) : new Set<string>();
  const migration: SendRoute = { migrated: false };
  for (let first = true; pieces.length > 0;) {
    const { piece, key } = pieces.shift()!;
    if (delivered.has(key)) {
      state.logger.info('an answer piece was delivered by an earlier process; not sent again', {
        telegram: { chat_id: reply.chatId, piece_length: piece.length },
      });
      first = false;
      continue;
    }
    const failed = await sendPart(state, reply, piece, first ? reply.replyTo : undefined, migration);
    if (failed === 'too_long') {
      // Telegram counted more than we did (it counts after its own parsing): the piece is halved, not dropped.
      state.logger.info('Telegram found an answer piece too long; sending it in two', {
        telegram: { chat_id: reply.chatId, piece_length: piece.length },
      });
      const halves = splitMessage(piece, halvingLimit(piece.length)).map((half) => ({
        piece: half,
        key: keyOf(half),
      }));
      for (const done of await deliveredParts(state, halves)) delivered.add(done);
      pieces.unshift(...halves);
      continue;
    }
    if (failed) return failed;
    first = false;
    if (pieces.length > 0)
      await partRecordCall(state, 'recording an answer piece', () =>
        state.secretary.recordHandled('tg', [key], 'sent', 'answer piece delivered'),
      );
  }
  state.metrics.reply('tg', 'sent');
  return { outcome: reply.outcome, reason: reply.reason };
}

/**
 * Characters a half may have over half its piece: splitMessage cuts at the last word boundary before its limit, and
 * at exactly half the rest would spill over by a few characters into a third scrap.
 */
export const HALVING_SLACK = 100;

/**
 * The longest half of a piece of `length` characters: half of it, and HALVING_SLACK more for a piece over four times
 * the slack. A short piece is cut at half, so every halving makes progress: with the slack, a piece under twice it
 * came back whole and was sent again for ever.
 */
export const halvingLimit = (length: number): number =>
  Math.ceil(length / 2) + (length > 4 * HALVING_SLACK ? HALVING_SLACK : 0);

/** Which of these pieces an earlier process recorded as delivered (`partRecordCall`; none when it cannot tell). */
async function deliveredParts(state: ChannelState, pieces: ReadonlyArray<{ key: string }>): Promise<Set<string>> {
  const found = new Set<string>();
  for (let at = 0; at < pieces.length; at += DELIVERY_KEYS_MAX) {
    const keys = pieces.slice(at, at + DELIVERY_KEYS_MAX).map((p) => p.key);
    const handled = await partRecordCall(state, 'looking up answer pieces', () => state.secretary.lookupHandled(keys));
    for (const key of handled?.keys() ?? []) found.add(key);
  }
  return found;
}

/** Delays (ms) between the tries of a piece record or look-up: three tries in all. */
const PART_RECORD_DELAYS_MS = [200, 1000];

/**
 * A secretary call about answer pieces, tried PART_RECORD_DELAYS_MS.length + 1 times; then logged (`what`) and
 * undefined: an outage must not hold the rest of the answer back. Stopped on stop.
 */
async function partRecordCall<T>(state: ChannelState, what: string, call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await retry(() => untilStopped(state, call()), {
      maxRetries: PART_RECORD_DELAYS_MS.length,
      delayMs: (n) => PART_RECORD_DELAYS_MS[n]!,
      shouldRetry: (err) => !(err instanceof Stopped),
      signal: state.stopController.signal,
    });
  } catch (err) {
    // A stop gives the answer its grace period (state.abort fires at its end): only then is the piece record given up.
    if (state.abort.signal.aborted) throw new Stopped('stopping');
    state.logger.warn(`${what} failed; the answer goes on without it`, { error: { message: whyOf(err) } });
    return undefined;
  }
}

/**
 * How one answer's pieces are sent: `migrated` once the group became a supergroup (sendRetryStep), `withoutThread`
 * once Telegram no longer knew the topic, `fellBack` once one of resendWithout's fallbacks was used (one per answer).
 */
type SendRoute = { migrated: boolean; withoutThread?: boolean; fellBack?: boolean };

/**
 * What to leave out of a refused sendMessage to send it again at once, or undefined (the refusal stands):
 * - `reply`: 400 "message to be replied not found" — the question was deleted while it was being answered; in a forum
 *   topic Telegram ignores `allow_sending_without_reply` (Bot API ReplyParameters: "Always False for replies in
 *   another chat or forum topic"), so without this the ready answer was lost. It goes to the topic, unquoted.
 * - `thread`: 400 "message thread not found" — topics were turned off (or the private chat's topic mode) while the
 *   answer was made; it goes to the chat, still as a reply and only as one (`allow_sending_without_reply` false): had
 *   the topic been deleted with the question, that reply is refused in turn, and the answer is given up. At most one
 *   fallback per answer (`fellBack`), so an answer never lands unquoted in General. A piece after the first carries no
 *   reply: in a group it is given up rather than sent out of its topic (a topic deleted between two pieces); in a
 *   private chat (`privateChat`: its topics are one person's) it goes to the main chat.
 *
 * @param sent what the refused call carried: a reply (`reply_parameters`) and a topic (`message_thread_id`), and
 *   whether the chat is a private one (a positive chat id, Bot API Chat.id).
 */
export function resendWithout(
  failure: BotApiFailure,
  sent: { reply: boolean; thread: boolean; privateChat?: boolean },
  fellBack: boolean,
): 'reply' | 'thread' | undefined {
  if (fellBack || failure.kind !== 'rejected') return undefined;
  if (failure.reason === 'reply_not_found' && sent.reply) return 'reply';
  // Out of its topic only as a reply, or in a private chat (its main chat is the same person's).
  if (failure.reason === 'thread_not_found' && sent.thread && (sent.reply || sent.privateChat)) return 'thread';
  return undefined;
}

/**
 * One sendMessage to the chat (or the supergroup it became); an abort on stop is Stopped. `route.replyRequired`: a
 * reply whose message is gone is refused, not sent unquoted. A piece of the secretary's `answer` is remembered
 * (sentAnswers). To the supergroup a group became it carries no reply (replyToOf): `route.replyTo` is a message id of
 * the old group.
 */
async function sendOnce(
  state: ChannelState,
  chatId: number,
  text: string,
  route: { replyTo?: number; threadId?: number; replyRequired?: boolean; answer?: SentReply['answer'] },
): Promise<void> {
  try {
    const to = state.migratedChats.get(chatId) ?? chatId;
    const sent = await state.api.sendText(to, text, {
      replyToMessageId: replyToOf(state, chatId, route.replyTo),
      replyRequired: route.replyRequired,
      messageThreadId: route.threadId,
      signal: state.abort.signal,
      maxRateLimitRetries: 0,
    });
    state.lastSentAt = Date.now();
    if (route.answer) rememberSentAnswer(state, to, sent.messageId, route.answer);
  } catch (err) {
    if (state.api.describe(err).kind === 'aborted') throw new Stopped('stopping');
    throw err;
  }
}

/**
 * The message an answer to `chatId` quotes (Bot API sendMessage `reply_parameters.message_id`), or undefined once the
 * group became a supergroup (400 with `parameters.migrate_to_chat_id`, or its service message): message ids belong to
 * their chat, and the supergroup's history starts anew, so the old group's id there names no message or another
 * member's. The answer goes to the supergroup unquoted.
 */
const replyToOf = (state: ChannelState, chatId: number, replyTo: number | undefined): number | undefined =>
  state.migratedChats.has(chatId) ? undefined : replyTo;

/**
 * Shortest piece (UTF-16 code units) that is halved after 400 "message is too long"; a shorter one refused so is
 * given up (Telegram's limit is MAX_MESSAGE_LENGTH: such a refusal of a short text is something else).
 */
export const MIN_CUT_PIECE_CHARS = 64;

/**
 * Sends one piece with retries (`sendRetryStep`); undefined when sent, `too_long` when Telegram refused it as
 * "message is too long" and it can be halved (MIN_CUT_PIECE_CHARS), else the failed outcome and reason.
 */
async function sendPart(
  state: ChannelState,
  reply: SentReply,
  text: string,
  replyToMessage: number | undefined,
  migration: SendRoute,
): Promise<{ outcome: 'failed'; reason: string } | 'too_long' | undefined> {
  let failures = 0;
  let firstFailedAt: number | undefined;
  let step: ReturnType<typeof sendRetryStep> | undefined;
  let replyTo = replyToMessage;
  const threadOf = () => (migration.withoutThread ? undefined : reply.threadId);
  try {
    const send = () =>
      sendOnce(state, reply.chatId, text, {
        replyTo,
        threadId: threadOf(),
        // Out of its topic (resendWithout `thread`): only as a reply, never unquoted into the chat's General.
        replyRequired: migration.withoutThread,
        answer: reply.answer,
      });
    await retryUntilStopped(state, send, {
      shouldRetry: (err) => {
        const without = resendWithout(
          state.api.describe(err),
          {
            reply: replyToOf(state, reply.chatId, replyTo) !== undefined,
            thread: threadOf() !== undefined,
            privateChat: reply.chatId > 0,
          },
          migration.fellBack ?? false,
        );
        if (without) {
          migration.fellBack = true;
          if (without === 'reply') replyTo = undefined;
          else migration.withoutThread = true;
          step = undefined;
          state.logger.info(
            `Telegram refused the answer's ${without === 'reply' ? 'reply' : 'topic'}; sending it without`,
            {
              telegram: { chat_id: state.migratedChats.get(reply.chatId) ?? reply.chatId },
            },
          );
          return true;
        }
        firstFailedAt ??= Date.now();
        const othersDelivered = state.lastSentAt !== undefined && state.lastSentAt > firstFailedAt;
        step = sendRetryStep(state.api.describe(err), failures, migration.migrated, Math.random, othersDelivered);
        if (step.action === 'retry') failures += 1;
        if (step.action === 'migrate') rememberMigration(state, reply.chatId, step.migrateToChatId, migration);
        return step.action !== 'give_up';
      },
      delayMs: () => (step && 'delayMs' in step ? step.delayMs : 0),
      onRetry: (err, _n, waitMs) => logSendRetry(state, reply.chatId, err, step, waitMs),
    });
    return undefined;
  } catch (err) {
    if (err instanceof Stopped || step?.action !== 'give_up') throw err;
    if (step.reason === 'message_too_long' && text.length >= MIN_CUT_PIECE_CHARS) return 'too_long';
    return giveUpSend(state, reply.chatId, err, step.reason);
  }
}

/** A group became a supergroup: its answers go there from now on. */
function rememberMigration(state: ChannelState, chatId: number, migrateToChatId: number, migration: SendRoute): void {
  migration.migrated = true;
  state.migratedChats.set(chatId, migrateToChatId);
  state.logger.info('Telegram group became a supergroup; sending there', {
    telegram: { chat_id: chatId, migrate_to_chat_id: migrateToChatId },
  });
}

/** Logs a wait before sending a piece again (429: this chat waits; 5xx/network: the retry schedule). */
function logSendRetry(
  state: ChannelState,
  chatId: number,
  err: unknown,
  step: ReturnType<typeof sendRetryStep> | undefined,
  waitMs: number,
): void {
  const f = state.api.describe(err);
  const to = { telegram: { chat_id: state.migratedChats.get(chatId) ?? chatId } };
  if (step?.action === 'wait' && f.kind === 'unauthorized')
    state.logger.error('Telegram rejects the bot token (sendMessage); the answer waits for a valid token', {
      ...to,
      error: { message: f.message, code: f.status },
    });
  else if (step?.action === 'wait')
    state.logger.warn(`Telegram asks this chat to wait ${f.retryAfterS ?? 1} s (429)`, to);
  if (step?.action === 'retry')
    state.logger.warn(`sendMessage failed (${f.kind}); retrying in ${Math.round(waitMs)} ms`, {
      ...to,
      error: { message: f.message, code: f.status },
    });
}

/** Counts and logs an answer given up: refused for good (warn), or the Bot API kept failing (error). */
function giveUpSend(
  state: ChannelState,
  chatId: number,
  err: unknown,
  reason: string,
): { outcome: 'failed'; reason: string } {
  const f = state.api.describe(err);
  const fields = {
    telegram: { chat_id: state.migratedChats.get(chatId) ?? chatId },
    error: { message: f.message, code: f.status },
  };
  if (reason === 'unavailable') state.logger.error('Telegram answer given up: the Bot API kept failing', fields);
  else state.logger.warn(`Telegram refused the answer (${f.reason}); not retried`, { ...fields, reason: f.reason });
  state.metrics.reply('tg', 'failed');
  state.metrics.repliesFailed('tg', reason);
  return { outcome: 'failed', reason };
}

// ---- step: confirm ----

/** Remembers a sent piece of the secretary's answer (`sentAnswers`), forgetting the oldest past SENT_ANSWERS_KEPT. */
function rememberSentAnswer(
  state: ChannelState,
  chatId: number,
  messageId: number,
  answer: NonNullable<SentReply['answer']>,
): void {
  state.sentAnswers.set(`${chatId}:${messageId}`, answer);
  if (state.sentAnswers.size > SENT_ANSWERS_KEPT) state.sentAnswers.delete(state.sentAnswers.keys().next().value!);
  if (answer.askedUserId === undefined) return;
  // The member's open question (answersBot): asked now, or answered by this plain answer.
  const asked = `${chatId}:${answer.askedUserId}`;
  state.openQuestions.delete(asked);
  if (!answer.question) return;
  state.openQuestions.add(asked);
  if (state.openQuestions.size > SENT_ANSWERS_KEPT)
    state.openQuestions.delete(state.openQuestions.values().next().value!);
}

/**
 * How many characters of the bot's own message that `message` replies to go in front of its request (replyContextOf;
 * 0: none), at most BOT_WORDS_MAX_CHARS and a quarter of MAX_REQUEST_CHARS. An answer of the secretary gives a follow-up ("а за ноябрь такую же можно?") its referent, which the secretary,
 * deciding a message in an answered thread on its own text, would not have; so does a clarifying question asked of
 * someone else (a colleague joining in). Not a clarifying question this sender was asked (the secretary joins the
 * answer to it: docs/secretary.md rule 4), and not a message this process did not send (before a restart, or a fixed
 * text such as the help): whether it was a question is not known, and a question repeated in front of its answer
 * would be joined to the request twice.
 */
function keepsBotWords(state: ChannelState, message: Message, replied: Message): number {
  const sent = state.sentAnswers.get(`${replied.chat.id}:${replied.message_id}`);
  if (!sent || (sent.question && sent.askedUserId === message.from?.id)) return 0;
  // At most a quarter of a request (MAX_REQUEST_CHARS), so the follow-up's own words are never cut away.
  return Math.min(BOT_WORDS_MAX_CHARS, Math.floor(state.settings.maxRequestChars / 4));
}

/**
 * Marks updates handled and moves the offset over the handled prefix (waking the poll when it moved); the rows of
 * those that were parked are removed (their handled record, when they need one, is written already). A parked
 * update loaded at start and never polled leaves the offset alone (`loadedParked`).
 */
function confirm(state: ChannelState, updates: Update[]): void {
  const before = state.offsets.offset();
  for (const u of updates) {
    state.pendingUpdates.delete(u.update_id);
    if (!state.loadedParked.delete(u.update_id)) state.offsets.done(u.update_id);
  }
  state.parking.release(updates.map((u) => u.update_id));
  state.metrics.oldestPendingUpdate(state.offsets.oldestPendingAgeMs());
  if (state.offsets.offset() > before) state.wakePoll?.();
}

/** The delay (ms) before retry `n` (0-based) of a handled-record write or look-up. */
const recordRetryDelayMs = (n: number): number =>
  RECORD_RETRY_DELAYS_MS[Math.min(n, RECORD_RETRY_DELAYS_MS.length - 1)]!;

/** Records the job's updates as handled; retried until the secretary takes it (or the channel stops). */
async function recordHandled(
  state: ChannelState,
  keys: string[],
  outcome: HandledOutcome,
  reason?: string,
): Promise<void> {
  // At most DELIVERY_KEYS_MAX keys per call (secretary contract, DeliveryKeys).
  for (let at = 0; at < keys.length; at += DELIVERY_KEYS_MAX) {
    const chunk = keys.slice(at, at + DELIVERY_KEYS_MAX);
    await retryUntilStopped(
      state,
      () => untilStopped(state, state.secretary.recordHandled('tg', chunk, outcome, reason)),
      {
        delayMs: recordRetryDelayMs,
        onRetry: (err) =>
          state.logger.warn('recording a Telegram update as handled failed; retrying', {
            telegram: { handled_keys: chunk.slice(0, 5) },
            error: { message: (err as Error).message },
          }),
      },
    );
  }
}

/** The most keys one /deliveries call takes (secretary OpenAPI DeliveryKeys maxItems). */
const DELIVERY_KEYS_MAX = 100;

/**
 * Which of the keys were recorded as handled (by an earlier process); retried like recordHandled, at most
 * DELIVERY_KEYS_MAX keys per call.
 */
async function lookupHandled(state: ChannelState, keys: string[]): Promise<Set<string>> {
  const found = new Set<string>();
  for (let at = 0; at < keys.length; at += DELIVERY_KEYS_MAX) {
    const chunk = keys.slice(at, at + DELIVERY_KEYS_MAX);
    const handled = await retryUntilStopped(state, () => untilStopped(state, state.secretary.lookupHandled(chunk)), {
      delayMs: recordRetryDelayMs,
      onRetry: (err) =>
        state.logger.warn('looking up handled Telegram updates failed; retrying', {
          error: { message: (err as Error).message },
        }),
    });
    for (const key of handled.keys()) found.add(key);
  }
  return found;
}
