// Telegram under per-chat faults and with the field cases (test/fixtures/field-cases/telegram, copied from the
// field-case collection): one chat's 403 / 400 / 429 / 502 never holds up another chat; albums and split pastes
// are one request; forwards keep their origin; every update is confirmed once handled, and recorded as handled.
import { readFileSync } from 'node:fs';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { TEXT_ONLY_REPLY } from '../src/telegram/telegram-channel.js';
import { SERVICE_AUTH, waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '600' });

type RawUpdate = Record<string, unknown> & { message: Record<string, unknown> & { chat: { id: number } } };
const fieldCase = (name: string): RawUpdate[] => {
  const parsed = JSON.parse(
    readFileSync(new URL(`./fixtures/field-cases/telegram/${name}`, import.meta.url), 'utf8'),
  ) as RawUpdate | RawUpdate[];
  return Array.isArray(parsed) ? parsed : [parsed];
};
// Field cases carry the dates they were recorded with; a fresh date keeps them inside any freshness rule.
const push = (tg: FakeTelegram, updates: RawUpdate[]) =>
  updates.map((u) => tg.pushUpdate({ ...u, message: { ...u.message, date: Math.floor(Date.now() / 1000) } }));

const sentTo = (tg: FakeTelegram, chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId);
const sendCallsTo = (tg: FakeTelegram, chatId: number) =>
  tg.callsOf('sendMessage').filter((c) => Number(c.params['chat_id']) === chatId);

describe('telegram field cases', () => {
  it('T02: an album is one request: the caption answered once, no "text only" reply for the other photos', async () => {
    const { tg, secretary } = await setup();
    const album = fieldCase('T02-album.json');
    push(tg, album);
    await waitUntil(() => tg.pending() === 0, 'the album to be confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual([album[0]!.message['caption']]);
    expect(tg.sent.map((m) => m.text)).toEqual([`Ответ на: ${String(album[0]!.message['caption'])}`]);
    expect(tg.sent.some((m) => m.text === TEXT_ONLY_REPLY)).toBe(false);
  });

  it('T02 kind: an album without a caption gets one "text only" reply, whichever batches its parts come in', async () => {
    const { tg, secretary } = await setup();
    const photo = (n: number) => ({
      photo: [{ file_id: `p${n}`, file_unique_id: `p${n}u`, width: 9, height: 9 }],
      media_group_id: '424242',
    });
    tg.pushMessage({ from: { id: 61, username: 'u61' }, extra: photo(1) });
    await new Promise((resolve) => setTimeout(resolve, 200));
    tg.pushMessage({ from: { id: 61, username: 'u61' }, extra: photo(2) });
    await waitUntil(() => tg.pending() === 0, 'the album to be confirmed');
    expect(tg.sent.map((m) => m.text)).toEqual([TEXT_ONLY_REPLY]);
    expect(secretary.calls).toHaveLength(0);
  });

  it('T10: a long paste split by the client into two messages is one request that sees both parts', async () => {
    const { tg, secretary } = await setup();
    const parts = fieldCase('T10-client-split.json');
    push(tg, parts);
    await waitUntil(() => tg.pending() === 0, 'both parts to be confirmed');
    expect(secretary.calls).toHaveLength(1);
    const request = secretary.calls[0]!.request;
    expect(request.startsWith(String(parts[0]!.message['text']).slice(0, 100))).toBe(true);
    expect(request.endsWith(String(parts[1]!.message['text']))).toBe(true);
    expect(tg.sent.length).toBeGreaterThanOrEqual(1);
    expect(new Set(tg.sent.map((m) => Number(m.chat_id)))).toEqual(new Set([6009]));
  });

  it('T10 kind: three parts (4096 + 4096 + short) are one request; a short follow-up stays its own', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 62, username: 'u62' };
    tg.pushMessage({ from, text: 'а'.repeat(4096) });
    tg.pushMessage({ from, text: 'б'.repeat(4096) });
    tg.pushMessage({ from, text: 'конец' });
    await waitUntil(() => tg.pending() === 0, 'all parts confirmed');
    tg.pushMessage({ from, text: 'И ещё вопрос' });
    await waitUntil(() => secretary.calls.length === 2 && tg.pending() === 0, 'the follow-up');
    // Parts of 4096 characters were cut there by the client: joined as they were, without line breaks.
    expect(secretary.calls.map((c) => c.request.length)).toEqual([4096 + 4096 + 'конец'.length, 12]);
  });

  it('T11: a user who blocked the bot gets no retries, and the other user is answered without waiting', async () => {
    const { tg, secretary, communicator } = await setup();
    tg.failChat(7001, { code: 403, description: 'Forbidden: bot was blocked by the user' });
    push(tg, fieldCase('T11-blocked.json'));
    push(tg, fieldCase('T11-other-user.json'));
    await waitUntil(
      () => sentTo(tg, 7002).length === 1 && tg.pending() === 0,
      'the other user answered, both confirmed',
    );
    expect(sendCallsTo(tg, 7001)).toHaveLength(1);
    expect(sentTo(tg, 7001)).toHaveLength(0);
    expect(await communicator.metric('workemon_replies_failed_total', { channel: 'tg', reason: 'bot_blocked' })).toBe(
      1,
    );
    expect(secretary.handled.get('tg:7001:116')).toEqual({ outcome: 'failed', reason: 'bot_blocked' });
    expect(secretary.handled.get('tg:7002:118')).toEqual({ outcome: 'sent' });
  });
});

