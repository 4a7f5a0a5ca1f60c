// Telegram traffic a real client or an attacker produces beyond the field cases (test/fixtures/telegram-adversarial):
// albums of every media kind with the caption anywhere, client-split pastes with a photo in between or in a group,
// updates that are not a person's message, service messages, commands for other bots, look-alike mentions, the
// secretary's refusals. Everything runs through the real channel against the fake Bot API and the fake secretary.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { type FakeTelegram, type FakeTelegramFailure } from '@workemon/testkit/fake-telegram';
import { HELP_TEXT, TEXT_ONLY_REPLY } from '../src/telegram/telegram-channel.js';
import { answer } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '600' });

type RawUpdate = Record<string, unknown>;
const fixture = (name: string): RawUpdate[] => {
  const parsed = JSON.parse(
    readFileSync(new URL(`./fixtures/telegram-adversarial/${name}`, import.meta.url), 'utf8'),
  ) as RawUpdate | RawUpdate[];
  return Array.isArray(parsed) ? parsed : [parsed];
};
/** Queues fixture updates with a fresh `date` (as Telegram would stamp them now). */
const push = (tg: FakeTelegram, updates: RawUpdate[]) =>
  updates.map((u) => {
    const [kind, body] = Object.entries(u)[0] as [string, Record<string, unknown>];
    return tg.pushUpdate({ [kind]: { ...body, date: Math.floor(Date.now() / 1000) } });
  });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sentTo = (tg: FakeTelegram, chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId);
const photo = (n: number, group: string) => ({
  photo: [{ file_id: `p${n}`, file_unique_id: `p${n}u`, width: 90, height: 90 }],
  media_group_id: group,
});

