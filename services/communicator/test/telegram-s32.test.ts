// Session 32: stickers. A sticker is a reaction, not a request: three in a row got three "text only" notes, and a
// sticker between a greeting and its question ended the greeting's wait, so the greeting, the sticker and the
// question got three replies. Each test but "a question after the note" failed before the fix (that one stays as a
// member of the kind). Real channel (in-process), fake Bot API, fake
// secretary.
import { describe, expect, it } from 'vitest';
import type { FakeTelegram } from '@workemon/testkit/fake-telegram';
import {
  GROUP_GREETING_QUESTION_S,
  STICKER_REACTION_S,
  TEXT_ONLY_QUIET_S,
  TEXT_ONLY_REPLY,
} from '../src/telegram/telegram-channel.js';
import { waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '600' });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sentTo = (tg: FakeTelegram, chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId);
let stickers = 0;
/** A sticker message's fields (Bot API Sticker), sent at `date` (unix seconds) when given. */
const sticker = (date?: number) => {
  stickers += 1;
  return {
    sticker: {
      file_id: `st${stickers}`,
      file_unique_id: `st${stickers}u`,
      type: 'regular',
      width: 512,
      height: 512,
      is_animated: false,
      is_video: false,
      emoji: '👍',
    },
    ...(date === undefined ? {} : { date }),
  };
};
const now = () => Math.floor(Date.now() / 1000);
/** `@bot <text>` with the `mention` entity Telegram puts on it. */
const mentionText = (tg: FakeTelegram, text: string) => ({
  text: `@${tg.botUsername} ${text}`,
  entities: [{ type: 'mention', offset: 0, length: tg.botUsername.length + 1 }],
});
const photo = (n: number) => ({ photo: [{ file_id: `p${n}`, file_unique_id: `p${n}u`, width: 1280, height: 720 }] });

describe('S32: stickers without words', () => {
  it('three stickers in a row get one "text only" note; one after the quiet time gets it again', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 32001, username: 'u32001' };
    const t = now() - 2 * TEXT_ONLY_QUIET_S;
    for (let i = 0; i < 3; i += 1) tg.pushMessage({ from, extra: sticker(t + i) });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'the stickers handled');
    await sleep(1200);
    expect(sentTo(tg, from.id).map((m) => m.text)).toEqual([TEXT_ONLY_REPLY]);
    // Each sticker started the quiet time anew; this one comes more than TEXT_ONLY_QUIET_S after the last.
    tg.pushMessage({ from, extra: sticker(t + 3 + TEXT_ONLY_QUIET_S + 1) });
    await waitUntil(() => sentTo(tg, from.id).length >= 2, 'the second note');
    expect(sentTo(tg, from.id).map((m) => m.text)).toEqual([TEXT_ONLY_REPLY, TEXT_ONLY_REPLY]);
    expect(secretary.calls).toHaveLength(0);
  });

  it('the quiet time is per sender and chat: two people sending stickers each get the note', async () => {
    const { tg } = await setup();
    const anna = { id: 32011, username: 'anna' };
    const boris = { id: 32012, username: 'boris' };
    tg.pushMessage({ from: anna, extra: sticker() });
    tg.pushMessage({ from: boris, extra: sticker() });
    tg.pushMessage({ from: anna, extra: sticker() });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'both noted');
    await sleep(1200);
    expect(sentTo(tg, anna.id).map((m) => m.text)).toEqual([TEXT_ONLY_REPLY]);
    expect(sentTo(tg, boris.id).map((m) => m.text)).toEqual([TEXT_ONLY_REPLY]);
  });

  it('a question after the note is answered as usual', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 32021, username: 'u32021' };
    tg.pushMessage({ from, extra: sticker() });
    await waitUntil(() => sentTo(tg, from.id).length >= 1, 'the note');
    tg.pushMessage({ from, text: 'Как выгрузить реестр платежей за ноябрь?' });
    await waitUntil(() => sentTo(tg, from.id).length >= 2, 'the answer');
    expect(sentTo(tg, from.id).map((m) => m.text)).toEqual([
      TEXT_ONLY_REPLY,
      'Ответ на: Как выгрузить реестр платежей за ноябрь?',
    ]);
    expect(secretary.calls).toHaveLength(1);
  });
});

