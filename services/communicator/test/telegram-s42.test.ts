// Session 42: Telegram intake misses of the field-case kinds T02 (an album: one answer to the caption, no "text only"
// replies for the other parts) and T10 (a long paste the client split: one answer that sees every part).
// 1. An album whose parts without a caption came first and whose captioned part (the last or a middle one) came in a
//    later getUpdates batch more than the merge window after them: the parts in hand were answered "text only" and the
//    caption got a second answer. Now an album with no caption in hand waits bareAlbumWaitMs (5 s).
// 2. Media sent as several albums or messages (twelve photos go as an album of ten and one of two) with the caption on
//    a later one: the albums without words before it got the "text only" note. Now media with a caption after a job of
//    media without words (same sender, within the window) joins it.
// 3. A paste of five parts or more (over MAX_REQUEST_CHARS together) with the question in its last part: the request
//    was cut at its end, so the secretary never saw the question. Now a job of several messages keeps its first three
//    quarters and its last quarter (jobRequestWithin).
// Each test here but the guards failed before its change.
import { describe, expect, it } from 'vitest';
import {
  REQUEST_MIDDLE_CUT_MARKER,
  TEXT_ONLY_REPLY,
  bareAlbumWaitMs,
  jobRequestWithin,
} from '../src/telegram/telegram-channel.js';
import { answer, type FakeSecretary } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_REQUEST_TIMEOUT: '2s' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Math.floor(Date.now() / 1000);
const photo = (n: number, group?: string) => ({
  photo: [{ file_id: `p${n}`, file_unique_id: `p${n}u`, width: 90, height: 90 }],
  ...(group ? { media_group_id: group } : {}),
});
const video = (n: number, group?: string) => ({
  video: { file_id: `v${n}`, file_unique_id: `v${n}u`, width: 90, height: 90, duration: 3 },
  ...(group ? { media_group_id: group } : {}),
});
/** `n` characters of numbered words starting with `seed` ("лог0 лог1 …"). */
const words = (n: number, seed: string) => {
  let text = '';
  for (let i = 0; text.length < n; i += 1) text += `${seed}${i} `;
  return text.slice(0, n);
};
/** The secretary answers with the whole request it got (to see what it saw) or, for a long one, its length. */
const echo = (secretary: FakeSecretary) =>
  (secretary.decide = (r) =>
    answer(r.request.length > 1000 ? `Принято ${r.request.length}` : `Принято: ${r.request}`, r.request));

