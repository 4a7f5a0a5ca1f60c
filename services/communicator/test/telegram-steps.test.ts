import { afterEach, describe, expect, it } from 'vitest';
import { TelegramError } from 'telegraf';
import type { Message, Update, UserFromGetMe } from 'telegraf/types';
import { AppError, errors, isRetryable, retryAfterMsOf } from '@workemon/service-kit';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import {
  BotApiError,
  createTelegramBotApi,
  describeBotApiError,
  isSendRateLimit,
  type BotApiFailure,
} from '../src/telegram/telegram-bot-api.js';
import {
  GREETING_CHAIN_MAX,
  GREETING_JOIN_S,
  HELP_TEXT,
  MERGE_POLL_GRACE_MS,
  REFUSAL_REPLIES,
  REQUEST_CUT_MARKER,
  SEND_RETRY_DELAYS_MS,
  SEND_RETRY_MAX_FAILURES,
  SPLIT_PART_WAIT_MS,
  TEXT_ONLY_REPLY,
  analyzeRequestOf,
  decisionTextOf,
  fixedReplyOf,
  isSecretaryRefusal,
  jobRequestTextOf,
  jobTextOf,
  mergeWaitMs,
  nextJob,
  parseApprovalCallback,
  pollRetryDelayMs,
  refusalReplyOf,
  replyNotesOf,
  sendRetryStep,
} from '../src/telegram/telegram-channel.js';
import {
  addressedText,
  attachmentNoteOf,
  attachmentsOf,
  isAutomaticForward,
  isGreetingOnly,
  isOtherBotsCommand,
  isServiceMessage,
} from '../src/telegram/telegram-update.js';

// Unit tests of the channel's steps, one at a time; telegram.test.ts and telegram-faults.test.ts run them together.

const open: FakeTelegram[] = [];
afterEach(async () => {
  for (const tg of open.splice(0)) await tg.close();
});

let nextUpdateId = 1;
/** A queued private-chat (or group) message as the channel queues it. */
function queued(
  text: string,
  extra: {
    from?: number;
    date?: number;
    group?: string;
    chat?: number;
    at?: number;
    /** Message fields instead of `text` (media, forward_origin): `text` is then the caption (when not empty). */
    fields?: Record<string, unknown>;
  } = {},
) {
  const from = extra.from ?? 7;
  const message = {
    message_id: nextUpdateId,
    date: extra.date ?? 1_700_000_000,
    chat:
      extra.chat === undefined ? { id: from, type: 'private', first_name: 'Анна' } : { id: extra.chat, type: 'group' },
    from: { id: from, is_bot: false, first_name: 'Анна' },
    ...(extra.fields
      ? { ...extra.fields, ...(text ? { caption: text } : {}) }
      : extra.group
        ? { media_group_id: extra.group, caption: text, photo: [] }
        : { text }),
  } as unknown as Message;
  const update = { update_id: nextUpdateId++, message } as Update;
  const classified = { kind: 'message' as const, chatKey: String(message.chat.id), message, text };
  return { update, classified, arrivedAt: extra.at ?? 0 };
}

const failure = (kind: BotApiFailure['kind'], more: Partial<BotApiFailure> = {}): BotApiFailure => ({
  kind,
  reason: kind,
  message: kind,
  ...more,
});

