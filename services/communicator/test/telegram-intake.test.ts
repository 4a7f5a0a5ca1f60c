// Telegram intake kinds a real client produces by splitting one thing the user sent into several messages:
// a comment with a forwarded album (or several forwards), a caption over Telegram's 1024-character limit that the
// client sends as a message of its own before or after the media, and a mention of the bot with nothing else.
// Everything runs through the real channel against the fake Bot API (getUpdates wire format) and the fake secretary.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { HELP_TEXT, TEXT_ONLY_REPLY } from '../src/telegram/telegram-channel.js';
import { waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '600' });

type RawUpdate = Record<string, unknown>;
const fixture = (name: string): RawUpdate[] =>
  JSON.parse(readFileSync(new URL(`./fixtures/telegram-adversarial/${name}`, import.meta.url), 'utf8')) as RawUpdate[];
/** Queues fixture updates with a fresh `date` (as Telegram would stamp them now). */
const push = (tg: FakeTelegram, updates: RawUpdate[]) =>
  updates.map((u) => {
    const body = u['message'] as Record<string, unknown>;
    return tg.pushUpdate({ message: { ...body, date: Math.floor(Date.now() / 1000) } });
  });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const photo = (n: number, group?: string) => ({
  photo: [{ file_id: `p${n}`, file_unique_id: `p${n}u`, width: 90, height: 90 }],
  ...(group ? { media_group_id: group } : {}),
});
const document = (name: string) => ({
  document: { file_id: name, file_unique_id: `${name}u`, file_name: name, mime_type: 'text/plain' },
});
const voice = { voice: { file_id: 'v1', file_unique_id: 'v1u', duration: 7, mime_type: 'audio/ogg' } };
const video = { video: { file_id: 'vd1', file_unique_id: 'vd1u', width: 640, height: 360, duration: 12 } };
const forwardedFrom = (name: string) => ({
  forward_origin: { type: 'user', date: 1_795_000_000, sender_user: { id: 9001, is_bot: false, first_name: name } },
});
/** A text over Telegram's 1024-character caption limit: what a client sends as a message of its own. */
const longCaption = (topic: string) =>
  `${topic}. ` + 'Подробности: касса 12 не принимает карты после обновления. '.repeat(25);

describe('telegram: a comment with a forwarded album', () => {
  it('the comment and the forwarded album (captions, the note of its photos) are one request, answered once', async () => {
    const { tg, secretary } = await setup();
    const updates = fixture('F01-comment-forwarded-album.json');
    push(tg, updates);
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toBe(
      'Посмотри, что тут с выгрузкой\n' +
        'Переслано от Анна Смирнова (@asmirnova):\n' +
        'Выгрузка авторизаций за октябрь пустая, вот экраны\n' +
        '[Вложения (не переданы): фото ×3]',
    );
    // One request under the job's last message id (analyzeRequestOf), one answer, no "text only" for the photos.
    expect(secretary.calls[0]!.message_id).toBe('tg:6201:404');
    expect(tg.sent.map((m) => m.text)).toEqual([`Ответ на: ${secretary.calls[0]!.request}`]);
    for (const id of [401, 402, 403, 404]) expect(secretary.handled.get(`tg:6201:${id}`)?.outcome).toBe('sent');
  });

  it('a forwarded album without any caption still reaches the secretary with the comment, as a note', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6202, username: 'u6202' };
    tg.pushMessage({ from, text: 'Это из чата кассиров, разберись' });
    for (const n of [1, 2]) tg.pushMessage({ from, extra: { ...photo(n, 'fa2'), ...forwardedFrom('Олег') } });
    tg.pushMessage({ from, extra: { ...document('kassa.log'), media_group_id: 'fa2', ...forwardedFrom('Олег') } });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Это из чата кассиров, разберись\nПереслано от Олег:\n[Вложения (не переданы): фото ×2, файл kassa.log]',
    ]);
    expect(tg.sent).toHaveLength(1);
    expect(tg.sent.some((m) => m.text === TEXT_ONLY_REPLY)).toBe(false);
  });

  it('the forwarded album coming in the next getUpdates batch after the comment still joins it', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6203, username: 'u6203' };
    tg.pushMessage({ from, text: 'Глянь, пожалуйста' });
    await sleep(100);
    tg.pushMessage({ from, extra: { ...photo(1, 'fa3'), caption: 'Ошибка 502 на кассе', ...forwardedFrom('Анна') } });
    tg.pushMessage({ from, extra: { ...photo(2, 'fa3'), ...forwardedFrom('Анна') } });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Глянь, пожалуйста\nПереслано от Анна:\nОшибка 502 на кассе\n[Вложения (не переданы): фото ×2]',
    ]);
    expect(tg.sent).toHaveLength(1);
  });

  it('several forwards (a text, a captioned document, a photo) with one comment: one request', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6204, username: 'u6204' };
    tg.pushMessage({ from, text: 'Три сообщения от кассиров' });
    tg.pushMessage({ from, text: 'Касса не печатает чек', extra: forwardedFrom('Анна') });
    tg.pushMessage({ from, extra: { ...document('error.txt'), caption: 'лог ошибки', ...forwardedFrom('Олег') } });
    tg.pushMessage({ from, extra: { ...photo(7), ...forwardedFrom('Олег') } });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Три сообщения от кассиров\n' +
        'Переслано от Анна:\nКасса не печатает чек\n' +
        'Переслано от Олег:\nлог ошибки\n[Вложения (не переданы): файл error.txt]\n' +
        'Переслано от Олег:\n[Вложения (не переданы): фото]',
    ]);
    expect(tg.sent).toHaveLength(1);
  });

  it('in a group, the forwarded album sent along with an addressed comment joins it: one reply in the group', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100801, type: 'supergroup' as const };
    const from = { id: 6205, username: 'u6205' };
    tg.pushMessage({ chat, from, text: `@${tg.botUsername} что скажешь?` });
    tg.pushMessage({ chat, from, extra: { ...photo(1, 'fa5'), caption: 'Сбой оплаты', ...forwardedFrom('Анна') } });
    tg.pushMessage({ chat, from, extra: { ...photo(2, 'fa5'), ...forwardedFrom('Анна') } });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'что скажешь?\nПереслано от Анна:\nСбой оплаты\n[Вложения (не переданы): фото ×2]',
    ]);
    expect(tg.sent).toHaveLength(1);
    expect(Number(tg.sent[0]!.chat_id)).toBe(-100801);
  });
});

