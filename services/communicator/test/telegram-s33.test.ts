// Session 33: the records of a long answer's pieces (telegram-channel.ts deliver). Each piece but the last is
// recorded in the secretary once Telegram took it, so a restart goes on from the piece not delivered
// (telegram-crash.test.ts). These records must never hold the answer back, and a piece Telegram makes us halve must
// be known by its halves. Each test failed before its fix.
import { expect, it } from 'vitest';
import { HALVING_SLACK, answerPartKeys, halvingLimit } from '../src/telegram/telegram-channel.js';
import { splitMessage } from '../src/telegram/telegram-bot-api.js';
import { answer } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '300' });

/** Three paragraphs of about 3,500 characters: three pieces. */
const PARAGRAPHS = ['первая', 'вторая', 'третья'].map((word) => `${word}: ${'данные '.repeat(500).trim()}`);

it('the secretary cannot record pieces (POST /deliveries 503): the whole answer still goes out at once', async () => {
  const { tg, secretary } = await setup();
  secretary.decide = () => answer(PARAGRAPHS.join('\n\n'));
  secretary.recordsDown = true;
  tg.pushMessage({ from: { id: 33101, username: 'u33101' }, text: 'Пришлите полный регламент' });
  // Before: piece 1, then the piece record retried for as long as the outage lasted.
  await waitUntil(() => tg.sent.length === 3, 'all three pieces during the outage', 15_000);
  expect(tg.sent.map((m) => m.text)).toEqual(PARAGRAPHS);
  // The update itself stays unconfirmed until its record is taken: nothing is lost.
  expect(tg.pending()).toBe(1);
  secretary.recordsDown = false;
  await waitUntil(() => tg.pending() === 0, 'confirmed once the secretary records again', 15_000);
  expect(tg.sent).toHaveLength(3);
});

/** Records `pieces` of the update's answer as delivered, as an earlier process that was killed would have. */
function deliveredBefore(
  secretary: { handled: Map<string, { outcome: string; reason?: string }> },
  pushed: { chat_id: number; message_id: number },
  pieces: Array<{ text: string; recorded: boolean }>,
) {
  const keyOf = answerPartKeys(`tg:${pushed.chat_id}:${pushed.message_id}`);
  for (const piece of pieces) {
    const key = keyOf(piece.text);
    if (piece.recorded) secretary.handled.set(key, { outcome: 'sent', reason: 'answer piece delivered' });
  }
}

it('an answer repeating a piece word for word: only the occurrence an earlier process delivered is skipped', async () => {
  const { tg, secretary } = await setup();
  const [a, b] = PARAGRAPHS;
  secretary.decide = () => answer([a, b, a].join('\n\n'));
  const pushed = tg.pushMessage({ from: { id: 33301, username: 'u33301' }, text: 'Пришлите регламент дважды' });
  // The earlier process delivered the first A and was killed on the wire of B.
  deliveredBefore(secretary, pushed, [
    { text: a!, recorded: true },
    { text: b!, recorded: false },
    { text: a!, recorded: false },
  ]);
  await waitUntil(() => tg.pending() === 0, 'the rest of the answer', 15_000);
  // Before: both A's were taken for delivered (one key per text), and the last piece was never sent.
  expect(tg.sent.map((m) => m.text)).toEqual([b, a]);
});

it('a piece Telegram finds too long: its halves are sent, and a half delivered before is not sent again', async () => {
  const { tg, secretary } = await setup();
  secretary.decide = () => answer(PARAGRAPHS.join('\n\n'));
  tg.failNext('sendMessage', { code: 400, description: 'Bad Request: message is too long' });
  const pushed = tg.pushMessage({ from: { id: 33201, username: 'u33201' }, text: 'Пришлите полный регламент' });
  const halves = splitMessage(PARAGRAPHS[0]!, Math.ceil(PARAGRAPHS[0]!.length / 2) + HALVING_SLACK);
  expect(halves).toHaveLength(2);
  // The earlier process sent the first half (after the same refusal) and was killed.
  deliveredBefore(secretary, pushed, [
    ...PARAGRAPHS.map((text) => ({ text, recorded: false })),
    { text: halves[0]!, recorded: true },
  ]);
  await waitUntil(() => tg.pending() === 0, 'the answer sent', 15_000);
  // Before: the halves were never looked up, and the first was sent again (and the halving left a third scrap).
  expect(tg.sent.map((m) => m.text)).toEqual([halves[1], PARAGRAPHS[1], PARAGRAPHS[2]]);
});

it('a short piece Telegram keeps calling too long is halved until given up, not sent for ever', async () => {
  const { tg, secretary } = await setup();
  // 150 characters: with the halving slack alone, its "halves" were the piece itself, sent again and again.
  secretary.decide = () => answer(`Ответ: ${'ок '.repeat(48).trim()}`);
  tg.failNext('sendMessage', { code: 400, description: 'Bad Request: message is too long' }, 1000);
  tg.pushMessage({ from: { id: 33401, username: 'u33401' }, text: 'Короткий вопрос' });
  await waitUntil(() => tg.pending() === 0, 'the update finished', 15_000);
  expect(tg.callsOf('sendMessage').length).toBeLessThan(10);
  expect(halvingLimit(150)).toBe(75);
  expect(halvingLimit(4000)).toBe(2100);
});
