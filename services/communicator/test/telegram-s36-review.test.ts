// Review of session 36's parking (briefs/s36-rev-parking-report.md): each test here failed before the fixes.
// 1: a parked row nobody removed (removal failed, a park call's answer lost) was answered again once its handled
//    record expired; a parked approval press had no age limit. 2: one malformed parked row ended the polling loop on
//    every replica and restart. 3: parking lifted the implicit bound of 100 updates in flight. 4: a parked later
//    update of a chat was answered before an earlier unparked one after a restart.
import { describe, expect, it } from 'vitest';
import type { Update } from 'telegraf/types';
import { createLogger, createMetrics } from '@workemon/service-kit';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { createChannelMetrics } from '../src/channel-metrics.js';
import type { ListedParkedUpdate, ParkedUpdate } from '../src/secretary-client.js';
import { JOBS_IN_FLIGHT_MAX, createJobSlots } from '../src/telegram/telegram-channel.js';
import {
  PARKED_MAX_AGE_MS,
  PARKED_PRESS_MAX_AGE_MS,
  createUpdateParking,
  invalidParkedReason,
} from '../src/telegram/telegram-parking.js';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { communicatorProcesses, sigkill, telegramProcessEnv } from './process-harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup, track } = telegramSetup();
const { spawnCommunicator } = communicatorProcesses();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const from = (id: number) => ({ id, username: `user${id}` });
const sentTo = (tg: FakeTelegram, chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId);
const sendCallsTo = (tg: FakeTelegram, chatId: number) =>
  tg.callsOf('sendMessage').filter((c) => Number(c.params['chat_id']) === chatId);
const resourceOf = (tg: FakeTelegram) => `telegram:${tg.token.split(':')[0]}`;
const parkedIn = (secretary: FakeSecretary, tg: FakeTelegram) =>
  secretary.parkedUpdates.get(resourceOf(tg)) ?? new Map<number, string>();

/** A Bot API Update with a private text message (the shape getUpdates returns). */
const textUpdate = (id: number, chat = 1) =>
  ({
    update_id: id,
    message: {
      message_id: id,
      date: 1_700_000_000,
      chat: { id: chat, type: 'private' },
      from: { id: chat },
      text: `m${id}`,
    },
  }) as unknown as Update;
const pressUpdate = (id: number) => ({
  update_id: id,
  callback_query: { id: `q${id}`, from: { id: 7 }, chat_instance: 'c', data: 'action:approve:1' },
});

/** A parked-updates store in memory that fails calls on demand, as the secretary's routes would. */
function fakeStore() {
  const rows = new Map<number, { update: Record<string, unknown>; parked_at: string }>();
  const store = {
    rows,
    removeFailures: 0,
    loseParkAnswers: false,
    client: {
      parkUpdates: async (_r: string, ups: ParkedUpdate[]) => {
        for (const u of ups) rows.set(u.update_id, { update: u.update, parked_at: new Date().toISOString() });
        if (store.loseParkAnswers) throw new Error('timeout of 10000ms exceeded');
        return { parked: ups.map((u) => u.update_id), conflicts: [] };
      },
      listParkedUpdates: async (_r: string, after: number, limit: number): Promise<ListedParkedUpdate[]> =>
        [...rows.entries()]
          .filter(([id]) => id > after)
          .sort(([a], [b]) => a - b)
          .slice(0, limit)
          .map(([update_id, r]) => ({ update_id, ...r })),
      removeParkedUpdates: async (_r: string, ids: number[]) => {
        if (store.removeFailures > 0) {
          store.removeFailures -= 1;
          throw new Error('503 secretary unavailable');
        }
        return ids.filter((id) => rows.delete(id)).length;
      },
    },
  };
  return store;
}

function parkingOver(store: ReturnType<typeof fakeStore>, signal = new AbortController().signal) {
  return createUpdateParking({
    client: store.client,
    resource: 'telegram:1',
    logger: createLogger({ service: 'communicator', level: 'error' }),
    metrics: createChannelMetrics(createMetrics('communicator')),
    signal,
  });
}

