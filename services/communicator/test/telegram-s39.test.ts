// Session 39: two Telegram intake misses of the field-case kinds T02 (an album: one answer to the caption, no "text
// only" replies for the other photos) and T10 (what the client sent apart is one request: one answer that sees it all).
// 1. A screenshot without a caption sent a second or two after the sender's text in a private chat (the question
//    typed first, the screenshot it refers to attached right after): the text was answered at once (a short text
//    keeps the fast path) and the screenshot, a job of its own, got the "text only" note. Now media without words
//    (not a voice message) within SCREENSHOT_AFTER_TEXT_S (Message.date) of the sender's text belongs to that text:
//    joined when both are queued (the request names it), else recorded skipped without a reply.
// 2. A group album whose first part carries a caption cut at Telegram's 1024-character limit (the mention in it) and
//    the rest of the caption sent as a text right after the album, without a mention: in a private chat one answer
//    sees both; in a group the rest was passed over as not addressed (followsLongPart took the album's last part,
//    caption-less, for what the text followed), so the answer missed the question. Now the album's part with the full
//    caption is what the rest follows.
// Each test here but the guards failed before its change.
import { describe, expect, it } from 'vitest';
import { SCREENSHOT_AFTER_TEXT_S, TEXT_ONLY_REPLY } from '../src/telegram/telegram-channel.js';
import { answer } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '600' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Math.floor(Date.now() / 1000);
const echo = (r: { request: string }) => answer(`Принято: ${r.request.length} символов`, r.request);
const photo = (n: number, group?: string) => ({
  photo: [{ file_id: `p${n}`, file_unique_id: `p${n}u`, width: 90, height: 90 }],
  ...(group ? { media_group_id: group } : {}),
});
/** `n` characters of numbered words starting with `seed` ("начало0 начало1 …"). */
const words = (n: number, seed: string) => {
  let text = '';
  for (let i = 0; text.length < n; i += 1) text += `${seed}${i} `;
  return text.slice(0, n);
};

describe('a screenshot without a caption sent right after its text (private chat)', () => {
  it('the text answered first, the screenshot 2 s later: one answer, to the text, no "text only" note', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 39001, username: 'u39001' };
    const sentAt = now();
    tg.pushMessage({ from, text: 'Почему не проходит оплата картой? Скрин ниже', extra: { date: sentAt } });
    await waitUntil(() => tg.sent.length === 1, 'the text answered');
    const screenshot = tg.pushMessage({ from, extra: { ...photo(1), date: sentAt + 2 } });
    await waitUntil(() => secretary.handled.has(`tg:39001:${screenshot.message_id}`), 'the screenshot handled');
    await waitUntil(() => tg.pending() === 0, 'confirmed');
    await sleep(300);
    expect(tg.sent.map((m) => [Number(m.chat_id), m.text])).toEqual([
      [39001, 'Ответ на: Почему не проходит оплата картой? Скрин ниже'],
    ]);
    expect(secretary.calls.map((c) => c.request)).toEqual(['Почему не проходит оплата картой? Скрин ниже']);
    expect(secretary.handled.get(`tg:39001:${screenshot.message_id}`)?.outcome).toBe('skipped');
  });

  it('the text and the screenshot 2 s later in one batch: one request naming the photo, one answer', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 39002, username: 'u39002' };
    const sentAt = now();
    tg.pushMessage({ from, text: 'Касса 12 показывает такую ошибку', extra: { date: sentAt } });
    tg.pushMessage({ from, extra: { ...photo(2), date: sentAt + 2 } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(800);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Касса 12 показывает такую ошибку\n[Вложения (не переданы): фото]',
    ]);
    expect(tg.sent).toHaveLength(1);
    expect(tg.sent[0]!.text).not.toBe(TEXT_ONLY_REPLY);
  });

  it('two screenshots as an album without captions right after the text: no reply of their own', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 39003, username: 'u39003' };
    const sentAt = now();
    tg.pushMessage({ from, text: 'Не печатается чек, вот экран', extra: { date: sentAt } });
    await waitUntil(() => tg.sent.length === 1, 'the text answered');
    tg.pushMessage({ from, extra: { ...photo(3, 's39-a3'), date: sentAt + 3 } });
    tg.pushMessage({ from, extra: { ...photo(4, 's39-a3'), date: sentAt + 3 } });
    await waitUntil(() => tg.pending() === 0 && secretary.handled.size >= 3, 'all handled');
    await sleep(300);
    expect(tg.sent.map((m) => m.text)).toEqual(['Ответ на: Не печатается чек, вот экран']);
    expect(secretary.calls).toHaveLength(1);
  });

  it(`guard: a screenshot alone, or more than ${SCREENSHOT_AFTER_TEXT_S} s after the text, or after /help, still gets the note`, async () => {
    const { tg, secretary } = await setup();
    const sentAt = now();
    const alone = { id: 39004, username: 'u39004' };
    tg.pushMessage({ from: alone, extra: { ...photo(5), date: sentAt } });
    const later = { id: 39005, username: 'u39005' };
    tg.pushMessage({
      from: later,
      text: 'Нужен доступ к кассе',
      extra: { date: sentAt - SCREENSHOT_AFTER_TEXT_S - 2 },
    });
    const command = { id: 39006, username: 'u39006' };
    tg.pushMessage({ from: command, text: '/help', extra: { date: sentAt } });
    await waitUntil(() => tg.sent.length === 3, 'the first three answered');
    tg.pushMessage({ from: later, extra: { ...photo(6), date: sentAt } });
    tg.pushMessage({ from: command, extra: { ...photo(7), date: sentAt + 1 } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 5, 'the screenshots answered');
    expect(
      tg.sent
        .filter((m) => m.text === TEXT_ONLY_REPLY)
        .map((m) => Number(m.chat_id))
        .sort(),
    ).toEqual([39004, 39005, 39006]);
    expect(secretary.calls.map((c) => c.request)).toEqual(['Нужен доступ к кассе']);
  });

  it('guard: a voice message right after the text is not a screenshot: it gets the note', async () => {
    const { tg } = await setup();
    const from = { id: 39007, username: 'u39007' };
    const sentAt = now();
    tg.pushMessage({ from, text: 'Не работает касса', extra: { date: sentAt } });
    await waitUntil(() => tg.sent.length === 1, 'the text answered');
    const voice = { voice: { file_id: 'v1', file_unique_id: 'v1u', duration: 7, mime_type: 'audio/ogg' } };
    tg.pushMessage({ from, extra: { ...voice, date: sentAt + 2 } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 2, 'the voice answered');
    expect(tg.sent[1]!.text).toBe(TEXT_ONLY_REPLY);
  });
});