describe('an album whose captioned part comes in a later getUpdates batch', () => {
  for (const [where, gapMs] of [
    ['the last part, 2.5 s after the others', 2500],
    ['a middle part, 3.5 s after the first', 3500],
  ] as const)
    it(`private chat, the caption on ${where}: one answer to the caption, no "text only"`, async () => {
      const { tg, secretary } = await setup();
      echo(secretary);
      const from = { id: 42001 };
      const sentAt = now();
      const album = `s42-${gapMs}`;
      tg.pushMessage({ from, extra: { ...video(1, album), date: sentAt } });
      if (where.startsWith('the last')) tg.pushMessage({ from, extra: { ...photo(2, album), date: sentAt } });
      await sleep(gapMs);
      tg.pushMessage({ from, extra: { ...photo(3, album), caption: 'Касса зависает, видео и фото', date: sentAt } });
      if (where.startsWith('a middle')) tg.pushMessage({ from, extra: { ...photo(4, album), date: sentAt } });
      await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
      await sleep(1500);
      expect(tg.sent.map((m) => m.text)).toEqual(['Принято: Касса зависает, видео и фото']);
      expect(secretary.calls).toHaveLength(1);
    });

  it(`guard: an album without any caption still gets one "text only" note, within ${bareAlbumWaitMs(1500) / 1000} s or so`, async () => {
    const { tg, secretary } = await setup();
    const from = { id: 42002 };
    const sentAt = now();
    tg.pushMessage({ from, extra: { ...photo(1, 's42-bare'), date: sentAt } });
    await sleep(1000);
    const last = Date.now();
    tg.pushMessage({ from, extra: { ...photo(2, 's42-bare'), date: sentAt } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    expect(Date.now() - last).toBeLessThan(bareAlbumWaitMs(1500) + 3000);
    await sleep(1500);
    expect(tg.sent.map((m) => m.text)).toEqual([TEXT_ONLY_REPLY]);
    expect(secretary.calls).toHaveLength(0);
  });
});

describe('media sent in several albums or messages, the caption on a later one', () => {
  it('twelve photos: an album of ten without a caption, then one of two captioned on its last part: one answer', async () => {
    const { tg, secretary } = await setup();
    echo(secretary);
    const from = { id: 42011 };
    for (let i = 0; i < 10; i += 1) tg.pushMessage({ from, extra: photo(i, 's42-ten') });
    tg.pushMessage({ from, extra: photo(10, 's42-two') });
    tg.pushMessage({ from, extra: { ...photo(11, 's42-two'), caption: 'Фото повреждений на складе' } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      '[Вложения (не переданы): фото ×10]\nФото повреждений на складе\n[Вложения (не переданы): фото ×2]',
    ]);
    expect(tg.sent).toHaveLength(1);
    expect(tg.sent.some((m) => m.text === TEXT_ONLY_REPLY)).toBe(false);
  });

  it('a photo without a caption, then a second photo with the caption a second later: one answer', async () => {
    const { tg, secretary } = await setup();
    echo(secretary);
    const from = { id: 42012 };
    const sentAt = now();
    tg.pushMessage({ from, extra: { ...photo(1), date: sentAt } });
    await sleep(1000);
    tg.pushMessage({ from, extra: { ...photo(2), caption: 'Вот два скрина ошибки', date: sentAt + 1 } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    await sleep(1500);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      '[Вложения (не переданы): фото]\nВот два скрина ошибки\n[Вложения (не переданы): фото]',
    ]);
    expect(tg.sent).toHaveLength(1);
  });

  it('guard: a voice message, then a captioned photo a second later: the voice keeps its "text only" note', async () => {
    const { tg, secretary } = await setup();
    echo(secretary);
    const from = { id: 42014 };
    const sentAt = now();
    const voice = { voice: { file_id: 'v1', file_unique_id: 'v1u', duration: 7, mime_type: 'audio/ogg' } };
    tg.pushMessage({ from, extra: { ...voice, date: sentAt } });
    tg.pushMessage({ from, extra: { ...photo(1), caption: 'Вот скрин ошибки', date: sentAt + 1 } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'answered');
    await sleep(1000);
    expect(tg.sent.map((m) => m.text)).toEqual([TEXT_ONLY_REPLY, 'Принято: Вот скрин ошибки']);
  });

  it('guard: a captioned photo a minute after a photo without one is a request of its own', async () => {
    const { tg, secretary } = await setup();
    echo(secretary);
    const from = { id: 42013 };
    const sentAt = now();
    tg.pushMessage({ from, extra: { ...photo(1), date: sentAt - 60 } });
    tg.pushMessage({ from, extra: { ...photo(2), caption: 'Новый вопрос про кассу', date: sentAt } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'answered');
    await sleep(1000);
    expect(tg.sent.map((m) => m.text)).toEqual([TEXT_ONLY_REPLY, 'Принято: Новый вопрос про кассу']);
  });
});

describe('a paste split into more parts than a request takes, the question at its end', () => {
  it('five parts of 4096 and the question: one answer, the request has the start and the question', async () => {
    const { tg, secretary } = await setup();
    echo(secretary);
    const from = { id: 42021 };
    const sentAt = now();
    // Android cuts at exactly 4096 characters, inside a word.
    for (let i = 0; i < 5; i += 1)
      tg.pushMessage({ from, text: words(4096, `ч${i}лог`).replace(/ $/, 'ы'), extra: { date: sentAt } });
    tg.pushMessage({ from, text: 'конец лога. Вопрос: почему выгрузка пустая?', extra: { date: sentAt + 1 } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered', 40_000);
    await sleep(1000);
    expect(secretary.calls).toHaveLength(1);
    const request = secretary.calls[0]!.request;
    expect(request.length).toBeLessThanOrEqual(20_000);
    expect(request.startsWith('ч0лог0 ч0лог1')).toBe(true);
    expect(request).toContain(REQUEST_MIDDLE_CUT_MARKER.trim());
    expect(request.endsWith('конец лога. Вопрос: почему выгрузка пустая?')).toBe(true);
    expect(tg.sent).toHaveLength(1);
  }, 60_000);

  it('jobRequestWithin: unchanged when it fits; else head, marker, tail within the limit, no broken pair', () => {
    expect(jobRequestWithin('короткий запрос', 100)).toBe('короткий запрос');
    const text = `${'😀'.repeat(3000)} ${words(6000, 'середина')} ВОПРОС В КОНЦЕ?`;
    const cut = jobRequestWithin(text, 4000);
    expect(cut.length).toBeLessThanOrEqual(4000);
    expect(cut.length).toBeGreaterThan(3500);
    const [head, tail] = cut.split(REQUEST_MIDDLE_CUT_MARKER) as [string, string];
    expect(text.startsWith(head)).toBe(true);
    expect(text.endsWith(tail)).toBe(true);
    expect(tail.endsWith('ВОПРОС В КОНЦЕ?')).toBe(true);
    expect(/[\uD800-\uDBFF]$/.test(head)).toBe(false);
    expect(/^[\uDC00-\uDFFF]/.test(tail)).toBe(false);
  });
});

describe("an album without a caption followed by its sender's text", () => {
  it('the text 0.3 s after the album: one answer, without the 5 s wait for a caption', async () => {
    const { tg, secretary } = await setup();
    echo(secretary);
    const from = { id: 42011 };
    const sentAt = now();
    for (const n of [1, 2]) tg.pushMessage({ from, extra: { ...photo(n, 's42-then-text'), date: sentAt } });
    await sleep(300);
    const typed = Date.now();
    tg.pushMessage({ from, text: 'Вот скриншоты: касса не печатает чек', extra: { date: sentAt } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered');
    // The merge window (1.5 s) and a poll, not the caption wait (bareAlbumWaitMs: 5 s).
    expect(Date.now() - typed).toBeLessThan(bareAlbumWaitMs(1500) - 1000);
    await sleep(1500);
    expect(tg.sent.map((m) => m.text)).toEqual([expect.stringContaining('Вот скриншоты: касса не печатает чек')]);
    expect(secretary.calls).toHaveLength(1);
  });
});