describe('finding 1: no parked row outlives the record that guards it', () => {
  it('retries a failed removal in the background until it succeeds (not three tries and then never)', async () => {
    const store = fakeStore();
    const parking = parkingOver(store);
    const pending = new Set([10]);
    parking.parkInBackground(
      [textUpdate(10)],
      (id) => pending.has(id),
      () => undefined,
    );
    await parking.settle();
    expect(store.rows.has(10)).toBe(true);
    store.removeFailures = 4; // 0.5 + 1 + 2 + 4 s of waits
    pending.delete(10);
    parking.release([10]);
    await parking.settle();
    expect(store.rows.has(10)).toBe(false);
    expect(parking.removalsWaiting()).toEqual([]);
  }, 20_000);

  it('removes the row of a park call whose answer was lost (the secretary committed it) once the update is handled', async () => {
    const store = fakeStore();
    store.loseParkAnswers = true;
    const parking = parkingOver(store);
    parking.parkInBackground(
      [textUpdate(10)],
      () => true,
      () => undefined,
    );
    await parking.settle();
    expect(store.rows.has(10)).toBe(true);
    parking.release([10]);
    await parking.settle();
    expect(store.rows.has(10)).toBe(false);
  });

  it('drops (and removes) loaded rows parked longer than the bound, and approval presses parked over 10 minutes', async () => {
    const store = fakeStore();
    const now = Date.now();
    const at = (ageMs: number) => new Date(now - ageMs).toISOString();
    store.rows.set(1, { update: textUpdate(1) as never, parked_at: at(PARKED_MAX_AGE_MS + 60_000) });
    store.rows.set(2, { update: textUpdate(2) as never, parked_at: at(PARKED_MAX_AGE_MS - 60_000) });
    store.rows.set(3, { update: pressUpdate(3), parked_at: at(PARKED_PRESS_MAX_AGE_MS + 1000) });
    store.rows.set(4, { update: pressUpdate(4), parked_at: at(5000) });
    const parking = parkingOver(store);
    const loaded = await parking.load(now);
    expect(loaded.map((u) => u.update_id)).toEqual([2, 4]);
    await parking.settle();
    expect([...store.rows.keys()]).toEqual([2, 4]);
    // The oldest parked, unhandled update's age (the gauge behind WorkemonTelegramParkedUpdateStuck).
    expect(parking.oldestParkedAgeMs(now)).toBe(PARKED_MAX_AGE_MS - 60_000);
  });
});

describe('finding 2: a malformed parked row is dropped, never fatal', () => {
  it.each([
    ['message without chat', 5, { update_id: 5, message: { message_id: 1, date: 1, text: 'x' } }],
    [
      'an update_id other than the row’s',
      5,
      { update_id: 77, message: (textUpdate(77) as unknown as { message: unknown }).message },
    ],
    ['message: null', 6, { update_id: 6, message: null }],
    ['a callback without from', 7, { update_id: 7, callback_query: { id: 'q', data: 'action:approve:1' } }],
    ['neither message nor callback', 8, { update_id: 8 }],
  ])('invalidParkedReason: %s', (_name, id, update) => {
    expect(invalidParkedReason({ update_id: id, update })).toBeDefined();
  });

  it('keeps well-formed messages and presses', () => {
    expect(invalidParkedReason({ update_id: 9, update: textUpdate(9) })).toBeUndefined();
    expect(invalidParkedReason({ update_id: 3, update: pressUpdate(3) })).toBeUndefined();
  });

  it.each([
    ['message without chat', { update_id: 5, message: { message_id: 1, date: 1, text: 'x' } }],
    ['update_id mismatch', { update_id: 77 }],
    ['message null', { update_id: 5, message: null }],
    ['callback without from', { update_id: 5, callback_query: { id: 'q', data: 'action:approve:1' } }],
  ])('%s: the row is removed and other chats are still answered', { timeout: 40_000 }, async (_name, body) => {
    const { tg, secretary } = await setup({
      before: (t, s) => s.parkedUpdates.set(resourceOf(t), new Map([[5, JSON.stringify(body)]])),
    });
    tg.pushMessage({ from: from(8101), text: 'Привет, нужен отчёт' });
    await waitUntil(() => sentTo(tg, 8101).length >= 1, 'the healthy chat answered', 15_000);
    await waitUntil(() => parkedIn(secretary, tg).size === 0, 'the bad row removed', 15_000);
  });
});