describe('S32: a sticker between a greeting and its question', () => {
  it('"Привет", a sticker, then the question: one request of the greeting and the question, one answer', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 32031, username: 'u32031' };
    tg.pushMessage({ from, text: 'Привет!' });
    await sleep(300);
    tg.pushMessage({ from, extra: sticker() });
    await sleep(300);
    tg.pushMessage({ from, text: 'Не проходит платёж по карте клиента, код ошибки 05' });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Привет!\nНе проходит платёж по карте клиента, код ошибки 05',
    ]);
    expect(sentTo(tg, from.id)).toHaveLength(1);
    expect(sentTo(tg, from.id)[0]!.text).not.toBe(TEXT_ONLY_REPLY);
  });

  it('all three in one batch: the same one answer', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 32032, username: 'u32032' };
    tg.pushMessage({ from, text: 'Добрый день' });
    tg.pushMessage({ from, extra: sticker() });
    tg.pushMessage({ from, text: 'Подскажите, где взять выписку по счёту?' });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual(['Добрый день\nПодскажите, где взять выписку по счёту?']);
    expect(sentTo(tg, from.id)).toHaveLength(1);
  });

  it('a greeting and a sticker with no question after them: the greeting is answered alone, no note', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 32033, username: 'u32033' };
    tg.pushMessage({ from, text: 'Здравствуйте' });
    tg.pushMessage({ from, extra: sticker() });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual(['Здравствуйте']);
    expect(sentTo(tg, from.id).map((m) => m.text)).toEqual(['Ответ на: Здравствуйте']);
  });
});

// The second round (a helper's probes of the first fix): a sticker on its own is a reaction, unless it opens a
// conversation. Each failed before this round's fix, except "a sticker long after the last words" (the control).
describe('S32b: a sticker is a reaction', () => {
  it('a thank-you sticker after an answer gets no note', async () => {
    const { tg } = await setup();
    const from = { id: 32101, username: 'u32101' };
    tg.pushMessage({ from, text: 'Как выгрузить реестр платежей?' });
    await waitUntil(() => sentTo(tg, from.id).length >= 1, 'answered');
    tg.pushMessage({ from, extra: sticker() });
    await waitUntil(() => tg.pending() === 0, 'the sticker handled');
    await sleep(1500);
    expect(sentTo(tg, from.id).map((m) => m.text)).toEqual(['Ответ на: Как выгрузить реестр платежей?']);
  });

  it('the question and a sticker in one batch: the answer, no note', async () => {
    const { tg } = await setup();
    const from = { id: 32102, username: 'u32102' };
    tg.pushMessage({ from, text: 'Где взять выписку по счёту?' });
    tg.pushMessage({ from, extra: sticker() });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'handled');
    await sleep(1500);
    expect(sentTo(tg, from.id).map((m) => m.text)).toEqual(['Ответ на: Где взять выписку по счёту?']);
  });

  it('a sticker long after the last words is not a reaction: it gets the note', async () => {
    const { tg } = await setup();
    const from = { id: 32103, username: 'u32103' };
    const t = now() - STICKER_REACTION_S - 120;
    tg.pushMessage({ from, text: 'Спасибо, всё получилось', extra: { date: t } });
    await waitUntil(() => sentTo(tg, from.id).length >= 1, 'answered');
    tg.pushMessage({ from, extra: sticker(t + STICKER_REACTION_S + 60) });
    await waitUntil(() => sentTo(tg, from.id).length >= 2, 'the note');
    expect(sentTo(tg, from.id)[1]!.text).toBe(TEXT_ONLY_REPLY);
  });

  it('a sticker that opens the conversation, then the question a second later: one answer, no note', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 32104, username: 'u32104' };
    tg.pushMessage({ from, extra: sticker() });
    await sleep(300);
    tg.pushMessage({ from, text: 'Не проходит перевод по СБП, что делать?' });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual(['Не проходит перевод по СБП, что делать?']);
    expect(sentTo(tg, from.id).map((m) => m.text)).toEqual(['Ответ на: Не проходит перевод по СБП, что делать?']);
  });

  it("a sticker after the greeting's wait ended, while the greeting is being answered: no note", async () => {
    const { tg, secretary } = await setup();
    const from = { id: 32105, username: 'u32105' };
    secretary.delayFor = (r) => (r.request === 'Привет' ? 2500 : 0);
    tg.pushMessage({ from, text: 'Привет' });
    await sleep(1500);
    tg.pushMessage({ from, extra: sticker() });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'handled');
    await sleep(1500);
    expect(sentTo(tg, from.id).map((m) => m.text)).toEqual(['Ответ на: Привет']);
  });

  it('"Добрый день", a screenshot without caption, then the question (one batch): one answer naming the photo', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 32106, username: 'u32106' };
    tg.pushMessage({ from, text: 'Добрый день' });
    tg.pushMessage({ from, extra: photo(1) });
    tg.pushMessage({ from, text: 'Вот такая ошибка при входе в личный кабинет' });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Добрый день\n[Вложения (не переданы): фото]\nВот такая ошибка при входе в личный кабинет',
    ]);
    expect(sentTo(tg, from.id)).toHaveLength(1);
  });

  it("a forwarded sticker with the sender's comment is named in the request, with its origin", async () => {
    const { tg, secretary } = await setup();
    const from = { id: 32107, username: 'u32107' };
    tg.pushMessage({ from, text: 'Клиент прислал вот это в чат поддержки, что он имел в виду?' });
    tg.pushMessage({
      from,
      extra: {
        ...sticker(),
        forward_origin: { type: 'user', date: 1, sender_user: { id: 9, is_bot: false, first_name: 'Анна' } },
      },
    });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toContain('Клиент прислал вот это');
    expect(secretary.calls[0]!.request).toMatch(/Анна[^\n]*:\n\[Вложения \(не переданы\): стикер\]/);
    expect(sentTo(tg, from.id)).toHaveLength(1);
  });
});