describe('telegram albums', () => {
  it('a documents album with the caption on the last item is one request, answered once', async () => {
    const { tg, secretary } = await setup();
    push(tg, fixture('A01-documents-caption-last.json'));
    await waitUntil(() => tg.pending() === 0, 'the album confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual(['Выгрузки авторизаций за три дня, почему пустые строки?']);
    // A job of several messages is asked under its last one's id (analyzeRequestOf).
    expect(secretary.calls[0]!.message_id).toBe('tg:6101:303');
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Выгрузки авторизаций за три дня, почему пустые строки?']);
  });

  it('a videos album in a group with the mention in the 2nd caption: one reply, in the group', async () => {
    const { tg, secretary } = await setup();
    push(tg, fixture('A02-group-videos-caption-second.json'));
    await waitUntil(() => tg.pending() === 0, 'the album confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual(['после обновления касса зависает, видео прилагаю']);
    expect(tg.sent).toHaveLength(1);
    expect(Number(tg.sent[0]!.chat_id)).toBe(-1002003004005);
  });

  it('two albums interleaved from two chats: one answer each, to its own caption', async () => {
    const { tg, secretary } = await setup();
    const a = { id: 6111, username: 'u6111' };
    const b = { id: 6112, username: 'u6112' };
    tg.pushMessage({ from: a, extra: { ...photo(1, 'ga'), caption: 'Касса А не печатает чек' } });
    tg.pushMessage({ from: b, extra: photo(2, 'gb') });
    tg.pushMessage({ from: a, extra: photo(3, 'ga') });
    tg.pushMessage({ from: b, extra: { ...photo(4, 'gb'), caption: 'Касса Б не видит сканер' } });
    tg.pushMessage({ from: a, extra: photo(5, 'ga') });
    await waitUntil(() => tg.pending() === 0, 'both albums confirmed');
    expect(secretary.calls.map((c) => c.request).sort()).toEqual([
      'Касса А не печатает чек',
      'Касса Б не видит сканер',
    ]);
    expect(sentTo(tg, 6111).map((m) => m.text)).toEqual(['Ответ на: Касса А не печатает чек']);
    expect(sentTo(tg, 6112).map((m) => m.text)).toEqual(['Ответ на: Касса Б не видит сканер']);
  });

  it('an album split across two getUpdates batches, the caption in the second: one request', async () => {
    // A window far longer than the pause below, so a loaded machine cannot close it before the second batch.
    const { tg, secretary } = await setup({ env: { TELEGRAM_MERGE_WINDOW_MS: '3000' } });
    const from = { id: 6113, username: 'u6113' };
    tg.pushMessage({ from, extra: photo(1, 'gs') });
    await waitUntil(() => tg.callsOf('getUpdates').length >= 2 && tg.pending() === 1, 'the first part polled');
    await sleep(150);
    tg.pushMessage({ from, extra: photo(2, 'gs') });
    tg.pushMessage({ from, extra: { ...photo(3, 'gs'), caption: 'Ошибка на экране оплаты' } });
    await waitUntil(() => tg.pending() === 0, 'the album confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual(['Ошибка на экране оплаты']);
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Ошибка на экране оплаты']);
  });

  it('a part of an answered album that arrives late gets no "text only" reply of its own', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6114, username: 'u6114' };
    tg.pushMessage({ from, extra: { ...photo(1, 'gl'), caption: 'Не проходит оплата картой' } });
    tg.pushMessage({ from, extra: photo(2, 'gl') });
    await tg.waitForSent(1);
    await waitUntil(() => tg.pending() === 0, 'the album confirmed');
    const late = tg.pushMessage({ from, extra: photo(3, 'gl') });
    await waitUntil(() => secretary.handled.has(`tg:6114:${late.message_id}`), 'the late part handled');
    await waitUntil(() => tg.pending() === 0, 'the late part confirmed');
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Не проходит оплата картой']);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.handled.get(`tg:6114:${late.message_id}`)?.outcome).toBe('skipped');
  });
});

describe('telegram client-split pastes', () => {
  it('a split paste with a photo in between is one request that sees both texts and notes the photo', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = (r) => answer(`Принято: ${r.request.length} символов`, r.request);
    const from = { id: 6121, username: 'u6121' };
    const first = 'Лог авторизации: ' + 'строка 0001; '.repeat(310);
    tg.pushMessage({ from, text: first });
    tg.pushMessage({ from, extra: { photo: [{ file_id: 'x', file_unique_id: 'xu', width: 9, height: 9 }] } });
    tg.pushMessage({ from, text: '…конец лога. Почему выгрузка пустая?' });
    await waitUntil(() => tg.pending() === 0, 'all parts confirmed');
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toBe(
      `${first.trim()}\n[Вложения (не переданы): фото]\n…конец лога. Почему выгрузка пустая?`,
    );
    expect(tg.sent.map((m) => m.text)).not.toContain(TEXT_ONLY_REPLY);
    expect(tg.sent).toHaveLength(1);
  });

  it('two users pasting split texts in parallel: one full request each', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = (r) => answer(`Принято: ${r.request.length} символов`, r.request);
    const a = { id: 6122, username: 'u6122' };
    const b = { id: 6123, username: 'u6123' };
    tg.pushMessage({ from: a, text: 'А'.repeat(4096) });
    tg.pushMessage({ from: b, text: 'Б'.repeat(4096) });
    tg.pushMessage({ from: a, text: 'хвост А' });
    tg.pushMessage({ from: b, text: 'хвост Б' });
    await waitUntil(() => tg.pending() === 0, 'all parts confirmed');
    // A part of 4096 characters was cut there by the client: the next one goes straight on (no line break).
    expect(secretary.calls.map((c) => c.request).sort()).toEqual([
      `${'А'.repeat(4096)}хвост А`,
      `${'Б'.repeat(4096)}хвост Б`,
    ]);
    expect(tg.sent).toHaveLength(2);
  });

  it('in a group only the first part of a split paste carries the mention: the rest still joins it', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = (r) => answer(`Принято: ${r.request.length} символов`, r.request);
    const chat = { id: -100777, type: 'supergroup' as const };
    const from = { id: 6124, username: 'u6124' };
    const first = `@${tg.botUsername} ` + 'Ошибка 500 при выгрузке. '.repeat(160);
    tg.pushMessage({ chat, from, text: first });
    tg.pushMessage({ chat, from, text: 'Вопрос: как это исправить?' });
    await waitUntil(() => tg.pending() === 0, 'both parts confirmed');
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request.endsWith('Вопрос: как это исправить?')).toBe(true);
    expect(tg.sent).toHaveLength(1);
  });

  it("in a group, another member's message after a long addressed part is not joined to it", async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100778, type: 'supergroup' as const };
    tg.pushMessage({ chat, from: { id: 6125, username: 'u6125' }, text: `@${tg.botUsername} ` + 'ы'.repeat(3500) });
    tg.pushMessage({ chat, from: { id: 6126, username: 'u6126' }, text: 'обед в час' });
    // Both confirmed may come before the long part's wait for its rest is over (a busy machine): its answer too.
    await waitUntil(() => tg.pending() === 0 && tg.sent.length > 0, 'both confirmed, the long part answered');
    expect(secretary.calls.map((c) => c.request)).toEqual(['ы'.repeat(3500)]);
    expect(tg.sent.map((m) => m.chat_id)).toEqual([chat.id]);
  });

  it('a short message a minute after a long one (delivered in the same batch) is its own request', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6127, username: 'u6127' };
    const now = Math.floor(Date.now() / 1000);
    tg.pushMessage({ from, text: 'ж'.repeat(4000), extra: { date: now - 60 } });
    tg.pushMessage({ from, text: 'А ещё сломался принтер', extra: { date: now } });
    await waitUntil(() => tg.pending() === 0, 'both confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual(['ж'.repeat(4000), 'А ещё сломался принтер']);
    expect(tg.sent).toHaveLength(2);
  });
});

