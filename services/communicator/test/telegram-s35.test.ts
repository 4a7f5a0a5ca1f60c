// Session 35: the Telegram channel under what the Bot API and the network really do (a break round; every test here
// failed before its fix):
// - update_id restarted below the offset after a quiet week (Bot API, Update.update_id): the bot ignored every
//   update from then on and polled in a hot loop, until restarted;
// - every connection dropped silently (a NAT or egress failover): each dead keep-alive connection in the pool cost
//   one whole call deadline before a new connection was tried (minutes for a long poll). Production's root is
//   https, where telegraf's shared keep-alive agent has no idle timeout; the test runs over http through the
//   channel's own keep-alive agent, which has none either (Node's global http agent, used for http before, closes
//   idle sockets after 5 s and hid it);
// - a slow but live link: a large backlog's getUpdates answer took longer than the call's deadline, was cut off
//   mid-body and asked for again whole, for ever;
// - T10: the poll that should bring a long paste's second part (or a greeting's question) went silent or met a 409:
//   the parts in hand were answered alone, then the rest apart.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { answer, startFakeSecretary } from './fake-secretary.js';
import { startCommunicator, waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup, track } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '1500' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sentTo = (tg: FakeTelegram, chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId);

// Telegram Desktop cuts a long paste at the best paragraph break after half the limit (~2300 + ~2500 here).
const partA = 'Журнал авторизаций кошельков за октябрь, первая выгрузка. '.repeat(40).trim();
const partB = 'Строки с пустым статусом повторяются каждые пять минут. '.repeat(45).trim() + ' Почему так?';

/**
 * A fake Bot API (with `before` run on it first), a fake secretary and a communicator that reaches the fake through
 * the proxy `makeProxy` starts in front of it; all closed after the test.
 */
async function behindProxy<P extends { url: string; close: () => Promise<void> }>(
  makeProxy: (url: string) => Promise<P>,
  env: Record<string, string>,
  before: (tg: FakeTelegram) => void = () => undefined,
) {
  const tg = await startFakeTelegram();
  const secretary = await startFakeSecretary();
  track(tg);
  track(secretary);
  before(tg);
  const proxy = await makeProxy(tg.url);
  track(proxy);
  const communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    telegram: { ...tg, url: proxy.url },
    env,
  });
  track(communicator);
  return { tg, secretary, proxy };
}

/** Waits until the channel polls with timeout 0: it holds an update (the first part) and asks for more at once. */
const busyPoll = (tg: FakeTelegram) =>
  waitUntil(() => tg.callsOf('getUpdates').some((c) => Number(c.params['timeout']) === 0), 'a poll while busy');

describe('T10 kind: a split paste or a greeting across a getUpdates fault', () => {
  const countsLengths = (r: { request: string }) => answer(`Принято: ${r.request.length} символов`, r.request);

  /**
   * Part 1 is fetched, then `fault` strikes the poll that should bring part 2, sent about a second later (the
   * client's split): one request seeing both parts, one answer.
   */
  async function splitPasteAcross(env: Record<string, string>, fault: (tg: FakeTelegram) => Promise<void>, id: number) {
    const { tg, secretary } = await setup({ env });
    secretary.decide = countsLengths;
    const from = { id, username: `u${id}` };
    tg.pushMessage({ from, text: partA });
    await busyPoll(tg);
    await fault(tg);
    await sleep(700);
    tg.pushMessage({ from, text: partB });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'the paste handled', 40_000);
    await sleep(1000);
    expect(secretary.calls.map((c) => c.request.length)).toEqual([partA.length + 1 + partB.length]);
    expect(sentTo(tg, from.id)).toHaveLength(1);
  }

  it('the poll that should bring part 2 goes silent: one request seeing both parts, one answer', async () => {
    await splitPasteAcross(
      { TELEGRAM_REQUEST_TIMEOUT: '8s' },
      async (tg) => {
        tg.hangNext('getUpdates', 1);
        await waitUntil(() => tg.hanging() === 1, 'a poll hanging');
      },
      35011,
    );
  });

  it('a 409 Conflict right after part 1: one request seeing both parts', async () => {
    await splitPasteAcross(
      { TELEGRAM_CONFLICT_WAIT: '5s' },
      async (tg) => tg.failNext('getUpdates', { code: 409 }),
      35013,
    );
  });

  it('a greeting, then the question a second later, across a silent poll: one request, one answer', async () => {
    const { tg, secretary } = await setup({ env: { TELEGRAM_REQUEST_TIMEOUT: '8s' } });
    const from = { id: 35014, username: 'u35014' };
    tg.pushMessage({ from, text: 'Добрый день!' });
    await busyPoll(tg);
    tg.hangNext('getUpdates', 1);
    await waitUntil(() => tg.hanging() === 1, 'a poll hanging');
    await sleep(700);
    tg.pushMessage({ from, text: 'Не приходит выгрузка авторизаций за октябрь, почему?' });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, from.id).length >= 1, 'handled', 40_000);
    await sleep(1000);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Добрый день!\nНе приходит выгрузка авторизаций за октябрь, почему?',
    ]);
    expect(sentTo(tg, from.id)).toHaveLength(1);
  });
});

