// Session 30's break attempts: new members of the Telegram field-case kinds (T10 client-split pastes, T11 Bot API
// errors) that the intake mishandled: a Desktop cut at a paragraph break, Android's cut inside a word, POST /send to a
// migrated group and its retry after a partial delivery. Real channel, fake Bot API and fake secretary.
import { describe, expect, it } from 'vitest';
import { type FakeTelegram, type FakeTelegramFailure } from '@workemon/testkit/fake-telegram';
import { answer } from './fake-secretary.js';
import request from 'supertest';
import { SERVICE_AUTH, startCommunicator, waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup, track } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '600' });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sentTo = (tg: FakeTelegram, chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId);
const photo = (n: number, group: string) => ({
  photo: [{ file_id: `p${n}`, file_unique_id: `p${n}u`, width: 90, height: 90 }],
  media_group_id: group,
});
/** A caption with the bot's mention marked as Telegram marks it (a `mention` entity in caption_entities). */
const mentioned = (tg: FakeTelegram, text: string) => ({
  caption: `@${tg.botUsername} ${text}`,
  caption_entities: [{ type: 'mention', offset: 0, length: tg.botUsername.length + 1 }],
});
/** Makes the fake refuse the next `times` sendMessage calls to `chatId` once `after` messages were delivered. */
const failAfterSent = (tg: FakeTelegram, after: number, chatId: number, failure: FakeTelegramFailure, times = 1) => {
  const push = tg.sent.push.bind(tg.sent);
  tg.sent.push = (...items) => {
    const length = push(...items);
    if (length === after) tg.failChat(chatId, failure, times);
    return length;
  };
};

describe('T02 kind: albums', () => {
  it('group album, captions on items 1 and 3, the mention only in the caption of item 2: one request with all three captions', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -1003001, type: 'supergroup' as const };
    const from = { id: 30011, username: 'u30011' };
    const firstId = tg.pushMessage({
      chat,
      from,
      extra: { ...photo(1, 'g3001'), caption: 'Касса 1: чек не печатается' },
    }).message_id;
    tg.pushMessage({ chat, from, extra: { ...photo(2, 'g3001'), ...mentioned(tg, 'что делать с кассами?') } });
    tg.pushMessage({ chat, from, extra: { ...photo(3, 'g3001'), caption: 'Касса 3: сканер не видит коды' } });
    // Another member's album, mentioning nobody: photos shared among colleagues, not answered.
    const other = { id: 30012, username: 'u30012' };
    for (const n of [4, 5])
      tg.pushMessage({ chat, from: other, extra: { ...photo(n, 'g3002'), caption: `фото ${n}` } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'the album answered');
    await sleep(400);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Касса 1: чек не печатается\nчто делать с кассами?\nКасса 3: сканер не видит коды',
    ]);
    expect(tg.sent).toHaveLength(1);
    // The other album is confirmed as not addressed without a record at the secretary (nothing was sent); the
    // answered one is recorded by its parts and by the album itself.
    expect([...secretary.handled.keys()].sort()).toEqual(
      [...[1, 2, 3].map((n) => `tg:-1003001:${firstId + n - 1}`), 'tg:-1003001:album:g3001'].sort(),
    );
    // The answer quotes the part that mentioned the bot.
    expect(tg.sent[0]!.params['reply_to_message_id'] ?? tg.sent[0]!.params['reply_parameters']).toBeDefined();
  });
});