describe('step: per-chat queue (nextJob)', () => {
  it('holds an album until no part arrived for the merge window, then makes it one job', () => {
    const items = [queued('Фото 1', { group: 'g1', at: 0 }), queued('', { group: 'g1', at: 400 }), queued('потом')];
    expect(nextJob(items, 900, 1000)).toEqual({ waitMs: 500 });
    const ready = nextJob(items, 1400, 1000);
    expect('job' in ready && ready.job).toEqual([items[0], items[1]]);
  });

  it('joins a split long paste of one sender, but not a short message or another sender', () => {
    const long = 'а'.repeat(3000);
    const paste = [queued(long, { at: 0 }), queued('хвост', { at: 10 }), queued('другое')];
    const job = nextJob(paste, 20, 1000);
    expect('job' in job && job.job).toEqual([paste[0], paste[1]]);

    // Another member's message does not join; the long part still waits SPLIT_PART_WAIT_MS for its author's next part.
    const other = [queued(long, { from: 8, chat: -5 }), queued('хвост', { from: 9, chat: -5 })];
    expect(nextJob(other, 20, 1000)).toEqual({ waitMs: SPLIT_PART_WAIT_MS - 20 });
    const alone = nextJob(other, SPLIT_PART_WAIT_MS, 1000);
    expect('job' in alone && alone.job).toEqual([other[0]]);
    // …and when that part comes after the other member's message, it joins past it; the other stays queued.
    const between = [...other, queued('конец', { from: 8, chat: -5, at: 30 })];
    const joined = nextJob(between, 1030, 1000);
    expect('job' in joined && joined.job).toEqual([between[0], between[2]]);

    const short = [queued('коротко'), queued('ещё')];
    const single = nextJob(short, 0, 1000);
    expect('job' in single && single.job).toEqual([short[0]]);
  });

  it('waits for a continuation of a long last part SPLIT_PART_WAIT_MS since it arrived, not just the merge window', () => {
    const items = [queued('б'.repeat(3500), { at: 100 })];
    expect(nextJob(items, 400, 1000)).toEqual({ waitMs: SPLIT_PART_WAIT_MS - 300 });
    expect(nextJob(items, 1100, 1000)).toEqual({ waitMs: SPLIT_PART_WAIT_MS - 1000 });
    const job = nextJob(items, 100 + SPLIT_PART_WAIT_MS, 1000);
    expect('job' in job && job.job).toEqual(items);
  });
});

describe('step: per-chat queue (merges wait for a poll after their window)', () => {
  it('a photo without caption between the parts of a split paste belongs to it and does not end it', () => {
    const photo = queued('', { at: 5 });
    const items = [
      queued('в'.repeat(4000), { at: 0 }),
      photo,
      queued('хвост', { at: 10 }),
      queued('другое', { at: 20 }),
    ];
    const job = nextJob(items, 30, 1000);
    expect('job' in job && job.job).toEqual(items.slice(0, 3));
  });

  it('keeps an album open until a getUpdates that started after its window answered, at most a grace', () => {
    const items = [queued('Фото', { group: 'g9', at: 0 })];
    // Window over, but the last poll started before it closed: Telegram may still hold more parts.
    expect(nextJob(items, 1100, 1000, 900)).toEqual({ waitMs: expect.any(Number) as number });
    expect(nextJob(items, 1100, 1000, 1050)).toEqual({ job: items });
    // getUpdates keeps failing: the album goes ahead MERGE_POLL_GRACE_MS after its window.
    expect(nextJob(items, 1000 + MERGE_POLL_GRACE_MS, 1000, 0)).toEqual({ job: items });
    expect(mergeWaitMs(0, 500, 1000, 0)).toBe(500);
  });
});