describe('update_id restarted below the offset after a quiet week', () => {
  it('the updates of the new sequence are answered and confirmed, without a hot loop of polls', async () => {
    const { tg, secretary } = await setup({ env: { TELEGRAM_MERGE_WINDOW_MS: '300' } });
    const a = { id: 35301, username: 'u35301' };
    const first = tg.pushMessage({ from: a, text: 'Нужен отчёт по возвратам за октябрь' });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, a.id).length === 1, 'the last message before the week');
    // A week without updates: the next update_id is chosen anew, here 900 below the old sequence.
    tg.restartUpdateIds(first.update_id - 900);
    const pollsBefore = tg.callsOf('getUpdates').length;
    const b = { id: 35302, username: 'u35302' };
    tg.pushMessage({ from: b, text: 'Сколько дней хранится лог авторизаций?' });
    tg.pushMessage({ from: a, text: 'И ещё: где выгрузка за ноябрь?' });
    await waitUntil(() => sentTo(tg, b.id).length === 1 && sentTo(tg, a.id).length === 2, 'both answered', 20_000);
    // …and confirmed (Telegram forgets them), not returned for ever.
    await waitUntil(() => tg.pending() === 0, 'confirmed', 5000);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Нужен отчёт по возвратам за октябрь',
      'Сколько дней хранится лог авторизаций?',
      'И ещё: где выгрузка за ноябрь?',
    ]);
    // A message after them is answered too: the channel follows the new sequence.
    const c = { id: 35303, username: 'u35303' };
    tg.pushMessage({ from: c, text: 'А за сентябрь?' });
    await waitUntil(() => sentTo(tg, c.id).length === 1, 'the next message answered');
    // Polls were long polls again, not a loop (the scratch run saw 64,180 calls in 20 s).
    expect(tg.callsOf('getUpdates').length - pollsBefore).toBeLessThan(50);
  });
});

/**
 * A TCP proxy in front of the fake Bot API. `blackhole()` stops forwarding on every connection open now, without
 * closing any (flows a NAT forgot: no FIN, no RST); connections made later work. `deadWrites()` counts the requests
 * written into such dead connections: each one is a call that waits out its whole deadline.
 */
async function blackholeProxy(target: string) {
  const upstream = new URL(target);
  const conns = new Set<{ client: Socket; up: Socket; dead: boolean }>();
  let deadWrites = 0;
  const server = createTcpServer((client) => {
    const up = connect(Number(upstream.port), upstream.hostname);
    const c = { client, up, dead: false };
    conns.add(c);
    client.on('data', (d: Buffer) => {
      if (!c.dead) up.write(d);
      else if (/^(GET|POST) /.test(d.toString('latin1', 0, 5))) deadWrites += 1;
    });
    up.on('data', (d: Buffer) => void (!c.dead && client.write(d)));
    client.on('error', () => undefined);
    up.on('error', () => undefined);
    client.on('close', () => {
      up.destroy();
      conns.delete(c);
    });
    up.on('close', () => void (!c.dead && client.destroy()));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    live: () => [...conns].filter((c) => !c.dead).length,
    blackhole: () => {
      for (const c of conns) c.dead = true;
    },
    deadWrites: () => deadWrites,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) {
          c.client.destroy();
          c.up.destroy();
        }
        server.close(() => resolve());
      }),
  };
}

