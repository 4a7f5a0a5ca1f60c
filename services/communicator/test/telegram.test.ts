import { describe, expect, it } from 'vitest';
import { GAVE_UP_REPLY, HELP_TEXT, TEXT_ONLY_REPLY } from '../src/telegram/telegram-channel.js';
import { answer, clarify } from './fake-secretary.js';
import { startCommunicator, waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup, track } = telegramSetup();

describe('telegram channel', () => {
  it('answers a private message, shows typing, and confirms the update only after answering', async () => {
    const { tg, secretary, communicator } = await setup();
    const { chat_id, message_id } = tg.pushMessage({
      text: 'Как подключиться к VPN?',
      from: { id: 77, username: 'petrov' },
    });
    const [sent] = await tg.waitForSent(1);
    expect(sent!.chat_id).toBe(chat_id);
    expect(sent!.text).toBe('Ответ на: Как подключиться к VPN?');
    expect(sent!.params['parse_mode']).toBeUndefined();
    expect(secretary.calls).toEqual([
      {
        channel: 'tg',
        username: 'petrov',
        // The numeric id the secretary matches against the directory's telegram_id (issue 9).
        telegram_user_id: '77',
        request: 'Как подключиться к VPN?',
        message_id: `tg:77:${message_id}`,
        thread_key: 'tg:77',
      },
    ]);
    expect(tg.callsOf('sendChatAction')[0]?.params).toMatchObject({ chat_id: 77, action: 'typing' });
    expect(tg.callsOf('deleteWebhook')).toHaveLength(1);
    await waitUntil(() => tg.pending() === 0, 'the update to be confirmed');
    expect(await communicator.metric('workemon_replies_sent_total', { channel: 'tg', outcome: 'sent' })).toBe(1);
  });

  it('uses the id when the user has no username', async () => {
    const { tg, secretary } = await setup();
    tg.pushMessage({ text: 'Привет, нужен пропуск', from: { id: 501 } });
    await tg.waitForSent(1);
    expect(secretary.calls[0]!.username).toBe('501');
  });

  it('splits a long answer into pieces of at most 4096 characters', async () => {
    const { tg, secretary } = await setup();
    const paragraph = 'Очень подробный ответ. '.repeat(100).trim();
    const long = Array.from({ length: 5 }, () => paragraph).join('\n\n'); // ~11.5k characters
    secretary.decide = () => answer(long);
    tg.pushMessage({ text: 'Расскажи всё' });
    await waitUntil(() => tg.sent.length >= 3, 'three pieces');
    await waitUntil(() => tg.pending() === 0, 'confirmation');
    expect(tg.sent.every((m) => m.text.length <= 4096)).toBe(true);
    expect(tg.sent.map((m) => m.text).join('\n\n')).toBe(long);
  });

  it('recovers from 409 at start (a previous poller still open) without crashing', async () => {
    const { tg } = await setup({ before: (tg) => tg.failNext('getUpdates', { code: 409 }, 3) });
    tg.pushMessage({ text: 'Нужен доступ к Jira' });
    await tg.waitForSent(1);
    expect(tg.callsOf('getUpdates').length).toBeGreaterThanOrEqual(4);
  });

  it('waits retry_after on 429 before polling and before sending again', async () => {
    const { tg } = await setup({ before: (tg) => tg.failNext('getUpdates', { code: 429, retryAfterS: 1 }) });
    await waitUntil(() => tg.callsOf('getUpdates').length >= 2, 'a second poll');
    const [first, second] = tg.callsOf('getUpdates');
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(950);

    tg.failNext('sendMessage', { code: 429, retryAfterS: 1 });
    tg.pushMessage({ text: 'Сбросьте пароль, пожалуйста' });
    await tg.waitForSent(1);
    const sends = tg.callsOf('sendMessage');
    expect(sends).toHaveLength(2);
    expect(sends[1]!.at - sends[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('answers stickers and photos without caption politely, and /start and /help with help', async () => {
    const { tg, secretary } = await setup();
    tg.pushMessage({ extra: { sticker: { file_id: 'x', width: 1, height: 1, type: 'regular' } } });
    // Another sender: one sender's wordless messages in a row get one note (TEXT_ONLY_QUIET_S).
    tg.pushMessage({ from: { id: 7702 }, extra: { photo: [{ file_id: 'p', width: 1, height: 1 }] } });
    tg.pushMessage({ text: '/start' });
    tg.pushMessage({ text: '/help' });
    await tg.waitForSent(4);
    // Two chats answered in parallel: compare what each got.
    const of = (chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId).map((m) => m.text);
    expect(of(7702)).toEqual([TEXT_ONLY_REPLY]);
    expect(tg.sent.filter((m) => Number(m.chat_id) !== 7702).map((m) => m.text)).toEqual([
      TEXT_ONLY_REPLY,
      HELP_TEXT,
      HELP_TEXT,
    ]);
    expect(secretary.calls).toHaveLength(0);
  });

  it('in groups answers only when mentioned', async () => {
    const { tg, secretary } = await setup();
    const group = { id: -1001, type: 'supergroup' as const };
    tg.pushMessage({ chat: group, text: 'просто болтаем' });
    tg.pushMessage({ chat: group, text: `@${tg.botUsername} нужен новый монитор` });
    await tg.waitForSent(1);
    await waitUntil(() => tg.pending() === 0, 'both confirmed');
    expect(secretary.calls.map((c) => c.request)).toEqual(['нужен новый монитор']);
    expect(tg.sent[0]!.chat_id).toBe(-1001);
  });

  it('keeps the update while the secretary is down and answers once when it is back', async () => {
    const { tg, secretary } = await setup();
    secretary.down('analysis');
    tg.pushMessage({ text: 'Не работает почта' });
    await waitUntil(() => secretary.calls.length >= 2, 'two failed attempts');
    expect(tg.sent).toHaveLength(0);
    expect(tg.pending()).toBe(1);
    secretary.up();
    await tg.waitForSent(1);
    await waitUntil(() => tg.pending() === 0, 'confirmation');
    tg.pushMessage({ text: 'Спасибо, заработало' });
    await tg.waitForSent(2);
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Не работает почта', 'Ответ на: Спасибо, заработало']);
  });

  it('carries a clarification round trip in one chat', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = (r) =>
      r.request === 'Нужен отчёт' ? clarify('Какой отчёт?', r.request) : answer('Отчёт по продажам в BI.', r.request);
    tg.pushMessage({ text: 'Нужен отчёт' });
    await tg.waitForSent(1);
    tg.pushMessage({ text: 'По продажам' });
    await tg.waitForSent(2);
    expect(tg.sent.map((m) => m.text)).toEqual(['Какой отчёт?', 'Отчёт по продажам в BI.']);
    expect(secretary.calls.map((c) => c.thread_key)).toEqual(['tg:42', 'tg:42']);
  });

  it('confirms handled updates at once when a later one waits for its retry', async () => {
    const { tg } = await setup({
      // A long retry wait: a restart during it must not see the answered update again.
      env: { RETRY_BASE_DELAY: '60s' },
      before: (tg, secretary) => {
        secretary.decide = (r) =>
          r.request === 'Сломался ноутбук' ? { status: 503, message: 'busy' } : answer(`Ответ на: ${r.request}`);
        tg.pushMessage({ text: 'Нужен пропуск', from: { id: 11 } });
        tg.pushMessage({ text: 'Сломался ноутбук', from: { id: 12 } });
      },
    });
    await tg.waitForSent(1);
    await waitUntil(() => tg.pending() === 1, 'the answered update to be confirmed');
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Нужен пропуск']);
  });

  it('sends nothing from an attempt that ran past the handler timeout', async () => {
    const { tg, secretary } = await setup({ env: { TELEGRAM_HANDLER_TIMEOUT: '1s', MAX_ATTEMPTS: '2' } });
    secretary.delayMs = 1500;
    tg.pushMessage({ text: 'Медленный вопрос' });
    await waitUntil(() => tg.pending() === 0, 'the update to be given up');
    // Both attempts' secretary answers arrive late; only the apology may reach the user.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(tg.sent.map((m) => m.text)).toEqual([GAVE_UP_REPLY]);
  });

  it('does not answer twice after a restart', async () => {
    const { tg, secretary, communicator } = await setup();
    tg.pushMessage({ text: 'Первое сообщение' });
    await tg.waitForSent(1);
    await communicator.stop();
    // A new instance polls the same queue: nothing handled may come back.
    const again = await startCommunicator({ secretaryUrl: secretary.url, telegram: tg });
    track(again);
    tg.pushMessage({ text: 'Второе сообщение' });
    await tg.waitForSent(2);
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Первое сообщение', 'Ответ на: Второе сообщение']);
  });
});