describe('a group album whose first part carries the caption', () => {
  for (const type of ['group', 'supergroup'] as const)
    it(`${type}: the mention in the first caption, two parts without one: one answer to the caption, in the group`, async () => {
      const { tg, secretary } = await setup();
      const chat = { id: type === 'group' ? -390010 : -1003900100, type };
      const from = { id: 39010, username: 'u39010' };
      const caption = `@${tg.botUsername} касса не печатает чек, скрины прилагаю`;
      const caption_entities = [{ type: 'mention', offset: 0, length: tg.botUsername.length + 1 }];
      const first = tg.pushMessage({ chat, from, extra: { ...photo(1, `s39-${type}`), caption, caption_entities } });
      tg.pushMessage({ chat, from, extra: photo(2, `s39-${type}`) });
      tg.pushMessage({ chat, from, extra: photo(3, `s39-${type}`) });
      await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
      await sleep(1500);
      expect(secretary.calls.map((c) => c.request)).toEqual(['касса не печатает чек, скрины прилагаю']);
      expect(tg.sent.map((m) => [Number(m.chat_id), m.text])).toEqual([
        [chat.id, 'Ответ на: касса не печатает чек, скрины прилагаю'],
      ]);
      expect(tg.sent[0]!.params).toMatchObject({ reply_parameters: { message_id: first.message_id } });
    });

  it('group: the first part has the full caption with the mention, its rest a text without one: one answer seeing both', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = echo;
    const chat = { id: -1003900110, type: 'supergroup' as const };
    const from = { id: 39011 };
    const caption = `@${tg.botUsername} ${words(1024, 'начало')}`.slice(0, 1024);
    const caption_entities = [{ type: 'mention', offset: 0, length: tg.botUsername.length + 1 }];
    tg.pushMessage({ chat, from, extra: { ...photo(1, 's39-full'), caption, caption_entities } });
    tg.pushMessage({ chat, from, extra: photo(2, 's39-full') });
    tg.pushMessage({ chat, from, extra: photo(3, 's39-full') });
    await sleep(300);
    tg.pushMessage({ chat, from, text: `${words(300, 'хвост')} почему платёж завис?` });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).toContain('начало0 ');
    expect(secretary.calls[0]!.request).toContain('почему платёж завис?');
    expect(tg.sent).toHaveLength(1);
    expect(Number(tg.sent[0]!.chat_id)).toBe(chat.id);
  });

  it('guard: a colleague’s text after a full-caption album is not its rest', async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -1003900120, type: 'supergroup' as const };
    const caption = `@${tg.botUsername} ${words(1024, 'начало')}`.slice(0, 1024);
    tg.pushMessage({ chat, from: { id: 39012 }, extra: { ...photo(1, 's39-col'), caption } });
    tg.pushMessage({ chat, from: { id: 39012 }, extra: photo(2, 's39-col') });
    tg.pushMessage({ chat, from: { id: 39013 }, text: 'обед в час' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.calls[0]!.request).not.toContain('обед в час');
    expect(tg.sent).toHaveLength(1);
  });
});