describe('telegram errors by kind, per chat', () => {
  it.each([
    [403, 'Forbidden: user is deactivated', 'user_deactivated'],
    [403, 'Forbidden: bot was kicked from the group chat', 'bot_kicked'],
    [400, 'Bad Request: chat not found', 'chat_not_found'],
  ])('%i "%s" is permanent: one try, confirmed, counted as %s', async (code, description, reason) => {
    const { tg, communicator } = await setup();
    tg.failChat(81, { code, description });
    tg.pushMessage({ from: { id: 81, username: 'u81' }, text: 'Нужен доступ' });
    tg.pushMessage({ from: { id: 82, username: 'u82' }, text: 'Нужен пропуск' });
    await waitUntil(() => sentTo(tg, 82).length === 1 && tg.pending() === 0, 'the other chat answered, both confirmed');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sendCallsTo(tg, 81)).toHaveLength(1);
    expect(await communicator.metric('workemon_replies_failed_total', { channel: 'tg', reason })).toBe(1);
  });

  it('a group upgraded to a supergroup: resent once to migrate_to_chat_id, and the new id is remembered', async () => {
    const { tg, secretary } = await setup();
    const group = { id: -500, type: 'group' as const };
    tg.failChat(-500, { code: 400, migrateToChatId: -100500 });
    tg.pushMessage({ chat: group, from: { id: 83, username: 'u83' }, text: `@${tg.botUsername} нужен монитор` });
    await waitUntil(() => sentTo(tg, -100500).length === 1 && tg.pending() === 0, 'the answer in the supergroup');
    tg.pushMessage({ chat: group, from: { id: 83, username: 'u83' }, text: `@${tg.botUsername} и клавиатура` });
    await waitUntil(() => sentTo(tg, -100500).length === 2 && tg.pending() === 0, 'the second answer');
    expect(sendCallsTo(tg, -500)).toHaveLength(1);
    expect(secretary.calls).toHaveLength(2);
  });

  it('429 in one chat waits retry_after in that chat only; other chats are answered meanwhile', async () => {
    const { tg } = await setup();
    tg.failChat(84, { code: 429, retryAfterS: 2 }, 1);
    tg.pushMessage({ from: { id: 84, username: 'u84' }, text: 'Первый чат' });
    tg.pushMessage({ from: { id: 85, username: 'u85' }, text: 'Второй чат' });
    tg.pushMessage({ from: { id: 86, username: 'u86' }, text: 'Третий чат' });
    await waitUntil(() => sentTo(tg, 84).length === 1, 'the rate-limited chat answered');
    const [refused, accepted] = sendCallsTo(tg, 84);
    expect(accepted!.at - refused!.at).toBeGreaterThanOrEqual(1900);
    // The other chats did not wait for the rate-limited one.
    for (const chat of [85, 86]) expect(sendCallsTo(tg, chat)[0]!.at).toBeLessThan(accepted!.at);
    await waitUntil(() => tg.pending() === 0, 'all confirmed');
  });

  it('502 is retried quickly with the stored answer: no second analysis, other chats unaffected', async () => {
    const { tg, secretary } = await setup();
    tg.failChat(87, { code: 502 }, 2);
    tg.pushMessage({ from: { id: 87, username: 'u87' }, text: 'Сломался ноутбук' });
    tg.pushMessage({ from: { id: 88, username: 'u88' }, text: 'Нужен пропуск' });
    await waitUntil(() => sentTo(tg, 87).length === 1 && tg.pending() === 0, 'the answer after two 502s');
    const calls = sendCallsTo(tg, 87);
    expect(calls).toHaveLength(3);
    // Sub-second first retries (250 ms, 750 ms, with jitter).
    expect(calls[2]!.at - calls[0]!.at).toBeLessThan(3000);
    expect(secretary.calls.filter((c) => c.request === 'Сломался ноутбук')).toHaveLength(1);
    expect(sendCallsTo(tg, 88)[0]!.at).toBeLessThan(calls[2]!.at);
  });
});

