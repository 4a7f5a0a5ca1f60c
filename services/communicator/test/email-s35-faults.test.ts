// Session 35: the IMAP intake under connection faults of the M14 kind (a connection that stops without closing)
// and its neighbours, found by a break round; each test failed before its fix (docs/communicator.md, "IMAP"):
// - the server says `* BYE` and the close never arrives: imapflow kept the client "usable" and answered every
//   SEARCH `false` without sending it, read as the server refusing, for its 5-minute socket timeout;
// - a slow but healthy link: a backlog's coalesced FETCH outlasted the per-command deadline at every sweep, so no
//   mail was ever answered (nor set aside);
// - a connection that goes silent at the "already answered?" SEARCH five times, or a header SEARCH that takes
//   longer than the deadline while Dovecot reports its progress: the mail was set aside after MAX_ATTEMPTS although
//   nothing was wrong with it.
// A TCP proxy between the communicator and a real Dovecot can inject `* BYE` and then hang without closing,
// throttle the server's bytes, hold a command's answer while sending progress lines, and go silent on chosen
// commands.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, connect, type Socket } from 'node:net';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startMailBehindProxy } from './mail-behind-proxy.js';
import { buildEmail, waitUntil } from './harness.js';

const USERS = Array.from({ length: 6 }, (_, i) => ({ user: `s35f${i}@example.test`, password: `pw-s35f-${i}` }));
let dovecot: DovecotServer;
let nextUser = 0;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];

beforeAll(async () => {
  dovecot = await startDovecot(USERS);
}, 60_000);
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});
afterAll(async () => {
  await dovecot?.destroy();
});

type Conn = {
  client: Socket;
  upstream: Socket;
  /** Nothing forwarded client→server. */
  c2sDead: boolean;
  /** Nothing forwarded server→client. */
  s2cDead: boolean;
  /** Server→client bytes waiting for the throttle. */
  backlog: Buffer[];
  timer?: NodeJS.Timeout;
};