describe('step: per-chat queue (what a client split off one thing the user sent)', () => {
  const photo = { photo: [{ file_id: 'p', file_unique_id: 'pu', width: 9, height: 9 }] };
  const forwarded = { forward_origin: { type: 'hidden_user', date: 1, sender_user_name: 'Анна' } };
  const long = 'к'.repeat(1500);

  it('a text over the caption limit waits the whole window for its media, then takes a bare photo', () => {
    const text = queued(long, { at: 0 });
    expect(nextJob([text], 100, 1000)).toEqual({ waitMs: 900 });
    const media = queued('', { at: 300, fields: photo });
    const job = nextJob([text, media, queued('новый вопрос', { at: 400 })], 1000, 1000);
    expect('job' in job && job.job).toEqual([text, media]);
    // A short text does not wait for media it has no reason to expect.
    expect(nextJob([queued('коротко', { at: 0 })], 100, 1000)).toEqual({ job: [expect.anything()] });
  });

  it('media without text waits for its text and takes it; a command joins nothing', () => {
    const media = queued('', { at: 0, fields: { voice: { file_id: 'v', file_unique_id: 'vu', duration: 3 } } });
    expect(nextJob([media], 100, 1000)).toEqual({ waitMs: 900 });
    const text = queued('вот что в голосовом', { at: 200 });
    const job = nextJob([media, text], 1200, 1000);
    expect('job' in job && job.job).toEqual([media, text]);
    const start = queued('/start', { at: 200 });
    const alone = nextJob([media, start], 1200, 1000);
    expect('job' in alone && alone.job).toEqual([media]);
    // A path is not a command: it is the text of the screenshot before it.
    const path = queued('/var/log переполнен', { at: 200 });
    const joined = nextJob([media, path], 1200, 1000);
    expect('job' in joined && joined.job).toEqual([media, path]);
  });

  it('a forwarded album after a comment joins it once the album is complete', () => {
    const comment = queued('глянь', { at: 0 });
    const parts = [1, 2].map((n) =>
      queued(n === 1 ? 'подпись' : '', { at: 100 * n, fields: { ...photo, ...forwarded, media_group_id: 'f' } }),
    );
    expect(nextJob([comment, ...parts], 500, 1000)).toEqual({ waitMs: 700 });
    const job = nextJob([comment, ...parts], 1300, 1000);
    expect('job' in job && job.job).toEqual([comment, ...parts]);
    expect(jobRequestTextOf(job && 'job' in job ? (job.job as typeof parts) : [])).toBe(
      'глянь\nПереслано от Анна:\nподпись\n[Вложения (не переданы): фото ×2]',
    );
  });

  it('names attachments once each, counting repeats; one message or album alone gets no note', () => {
    const doc = { document: { file_id: 'd', file_unique_id: 'du', file_name: 'log.txt' } };
    const gif = { animation: { file_id: 'a', file_unique_id: 'au' }, document: { file_id: 'a', file_unique_id: 'au' } };
    expect(attachmentsOf(queued('', { fields: doc }).classified.message)).toEqual(['файл log.txt']);
    expect(attachmentsOf(queued('', { fields: gif }).classified.message)).toEqual(['GIF-анимация']);
    expect(attachmentsOf(queued('текст').classified.message)).toEqual([]);
    expect(attachmentNoteOf(['фото', 'файл a.txt', 'фото'])).toBe('[Вложения (не переданы): фото ×2, файл a.txt]');
    expect(attachmentNoteOf([])).toBeUndefined();
    expect(jobRequestTextOf([queued('подпись', { fields: photo })])).toBe('подпись');
    expect(jobRequestTextOf([queued('', { fields: photo }), queued('', { fields: photo })])).toBe('');
  });
});

describe('step: per-chat queue (a greeting and the question after it)', () => {
  it('tells a greeting alone from a message that also says something', () => {
    const greetings = [
      'Привет!',
      'привет',
      'Всем привет 👋',
      'Добрый день, коллеги!',
      'Доброе утро',
      'Здравствуйте.',
      'Доброго времени суток, коллеги',
      'ЗДРАВСТВУЙТЕ',
      'Ещё раз привет',
      'Hi there',
      'Hello team!',
      'Good morning, all',
      'hey',
      'Приветствую!',
      'Доброй ночи',
      'здрасти',
    ];
    for (const text of greetings) expect(isGreetingOnly(text), text).toBe(true);
    const requests = [
      'Привет, не работает VPN',
      'Добрый день! Нужен доступ к Jira',
      'Hi, my laptop is broken',
      'Привет 502',
      'Добрый',
      'Good',
      'Спасибо',
      'Ок',
      '',
      '👋',
      '/start',
      'Привет всем, коллеги, ребята, друзья, бот!',
      'Доброе утро, касса 3 не печатает',
      'Hey bot, all good?',
    ];
    for (const text of requests) expect(isGreetingOnly(text), text).toBe(false);
  });

  it('a greeting waits the whole window, then takes the next message of its sender, however long it was typed', () => {
    const hello = queued('Добрый день!', { at: 0 });
    expect(nextJob([hello], 100, 1000)).toEqual({ waitMs: 900 });
    // Typed a minute after the greeting (Message.date), queued with it: the user or the bot was offline.
    const question = queued('Не открывается отчёт по авторизациям', { at: 200, date: 1_700_000_060 });
    const job = nextJob([hello, question, queued('И ещё вопрос', { at: 300, date: 1_700_000_061 })], 1300, 1000);
    expect('job' in job && job.job).toEqual([hello, question]);
    expect(jobRequestTextOf('job' in job ? (job.job as (typeof hello)[]) : [])).toBe(
      'Добрый день!\nНе открывается отчёт по авторизациям',
    );
    // A greeting alone once the window is over goes alone; so does one whose next message is a command, or one
    // typed more than GREETING_JOIN_S before it.
    expect(nextJob([hello], 1300, 1000)).toEqual({ job: [hello] });
    const start = nextJob([hello, queued('/help', { at: 200 })], 1300, 1000);
    expect('job' in start && start.job).toEqual([hello]);
    const later = queued('Вопрос', { at: 200, date: 1_700_000_000 + GREETING_JOIN_S + 1 });
    const apart = nextJob([hello, later], 1300, 1000);
    expect('job' in apart && apart.job).toEqual([hello]);
    // At most GREETING_CHAIN_MAX greetings in a row wait for the question: a chain of them cannot hold it back.
    const chain = Array.from({ length: GREETING_CHAIN_MAX + 2 }, () => queued('привет', { at: 0 }));
    const capped = nextJob([...chain, queued('Вопрос', { at: 0 })], 1300, 1000);
    expect('job' in capped && capped.job).toEqual(chain.slice(0, GREETING_CHAIN_MAX + 1));
    // A question with its own greeting does not wait for more.
    expect(nextJob([queued('Привет, где взять пропуск?', { at: 0 })], 100, 1000)).toEqual({
      job: [expect.anything()],
    });
  });
});

