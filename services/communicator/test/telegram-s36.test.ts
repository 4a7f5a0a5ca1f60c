// Session 36: one chat that waits long must not stop the others. The getUpdates offset can only move over the lowest
// contiguous run of handled updates (telegram-offset.ts), and Telegram returns at most 100 updates from it (Bot API
// getUpdates `limit`): a chat in a long 429 pinned the offset, and once 100 updates queued behind it every poll
// returned the same 100 and no other chat was answered until the 429 ended. Now such an update is parked in the
// secretary (POST /telegram-parked-updates) and the offset moves past it; it is answered once, also across a
// SIGKILL of the communicator. Every test here failed before the fix.
import { describe, expect, it } from 'vitest';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { communicatorProcesses, sigkill, telegramProcessEnv } from './process-harness.js';
import { telegramSetup } from './telegram-setup.js';
import { createOffsetTracker } from '../src/telegram/telegram-offset.js';
import { PARK_AFTER_MS, PARK_PENDING_HIGH, PARK_SOON_MS, parkingCandidates } from '../src/telegram/telegram-parking.js';

const { setup, track } = telegramSetup();
const { spawnCommunicator } = communicatorProcesses();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sentTo = (tg: FakeTelegram, chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId);
const sendCallsTo = (tg: FakeTelegram, chatId: number) =>
  tg.callsOf('sendMessage').filter((c) => Number(c.params['chat_id']) === chatId);
const from = (id: number) => ({ id, username: `user${id}` });
/** The parked-update resource of the fake bot, as the communicator names it (its poller lease's name). */
const resourceOf = (tg: FakeTelegram) => `telegram:${tg.token.split(':')[0]}`;
const parkedIn = (secretary: FakeSecretary, tg: FakeTelegram) =>
  secretary.parkedUpdates.get(resourceOf(tg)) ?? new Map<number, string>();

describe('a chat in a long 429 while other chats write', () => {
  it(
    'answers every other chat past the getUpdates limit meanwhile, and the stalled chat once after its 429',
    { timeout: 90_000 },
    async () => {
      const { tg, secretary } = await setup();
      const stalled = 6001;
      // Telegram asks this chat (only) to wait far longer than answering everyone else takes.
      tg.failChat(stalled, { code: 429, retryAfterS: 25 }, 1);
      tg.pushMessage({ from: from(stalled), text: 'Не работает касса' });
      await waitUntil(() => sendCallsTo(tg, stalled).length === 1, 'the stalled chat’s 429');
      const others: Array<{ chat: number; text: string }> = [];
      for (let k = 0; k < 5; k += 1)
        for (let c = 0; c < 30; c += 1) others.push({ chat: 6100 + c, text: `c${6100 + c}-m${k}` });
      for (const o of others) tg.pushMessage({ from: from(o.chat), text: o.text });
      expect(others.length).toBeGreaterThan(100);

      const answered = (o: { chat: number; text: string }) =>
        sentTo(tg, o.chat).some((m) => m.text === `Ответ на: ${o.text}`);
      await waitUntil(() => others.every(answered), 'every other chat answered', 60_000);
      // …while the stalled chat still waits out its 429 (its answer was not even tried again).
      expect(sendCallsTo(tg, stalled)).toHaveLength(1);
      expect(sentTo(tg, stalled)).toHaveLength(0);
      expect(parkedIn(secretary, tg).size).toBeGreaterThan(0);

      await waitUntil(() => sentTo(tg, stalled).length >= 1, 'the stalled chat answered after its 429', 40_000);
      await waitUntil(() => tg.pending() === 0 && parkedIn(secretary, tg).size === 0, 'confirmed and unparked');
      await sleep(1500);
      expect(sentTo(tg, stalled).map((m) => m.text)).toEqual(['Ответ на: Не работает касса']);
      for (const o of others)
        expect(sentTo(tg, o.chat).filter((m) => m.text === `Ответ на: ${o.text}`)).toHaveLength(1);
      expect(secretary.calls.filter((c) => c.request === 'Не работает касса')).toHaveLength(1);
    },
  );
});

describe('which updates are parked, and what parking does to the offset', () => {
  it('parks updates pending past PARK_AFTER_MS below the newest one; sooner when many are pending', () => {
    const now = 100_000;
    const none = () => false;
    const pending: Array<[number, number]> = [
      [12, now - PARK_AFTER_MS],
      [10, now - PARK_AFTER_MS - 1],
      [11, now - PARK_SOON_MS],
      [13, now - PARK_AFTER_MS],
    ];
    // 13 is the newest update: parking it would let the offset past nothing.
    expect(parkingCandidates(pending, 13, now, none)).toEqual([10, 12]);
    expect(parkingCandidates(pending, 20, now, (id) => id === 10)).toEqual([12, 13]);
    const many = Array.from({ length: PARK_PENDING_HIGH }, (_, i): [number, number] => [i, now - PARK_SOON_MS]);
    expect(parkingCandidates(many, PARK_PENDING_HIGH, now, none)).toHaveLength(PARK_PENDING_HIGH);
  });

  it('moves the offset past a parked update, takes no repeat of it, and leaves others pending', () => {
    const offsets = createOffsetTracker();
    for (const id of [5, 6, 7]) offsets.add(id);
    offsets.done(6);
    expect(offsets.offset()).toBe(5);
    expect(offsets.park(5)).toBe(true);
    expect(offsets.offset()).toBe(7);
    expect(offsets.add(5)).toBe(false);
    expect(offsets.park(42)).toBe(false);
    expect(offsets.pendingEntries().map(([id]) => id)).toEqual([7]);
    offsets.done(5);
    expect(offsets.offset()).toBe(7);
  });
});