describe('T10 kind: client-split pastes', () => {
  // Telegram Desktop (CutPart) cuts a long text at the best break after half the limit: a paragraph break wins, so
  // the first part can be anywhere between 2049 and 4096 characters.
  const paragraphA = 'Журнал авторизаций кошельков за октябрь, первая выгрузка. '.repeat(40).trim(); // ~2300
  const paragraphB = 'Строки с пустым статусом повторяются каждые пять минут. '.repeat(45).trim(); // ~2500

  it('private: Telegram Desktop cut at a paragraph break (first part ~2,300 chars): one request seeing both parts', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = (r) => answer(`Принято: ${r.request.length} символов`, r.request);
    const from = { id: 30101, username: 'u30101' };
    expect(paragraphA.length).toBeLessThan(3000);
    expect(paragraphA.length + 2 + paragraphB.length).toBeGreaterThan(4096);
    tg.pushMessage({ from, text: paragraphA });
    tg.pushMessage({ from, text: `${paragraphB} Почему так?` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'the paste answered');
    await sleep(400);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toContain(paragraphA);
    expect(secretary.calls[0]!.request.endsWith('Почему так?')).toBe(true);
    expect(tg.sent).toHaveLength(1);
  });

  it('group: the same Desktop cut, only the first part mentions the bot: one request seeing both parts', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -1003102, type: 'supergroup' as const };
    const from = { id: 30102, username: 'u30102' };
    tg.pushMessage({ chat, from, text: `@${tg.botUsername} ${paragraphA}` });
    tg.pushMessage({ chat, from, text: `${paragraphB} Почему так?` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'the paste answered');
    await sleep(400);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toContain(paragraphA);
    expect(secretary.calls[0]!.request.endsWith('Почему так?')).toBe(true);
  });

  it('Android cuts at exactly 4096 code units, inside a word: the request has the text as pasted, the word whole', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 30103, username: 'u30103' };
    const text = ('Ошибка авторизации кошелька в процессинге, код 0x1F. '.repeat(80) + 'Что делать?').trim();
    const cut = 4096;
    expect(/\p{L}/u.test(text[cut - 1]!) && /\p{L}/u.test(text[cut]!)).toBe(true);
    tg.pushMessage({ from, text: text.slice(0, cut) });
    tg.pushMessage({ from, text: text.slice(cut) });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'the paste answered');
    await sleep(400);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toContain(text);
  });
});

describe('T10 kind: the mention at the end of a paste', () => {
  it('group: only the LAST part mentions the bot: one request seeing all; a long text mentioning nobody is not answered', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = (r) => answer(`Принято: ${r.request.length} символов`, r.request);
    const chat = { id: -1003104, type: 'supergroup' as const };
    const from = { id: 30104, username: 'u30104' };
    const first = 'Лог выгрузки: строка 0001 ошибка авторизации. '.repeat(89).slice(0, 4096);
    tg.pushMessage({ chat, from, text: first });
    tg.pushMessage({ chat, from, text: `…конец лога. @${tg.botUsername} почему выгрузка за октябрь пустая?` });
    tg.pushMessage({ chat, from: { id: 30105 }, text: 'Отчёт для коллег. '.repeat(150) });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'the paste answered');
    await sleep(400);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request.startsWith(first.slice(0, 200))).toBe(true);
    expect(secretary.calls[0]!.request.endsWith('почему выгрузка за октябрь пустая?')).toBe(true);
    expect(tg.sent).toHaveLength(1);
  });
});