describe('step: classify', () => {
  const me = { id: 1, is_bot: true, first_name: 'W', username: 'workemon_bot' } as UserFromGetMe;
  const inGroup = (text: string) =>
    ({ message_id: 1, date: 1, chat: { id: -5, type: 'supergroup', title: 'T' }, text }) as unknown as Message;

  it('a mention is the whole username: not a longer bot name, not an e-mail domain', () => {
    expect(addressedText(inGroup('@workemon_bot нужен отчёт'), me)).toEqual({ addressed: true, text: 'нужен отчёт' });
    expect(addressedText(inGroup('Спроси @Workemon_Bot.'), me)).toEqual({ addressed: true, text: 'Спроси .' });
    expect(addressedText(inGroup('@workemon_bot2 нужен отчёт'), me).addressed).toBe(false);
    expect(addressedText(inGroup('@workemon_bot_old нужен отчёт'), me).addressed).toBe(false);
    expect(addressedText(inGroup('пиши на help@workemon_bot.ru'), me).addressed).toBe(false);
    expect(addressedText(inGroup('/help@workemon_bot как дела'), me)).toEqual({
      addressed: true,
      text: '/help как дела',
    });
    expect(addressedText(inGroup('/start'), me)).toEqual({ addressed: true, text: '/start' });
    expect(addressedText(inGroup('@workemon_bot, ?'), me)).toEqual({ addressed: true, text: '' });
    const inPrivate = (text: string) => ({ ...inGroup(text), chat: { id: 5, type: 'private' } }) as unknown as Message;
    expect(addressedText(inPrivate('@WORKEMON_BOT'), me)).toEqual({ addressed: true, text: '' });
    expect(addressedText(inPrivate('@workemon_bot нужен отчёт'), me)).toEqual({ addressed: true, text: 'нужен отчёт' });
    expect(addressedText(inPrivate('/start@workemon_bot'), me)).toEqual({
      addressed: true,
      text: '/start@workemon_bot',
    });
    expect(addressedText(inGroup('/settings'), me).addressed).toBe(false);
  });

  it("tells service messages, automatic forwards and other bots' commands from requests", () => {
    const pin = { message_id: 2, date: 1, chat: { id: 5, type: 'private' }, pinned_message: {} } as unknown as Message;
    expect(isServiceMessage(pin)).toBe(true);
    expect(isServiceMessage(inGroup('текст'))).toBe(false);
    expect(isAutomaticForward({ ...inGroup('пост'), is_automatic_forward: true } as Message)).toBe(true);
    expect(isOtherBotsCommand('/start@OtherBot', me)).toBe(true);
    expect(isOtherBotsCommand('/start@workemon_bot', me)).toBe(false);
    expect(isOtherBotsCommand('/start', me)).toBe(false);
  });
});