describe('telegram forwards sent together', () => {
  const origin = (name: string) => ({
    forward_origin: { type: 'user', date: 1, sender_user: { id: 9, is_bot: false, first_name: name } },
  });

  it('a comment followed by the messages it forwards is one request, answered once', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6171, username: 'u6171' };
    tg.pushMessage({ from, text: 'Помоги разобраться, что тут не так' });
    tg.pushMessage({ from, text: 'Выгрузка за октябрь пустая', extra: origin('Анна') });
    tg.pushMessage({ from, text: 'И за сентябрь тоже', extra: origin('Олег') });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Помоги разобраться, что тут не так\nПереслано от Анна:\nВыгрузка за октябрь пустая\n' +
        'Переслано от Олег:\nИ за сентябрь тоже',
    ]);
    expect(tg.sent).toHaveLength(1);
  });

  it('a comment whose forwards come in the next getUpdates batch still gets them', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6172, username: 'u6172' };
    tg.pushMessage({ from, text: 'Посмотри, пожалуйста' });
    await sleep(100);
    tg.pushMessage({ from, text: 'Касса зависает при оплате картой', extra: origin('Анна') });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Посмотри, пожалуйста\nПереслано от Анна:\nКасса зависает при оплате картой',
    ]);
  });

  it('in a group the forwards sent along with an addressed comment join it', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100793, type: 'supergroup' as const };
    const from = { id: 6173, username: 'u6173' };
    tg.pushMessage({ chat, from, text: `@${tg.botUsername} глянь` });
    tg.pushMessage({ chat, from, text: 'Ошибка 500 в отчёте', extra: origin('Анна') });
    tg.pushMessage({ chat, from: { id: 6174 }, text: 'Ошибка 404 в отчёте', extra: origin('Олег') });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual(['глянь\nПереслано от Анна:\nОшибка 500 в отчёте']);
  });

  it('a message a minute later is not joined, even when it is a forward', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 6175, username: 'u6175' };
    const now = Math.floor(Date.now() / 1000);
    tg.pushMessage({ from, text: 'Нужен пропуск', extra: { date: now - 60 } });
    tg.pushMessage({ from, text: 'Не работает VPN', extra: { ...origin('Анна'), date: now } });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual(['Нужен пропуск', 'Переслано от Анна:\nНе работает VPN']);
  });
});