/** A proxy to Dovecot with fault switches (see the file header). */
async function startFaultProxy(targetPort: number) {
  const conns: Conn[] = [];
  let bytesPerTick = 0; // 0: no throttle
  const tickMs = 50;
  let trap: { pattern: RegExp; left: number; hits: number; dir: 'both' | 'c2s' | 's2c' } | undefined;
  let slow: { pattern: RegExp; holdMs: number; progressMs: number; count: number } | undefined;
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    const conn: Conn = { client, upstream, c2sDead: false, s2cDead: false, backlog: [] };
    conns.push(conn);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    let holding: { tag: string; until: number; buf: Buffer[]; progress: NodeJS.Timeout } | undefined;
    const release = () => {
      if (!holding) return;
      clearInterval(holding.progress);
      for (const b of holding.buf) client.write(b);
      holding = undefined;
    };
    client.on('data', (d: Buffer) => {
      if (conn.c2sDead) return;
      upstream.write(d);
      const text = d.toString('latin1');
      if (slow && !holding && slow.pattern.test(text)) {
        slow.count += 1;
        let pct = 0;
        const progress = setInterval(() => {
          pct = Math.min(99, pct + 15);
          if (!client.destroyed) client.write(`* OK Searched ${pct}% of the mailbox, ETA 0:02\r\n`);
        }, slow.progressMs);
        holding = { tag: text.split(' ')[0]!, until: Date.now() + slow.holdMs, buf: [], progress };
        client.once('close', () => holding && clearInterval(holding.progress));
      }
      if (trap && trap.left > 0 && trap.pattern.test(d.toString('latin1'))) {
        trap.left -= 1;
        trap.hits += 1;
        // The command reached the server; from now on nothing more that way (or either way), and no FIN/RST.
        if (trap.dir !== 's2c') conn.c2sDead = true;
        if (trap.dir !== 'c2s') conn.s2cDead = true;
      }
    });
    const pumpOut = () => {
      if (conn.s2cDead) return;
      let budget = bytesPerTick;
      while (budget > 0 && conn.backlog.length) {
        const head = conn.backlog[0]!;
        const part = head.subarray(0, budget);
        client.write(part);
        budget -= part.length;
        if (part.length === head.length) conn.backlog.shift();
        else conn.backlog[0] = head.subarray(part.length);
      }
      if (conn.backlog.length) conn.timer = setTimeout(pumpOut, tickMs);
      else conn.timer = undefined;
    };
    upstream.on('data', (d: Buffer) => {
      if (conn.s2cDead) return;
      if (holding) {
        const h = holding;
        h.buf.push(d);
        if (new RegExp(`(^|\\r\\n)${h.tag} `).test(Buffer.concat(h.buf).toString('latin1')))
          setTimeout(() => holding === h && release(), Math.max(0, h.until - Date.now()));
        return;
      }
      if (!bytesPerTick) {
        client.write(d);
        return;
      }
      conn.backlog.push(d);
      if (!conn.timer) pumpOut();
    });
    client.on('close', () => {
      clearTimeout(conn.timer);
      upstream.destroy();
    });
    upstream.on('close', () => {
      // A dead path forwards no FIN either.
      if (!conn.s2cDead) client.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => conns.length,
    /** The server says `* BYE …` on every open connection, then the path goes silent (the FIN is lost). */
    byeAndHang: () => {
      for (const c of conns) {
        if (c.client.destroyed) continue;
        c.client.write('* BYE Disconnected for inactivity.\r\n');
        c.c2sDead = true;
        c.s2cDead = true;
      }
    },
    /** The server says `* BYE …` and closes, as Dovecot does. */
    byeAndClose: () => {
      for (const c of conns) {
        if (c.client.destroyed) continue;
        c.client.end('* BYE Disconnected for inactivity.\r\n');
        c.upstream.destroy();
      }
    },
    /** Server→client throughput from now on, on every connection (0: unlimited). */
    throttle: (bytesPerSecond: number) => {
      bytesPerTick = Math.floor((bytesPerSecond * tickMs) / 1000);
    },
    /** The next `times` client commands matching `pattern` reach the server, then their connection goes silent. */
    silenceOn: (pattern: RegExp, times = 1, dir: 'both' | 'c2s' | 's2c' = 'both') => {
      trap = { pattern, left: times, hits: 0, dir };
      return () => trap?.hits ?? 0;
    },
    /** The server answers commands matching `pattern` only after `holdMs`, saying `* OK Searched N%…` meanwhile. */
    slowAnswers: (pattern: RegExp, holdMs: number, progressMs = 500) => {
      slow = { pattern, holdMs, progressMs, count: 0 };
      return () => slow?.count ?? 0;
    },
    close: async () => {
      for (const c of conns) {
        clearTimeout(c.timer);
        c.client.destroy();
        c.upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A user's mailbox behind a fault proxy, an SMTP sink, a fake secretary and a communicator on them, after its first
 * sweep. `before` runs on the user before the communicator starts (mail already waiting); `throttle` (bytes/s) slows
 * the server's answers from the start.
 */
async function world(
  env: Record<string, string> = {},
  options: { before?: (user: string) => Promise<void>; throttle?: number } = {},
) {
  const user = USERS[nextUser++]!.user;
  await options.before?.(user);
  const proxy = await startFaultProxy(dovecot.port);
  if (options.throttle) proxy.throttle(options.throttle);
  open.push(proxy);
  const started = await startMailBehindProxy({ dovecot, proxyPort: proxy.port, user, sweepS: 2, env, open });
  return { user, proxy, ...started };
}

/** The mail `uid` of `user` once it is answered or set aside (its flags say which). */
const settled = (user: string, uid: number, timeoutMs: number) =>
  waitUntil(
    async () => {
      const m = (await dovecot.messages({ user })).find((x) => x.uid === uid);
      return m && (m.flags.includes('\\Answered') || m.flags.includes('$WorkemonFailed')) ? m : undefined;
    },
    'the mail answered or set aside',
    timeoutMs,
  );

describe('s35 M14 kind: a BYE whose close never arrives', () => {
  it('`* BYE` then silence (no FIN): the mail is answered within a few sweep intervals, not after 5 minutes', async () => {
    const { user, proxy, sink, c } = await world();
    proxy.byeAndHang();
    const started = Date.now();
    await dovecot.append(buildEmail({ messageId: '<s35-bye-hang@client.test>' }), { user });
    // Sweeps every 2 s; a connection that stopped answering is to be found by the next sweep's deadline.
    const got = await sink.waitForMails(1, 20_000).catch(() => undefined);
    const health = c.email!.health();
    expect(
      got?.[0]?.header('in-reply-to'),
      `no reply after ${Date.now() - started} ms; connections ${proxy.connections()}, connected ${health.connected}, ` +
        `sweep errors ${await c.metric('workemon_channel_poll_errors_total', { channel: 'email', kind: 'sweep' })}`,
    ).toBe('<s35-bye-hang@client.test>');
  }, 40_000);
});

/** A mail with a text request and a ~1.5 MB PDF attachment (base64). */
function bigMail(i: number, tag: string): Buffer {
  const attachment = Buffer.alloc(1_100_000, 7).toString('base64').replace(/.{76}/g, '$&\r\n');
  const boundary = `b${i}`;
  const body =
    `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nПришлите, пожалуйста, акт сверки ${i}.\r\n` +
    `--${boundary}\r\nContent-Type: application/pdf; name="scan${i}.pdf"\r\nContent-Transfer-Encoding: base64\r\n` +
    `Content-Disposition: attachment; filename="scan${i}.pdf"\r\n\r\n${attachment}\r\n--${boundary}--\r\n`;
  return buildEmail({
    from: `slow${i}@client.test`,
    messageId: `<s35-${tag}-${i}@client.test>`,
    contentType: `multipart/mixed; boundary="${boundary}"`,
    transferEncoding: '7bit',
    body,
  });
}

describe('s35 M14 kind: a slow but healthy link (the FETCH keeps delivering bytes)', () => {
  it(
    'three 1.5 MB mails waiting, 1 MB/s: each alone fits the deadline, the coalesced FETCH does not — still all answered',
    { timeout: 90_000 },
    async () => {
      // IMAP_SWEEP_INTERVAL_S=4: every command gets 2 s. One mail takes ~1.5 s over this link; the three in one
      // UID FETCH (coalesced) ~4.5 s. Production scale: 60 s sweeps → 30 s, e.g. 16 mails × 2 MB at 8 Mbit/s.
      const { user, proxy, sink, c } = await world(
        { IMAP_SWEEP_INTERVAL_S: '4' },
        {
          throttle: 1_000_000,
          before: async (user) => {
            for (let i = 0; i < 3; i++) await dovecot.append(bigMail(i, 'slow'), { user });
            // A small mail waiting beside them: caught in the same batch.
            const small = buildEmail({ from: 'small@client.test', messageId: '<s35-slow-small@client.test>' });
            await dovecot.append(small, { user });
          },
        },
      );
      const got = await sink.waitForMails(4, 60_000).catch(() => undefined);
      const msgs = await dovecot.messages({ user });
      expect(
        got?.length ?? sink.mails.length,
        `replies ${sink.mails.length}/4 after 60 s; connections ${proxy.connections()}; timeouts ` +
          `${await c.metric('workemon_channel_poll_errors_total', { channel: 'email', kind: 'timeout' })}; flags ` +
          JSON.stringify(msgs.map((m) => m.flags)),
      ).toBe(4);
    },
  );
});

describe("s35 M14 kind: connection faults are not the mail's failures", () => {
  it(
    'the connection goes silent at the "already answered?" SEARCH five times: the mail is answered, not set aside',
    { timeout: 90_000 },
    async () => {
      const { user, proxy, sink, secretary, c } = await world();
      // Five silent drops (MAX_ATTEMPTS default 5), each on a new connection: a flaky path, nothing wrong with the mail.
      const hits = proxy.silenceOn(/UID SEARCH .*HEADER Message-ID/i, 5);
      const uid = await dovecot.append(buildEmail({ messageId: '<s35-flaky@client.test>' }), { user });
      await waitUntil(() => hits() >= 5 || undefined, 'five silent SEARCHes', 60_000);
      const answered = await settled(user, uid, 30_000);
      expect(
        answered.flags,
        `failed metric ${await c.metric('workemon_email_failed_total')}, replies ${sink.mails.length}, secretary calls ${secretary.calls.length}`,
      ).not.toContain('$WorkemonFailed');
      expect(sink.mails).toHaveLength(1);
    },
  );
});

describe("s35 M14 kind: a slow but working server (a big mailbox's header SEARCH)", () => {
  it(
    'the "already answered?" SEARCH takes 3 s with progress lines (2 s per command): the mail is answered, not set aside',
    { timeout: 90_000 },
    async () => {
      const { user, proxy, sink, secretary, c } = await world({ IMAP_SWEEP_INTERVAL_S: '4' });
      // Dovecot reports a long SEARCH with untagged `* OK Searched N% of the mailbox, ETA …` lines: the connection
      // is alive and talking. SEARCH HEADER is not indexed, so on a mailbox of tens of thousands of kept answered
      // mails it takes seconds (production deadline: 30 s).
      const slowCount = proxy.slowAnswers(/UID SEARCH .*HEADER Message-ID/i, 3000);
      const uid = await dovecot.append(buildEmail({ messageId: '<s35-slow-search@client.test>' }), { user });
      const final = await settled(user, uid, 75_000);
      expect(
        final.flags,
        `slow SEARCHes ${slowCount()}, connections ${proxy.connections()}, replies ${sink.mails.length}, secretary calls ${secretary.calls.length}, failed ${await c.metric('workemon_email_failed_total')}`,
      ).not.toContain('$WorkemonFailed');
      expect(sink.mails).toHaveLength(1);
    },
  );
});