describe('step: decide', () => {
  it('answers /start, /help and text-less messages without the secretary', () => {
    expect(fixedReplyOf('/start')).toBe(HELP_TEXT);
    expect(fixedReplyOf('/help@workemon_bot please')).toBe(HELP_TEXT);
    expect(fixedReplyOf('')).toBe(TEXT_ONLY_REPLY);
    expect(fixedReplyOf('/helpme с VPN')).toBeUndefined();
    expect(fixedReplyOf('/settings')).toBe(HELP_TEXT);
    expect(fixedReplyOf('/var/log переполнен')).toBeUndefined();
    expect(fixedReplyOf('Как подключиться к VPN?')).toBeUndefined();
  });

  it('joins the texts of a job and builds the secretary request, capped at maxRequestChars', () => {
    const job = [queued('Первая часть'), queued(''), queued('Вторая часть')];
    const text = jobTextOf(job);
    expect(text).toBe('Первая часть\nВторая часть');
    const message = job[0]!.classified.message;
    expect(analyzeRequestOf(message, text, 100)).toEqual({
      channel: 'tg',
      username: '7',
      telegram_user_id: '7',
      request: text,
      message_id: `tg:7:${message.message_id}`,
      thread_key: 'tg:7',
    });
    // Over the limit: cut on a character boundary (not inside the emoji's surrogate pair), marked as cut.
    const long = 'я'.repeat(100) + '😀'.repeat(100);
    const cut = analyzeRequestOf(message, long, 200).request;
    expect(cut.length).toBeLessThanOrEqual(200);
    expect(cut.endsWith(REQUEST_CUT_MARKER)).toBe(true);
    expect(cut.startsWith('я'.repeat(100))).toBe(true);
    expect(/[\uD800-\uDBFF]$/.test(cut.slice(0, -REQUEST_CUT_MARKER.length))).toBe(false);
    const group = queued('вопрос', { from: 9, chat: -100 }).classified.message;
    expect(analyzeRequestOf(group, 'вопрос', 100).thread_key).toBe('tg:-100:9');
  });

  it("words a refusal for the user by its status, never with the secretary's developer text", () => {
    expect(refusalReplyOf(new AppError('unknown_user', 403, 'Forbidden'))).toBe(REFUSAL_REPLIES.forbidden);
    expect(refusalReplyOf(new AppError('request_too_long', 413, 'The request … is too long'))).toBe(
      REFUSAL_REPLIES.tooLong,
    );
    expect(refusalReplyOf(new AppError('validation', 400, "Parameter 'request' …"))).toBe(REFUSAL_REPLIES.rejected);
  });

  it('treats a non-retryable 4xx of the secretary as a refusal for the user, not 429 or 5xx', () => {
    expect(isSecretaryRefusal(new AppError('unknown_sender', 403, 'Вы не найдены в справочнике'))).toBe(true);
    expect(isSecretaryRefusal(errors.tooManyRequests(3))).toBe(false);
    expect(isSecretaryRefusal(errors.upstreamUnavailable('secretary'))).toBe(false);
    expect(isSecretaryRefusal(new AppError('busy', 409, 'x', { retryable: true }))).toBe(false);
    expect(isSecretaryRefusal(new Error('socket hang up'))).toBe(false);
  });

  it('reads approval callback data and words the decision for the approver', () => {
    expect(parseApprovalCallback('action:approve:42')).toEqual({ decision: 'approve', id: 42 });
    expect(parseApprovalCallback('action:reject:7')).toEqual({ decision: 'reject', id: 7 });
    expect(parseApprovalCallback('action:approve:x')).toBeUndefined();
    expect(parseApprovalCallback(undefined)).toBeUndefined();
    const press = { decision: 'approve' as const, id: 42 };
    expect(decisionTextOf(press, 'telegram:5', { status: 'approved' })).toEqual({
      toast: 'Одобрено',
      result: 'Действие №42 одобрено (telegram:5); статус: approved.',
    });
    const settled = decisionTextOf(press, 'telegram:5', { error: new AppError('conflict', 409, 'уже одобрено') });
    expect(settled).toEqual({ toast: 'Уже решено', result: 'Действие №42: уже решено. уже одобрено' });
    const missing = decisionTextOf(press, 'telegram:5', { error: new AppError('not_found', 404, 'нет такого') });
    expect(missing.toast).toBe('Действие не найдено');
  });

  it('notes refusals, apologies and merged updates on the audit event', () => {
    expect(replyNotesOf({}, 1)).toEqual([]);
    expect(replyNotesOf({ reason: 'rejected' }, 3)).toEqual([
      'the secretary refused the request; a standard message was sent',
      'one answer to 3 updates (album or split message)',
    ]);
  });
});