describe('groups: what members post to each other delays nobody', () => {
  it("a colleague's long paste mentioning nobody does not hold another member's question behind it", async () => {
    // A long window: the colleague's paste is held for two of them, far longer than the question takes.
    const { tg, secretary } = await setup({ env: { TELEGRAM_MERGE_WINDOW_MS: '3000' } });
    const chat = { id: -1003201, type: 'supergroup' as const };
    const paste = tg.pushMessage({ chat, from: { id: 32011 }, text: 'План миграции для коллег. '.repeat(90) });
    tg.pushMessage({ chat, from: { id: 32012 }, text: `@${tg.botUsername} где отчёт за октябрь?` });
    await waitUntil(() => sentTo(tg, -1003201).length === 1, 'the question answered');
    // Answered while the paste was still held, unconfirmed: it did not wait behind it.
    // Both still unconfirmed: the offset cannot pass the held paste, which came first.
    expect(tg.pending()).toBe(2);
    await waitUntil(() => tg.pending() === 0, 'the paste confirmed as not addressed');
    expect(secretary.calls.map((c) => c.request)).toEqual(['где отчёт за октябрь?']);
    expect(secretary.handled.has(`tg:-1003201:${paste.message_id}`)).toBe(false);
  });

  it('the part mentioning the bot a poll later, more than a window after the held part, still takes it along', async () => {
    const { tg, secretary } = await setup({ env: { TELEGRAM_MERGE_WINDOW_MS: '2000' } });
    secretary.decide = (r) => answer(`Принято: ${r.request.length} символов`, r.request);
    const chat = { id: -1003203, type: 'supergroup' as const };
    const from = { id: 32031, username: 'u32031' };
    const first = 'Лог выгрузки: строка 0001 ошибка авторизации. '.repeat(89).slice(0, 4096);
    const date = Math.floor(Date.now() / 1000);
    tg.pushMessage({ chat, from, text: first, extra: { date } });
    await waitUntil(() => tg.callsOf('getUpdates').length >= 2 && tg.pending() === 1, 'the held part polled');
    // Sent in the same second, delivered past one window (a part alone would no longer wait for the next), within
    // the two a held part waits.
    await sleep(2300);
    tg.pushMessage({ chat, from, text: `…конец лога. @${tg.botUsername} почему выгрузка пустая?`, extra: { date } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request.startsWith(first.trim())).toBe(true);
    expect(secretary.calls[0]!.request.endsWith('почему выгрузка пустая?')).toBe(true);
  });

  it('a held part is not given up while getUpdates hangs: the poll that brings the mention must answer first', async () => {
    const { tg, secretary } = await setup({ env: { TELEGRAM_REQUEST_TIMEOUT: '2s' } });
    secretary.decide = (r) => answer(`Принято: ${r.request.length} символов`, r.request);
    const chat = { id: -1003204, type: 'supergroup' as const };
    const from = { id: 32041, username: 'u32041' };
    tg.pushMessage({ chat, from, text: 'Лог: строка ошибки. '.repeat(210) });
    await waitUntil(() => tg.callsOf('getUpdates').length >= 2 && tg.pending() === 1, 'the held part polled');
    tg.hangNext('getUpdates', 1);
    await waitUntil(() => tg.hanging() === 1, 'a poll hanging');
    tg.pushMessage({ chat, from, text: `@${tg.botUsername} что это за ошибка?` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered', 20_000);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request.startsWith('Лог: строка ошибки.')).toBe(true);
    expect(secretary.calls[0]!.request.endsWith('что это за ошибка?')).toBe(true);
  });

  it('each held part is given up on its own: a member posting unaddressed pastes without pause pins nothing', async () => {
    const { tg, secretary } = await setup({ env: { TELEGRAM_MERGE_WINDOW_MS: '300' } });
    const chat = { id: -1003205, type: 'supergroup' as const };
    const from = { id: 32051 };
    let pushed = 0;
    // The first paste is confirmed while the member is still posting, every 250 ms, within two windows of the last.
    while (pushed < 30 && tg.pending() >= pushed) {
      tg.pushMessage({ chat, from, text: `Часть ${pushed}. ` + 'Текст для коллег. '.repeat(120) });
      pushed += 1;
      await sleep(250);
    }
    expect(pushed).toBeLessThan(30);
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
    expect(secretary.calls).toHaveLength(0);
    expect(tg.sent).toHaveLength(0);
  });

  it('after a greeting, a long text replying to a colleague and mentioning one is not taken for the question', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -1003202, type: 'supergroup' as const };
    const from = { id: 32021, username: 'u32021' };
    const carl = { id: 32022, username: 'carl', is_bot: false, first_name: 'Carl' };
    const said = tg.pushMessage({ chat, from: carl, text: 'Пришли план, пожалуйста' });
    tg.pushMessage({ chat, from, text: `@${tg.botUsername} привет` });
    tg.pushMessage({
      chat,
      from,
      text: '@carl держи план миграции: ' + 'шаг миграции. '.repeat(160),
      extra: {
        entities: [{ type: 'mention', offset: 0, length: 5 }],
        reply_to_message: { message_id: said.message_id, date: 1, chat, from: carl, text: 'Пришли план' },
      },
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'confirmed');
    await sleep(300);
    expect(secretary.calls.map((c) => c.request)).toEqual(['привет']);
  });
});

describe('T10 kind: where parts of 4096 characters are joined', () => {
  it('a word cut at 4096 goes on; a new sentence or a forward after 4096 characters keeps its line break', async () => {
    const { tg, secretary } = await setup();
    const full = 'я'.repeat(4096);
    tg.pushMessage({ from: { id: 32031 }, text: full });
    tg.pushMessage({ from: { id: 32031 }, text: 'Спасибо' });
    tg.pushMessage({ from: { id: 32032 }, text: 'Глянь' });
    tg.pushMessage({
      from: { id: 32032 },
      text: full,
      extra: { forward_origin: { type: 'hidden_user', date: 1, sender_user_name: 'Борис' } },
    });
    tg.pushMessage({
      from: { id: 32032 },
      text: 'второе сообщение',
      extra: { forward_origin: { type: 'hidden_user', date: 1, sender_user_name: 'Борис' } },
    });
    await waitUntil(() => tg.pending() === 0 && secretary.calls.length >= 2, 'both answered');
    const requests = secretary.calls.map((c) => c.request);
    expect(requests).toContain(`${full}\nСпасибо`);
    expect(requests).toContain(`Глянь\nПереслано от Борис:\n${full}\nПереслано от Борис:\nвторое сообщение`);
  });
});

describe('crash / restart: what an earlier process answered', () => {
  it('an album answered before a restart: its part Telegram delivers after the restart gets no "text only" reply', async () => {
    const { tg, secretary, communicator } = await setup();
    const from = { id: 30902, username: 'u30902' };
    tg.pushMessage({ from, extra: { ...photo(1, 'g-restart'), caption: 'Разбит экран терминала' } });
    tg.pushMessage({ from, extra: photo(2, 'g-restart') });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'the album answered');
    await communicator.stop();
    const late = tg.pushMessage({ from, extra: photo(3, 'g-restart') });
    track(
      await startCommunicator({ secretaryUrl: secretary.url, telegram: tg, env: { TELEGRAM_MERGE_WINDOW_MS: '600' } }),
    );
    await waitUntil(
      () => tg.pending() === 0 && secretary.handled.has(`tg:30902:${late.message_id}`),
      'the late part handled',
    );
    await sleep(300);
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Разбит экран терминала']);
    expect(secretary.handled.get(`tg:30902:${late.message_id}`)?.outcome).toBe('skipped');
  });
});

describe('T11 kind: POST /send (the secretary outbound messages) and Bot API errors', () => {
  it('a group that became a supergroup (400 migrate_to_chat_id): POST /send delivers to the new chat id', async () => {
    const { tg, communicator } = await setup();
    tg.failChat(-800, { code: 400, migrateToChatId: -100800 });
    const res = await request(communicator.app)
      .post('/send')
      .set(SERVICE_AUTH)
      .send({ channel: 'tg', to: '-800', text: 'Задача JIRA-12 создана', idempotency_key: 's30-migrate' });
    expect({ status: res.status, message: res.body.message }).toEqual({ status: 200, message: undefined });
    expect(sentTo(tg, -100800).map((m) => m.text)).toEqual(['Задача JIRA-12 создана']);
  });

  it('a 502 on the 2nd piece, the caller repeats with the same idempotency_key: no piece is delivered twice', async () => {
    const { tg, communicator } = await setup();
    const paragraph = (n: number) => `Часть ${n}. ` + 'Инструкция по настройке VPN. '.repeat(110).trim();
    const body = {
      channel: 'tg',
      to: '30801',
      text: `${paragraph(1)}\n\n${paragraph(2)}`,
      idempotency_key: 's30-502',
    };
    failAfterSent(tg, 1, 30801, { code: 502 }, 1);
    const first = await request(communicator.app).post('/send').set(SERVICE_AUTH).send(body);
    expect(first.status).toBeGreaterThanOrEqual(500);
    const again = await request(communicator.app).post('/send').set(SERVICE_AUTH).send(body);
    expect(again.status).toBe(200);
    expect(sentTo(tg, 30801).map((m) => m.text)).toEqual([paragraph(1), paragraph(2)]);
  });

  it('a repeat of a partly failed /send with another recipient or text under the key sends that, whole', async () => {
    const { tg, communicator } = await setup();
    const paragraph = (n: number) => `Часть ${n}. ` + 'Инструкция по настройке VPN. '.repeat(110).trim();
    const body = { channel: 'tg', to: '30811', text: `${paragraph(1)}\n\n${paragraph(2)}`, idempotency_key: 's30-to' };
    failAfterSent(tg, 1, 30811, { code: 502 }, 1);
    const first = await request(communicator.app).post('/send').set(SERVICE_AUTH).send(body);
    expect(first.status).toBeGreaterThanOrEqual(500);
    const other = { ...body, to: '30812', text: `${paragraph(3)}\n\n${paragraph(4)}` };
    const again = await request(communicator.app).post('/send').set(SERVICE_AUTH).send(other);
    expect(again.status).toBe(200);
    expect(sentTo(tg, 30811).map((m) => m.text)).toEqual([paragraph(1)]);
    expect(sentTo(tg, 30812).map((m) => m.text)).toEqual([paragraph(3), paragraph(4)]);
  });
});