describe('telegram after a restart: parts an earlier process handled', () => {
  it('only the parts not recorded as handled are answered (the earlier process joined fewer)', async () => {
    const origin = { forward_origin: { type: 'hidden_user', date: 1, sender_user_name: 'Анна' } };
    const from = { id: 6181, username: 'u6181' };
    const { tg, secretary } = await setup({
      before: (tg, secretary) => {
        const comment = tg.pushMessage({ from, text: 'Глянь, пожалуйста' });
        secretary.handled.set(`tg:6181:${comment.message_id}`, { outcome: 'sent' });
        tg.pushMessage({ from, text: 'Не открывается отчёт', extra: origin });
      },
    });
    await waitUntil(() => tg.pending() === 0, 'both confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual(['Переслано от Анна:\nНе открывается отчёт']);
    expect(tg.sent).toHaveLength(1);
  });

  it('an album answered by an earlier process: its unrecorded caption-less part gets no reply', async () => {
    const from = { id: 6182, username: 'u6182' };
    const { tg, secretary } = await setup({
      before: (tg, secretary) => {
        const a = tg.pushMessage({ from, extra: { ...photo(1, 'gr'), caption: 'Не печатает чек' } });
        const b = tg.pushMessage({ from, extra: photo(2, 'gr') });
        for (const m of [a, b]) secretary.handled.set(`tg:6182:${m.message_id}`, { outcome: 'sent' });
        tg.pushMessage({ from, extra: photo(3, 'gr') });
      },
    });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    await sleep(300);
    expect(tg.sent).toHaveLength(0);
    expect(secretary.calls).toHaveLength(0);
  });
});

describe('telegram updates that are not a request', () => {
  it('edited_message, channel_post, my_chat_member: confirmed, nothing sent, nothing asked', async () => {
    const { tg, secretary } = await setup();
    push(tg, fixture('U01-not-messages.json'));
    tg.pushMessage({ from: { id: 6103, username: 'u6103' }, text: 'Нужна статистика авторизаций' });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    await sleep(300);
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Нужна статистика авторизаций']);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.consumeCalls).toHaveLength(1);
  });

  it('service messages in a private chat (pin, timer, wallpaper, write access) are not answered', async () => {
    const { tg, secretary } = await setup();
    push(tg, fixture('U02-private-service-messages.json'));
    tg.pushMessage({ from: { id: 6104, username: 'u6104' }, text: 'Нужен доступ к кассе' });
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    await sleep(300);
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Нужен доступ к кассе']);
    expect(secretary.calls).toHaveLength(1);
  });

  it('voice, location and a sticker without text in a row get the polite "text only" reply once, no secretary call', async () => {
    const { tg, secretary } = await setup();
    push(tg, fixture('U03-media-without-text.json'));
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'all handled');
    await sleep(1000);
    // One note for the three (TEXT_ONLY_QUIET_S): the same sender, seconds apart.
    expect(tg.sent.map((m) => m.text)).toEqual([TEXT_ONLY_REPLY]);
    expect(secretary.calls).toHaveLength(0);
  });

  it("a channel post auto-forwarded into its discussion group is not a member's request", async () => {
    const { tg, secretary } = await setup();
    push(tg, fixture('U04-automatic-forward.json'));
    await waitUntil(() => tg.pending() === 0, 'confirmed');
    await sleep(300);
    expect(tg.sent).toHaveLength(0);
    expect(secretary.calls).toHaveLength(0);
    expect(secretary.consumeCalls).toHaveLength(0);
  });
});

describe('telegram commands and mentions', () => {
  it('/start and /help (with a deep-link payload, or addressed to this bot) get the help', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100779, type: 'supergroup' as const };
    tg.pushMessage({ from: { id: 6131 }, text: '/start ref_mail_2026' });
    tg.pushMessage({ from: { id: 6132 }, text: `/help@${tg.botUsername}` });
    tg.pushMessage({ chat, from: { id: 6133 }, text: `/start@${tg.botUsername}` });
    tg.pushMessage({ chat: { id: -100782, type: 'group' }, from: { id: 6134 }, text: '/help' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 4, 'four answers');
    expect(tg.sent.map((m) => m.text)).toEqual([HELP_TEXT, HELP_TEXT, HELP_TEXT, HELP_TEXT]);
    expect(secretary.calls).toHaveLength(0);
  });

  it('/start@OtherBot is for another bot: no answer, in a group or a private chat', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100780, type: 'supergroup' as const };
    tg.pushMessage({ chat, from: { id: 6134 }, text: '/start@OtherBot' });
    tg.pushMessage({ from: { id: 6135 }, text: '/help@OtherBot' });
    tg.pushMessage({ from: { id: 6136 }, text: 'Нужен пароль от Wi-Fi' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'all confirmed');
    await sleep(300);
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Нужен пароль от Wi-Fi']);
    expect(secretary.calls).toHaveLength(1);
  });

  it('an unknown command alone gets the help, not an analysis', async () => {
    const { tg, secretary } = await setup();
    tg.pushMessage({ from: { id: 6137 }, text: '/settings' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    expect(tg.sent[0]!.text).toBe(HELP_TEXT);
    expect(secretary.calls).toHaveLength(0);
  });

  it('a mention of a bot whose name only starts with ours is not a mention of us', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100781, type: 'supergroup' as const };
    tg.pushMessage({ chat, from: { id: 6138 }, text: `@${tg.botUsername}2 выгрузи отчёт` });
    tg.pushMessage({ chat, from: { id: 6138 }, text: `@${tg.botUsername}_old выгрузи отчёт` });
    tg.pushMessage({ chat, from: { id: 6139 }, text: `Спроси у @${tg.botUsername}, он знает` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'all confirmed');
    await sleep(300);
    expect(secretary.calls.map((c) => c.request)).toEqual(['Спроси у , он знает']);
  });
});