describe('telegram: a greeting, then the question', () => {
  it('a greeting and the question sent right after it: one request, one answer (no "how can I help?" first)', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6241, username: 'u6241' };
    tg.pushMessage({ from, text: 'Добрый день!' });
    const question = tg.pushMessage({ from, text: 'Не открывается отчёт по авторизациям за октябрь' });
    await waitUntil(() => tg.pending() === 0, 'both confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Добрый день!\nНе открывается отчёт по авторизациям за октябрь',
    ]);
    expect(secretary.calls[0]!.message_id).toBe(`tg:6241:${question.message_id}`);
    expect(tg.sent.map((m) => m.text)).toEqual([`Ответ на: ${secretary.calls[0]!.request}`]);
  });

  it('the question in a later getUpdates batch, or typed a minute after the greeting while offline, still joins it', async () => {
    // A window far longer than the pause below, so a loaded machine cannot close it before the second batch.
    const { tg, secretary } = await setup({ env: { TELEGRAM_MERGE_WINDOW_MS: '3000' } });
    const later = { id: 6242, username: 'u6242' };
    tg.pushMessage({ from: later, text: 'Привет 👋' });
    await waitUntil(() => tg.callsOf('getUpdates').length >= 2 && tg.pending() === 1, 'the greeting polled');
    await sleep(250);
    tg.pushMessage({ from: later, text: 'Где взять пропуск на парковку?' });
    const offline = { id: 6243, username: 'u6243' };
    const now = Math.floor(Date.now() / 1000);
    tg.pushMessage({ from: offline, text: 'Hello team', extra: { date: now - 60 } });
    tg.pushMessage({ from: offline, text: 'My VPN token expired', extra: { date: now } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'both answered');
    expect(secretary.calls.map((c) => c.request).sort()).toEqual(
      ['Привет 👋\nГде взять пропуск на парковку?', 'Hello team\nMy VPN token expired'].sort(),
    );
    expect(tg.sent).toHaveLength(2);
  });

  it('in a group, the question after `@bot добрый день` needs no second mention: one request, one reply there', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100802, type: 'supergroup' as const };
    const from = { id: 6244, username: 'u6244' };
    tg.pushMessage({ chat, from, text: `@${tg.botUsername} добрый день` });
    tg.pushMessage({ chat, from: { id: 6245 }, text: 'Коллеги, кто на обед?' });
    tg.pushMessage({ chat, from, text: 'подскажите, как сбросить пароль от 1С?' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'confirmed');
    await sleep(300);
    expect(secretary.calls.map((c) => c.request)).toEqual(['добрый день\nподскажите, как сбросить пароль от 1С?']);
    expect(tg.sent).toHaveLength(1);
    expect(Number(tg.sent[0]!.chat_id)).toBe(-100802);
  });

  it('in a group, what the member then says to others is not taken for the question', async () => {
    const { tg, secretary } = await setup();
    // The chat's queue is busy with another member's question while the greeting waits behind it.
    secretary.delayFor = (r) => (r.request.includes('VPN') ? 2500 : 0);
    const chat = { id: -100803, type: 'supergroup' as const };
    const from = { id: 6251, username: 'u6251' };
    const colleague = { id: 6252, username: 'u6252' };
    const said = tg.pushMessage({ chat, from: colleague, text: `@${tg.botUsername} вопрос про VPN` });
    tg.pushMessage({ chat, from, text: `@${tg.botUsername} привет` });
    // Within the window: a reply to a colleague, a mention of one, another bot's command.
    const replyTo = {
      message_id: said.message_id,
      date: 1,
      chat,
      from: { ...colleague, is_bot: false, first_name: 'Б' },
    };
    tg.pushMessage({ chat, from, text: 'да, пошли обедать', extra: { reply_to_message: replyTo } });
    tg.pushMessage({
      chat,
      from,
      text: '@u6252 скинь отчёт',
      extra: { entities: [{ type: 'mention', offset: 0, length: 6 }] },
    });
    tg.pushMessage({ chat, from, text: '/roll@DiceBot' });
    await waitUntil(() => tg.callsOf('getUpdates').length >= 3, 'polled');
    // Past the greeting's window, while it still waits behind the colleague's question: chat, not a question.
    await sleep(1200);
    tg.pushMessage({ chat, from, text: 'и удалите старые логи с прод-сервера' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'both answered');
    await sleep(300);
    expect(secretary.calls.map((c) => c.request).sort()).toEqual(['вопрос про VPN', 'привет']);
    expect(tg.sent).toHaveLength(2);
  });

  it('in a forum, a message in another topic does not join the greeting', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100804, type: 'supergroup' as const };
    const from = { id: 6253, username: 'u6253' };
    const topic = (id: number) => ({ is_topic_message: true, message_thread_id: id });
    tg.pushMessage({ chat, from, text: `@${tg.botUsername} привет`, extra: topic(10) });
    tg.pushMessage({ chat, from, text: 'релиз переносим на пятницу', extra: topic(20) });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'confirmed');
    await sleep(300);
    expect(secretary.calls.map((c) => c.request)).toEqual(['привет']);
    expect(tg.sent.map((m) => Number(m.params['message_thread_id']))).toEqual([10]);
  });

  it('in a group, a message taken after a greeting but joined to nothing is not answered on its own', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100805, type: 'supergroup' as const };
    const from = { id: 6254, username: 'u6254' };
    // The greeting is the caption of the photo before it (its text sent apart), so its job is not a greeting's.
    tg.pushMessage({ chat, from, extra: { ...photo(9), caption: `@${tg.botUsername}` } });
    tg.pushMessage({ chat, from, text: `@${tg.botUsername} привет` });
    tg.pushMessage({ chat, from, text: 'коллеги, кто идёт на обед?' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'confirmed');
    await sleep(300);
    expect(secretary.calls.some((c) => c.request.includes('обед'))).toBe(false);
    expect(tg.sent).toHaveLength(1);
  });

  it('a greeting and then a voice message or a sticker: the greeting alone, and the "text only" reply', async () => {
    const { tg, secretary } = await setup();
    tg.pushMessage({ from: { id: 6255 }, text: 'Привет' });
    tg.pushMessage({ from: { id: 6255 }, extra: voice });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'both answered');
    expect(secretary.calls.map((c) => c.request)).toEqual(['Привет']);
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Привет', TEXT_ONLY_REPLY]);
  });

  it('a greeting alone is answered once, after the window; a question that greets too is not held back', async () => {
    const { tg, secretary } = await setup();
    tg.pushMessage({ from: { id: 6246 }, text: 'Здравствуйте!' });
    tg.pushMessage({ from: { id: 6247 }, text: 'Привет, не работает принтер' });
    tg.pushMessage({ from: { id: 6247 }, text: '/help' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 3, 'all answered');
    await sleep(300);
    expect(secretary.calls.map((c) => c.request).sort()).toEqual(['Здравствуйте!', 'Привет, не работает принтер']);
    expect(tg.sent.filter((m) => Number(m.chat_id) === 6247).map((m) => m.text)).toEqual([
      'Ответ на: Привет, не работает принтер',
      HELP_TEXT,
    ]);
    expect(tg.sent).toHaveLength(3);
  });
});