describe('finding 3: at most JOBS_IN_FLIGHT_MAX jobs at once, parked or not', () => {
  it('job slots: a bounded number run, the rest wait in order; a stop ends the waits', async () => {
    const stop = new AbortController();
    const slots = createJobSlots(2, stop.signal);
    const order: number[] = [];
    await slots.acquire();
    await slots.acquire();
    const third = slots.acquire().then(() => order.push(3));
    const fourth = slots.acquire().then(() => order.push(4));
    const fifth = slots.acquire().catch((err: Error) => err.message);
    expect(slots.busy()).toBe(2);
    expect(slots.queued()).toBe(3);
    slots.release();
    slots.release();
    await Promise.all([third, fourth]);
    expect(order).toEqual([3, 4]);
    stop.abort();
    expect(await fifth).toBe('stopped');
  });

  it(
    '400 chats with slow analyses: at most 100 analyses in flight, every chat answered later',
    { timeout: 120_000 },
    async () => {
      expect(JOBS_IN_FLIGHT_MAX).toBe(100);
      const { tg, secretary } = await setup();
      secretary.delayMs = 20_000;
      for (let c = 0; c < 400; c += 1) tg.pushMessage({ from: from(9000 + c), text: `вопрос ${c}` });
      await sleep(12_000);
      expect(tg.sent).toHaveLength(0);
      expect(new Set(secretary.calls.map((c) => c.message_id)).size).toBeLessThanOrEqual(JOBS_IN_FLIGHT_MAX);
      // The offset was not frozen meanwhile: Telegram handed (almost) everything over, parked or queued.
      expect(tg.pending()).toBeLessThan(100);
      secretary.delayMs = 0;
      await waitUntil(() => tg.sent.length === 400, 'all answered', 90_000);
    },
  );
});

describe('across a restart (communicator processes)', () => {
  it(
    'finding 1: a row whose removal failed is removed while the process runs; no second answer a week later',
    { timeout: 120_000 },
    async () => {
      const tg = await startFakeTelegram({ maxHoldMs: 1000 });
      const secretary = await startFakeSecretary();
      track(tg);
      track(secretary);
      const stalled = 7301;
      tg.failChat(stalled, { code: 429, retryAfterS: 6 }, 1);
      const first = spawnCommunicator(secretary.url, telegramProcessEnv(tg));
      const { update_id } = tg.pushMessage({ from: from(stalled), text: 'Где мой пропуск?' });
      await waitUntil(() => sendCallsTo(tg, stalled).length === 1, 'the 429', 30_000);
      for (const text of ['a', 'b', 'c']) tg.pushMessage({ from: from(7302), text });
      await waitUntil(() => parkedIn(secretary, tg).has(update_id), 'parked', 30_000);
      secretary.parkedRemovalsDown = true;
      await waitUntil(() => sentTo(tg, stalled).length === 1, 'answered', 30_000);
      await sleep(4000);
      secretary.parkedRemovalsDown = false;
      await waitUntil(() => !parkedIn(secretary, tg).has(update_id), 'the row removed by a later retry', 40_000);
      await waitUntil(() => tg.pending() === 0, 'all confirmed at Telegram');
      secretary.handled.clear(); // a week passes: the handled records are gone (DELIVERY_RETENTION_DAYS)
      await sigkill(first.child);
      const second = spawnCommunicator(secretary.url, telegramProcessEnv(tg));
      await sleep(6000);
      await sigkill(second.child);
      expect(sentTo(tg, stalled).map((m) => m.text)).toEqual(['Ответ на: Где мой пропуск?']);
    },
  );

  it(
    'finding 4: an earlier unparked update of a chat is answered before its later parked one',
    { timeout: 120_000 },
    async () => {
      const tg = await startFakeTelegram({ maxHoldMs: 1000 });
      const secretary = await startFakeSecretary();
      track(tg);
      track(secretary);
      const chat = 7601;
      tg.failChat(chat, { code: 429, retryAfterS: 60 }, 1);
      const a = spawnCommunicator(secretary.url, telegramProcessEnv(tg));
      // Over PARKED_UPDATE_MAX_BYTES of JSON: it is never parked.
      const entities = Array.from({ length: 1200 }, (_, i) => ({
        type: 'bold',
        offset: 0,
        length: 1,
        url: `${i}`.padEnd(40, 'x'),
      }));
      const big = tg.pushMessage({ from: from(chat), text: 'Первый', extra: { entities } });
      await waitUntil(() => sendCallsTo(tg, chat).length === 1, 'the 429', 30_000);
      const second = tg.pushMessage({ from: from(chat), text: 'Второй' });
      tg.pushMessage({ from: from(7602), text: 'q' });
      await waitUntil(() => parkedIn(secretary, tg).has(second.update_id), 'the second parked', 30_000);
      expect(parkedIn(secretary, tg).has(big.update_id)).toBe(false);
      await sigkill(a.child);
      const b = spawnCommunicator(secretary.url, telegramProcessEnv(tg));
      await waitUntil(() => sentTo(tg, chat).length >= 1, 'answered', 40_000);
      await sleep(3000);
      await sigkill(b.child);
      const texts = sentTo(tg, chat).map((m) => m.text);
      // One answer to both (merged in order) or two in order; never the second first.
      expect(texts.join('\n').indexOf('Первый')).toBeLessThan(texts.join('\n').indexOf('Второй'));
    },
  );
});