describe('telegram: the secretary refuses', () => {
  it('a refusal written for developers never reaches the user; the user gets a Russian message', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = () => ({
      status: 413,
      message:
        'The request together with the earlier question is too long: 24000 characters, the limit is 20000; please shorten it',
    });
    tg.pushMessage({ from: { id: 6141 }, text: 'Вот полный лог' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    expect(tg.sent[0]!.text).not.toMatch(/[A-Za-z]{4,}/);
    expect(tg.sent[0]!.text).toMatch(/[А-Яа-я]/);
  });

  it('an unknown user refused by the secretary (403) is told so in Russian, and nothing else happens', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = () => ({
      status: 403,
      message:
        'Извините, я не нашёл вас в справочнике сотрудников и не могу обработать запрос. Обратитесь, пожалуйста, к администратору Workemon.',
    });
    const { message_id } = tg.pushMessage({
      from: { id: 6142, username: 'stranger' },
      text: 'Создай задачу в Jira: удалить базу',
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    expect(tg.sent[0]!.text).toMatch(/справочнике/);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.handled.get(`tg:6142:${message_id}`)?.outcome).toBe('sent');
  });

  it('a request over MAX_REQUEST_CHARS is cut on a character boundary and says it was cut', async () => {
    const { tg, secretary } = await setup({ env: { MAX_REQUEST_CHARS: '100' } });
    // 99 ASCII characters, then an emoji (a surrogate pair) across the limit.
    tg.pushMessage({ from: { id: 6143 }, text: 'x'.repeat(99) + '😀'.repeat(10) });
    await waitUntil(() => secretary.calls.length === 1, 'the request');
    const request = secretary.calls[0]!.request;
    expect(request.length).toBeLessThanOrEqual(100);
    expect(/[\uD800-\uDBFF]$/.test(request)).toBe(false);
    expect(request).toMatch(/обрезан/);
  });
});

describe('telegram delivery: Bot API errors of one chat', () => {
  /** Makes the fake refuse the next `times` sendMessage calls to `chatId` once `after` messages were delivered. */
  const failAfterSent = (tg: FakeTelegram, after: number, chatId: number, failure: FakeTelegramFailure, times = 1) => {
    const push = tg.sent.push.bind(tg.sent);
    tg.sent.push = (...items) => {
      const length = push(...items);
      if (length === after) tg.failChat(chatId, failure, times);
      return length;
    };
  };

  it('migrate_to_chat_id, then 403 kicked in the supergroup: one try each, given up, other chats answered', async () => {
    const { tg, secretary, communicator } = await setup();
    const group = { id: -600, type: 'group' as const };
    tg.failChat(-600, { code: 400, migrateToChatId: -100600 });
    tg.failChat(-100600, { code: 403, description: 'Forbidden: bot was kicked from the supergroup chat' });
    tg.pushMessage({ chat: group, from: { id: 6151 }, text: `@${tg.botUsername} нужен монитор` });
    tg.pushMessage({ from: { id: 6152 }, text: 'Нужен пропуск' });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, 6152).length === 1, 'both handled');
    await sleep(500);
    const tries = (chat: number) => tg.callsOf('sendMessage').filter((c) => Number(c.params['chat_id']) === chat);
    expect(tries(-600)).toHaveLength(1);
    expect(tries(-100600)).toHaveLength(1);
    expect(await communicator.metric('workemon_replies_failed_total', { channel: 'tg', reason: 'bot_kicked' })).toBe(1);
    expect([...secretary.handled.values()].filter((h) => h.outcome === 'failed')).toEqual([
      { outcome: 'failed', reason: 'bot_kicked' },
    ]);
  });

  it('the service message announcing a supergroup sends the answers still due there at once', async () => {
    const { tg, secretary } = await setup();
    const group = { id: -900, type: 'group' as const };
    tg.failChat(-900, { code: 400, migrateToChatId: -100900 });
    secretary.delayMs = 300;
    tg.pushMessage({ chat: group, from: { id: 6156 }, text: `@${tg.botUsername} нужен доступ` });
    tg.pushMessage({ chat: group, from: { id: 6156 }, extra: { migrate_to_chat_id: -100900 } });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, -100900).length === 1, 'answered in the supergroup');
    expect(tg.callsOf('sendMessage').filter((c) => Number(c.params['chat_id']) === -900)).toHaveLength(0);
  });

  it('a 502 on the 2nd piece of a long answer repeats that piece only: no piece is delivered twice', async () => {
    const { tg, secretary } = await setup();
    const paragraph = 'Подробный ответ о настройке VPN. '.repeat(100).trim();
    secretary.decide = () => answer(`${paragraph}\n\n${paragraph}`);
    failAfterSent(tg, 1, 6153, { code: 502 }, 2);
    tg.pushMessage({ from: { id: 6153 }, text: 'Расскажи про VPN' });
    await waitUntil(() => sentTo(tg, 6153).length === 2 && tg.pending() === 0, 'both pieces');
    expect(sentTo(tg, 6153).map((m) => m.text)).toEqual([paragraph, paragraph]);
    expect(tg.callsOf('sendMessage')).toHaveLength(4);
    expect(secretary.calls).toHaveLength(1);
  });

  it('a 429 on the 2nd piece waits retry_after, then sends that piece once', async () => {
    const { tg } = await setup();
    const paragraph = 'Очень подробный ответ. '.repeat(150).trim();
    failAfterSent(tg, 1, 6154, { code: 429, retryAfterS: 1 }, 1);
    tg.pushMessage({ from: { id: 6154 }, text: `${paragraph}\n\n${paragraph}` });
    await waitUntil(() => sentTo(tg, 6154).length >= 2 && tg.pending() === 0, 'the whole answer');
    const calls = tg.callsOf('sendMessage');
    expect(calls).toHaveLength(3);
    const [, refused, accepted] = calls;
    expect(accepted!.at - refused!.at).toBeGreaterThanOrEqual(950);
    const texts = sentTo(tg, 6154).map((m) => m.text);
    expect(new Set(texts).size).toBe(texts.length);
  });

  it('a user who blocked the bot: each new message is tried once, never retried, typing errors ignored', async () => {
    const { tg, communicator } = await setup();
    tg.failChat(6155, { code: 403, description: 'Forbidden: bot was blocked by the user' });
    tg.pushMessage({ from: { id: 6155 }, text: 'Первый вопрос' });
    await waitUntil(() => tg.pending() === 0, 'the first handled');
    tg.pushMessage({ from: { id: 6155 }, text: 'Второй вопрос' });
    await waitUntil(() => tg.pending() === 0 && tg.callsOf('sendMessage').length === 2, 'the second handled');
    await sleep(500);
    expect(tg.callsOf('sendMessage')).toHaveLength(2);
    expect(tg.sent).toHaveLength(0);
    expect(await communicator.metric('workemon_replies_failed_total', { channel: 'tg', reason: 'bot_blocked' })).toBe(
      2,
    );
  });
});