describe('a parked update whose chat blocked the bot', () => {
  it('is given up as any update is (recorded failed), its row removed, nothing sent', { timeout: 60_000 }, async () => {
    const { tg, secretary } = await setup();
    const stalled = 6401;
    const other = 6402;
    tg.failChat(stalled, { code: 429, retryAfterS: 8 }, 1);
    const { update_id } = tg.pushMessage({ from: from(stalled), text: 'Заблокирую бота' });
    await waitUntil(() => sendCallsTo(tg, stalled).length === 1, 'the stalled chat’s 429');
    // The user blocks the bot while the answer waits: every later send is refused for good.
    tg.failChat(stalled, { code: 403 });
    for (const text of ['раз', 'два']) tg.pushMessage({ from: from(other), text });
    await waitUntil(() => parkedIn(secretary, tg).has(update_id), 'the stalled update parked', 20_000);
    await waitUntil(
      () => [...secretary.handled].some(([k, v]) => k.startsWith(`tg:${stalled}:`) && v.outcome === 'failed'),
      'the update given up and recorded',
      30_000,
    );
    await waitUntil(() => parkedIn(secretary, tg).size === 0 && tg.pending() === 0, 'its row removed, all confirmed');
    expect(sentTo(tg, stalled)).toHaveLength(0);
    expect(sentTo(tg, other)).toHaveLength(2);
  });
});

describe('parked updates across a SIGKILL of the communicator', () => {
  /**
   * A fake Bot API and secretary, a communicator process, one chat (`stalled`) in a 429 of `retryAfterS` and three
   * messages of another chat behind it; resolves once the stalled update is parked and Telegram confirmed
   * everything (the offset moved past it).
   */
  async function stalledAndParked(stalled: number, other: number, retryAfterS: number) {
    const tg = await startFakeTelegram({ maxHoldMs: 1000 });
    const secretary = await startFakeSecretary();
    track(tg);
    track(secretary);
    tg.failChat(stalled, { code: 429, retryAfterS }, 1);
    const first = spawnCommunicator(secretary.url, telegramProcessEnv(tg));
    const failed = (err: Error) => {
      throw new Error(`${err.message}; stderr: ${first.stderr()}`);
    };
    const { update_id: stalledUpdate } = tg.pushMessage({ from: from(stalled), text: 'Где мой пропуск?' });
    await waitUntil(() => sendCallsTo(tg, stalled).length === 1, 'the stalled chat’s 429', 30_000).catch(failed);
    for (const text of ['первый', 'второй', 'третий']) tg.pushMessage({ from: from(other), text });
    await waitUntil(
      () => sentTo(tg, other).length === 3 && tg.pending() === 0 && parkedIn(secretary, tg).has(stalledUpdate),
      'the other chat answered, the stalled update parked and confirmed at Telegram',
      30_000,
    ).catch(failed);
    return { tg, secretary, first, stalledUpdate };
  }

  it(
    'a kill while an update is parked and the offset moved past it: the restarted one answers it exactly once',
    { timeout: 120_000 },
    async () => {
      const stalled = 6201;
      const other = 6202;
      const { tg, secretary, first } = await stalledAndParked(stalled, other, 60);
      expect(sentTo(tg, stalled)).toHaveLength(0);
      await sigkill(first.child);
      // Telegram no longer holds it: only the parked copy can bring it back.
      expect(tg.pending()).toBe(0);
      const second = spawnCommunicator(secretary.url, telegramProcessEnv(tg));
      await waitUntil(
        () => sentTo(tg, stalled).length >= 1,
        'the parked update answered after the restart',
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; stderr: ${second.stderr()}`);
      });
      await waitUntil(() => parkedIn(secretary, tg).size === 0, 'its parked row removed');
      await sleep(1500);
      expect(sentTo(tg, stalled).map((m) => m.text)).toEqual(['Ответ на: Где мой пропуск?']);
      expect(sentTo(tg, other)).toHaveLength(3);
      await sigkill(second.child);
    },
  );

  it(
    'a kill after a parked update was handled but before its row went: no second answer after the restart',
    { timeout: 120_000 },
    async () => {
      const stalled = 6301;
      const other = 6302;
      const { tg, secretary, first, stalledUpdate } = await stalledAndParked(stalled, other, 6);
      // The row cannot be removed: the update is answered and recorded as handled, and its row stays.
      secretary.parkedRemovalsDown = true;
      await waitUntil(
        () =>
          sentTo(tg, stalled).length === 1 && [...secretary.handled.keys()].some((k) => k.startsWith(`tg:${stalled}:`)),
        'the stalled chat answered and recorded after its 429',
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; stderr: ${first.stderr()}`);
      });
      await sleep(500);
      await sigkill(first.child);
      expect(parkedIn(secretary, tg).has(stalledUpdate)).toBe(true);
      secretary.parkedRemovalsDown = false;
      const second = spawnCommunicator(secretary.url, telegramProcessEnv(tg));
      await waitUntil(
        () => parkedIn(secretary, tg).size === 0,
        'the handled parked row removed at start',
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}; stderr: ${second.stderr()}`);
      });
      await sleep(1500);
      expect(sentTo(tg, stalled).map((m) => m.text)).toEqual(['Ответ на: Где мой пропуск?']);
      expect(sentTo(tg, other)).toHaveLength(3);
      await sigkill(second.child);
    },
  );
});