// Found while checking the helper's group probe: in a group, the question typed after `@bot привет` without a mention
// of its own was lost. It was taken only while the greeting waited (its merge window, by arrival), and a question
// sent within the window often arrives with the poll that ends the wait; once the greeting was answered ("Чем
// помочь?"), the answer to that was ignored. Failed before: the first two (the first with the question 400 ms after
// the greeting; it is sent 350 ms after here, for a margin on a loaded machine).
describe('S32c: the question after a greeting in a group', () => {
  const chatOf = (id: number) => ({ id, type: 'supergroup' as const });
  const QUESTION = 'как получить доступ к отчёту по авторизациям?';

  it('sent 350 ms after `@bot привет` (within the window): one request with the greeting', async () => {
    const { tg, secretary } = await setup();
    const chat = chatOf(-1003201);
    const from = { id: 32201, username: 'u32201' };
    tg.pushMessage({ chat, from, extra: mentionText(tg, 'привет') });
    await sleep(350);
    tg.pushMessage({ chat, from, text: QUESTION });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual([`привет\n${QUESTION}`]);
  });

  it('sent after the bot answered the greeting: the question is answered, the chatter after it is not', async () => {
    const { tg, secretary } = await setup();
    const chat = chatOf(-1003202);
    const from = { id: 32202, username: 'u32202' };
    const colleague = { id: 32203, username: 'u32203' };
    tg.pushMessage({ chat, from, extra: mentionText(tg, 'добрый день') });
    await waitUntil(() => tg.sent.length >= 1, 'the greeting answered');
    await sleep(2000);
    // Another member's message is not the question; neither is one meant for someone else.
    tg.pushMessage({ chat, from: colleague, text: 'я тоже жду ответа' });
    tg.pushMessage({ chat, from, text: 'Пётр, посмотри тоже', extra: { entities: [] } });
    tg.pushMessage({
      chat,
      from,
      text: '@petr посмотри',
      extra: { entities: [{ type: 'mention', offset: 0, length: 5 }] },
    });
    tg.pushMessage({ chat, from, text: QUESTION });
    tg.pushMessage({ chat, from, text: 'коллеги, кто идёт на обед?' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'handled');
    await sleep(2000);
    // "Пётр, посмотри тоже" has no mention entity: it is the first message after the greeting and taken as the
    // question; the one with a mention is not, and nothing after the one taken is.
    expect(secretary.calls.map((c) => c.request)).toEqual(['добрый день', 'Пётр, посмотри тоже']);
    expect(tg.sent).toHaveLength(2);
  });

  it('a reply to someone else, a mention or a command is not the question; the next plain message is', async () => {
    const { tg, secretary } = await setup();
    const chat = chatOf(-1003204);
    const from = { id: 32204, username: 'u32204' };
    tg.pushMessage({ chat, from, extra: mentionText(tg, 'привет') });
    await waitUntil(() => tg.sent.length >= 1, 'the greeting answered');
    await sleep(2000);
    tg.pushMessage({
      chat,
      from,
      text: '@anna глянь',
      extra: { entities: [{ type: 'mention', offset: 0, length: 5 }] },
    });
    tg.pushMessage({
      chat,
      from,
      text: 'согласен',
      extra: {
        reply_to_message: {
          message_id: 1,
          date: now() - 60,
          chat,
          from: { id: 32299, is_bot: false, first_name: 'Анна' },
          text: 'обед в час',
        },
      },
    });
    tg.pushMessage({ chat, from, text: '/settings' });
    tg.pushMessage({ chat, from, text: QUESTION });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'handled');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual(['привет', QUESTION]);
  });

  it(`more than ${GROUP_GREETING_QUESTION_S} s after the greeting, a message needs its own mention`, async () => {
    const { tg, secretary } = await setup();
    const chat = chatOf(-1003205);
    const from = { id: 32205, username: 'u32205' };
    const t = now() - GROUP_GREETING_QUESTION_S - 30;
    tg.pushMessage({ chat, from, extra: { ...mentionText(tg, 'привет'), date: t } });
    await waitUntil(() => tg.sent.length >= 1, 'the greeting answered');
    tg.pushMessage({ chat, from, text: QUESTION });
    await waitUntil(() => tg.pending() === 0, 'handled');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual(['привет']);
  });
});