describe('telegram group chats', () => {
  it('a bare mention of the bot gets the help, not the "text only" note', async () => {
    const { tg, secretary } = await setup();
    tg.pushMessage({ chat: { id: -100790, type: 'supergroup' }, from: { id: 6161 }, text: `@${tg.botUsername}` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    expect(tg.sent[0]!.text).toBe(HELP_TEXT);
    expect(secretary.calls).toHaveLength(0);
  });

  it('an album in a group that does not mention the bot is not answered at all', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -100791, type: 'supergroup' as const };
    tg.pushMessage({ chat, from: { id: 6162 }, extra: { ...photo(1, 'gg'), caption: 'фото с корпоратива' } });
    tg.pushMessage({ chat, from: { id: 6162 }, extra: photo(2, 'gg') });
    await waitUntil(() => tg.pending() === 0, 'confirmed');
    await sleep(300);
    expect(tg.sent).toHaveLength(0);
    expect(secretary.calls).toHaveLength(0);
  });

  it('a question in a forum topic is answered in that topic', async () => {
    const { tg } = await setup();
    const chat = { id: -100792, type: 'supergroup' as const };
    const { message_id } = tg.pushMessage({
      chat,
      from: { id: 6163 },
      text: `@${tg.botUsername} не работает касса`,
      extra: { is_topic_message: true, message_thread_id: 77, chat: { ...chat, title: 'Team', is_forum: true } },
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    expect(tg.sent[0]!.params).toMatchObject({
      chat_id: -100792,
      message_thread_id: 77,
      reply_parameters: { message_id, allow_sending_without_reply: true },
    });
  });
});