describe('step: deliver (sendRetryStep)', () => {
  it('sends once to the supergroup a group became, and gives up on a second migration', () => {
    const migrated = failure('migrated', { migrateToChatId: -1001, reason: 'chat_migrated' });
    expect(sendRetryStep(migrated, 0, false)).toEqual({ action: 'migrate', migrateToChatId: -1001, delayMs: 0 });
    expect(sendRetryStep(migrated, 0, true)).toEqual({ action: 'give_up', reason: 'chat_migrated' });
  });

  it('never retries a permanent refusal, waits retry_after on 429 without counting it', () => {
    expect(sendRetryStep(failure('rejected', { status: 403, reason: 'bot_blocked' }), 0, false)).toEqual({
      action: 'give_up',
      reason: 'bot_blocked',
    });
    expect(sendRetryStep(failure('rate_limited', { retryAfterS: 7 }), 99, false)).toEqual({
      action: 'wait',
      delayMs: 7000,
    });
  });

  it('retries 5xx and network errors on the schedule (±20 %), then every last step, then gives up as unavailable', () => {
    const low = () => 0;
    const high = () => 1;
    expect(sendRetryStep(failure('unavailable'), 0, false, low)).toEqual({ action: 'retry', delayMs: 200 });
    const second = sendRetryStep(failure('unavailable'), 1, false, high);
    expect(second.action).toBe('retry');
    expect('delayMs' in second && second.delayMs).toBeCloseTo(900);
    const last = SEND_RETRY_DELAYS_MS.length;
    expect(sendRetryStep(failure('unavailable'), last - 1, false, low)).toEqual({
      action: 'retry',
      delayMs: SEND_RETRY_DELAYS_MS[last - 1]! * 0.8,
    });
    // Past the schedule the last step repeats, so an outage of a few minutes is waited out (about 15 in all).
    expect(sendRetryStep(failure('unavailable'), last, false, low)).toEqual({
      action: 'retry',
      delayMs: SEND_RETRY_DELAYS_MS[last - 1]! * 0.8,
    });
    expect(sendRetryStep(failure('unavailable'), SEND_RETRY_MAX_FAILURES - 1, false).action).toBe('retry');
    expect(sendRetryStep(failure('unavailable'), SEND_RETRY_MAX_FAILURES, false)).toEqual({
      action: 'give_up',
      reason: 'unavailable',
    });
    // Other chats were answered meanwhile: no outage, this chat's failure alone; given up after the schedule.
    expect(sendRetryStep(failure('unavailable'), last - 1, false, low, true).action).toBe('retry');
    expect(sendRetryStep(failure('unavailable'), last, false, low, true)).toEqual({
      action: 'give_up',
      reason: 'unavailable',
    });
  });
});

describe('step: poll (pollRetryDelayMs)', () => {
  const options = { conflictWaitMs: 4000, baseMs: 1000 };
  it('waits by the kind of getUpdates failure', () => {
    expect(pollRetryDelayMs(failure('aborted'), 3, options)).toBe(0);
    expect(pollRetryDelayMs(failure('conflict'), 3, options)).toBe(4000);
    expect(pollRetryDelayMs(failure('rate_limited', { retryAfterS: 3 }), 3, options)).toBe(3000);
    expect(pollRetryDelayMs(failure('unauthorized'), 0, options)).toBe(60_000);
  });

  it('backs off exponentially (full jitter, capped at 30 s) after 5xx, plus its retry_after', () => {
    for (let i = 0; i < 20; i += 1) {
      expect(pollRetryDelayMs(failure('unavailable'), 2, options)).toBeLessThanOrEqual(4000);
      expect(pollRetryDelayMs(failure('unavailable'), 30, options)).toBeLessThanOrEqual(30_000);
      expect(pollRetryDelayMs(failure('unavailable', { retryAfterS: 2 }), 0, options)).toBeGreaterThanOrEqual(2000);
    }
  });
});