describe('every connection to the Bot API dropped silently', () => {
  it('after one call runs out of time the pooled connections are given up, not tried one deadline each', async () => {
    // Long poll: 1 s hold + 3 s (production: 50 s + 15 s).
    const { tg, secretary, proxy } = await behindProxy(blackholeProxy, {
      TELEGRAM_REQUEST_TIMEOUT: '3s',
      TELEGRAM_MERGE_WINDOW_MS: '300',
    });
    // A busy minute: eight people ask at once; answers and typing indicators go out side by side.
    secretary.delayMs = 300;
    for (let i = 0; i < 8; i += 1)
      tg.pushMessage({ from: { id: 35400 + i, username: `u354${i}` }, text: `Вопрос ${i}` });
    await waitUntil(() => tg.sent.length === 8 && tg.pending() === 0, 'the busy minute answered', 20_000);
    secretary.delayMs = 0;
    await sleep(300);
    expect(proxy.live()).toBeGreaterThan(2);
    proxy.blackhole();
    const z = { id: 35499, username: 'u35499' };
    tg.pushMessage({ from: z, text: 'Сколько дней хранится лог авторизаций?' });
    await waitUntil(() => sentTo(tg, z.id).length === 1, "Z's answer", 60_000);
    // The long poll in flight at the drop, and at most one call that took a dead connection before the pool was
    // given up (before: one per pooled connection).
    expect(proxy.deadWrites()).toBeLessThanOrEqual(2);
  });
});

/** Delivers getUpdates answers at `bytesPerS` (headers at once, the body in slices every 100 ms). */
async function throttleProxy(target: string, bytesPerS: number) {
  const upstream = new URL(target);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const up = httpRequest(
        { host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        (ur) => {
          const got: Buffer[] = [];
          ur.on('data', (c: Buffer) => got.push(c));
          ur.on('end', () => {
            const body = Buffer.concat(got);
            const headers: Record<string, unknown> = { ...ur.headers, 'content-length': String(body.length) };
            delete headers['transfer-encoding'];
            res.writeHead(ur.statusCode ?? 502, headers as never);
            if (!/getUpdates/.test(req.url ?? '')) return void res.end(body);
            const slice = Math.max(1, Math.floor(bytesPerS / 10));
            let at = 0;
            const timer = setInterval(() => {
              if (res.destroyed) return clearInterval(timer);
              res.write(body.subarray(at, at + slice));
              at += slice;
              if (at >= body.length) {
                clearInterval(timer);
                res.end();
              }
            }, 100);
          });
        },
      );
      up.on('error', () => res.destroy());
      up.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('a slow but live link and a backlog', () => {
  it('a getUpdates answer larger than the link carries within the deadline is asked for in smaller batches', async () => {
    const texts = Array.from({ length: 16 }, (_, i) => `${i} ${'Строки с пустым статусом повторяются. '.repeat(100)}`);
    // The messages were sent while the bot was away: they wait at Telegram (about 120 KB of updates, 3 s here).
    const { tg, secretary } = await behindProxy(
      (url) => throttleProxy(url, 40_000),
      { TELEGRAM_REQUEST_TIMEOUT: '1s', RATE_LIMIT_PER_HOUR: '1000', TELEGRAM_MERGE_WINDOW_MS: '300' },
      (fake) => texts.forEach((text, i) => fake.pushMessage({ from: { id: 35600 + i, username: `u356${i}` }, text })),
    );
    await waitUntil(() => tg.sent.length === 16, 'all 16 answered', 40_000);
    expect(secretary.calls).toHaveLength(16);
    // The first polls were cut off with 100 asked; later ones asked for fewer.
    expect(tg.callsOf('getUpdates').some((c) => Number(c.params['limit']) < 100)).toBe(true);
  });
});