// A second helper's round on S32c. Each failed before its fix.
describe('S32d: the question after a greeting in a group, round two', () => {
  const chatOf = (id: number) => ({ id, type: 'supergroup' as const });
  const QUESTION = 'платёж 1234 завис в статусе processing, что делать?';
  const CHATTER = 'коллеги, кто идёт на обед?';

  it('sent while the greeting is being answered: taken, answered after the greeting', async () => {
    const { tg, secretary } = await setup();
    const chat = chatOf(-1003301);
    const from = { id: 32301, username: 'u32301' };
    secretary.delayFor = (r) => (r.request === 'привет' ? 3000 : 0);
    tg.pushMessage({ chat, from, extra: mentionText(tg, 'привет') });
    await sleep(1500);
    tg.pushMessage({ chat, from, text: QUESTION });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'both answered', 15_000);
    expect(secretary.calls.map((c) => c.request)).toEqual(['привет', QUESTION]);
  });

  it('asked with a reply to the bot or a new mention: the chatter after it is not taken', async () => {
    const { tg, secretary } = await setup();
    const chat = chatOf(-1003302);
    const from = { id: 32302, username: 'u32302' };
    tg.pushMessage({ chat, from, extra: mentionText(tg, 'привет') });
    await waitUntil(() => tg.sent.length >= 1, 'the greeting answered');
    await sleep(1000);
    tg.pushMessage({ chat, from, extra: mentionText(tg, QUESTION) });
    await waitUntil(() => tg.sent.length >= 2, 'the question answered');
    await sleep(1000);
    tg.pushMessage({ chat, from, text: CHATTER });
    await waitUntil(() => tg.pending() === 0, 'handled');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual(['привет', QUESTION]);
  });

  it("a reply to the member's own `@bot привет` is the question", async () => {
    const { tg, secretary } = await setup();
    const chat = chatOf(-1003303);
    const from = { id: 32303, username: 'u32303' };
    const greeting = tg.pushMessage({ chat, from, extra: mentionText(tg, 'привет') });
    await waitUntil(() => tg.sent.length >= 1, 'the greeting answered');
    await sleep(1000);
    tg.pushMessage({
      chat,
      from,
      text: QUESTION,
      extra: {
        reply_to_message: {
          message_id: greeting.message_id,
          date: now(),
          chat,
          from: { ...from, is_bot: false, first_name: 'U' },
          ...mentionText(tg, 'привет'),
        },
      },
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'the question answered');
    expect(secretary.calls.map((c) => c.request)).toEqual(['привет', QUESTION]);
  });

  it('a forward sent after the answered greeting is the question', async () => {
    const { tg, secretary } = await setup();
    const chat = chatOf(-1003304);
    const from = { id: 32304, username: 'u32304' };
    tg.pushMessage({ chat, from, extra: mentionText(tg, 'привет') });
    await waitUntil(() => tg.sent.length >= 1, 'the greeting answered');
    await sleep(1000);
    tg.pushMessage({
      chat,
      from,
      text: 'Клиент: платёж 1234 завис в статусе processing',
      extra: { forward_origin: { type: 'user', date: 1, sender_user: { id: 9, is_bot: false, first_name: 'Анна' } } },
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'the forward answered');
    expect(secretary.calls).toHaveLength(2);
    expect(secretary.calls[1]!.request).toContain('Клиент: платёж 1234 завис в статусе processing');
  });
});

describe('S32d: words end the quiet time of the "text only" note', () => {
  it('a voice message after a text exchange gets the note again', async () => {
    const { tg } = await setup();
    const from = { id: 32311, username: 'u32311' };
    const t = now() - 50;
    tg.pushMessage({ from, extra: sticker(t) });
    await waitUntil(() => sentTo(tg, from.id).length >= 1, 'the note');
    tg.pushMessage({ from, text: 'Как выгрузить реестр платежей?', extra: { date: t + 20 } });
    await waitUntil(() => sentTo(tg, from.id).length >= 2, 'the answer');
    tg.pushMessage({ from, extra: { voice: { file_id: 'v1', file_unique_id: 'v1u', duration: 3 }, date: t + 40 } });
    await waitUntil(() => sentTo(tg, from.id).length >= 3, 'the second note');
    expect(sentTo(tg, from.id).map((m) => m.text)).toEqual([
      TEXT_ONLY_REPLY,
      'Ответ на: Как выгрузить реестр платежей?',
      TEXT_ONLY_REPLY,
    ]);
  });
});
