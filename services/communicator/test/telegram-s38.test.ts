// Session 38: Telegram intake bugs an adversarial tester found, of the field-case kinds T10 (a text the client split:
// one answer that sees every part) and "never a crash of the poll loop", and a clarifying thread.
// 1. A caption cut at Telegram's 1024-character limit with the rest sent as a text message right after it (a photo,
//    a document, an album; in a group with the mention in the caption): two answers, or in a group the rest, with
//    the question in it, passed over as not addressed. Now media with a full caption waits the merge window and the
//    next text of its sender joins it (telegram-channel.ts hasFullCaption).
// 2. A reply quoting part of the bot's clarifying question (the text selected before replying: Bot API TextQuote) put
//    that question in front of the answer, though the secretary joins the answer to the question itself.
// 3. An update without `chat` threw in the poll loop: polling ended for good, the offset never moved past it.
// Each test here but the two guards failed before its change.
import { describe, expect, it } from 'vitest';
import type { FakeTelegram } from '@workemon/testkit/fake-telegram';
import { answer, clarify } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '1500' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Math.floor(Date.now() / 1000);
const echo = (r: { request: string }) => answer(`Принято: ${r.request.length} символов`, r.request);
/** `n` characters of numbered words starting with `seed` ("начало0 начало1 …"). */
const words = (n: number, seed: string) => {
  let text = '';
  for (let i = 0; text.length < n; i += 1) text += `${seed}${i} `;
  return text.slice(0, n);
};
const pic = (n: number) => [{ file_id: `p${n}`, file_unique_id: `p${n}u`, width: 90, height: 90 }];
const botOf = (tg: FakeTelegram) => ({ id: 1, is_bot: true, first_name: 'Workemon', username: tg.botUsername });

describe('a caption cut at 1024 characters and its rest sent as a text (T10 kind)', () => {
  it('a photo with a full caption, the rest a second later: one answer that sees both', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = echo;
    const from = { id: 38001 };
    tg.pushMessage({ from, extra: { photo: pic(1), caption: words(1024, 'начало') } });
    await sleep(1000);
    tg.pushMessage({ from, text: words(700, 'продолжение') });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(2500);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toContain('начало0 ');
    expect(secretary.calls[0]!.request).toContain('продолжение0 ');
    expect(tg.sent).toHaveLength(1);
  }, 30_000);

  it('a document whose caption the server trimmed a little below 1024, the rest at once: one answer', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = echo;
    const from = { id: 38002 };
    const document = { file_id: 'd', file_unique_id: 'du', file_name: 'payments.log' };
    tg.pushMessage({ from, extra: { document, caption: words(1019, 'лог') } });
    tg.pushMessage({ from, text: words(400, 'хвост') });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(2500);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toContain('хвост0 ');
    expect(tg.sent).toHaveLength(1);
  }, 30_000);

  it('an album whose first photo has the full caption, the rest half a second later: one answer', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = echo;
    const from = { id: 38003 };
    tg.pushMessage({ from, extra: { photo: pic(1), media_group_id: 'A38', caption: words(1024, 'начало') } });
    tg.pushMessage({ from, extra: { photo: pic(2), media_group_id: 'A38' } });
    await sleep(500);
    tg.pushMessage({ from, text: words(300, 'хвост') });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(2500);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toContain('хвост0 ');
    expect(tg.sent).toHaveLength(1);
  }, 30_000);

  it('in a group, the mention in the full caption: the rest (no mention) with the question joins it', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = echo;
    const chat = { id: -1003800400, type: 'supergroup' as const };
    const from = { id: 38004 };
    const caption = `@${tg.botUsername} ${words(1024, 'начало')}`.slice(0, 1024);
    const caption_entities = [{ type: 'mention', offset: 0, length: tg.botUsername.length + 1 }];
    tg.pushMessage({ chat, from, extra: { photo: pic(3), caption, caption_entities } });
    await sleep(700);
    tg.pushMessage({ chat, from, text: `${words(300, 'хвост')} почему платёж завис?` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(2500);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toContain('почему платёж завис?');
    expect(tg.sent).toHaveLength(1);
  }, 30_000);

  it('guard: a short caption and a text a second later stay two requests', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = echo;
    const from = { id: 38005 };
    tg.pushMessage({ from, extra: { photo: pic(5), caption: 'Ошибка при входе в личный кабинет, скрин выше' } });
    await sleep(1000);
    tg.pushMessage({ from, text: 'И ещё: нужна выгрузка авторизаций за октябрь' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'answered');
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Ошибка при входе в личный кабинет, скрин выше',
      'И ещё: нужна выгрузка авторизаций за октябрь',
    ]);
  }, 30_000);
});

describe('a reply quoting part of the bot’s clarifying question', () => {
  it('continues the thread with the answer alone, as the same reply without a quote does', async () => {
    const { tg, secretary } = await setup();
    let n = 0;
    secretary.decide = (r) => (n++ === 0 ? clarify('За какой период нужна выгрузка?', r.request) : echo(r));
    const from = { id: 38006 };
    tg.pushMessage({ from, text: 'Нужна выгрузка авторизаций' });
    await waitUntil(() => tg.sent.length === 1, 'the clarifying question');
    const question = tg.sent[0]!;
    const chat = { id: 38006, type: 'private', first_name: 'U' };
    const reply_to_message = {
      message_id: question.message_id,
      date: now(),
      chat,
      from: botOf(tg),
      text: question.text,
    };
    tg.pushMessage({
      from,
      extra: { text: 'за октябрь', reply_to_message, quote: { text: 'За какой период', position: 0 } },
    });
    await waitUntil(() => tg.sent.length === 2, 'the answer');
    expect(secretary.calls[1]!.thread_key).toBe(secretary.calls[0]!.thread_key);
    expect(secretary.calls[1]!.request).toBe('за октябрь');
  });

  it('guard: a quote of the bot’s answer (not a question) still goes in front of the follow-up', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = (r) => answer('Выгрузка готова: 1 245 операций, файл в папке «Отчёты».', r.request);
    const from = { id: 38007 };
    tg.pushMessage({ from, text: 'Нужна выгрузка авторизаций за сентябрь' });
    await waitUntil(() => tg.sent.length === 1, 'the answer');
    const done = tg.sent[0]!;
    const chat = { id: 38007, type: 'private', first_name: 'U' };
    const reply_to_message = { message_id: done.message_id, date: now(), chat, from: botOf(tg), text: done.text };
    tg.pushMessage({
      from,
      extra: { text: 'а за октябрь такую же?', reply_to_message, quote: { text: '1 245 операций', position: 16 } },
    });
    await waitUntil(() => tg.sent.length === 2, 'the follow-up answered');
    expect(secretary.calls[1]!.request).toBe('В ответ на сообщение от бота:\n1 245 операций\nа за октябрь такую же?');
  });
});

describe('an update the code cannot take', () => {
  it('a message without `chat` is passed over: polling goes on and the offset moves past it', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = echo;
    tg.pushUpdate({ message: { message_id: 1, date: now(), text: 'без chat' } });
    await sleep(1500);
    tg.pushMessage({ from: { id: 38008 }, text: 'Нужна выгрузка авторизаций за октябрь' });
    await waitUntil(() => tg.sent.length >= 1, 'answered after the bad update', 10_000);
    await waitUntil(() => tg.pending() === 0, 'every update confirmed', 10_000);
    expect(secretary.calls.map((c) => c.request)).toEqual(['Нужна выгрузка авторизаций за октябрь']);
  });
});