describe('telegram confirmation and requests', () => {
  it('confirms an update as soon as it is handled while a later one of the same batch still runs', async () => {
    const { tg, secretary } = await setup({
      before: (tg, secretary) => {
        secretary.delayFor = (r) => (r.request === 'Медленный' ? 2500 : 0);
        tg.pushMessage({ from: { id: 91, username: 'u91' }, text: 'Быстрый' });
        tg.pushMessage({ from: { id: 92, username: 'u92' }, text: 'Медленный' });
      },
    });
    await waitUntil(() => sentTo(tg, 91).length === 1 && tg.pending() === 1, 'the first update confirmed alone');
    expect(sentTo(tg, 92)).toHaveLength(0);
    await waitUntil(() => tg.pending() === 0, 'the second confirmed');
    expect(secretary.handled.size).toBe(2);
  });

  it('an update already recorded as handled (by a process that died before confirming it) is not answered again', async () => {
    const { tg, secretary } = await setup({
      before: (tg, secretary) => {
        const { chat_id, message_id } = tg.pushMessage({ from: { id: 93, username: 'u93' }, text: 'Уже отвечено' });
        secretary.handled.set(`tg:${chat_id}:${message_id}`, { outcome: 'sent' });
        tg.pushMessage({ from: { id: 93, username: 'u93' }, text: 'Новое' });
      },
    });
    await waitUntil(() => tg.pending() === 0, 'both confirmed');
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Новое']);
    expect(secretary.calls.map((c) => c.request)).toEqual(['Новое']);
  });

  it('keeps updates while the whole secretary is down and answers each once when it is back', async () => {
    const { tg, secretary } = await setup();
    secretary.down();
    tg.pushMessage({ from: { id: 94, username: 'u94' }, text: 'Не работает VPN' });
    await waitUntil(() => secretary.deliveryCalls >= 2, 'lookups retried');
    expect(tg.pending()).toBe(1);
    secretary.up();
    await waitUntil(() => tg.pending() === 0, 'confirmed after the secretary came back');
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Не работает VPN']);
  });

  it.each([
    [
      {
        forward_origin: {
          type: 'user',
          date: 1,
          sender_user: { id: 5, is_bot: false, first_name: 'Анна', username: 'anna' },
        },
      },
      'Анна (@anna)',
    ],
    [{ forward_origin: { type: 'hidden_user', date: 1, sender_user_name: 'Пётр Скрытный' } }, 'Пётр Скрытный'],
    [
      {
        forward_origin: {
          type: 'channel',
          date: 1,
          chat: { id: -1001, type: 'channel', title: 'Новости ИТ' },
          message_id: 7,
        },
      },
      'Новости ИТ',
    ],
    [{ forward_from: { id: 6, is_bot: false, first_name: 'Олег' }, forward_date: 1 }, 'Олег'],
    [{ forward_sender_name: 'Мария', forward_date: 1 }, 'Мария'],
    [{ forward_from_chat: { id: -1002, type: 'channel', title: 'Отдел продаж' }, forward_date: 1 }, 'Отдел продаж'],
  ])('a forwarded message keeps its origin in the request (%#)', async (extra, origin) => {
    const { tg, secretary } = await setup();
    tg.pushMessage({ from: { id: 95, username: 'u95' }, text: 'Не могу войти в CRM', extra });
    await waitUntil(() => secretary.calls.length === 1, 'the request');
    expect(secretary.calls[0]!.request).toBe(`Переслано от ${origin}:\nНе могу войти в CRM`);
  });
});

describe('telegram health', () => {
  it('/health degrades when getUpdates has not succeeded recently', { timeout: 40_000 }, async () => {
    const { tg, communicator } = await setup();
    await waitUntil(() => communicator.telegram!.health().lastPollAt !== undefined, 'a first poll');
    const ok = await request(communicator.app).get('/health');
    expect(ok.body.checks.telegram.status).toBe('ok');
    tg.failNext('getUpdates', { code: 502 }, 10_000);
    await waitUntil(
      async () => (await request(communicator.app).get('/health')).body.checks.telegram.status === 'degraded',
      'the telegram check to degrade',
      25_000,
    );
    // The details are for admin and service keys (s27).
    const res = await request(communicator.app).get('/health').set(SERVICE_AUTH);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('degraded');
    expect(res.body.checks.telegram.detail).toMatch(/last poll \d+ s ago/);
  });
});
