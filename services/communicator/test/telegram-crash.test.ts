// The communicator as a real child process (src/main.ts under tsx, as `npm start` runs it), SIGKILLed at random
// points of a 50-update batch, round after round, and restarted against the same fake Bot API (real offset
// semantics) and secretary. Every update must be answered, and answered twice only inside the documented window:
// the one send per chat whose "handled" record had not been written yet when the process died.
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { answer, startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { communicatorProcesses, sigkill, telegramProcessEnv } from './process-harness.js';

const open: Array<{ close: () => Promise<void> }> = [];
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await item.close();
});

const { spawnCommunicator } = communicatorProcesses();

function startCommunicatorProcess(tg: FakeTelegram, secretary: FakeSecretary) {
  return spawnCommunicator(secretary.url, telegramProcessEnv(tg));
}

const kill = sigkill;

const CHATS = 10;
const PER_CHAT = 5;
const ROUNDS = 4;

describe('telegram across SIGKILL of the communicator', () => {
  it(
    'answers every update of a 50-update batch, at most once more per chat for the send in flight at the kill',
    { timeout: 240_000 },
    async () => {
      const tg = await startFakeTelegram({ maxHoldMs: 1000 });
      const secretary = await startFakeSecretary();
      open.push(tg, secretary);
      // A little analysis time, so a kill lands in the middle of the batch.
      secretary.delayFor = () => 10 + Math.floor(Math.random() * 60);

      let current = startCommunicatorProcess(tg, secretary);
      const answersOf = (text: string) => tg.sent.filter((m) => m.text === `Ответ на: ${text}`).length;
      const duplicatesPerChat = new Map<number, number>();
      let kills = 0;
      let midBatchKills = 0;

      for (let round = 0; round < ROUNDS; round += 1) {
        const texts: Array<{ text: string; chat: number }> = [];
        for (let k = 0; k < PER_CHAT; k += 1) {
          for (let c = 0; c < CHATS; c += 1) {
            const chat = 3000 + c;
            const text = `r${round}-c${chat}-m${k}`;
            texts.push({ text, chat });
            tg.pushMessage({ from: { id: chat, username: `user${chat}` }, text });
          }
        }
        const sentBefore = tg.sent.length;
        // Kill at a random moment after the batch started to be answered, then start a fresh process.
        await waitUntil(() => tg.sent.length > sentBefore, `round ${round}: a first answer`, 60_000).catch(
          (err: Error) => {
            throw new Error(`${err.message}; communicator stderr: ${current.stderr()}`);
          },
        );
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 400));
        await kill(current.child);
        kills += 1;
        const answeredAtKill = texts.filter((t) => answersOf(t.text) > 0).length;
        if (answeredAtKill < texts.length) midBatchKills += 1;
        current = startCommunicatorProcess(tg, secretary);
        await waitUntil(
          () => texts.every((t) => answersOf(t.text) >= 1) && tg.pending() === 0,
          `round ${round}: every update answered and confirmed`,
          90_000,
        ).catch((err: Error) => {
          const missing = texts.filter((t) => answersOf(t.text) === 0).map((t) => t.text);
          throw new Error(`${err.message}; missing ${missing.join(', ')}; stderr: ${current.stderr()}`);
        });
        const roundDuplicates = new Map<number, number>();
        for (const t of texts) {
          const extra = answersOf(t.text) - 1;
          if (extra > 0) roundDuplicates.set(t.chat, (roundDuplicates.get(t.chat) ?? 0) + extra);
        }
        // This round had one kill: per chat, at most the one send in flight was repeated.
        for (const [chat, duplicates] of roundDuplicates) {
          expect(duplicates, `round ${round}, chat ${chat}`).toBeLessThanOrEqual(1);
          duplicatesPerChat.set(chat, (duplicatesPerChat.get(chat) ?? 0) + duplicates);
        }
      }
      await kill(current.child);

      const total = [...duplicatesPerChat.values()].reduce((a, b) => a + b, 0);
      // The kills did land inside batches (otherwise this test would prove nothing).
      expect(midBatchKills).toBeGreaterThan(0);
      console.info(`telegram crash test: ${kills} kills, ${midBatchKills} mid-batch, ${total} repeated answers`);
      expect(total).toBeLessThanOrEqual(kills * CHATS);
      // Nothing was lost: every update of every round has its answer.
      expect(tg.sent.length).toBe(ROUNDS * CHATS * PER_CHAT + total);
      // Each chat's answers came in the order its messages were sent (a repeat may follow its original).
      for (let c = 0; c < CHATS; c += 1) {
        const order = tg.sent
          .filter((m) => Number(m.chat_id) === 3000 + c)
          .map((m) => m.text)
          .filter((text, i, all) => all.indexOf(text) === i);
        const expected = Array.from({ length: ROUNDS }, (_, r) =>
          Array.from({ length: PER_CHAT }, (_, k) => `Ответ на: r${r}-c${3000 + c}-m${k}`),
        ).flat();
        expect(order).toEqual(expected);
      }
    },
  );

  it(
    'a kill between getUpdates and the reply (analysis in flight): exactly one answer each after the restart',
    { timeout: 120_000 },
    async () => {
      const tg = await startFakeTelegram({ maxHoldMs: 1000 });
      const secretary = await startFakeSecretary();
      open.push(tg, secretary);
      // Slow analyses: the process is killed while every request is with the secretary, none answered yet.
      secretary.delayMs = 3000;
      const first = startCommunicatorProcess(tg, secretary);
      const from = (id: number) => ({ id, username: `user${id}` });
      tg.pushMessage({ from: from(4001), text: 'Не работает VPN' });
      tg.pushMessage({ from: from(4002), text: 'Нужен пропуск' });
      // An album (caption on the 2nd photo) and a paste the client split: one answer each, also after the kill.
      const photo = (n: number) => ({ photo: [{ file_id: `k${n}`, file_unique_id: `k${n}u`, width: 9, height: 9 }] });
      tg.pushMessage({ from: from(4003), extra: { ...photo(1), media_group_id: 'kill-album' } });
      tg.pushMessage({
        from: from(4003),
        extra: { ...photo(2), media_group_id: 'kill-album', caption: 'Касса не печатает чек' },
      });
      tg.pushMessage({ from: from(4004), text: 'лог '.repeat(1000) });
      tg.pushMessage({ from: from(4004), text: 'Почему пустая выгрузка?' });
      await waitUntil(() => secretary.calls.length === 4, 'all four requests with the secretary', 30_000).catch(
        (err: Error) => {
          throw new Error(`${err.message}; stderr: ${first.stderr()}`);
        },
      );
      expect(tg.sent).toHaveLength(0);
      await kill(first.child);
      secretary.delayMs = 0;
      const second = startCommunicatorProcess(tg, secretary);
      await waitUntil(() => tg.sent.length >= 4 && tg.pending() === 0, 'the answers after the restart', 60_000).catch(
        (err: Error) => {
          throw new Error(`${err.message}; stderr: ${second.stderr()}`);
        },
      );
      // Let any second answer that would come arrive.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const byChat = (chat: number) => tg.sent.filter((m) => Number(m.chat_id) === chat).map((m) => m.text);
      expect(byChat(4001)).toEqual(['Ответ на: Не работает VPN']);
      expect(byChat(4002)).toEqual(['Ответ на: Нужен пропуск']);
      expect(byChat(4003)).toEqual(['Ответ на: Касса не печатает чек']);
      expect(byChat(4004)).toHaveLength(1);
      expect(byChat(4004)[0]!.endsWith('Почему пустая выгрузка?')).toBe(true);
      await kill(second.child);
    },
  );

  it(
    'a kill between the pieces of a long answer: after the restart it goes on from the piece not delivered',
    { timeout: 120_000 },
    async () => {
      const tg = await startFakeTelegram({ maxHoldMs: 1000 });
      // Three pieces over Telegram's 4,096 characters, each its own paragraph.
      const paragraphs = ['первая', 'вторая', 'третья'].map((word) => `${word}: ${'данные '.repeat(500).trim()}`);
      const secretary = await startFakeSecretary(() => answer(paragraphs.join('\n\n')));
      open.push(tg, secretary);
      // The first piece is delivered; the second sendMessage is read and never answered: the kill comes then.
      tg.hangNext('sendMessage', 1, 'before-headers', 1);
      const first = startCommunicatorProcess(tg, secretary);
      tg.pushMessage({ from: { id: 4101, username: 'user4101' }, text: 'Пришлите полный регламент' });
      await waitUntil(() => tg.callsOf('sendMessage').length === 2, 'the second piece on the wire', 30_000).catch(
        (err: Error) => {
          throw new Error(`${err.message}; stderr: ${first.stderr()}`);
        },
      );
      expect(tg.sent.map((m) => m.text)).toEqual([paragraphs[0]]);
      await kill(first.child);
      const second = startCommunicatorProcess(tg, secretary);
      await waitUntil(() => tg.sent.length >= 3 && tg.pending() === 0, 'the rest of the answer', 60_000).catch(
        (err: Error) => {
          throw new Error(`${err.message}; stderr: ${second.stderr()}`);
        },
      );
      await new Promise((resolve) => setTimeout(resolve, 1500));
      // Each piece once, in order: the first is not sent again, the one cut off is.
      expect(tg.sent.map((m) => m.text)).toEqual(paragraphs);
      await kill(second.child);
    },
  );
});