describe('telegram: a caption over 1024 characters sent as a message of its own', () => {
  it('the text right before a photo without caption: one request with the note, one answer', async () => {
    const { tg, secretary } = await setup();
    const text = longCaption('Касса 12');
    const from = { id: 6211, username: 'u6211' };
    tg.pushMessage({ from, text });
    tg.pushMessage({ from, extra: photo(1) });
    await waitUntil(() => tg.pending() === 0, 'both confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([`${text.trim()}\n[Вложения (не переданы): фото]`]);
    expect(tg.sent).toHaveLength(1);
    expect(tg.sent[0]!.text).not.toBe(TEXT_ONLY_REPLY);
  });

  it('the text right after a photo without caption: one request, answered once', async () => {
    const { tg, secretary } = await setup();
    const text = longCaption('Касса 14');
    const from = { id: 6212, username: 'u6212' };
    tg.pushMessage({ from, extra: photo(1) });
    const last = tg.pushMessage({ from, text });
    await waitUntil(() => tg.pending() === 0, 'both confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([`[Вложения (не переданы): фото]\n${text.trim()}`]);
    expect(secretary.calls[0]!.message_id).toBe(`tg:6212:${last.message_id}`);
    expect(tg.sent.map((m) => m.text)).toEqual([`Ответ на: ${secretary.calls[0]!.request}`]);
  });

  it('the photo arriving in a later getUpdates batch than the long text still joins it', async () => {
    // A window far longer than the test's own pause: on a loaded machine the poll, the 50 ms checks and the pause
    // together can pass 600 ms, and the text would (rightly) be answered before its photo came.
    const { tg, secretary } = await setup({ env: { TELEGRAM_MERGE_WINDOW_MS: '3000' } });
    const text = longCaption('Терминал 3');
    const from = { id: 6213, username: 'u6213' };
    tg.pushMessage({ from, text });
    await waitUntil(() => tg.callsOf('getUpdates').length >= 2 && tg.pending() === 1, 'the text polled');
    await sleep(250);
    tg.pushMessage({ from, extra: photo(2) });
    await waitUntil(() => tg.pending() === 0, 'both confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([`${text.trim()}\n[Вложения (не переданы): фото]`]);
    expect(tg.sent).toHaveLength(1);
  });

  it('an album without captions, with the text before or after it: one request each time', async () => {
    const { tg, secretary } = await setup();
    const before = { id: 6214, username: 'u6214' };
    const after = { id: 6215, username: 'u6215' };
    tg.pushMessage({ from: before, text: longCaption('Альбом после текста') });
    for (const n of [1, 2, 3]) tg.pushMessage({ from: before, extra: photo(n, 'cb1') });
    for (const n of [4, 5]) tg.pushMessage({ from: after, extra: photo(n, 'cb2') });
    tg.pushMessage({ from: after, text: longCaption('Текст после альбома') });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    const requests = secretary.calls.map((c) => c.request).sort();
    expect(requests).toEqual(
      [
        `${longCaption('Альбом после текста').trim()}\n[Вложения (не переданы): фото ×3]`,
        `[Вложения (не переданы): фото ×2]\n${longCaption('Текст после альбома').trim()}`,
      ].sort(),
    );
    expect(tg.sent).toHaveLength(2);
    expect(tg.sent.some((m) => m.text === TEXT_ONLY_REPLY)).toBe(false);
  });

  it('a document, a voice message and a video with their text split off: one request each', async () => {
    const { tg, secretary } = await setup();
    const cases = [
      { from: { id: 6216, username: 'u6216' }, media: document('report.csv'), note: 'файл report.csv' },
      { from: { id: 6217, username: 'u6217' }, media: voice, note: 'голосовое сообщение' },
      { from: { id: 6218, username: 'u6218' }, media: video, note: 'видео' },
    ];
    for (const c of cases) {
      tg.pushMessage({ from: c.from, text: longCaption(c.note) });
      tg.pushMessage({ from: c.from, extra: c.media });
    }
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 3, 'all answered');
    expect(secretary.calls.map((c) => c.request).sort()).toEqual(
      cases.map((c) => `${longCaption(c.note).trim()}\n[Вложения (не переданы): ${c.note}]`).sort(),
    );
    expect(tg.sent).toHaveLength(3);
    expect(tg.sent.some((m) => m.text === TEXT_ONLY_REPLY)).toBe(false);
  });

  it('from the fixture: a photo, then its caption as a text: one request (of the photo), one answer', async () => {
    const { tg, secretary } = await setup();
    const updates = fixture('C01-photo-then-long-caption.json');
    push(tg, updates);
    await waitUntil(() => tg.pending() === 0, 'both confirmed');
    const text = String((updates[1]!['message'] as { text: string }).text);
    expect(secretary.calls.map((c) => c.request)).toEqual([`[Вложения (не переданы): фото]\n${text}`]);
    expect(tg.sent).toHaveLength(1);
  });

  it('a second question from the same user is not swallowed; a sticker after them is a reaction, not a request', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6219, username: 'u6219' };
    tg.pushMessage({ from, text: 'Нужен доступ к кассе' });
    tg.pushMessage({ from, text: 'И ещё сломался принтер' });
    tg.pushMessage({
      from,
      extra: { sticker: { file_id: 's', file_unique_id: 'su', type: 'regular', width: 1, height: 1 } },
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'all handled');
    await sleep(1000);
    expect(secretary.calls.map((c) => c.request)).toEqual(['Нужен доступ к кассе', 'И ещё сломался принтер']);
    // The sticker comes right after the sender's words (STICKER_REACTION_S): no "text only" note.
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Нужен доступ к кассе', 'Ответ на: И ещё сломался принтер']);
  });
});

describe('telegram: a mention of the bot and nothing else', () => {
  it('in a private chat `@bot`, `@bot !` and `/start@bot` are a /start: the greeting, no secretary call', async () => {
    const { tg, secretary } = await setup();
    tg.pushMessage({ from: { id: 6221 }, text: `@${tg.botUsername}` });
    tg.pushMessage({ from: { id: 6222 }, text: ` @${tg.botUsername.toUpperCase()} ! ` });
    tg.pushMessage({ from: { id: 6223 }, text: `/start@${tg.botUsername}` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 3, 'three answers');
    expect(tg.sent.map((m) => m.text)).toEqual([HELP_TEXT, HELP_TEXT, HELP_TEXT]);
    expect(secretary.calls).toHaveLength(0);
    expect(secretary.consumeCalls).toHaveLength(0);
  });

  it('in a private chat a mention in front of a question is not part of the request', async () => {
    const { tg, secretary } = await setup();
    tg.pushMessage({ from: { id: 6224 }, text: `@${tg.botUsername} нужен отчёт по кассам` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    expect(secretary.calls.map((c) => c.request)).toEqual(['нужен отчёт по кассам']);
  });

  it('in a group a mention with only punctuation is a call for attention: the help, in reply, no secretary', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100802, type: 'supergroup' as const };
    const { message_id } = tg.pushMessage({ chat, from: { id: 6225 }, text: `@${tg.botUsername}, ?` });
    tg.pushMessage({ chat: { id: -100803, type: 'group' }, from: { id: 6226 }, text: `@${tg.botUsername}` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 2, 'two answers');
    expect(tg.sent.map((m) => m.text)).toEqual([HELP_TEXT, HELP_TEXT]);
    expect(tg.sent[0]!.params).toMatchObject({ chat_id: -100802, reply_parameters: { message_id } });
    expect(secretary.calls).toHaveLength(0);
  });
});

describe('telegram: what a message replies to', () => {
  const anna = { id: 6241, is_bot: false, first_name: 'Анна', username: 'anna' };
  const replyTo = (chat: { id: number; type: string }, messageId: number, from: object, words: object) => ({
    reply_to_message: { message_id: messageId, date: 1_795_000_000, chat: { ...chat, title: 'Team' }, from, ...words },
  });

  it("in a group, `@bot` as a reply to a colleague's question asks that question; words after it go with it", async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100811, type: 'supergroup' as const };
    const question = tg.pushMessage({ chat, from: anna, text: 'Как получить доступ к VPN из дома?' });
    const call = tg.pushMessage({
      chat,
      from: { id: 6242 },
      text: `@${tg.botUsername}`,
      extra: replyTo(chat, question.message_id, anna, { text: 'Как получить доступ к VPN из дома?' }),
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    tg.pushMessage({
      chat,
      from: { id: 6243 },
      text: `@${tg.botUsername} а с планшета?`,
      extra: replyTo(chat, question.message_id, anna, { text: 'Как получить доступ к VPN из дома?' }),
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 2, 'both answered');
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'В ответ на сообщение от Анна (@anna):\nКак получить доступ к VPN из дома?',
      'В ответ на сообщение от Анна (@anna):\nКак получить доступ к VPN из дома?\nа с планшета?',
    ]);
    expect(tg.sent[0]!.params).toMatchObject({ chat_id: -100811, reply_parameters: { message_id: call.message_id } });
  });

  it('a quoted part is the context (also from another chat); a reply to the bot or a forum topic start adds none', async () => {
    const { tg, secretary } = await setup();
    tg.pushMessage({
      from: { id: 6244 },
      text: 'Это про нас?',
      extra: {
        external_reply: {
          origin: {
            type: 'channel',
            date: 1,
            chat: { id: -1009, type: 'channel', title: 'Новости ИТ' },
            message_id: 5,
          },
        },
        quote: { text: 'С понедельника VPN только с токеном', position: 0 },
      },
    });
    const bot = { id: 1, is_bot: true, first_name: 'Workemon', username: tg.botUsername };
    tg.pushMessage({
      from: { id: 6245 },
      text: 'А подробнее?',
      extra: {
        reply_to_message: { message_id: 1, date: 1, chat: { id: 6245, type: 'private' }, from: bot, text: 'Ответ' },
      },
    });
    const forum = { id: -100812, type: 'supergroup' as const };
    tg.pushMessage({
      chat: forum,
      from: { id: 6246 },
      text: `@${tg.botUsername} не печатает чек`,
      extra: {
        is_topic_message: true,
        message_thread_id: 3,
        ...replyTo(forum, 3, anna, { forum_topic_created: { name: 'Кассы', icon_color: 7322096 } }),
      },
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 3, 'all answered');
    expect(secretary.calls.map((c) => c.request).sort()).toEqual(
      [
        'В ответ на сообщение от Новости ИТ:\nС понедельника VPN только с токеном\nЭто про нас?',
        'А подробнее?',
        'не печатает чек',
      ].sort(),
    );
  });
});

describe('telegram: media uploaded after its long caption was answered', () => {
  it('media without text within a minute of an answered text over 1024 characters gets no "text only" reply', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6251, username: 'u6251' };
    const now = Math.floor(Date.now() / 1000);
    const text = longCaption('Касса 21');
    tg.pushMessage({ from, text, extra: { date: now } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'the text answered');
    // The upload took longer than the merge window: Telegram dates the photos 20 s after the text.
    const late = [tg.pushMessage({ from, extra: { ...photo(1), date: now + 20 } })];
    late.push(tg.pushMessage({ from, extra: { ...document('scan.pdf'), date: now + 21 } }));
    await waitUntil(() => late.every((m) => secretary.handled.has(`tg:6251:${m.message_id}`)), 'both handled');
    expect(late.map((m) => secretary.handled.get(`tg:6251:${m.message_id}`)?.outcome)).toEqual(['skipped', 'skipped']);
    expect(tg.sent.map((m) => m.text)).toEqual([`Ответ на: ${text.trim()}`]);
    expect(secretary.calls).toHaveLength(1);
  });

  it('after a short text, or a minute later, or after another question, a bare photo gets the "text only" reply', async () => {
    const { tg, secretary } = await setup();
    const now = Math.floor(Date.now() / 1000);
    const short = { id: 6252, username: 'u6252' };
    tg.pushMessage({ from: short, text: 'Нужен доступ к кассе', extra: { date: now } });
    const slow = { id: 6253, username: 'u6253' };
    tg.pushMessage({ from: slow, text: longCaption('Касса 22'), extra: { date: now - 120 } });
    const other = { id: 6254, username: 'u6254' };
    tg.pushMessage({ from: other, text: longCaption('Касса 23'), extra: { date: now - 5 } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 3, 'the texts answered');
    tg.pushMessage({ from: other, text: 'И ещё вопрос про принтер', extra: { date: now - 3 } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 4, 'the other question answered');
    for (const from of [short, slow, other]) tg.pushMessage({ from, extra: { ...photo(3), date: now + 10 } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 7, 'the photos answered');
    expect(
      tg.sent
        .filter((m) => m.text === TEXT_ONLY_REPLY)
        .map((m) => Number(m.chat_id))
        .sort(),
    ).toEqual([6252, 6253, 6254]);
    expect(secretary.calls).toHaveLength(4);
  });
});