describe('Bot API errors (describeBotApiError)', () => {
  const telegramError = (error_code: number, description: string, parameters?: object) =>
    new TelegramError({ ok: false, error_code, description, ...(parameters ? { parameters } : {}) } as never);

  it('classifies Bot API answers by status, keeping retry_after and migrate_to_chat_id', () => {
    expect(
      describeBotApiError(telegramError(429, 'Too Many Requests: retry after 5', { retry_after: 5 })),
    ).toMatchObject({
      kind: 'rate_limited',
      status: 429,
      retryAfterS: 5,
    });
    expect(describeBotApiError(telegramError(403, 'Forbidden: bot was blocked by the user'))).toMatchObject({
      kind: 'rejected',
      reason: 'bot_blocked',
    });
    expect(
      describeBotApiError(telegramError(400, 'Bad Request: group chat was upgraded', { migrate_to_chat_id: -100 })),
    ).toMatchObject({ kind: 'migrated', migrateToChatId: -100, reason: 'chat_migrated' });
    expect(describeBotApiError(telegramError(409, 'Conflict'))).toMatchObject({ kind: 'conflict' });
    expect(describeBotApiError(telegramError(401, 'Unauthorized'))).toMatchObject({ kind: 'unauthorized' });
    expect(describeBotApiError(telegramError(502, 'Bad Gateway'))).toMatchObject({ kind: 'unavailable', status: 502 });
  });

  it('scrubs the token from network errors and recognises aborts', () => {
    const scrub = (text: string) => text.split('123:SECRET').join('<token>');
    const network = describeBotApiError(new Error('connect ECONNREFUSED http://x/bot123:SECRET/getMe'), scrub);
    expect(network).toMatchObject({ kind: 'unavailable', reason: 'network' });
    expect(network.message).not.toContain('SECRET');
    expect(describeBotApiError(Object.assign(new Error('x'), { name: 'AbortError' })).kind).toBe('aborted');
  });

  it('repeats inside sendText only a 429 (retryable, with Retry-After), never a 403 or a 5xx', () => {
    const limited = new BotApiError(failure('rate_limited', { status: 429, retryAfterS: 2 }));
    expect(isSendRateLimit(limited)).toBe(true);
    expect(retryAfterMsOf(limited)).toBe(2000);
    const blocked = new BotApiError(failure('rejected', { status: 403, reason: 'bot_blocked' }));
    expect(isRetryable(blocked)).toBe(false);
    expect(isSendRateLimit(blocked)).toBe(false);
    expect(isSendRateLimit(new BotApiError(failure('unavailable', { status: 502 })))).toBe(false);
  });
});

describe('sendText against the fake Bot API', () => {
  async function api() {
    const tg = await startFakeTelegram();
    open.push(tg);
    return { tg, api: createTelegramBotApi({ token: tg.token, apiRoot: tg.url }) };
  }

  it('waits retry_after after a 429 and sends once more', async () => {
    const { tg, api: bot } = await api();
    tg.failNext('sendMessage', { code: 429, retryAfterS: 1 });
    const started = Date.now();
    const sent = await bot.sendText(42, 'Здравствуйте');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(sent.messageId).toBeGreaterThan(0);
    expect(tg.callsOf('sendMessage')).toHaveLength(2);
    expect((await tg.waitForSent(1))[0]!.text).toBe('Здравствуйте');
  });

  it('throws a 429 at once when the caller schedules retries (maxRateLimitRetries 0)', async () => {
    const { tg, api: bot } = await api();
    tg.failNext('sendMessage', { code: 429, retryAfterS: 30 });
    const err = await bot.sendText(42, 'x', { maxRateLimitRetries: 0 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BotApiError);
    expect((err as BotApiError).status).toBe(429);
    expect(tg.callsOf('sendMessage')).toHaveLength(1);
  });

  it('does not repeat a 403 "bot was blocked by the user"', async () => {
    const { tg, api: bot } = await api();
    tg.failChat(42, { code: 403 });
    const err = await bot.sendText(42, 'x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BotApiError);
    expect((err as BotApiError).failure).toMatchObject({ kind: 'rejected', reason: 'bot_blocked' });
    expect(tg.callsOf('sendMessage')).toHaveLength(1);
  });
});
