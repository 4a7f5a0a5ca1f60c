// Session 36: the IMAP intake across a change of the mailbox's UIDVALIDITY (RFC 9051 §2.3.1.1: the server rebuilt its
// index, the mailbox was restored or recreated, a provider migrated it), alone and with a SIGKILL of the
// communicator, and the reconnect backoff's cap. Each test failed before its fix (docs/communicator.md, "Exactly
// once: the design"):
// - the \Answered write pending when the UIDVALIDITY changed was dropped (its UID names another message now) and the
//   mail, unseen under a new UID, was answered again; likewise after a restore that lost the flags written;
// - a SIGKILL after the reply was sent and before the flag write, then a UIDVALIDITY change: answered again;
// - mail without a Message-ID was keyed `<uidvalidity>:<uid>`: after a change, a new secretary request and a second
//   reply with another Message-ID;
// - the reconnect backoff was capped at 60 s whatever IMAP_SWEEP_INTERVAL_S said.
// Dovecot's UIDVALIDITY is changed the way an index rebuild does it: with the server stopped, its dovecot-uidlist and
// index files are removed, so it numbers the messages again under a new UIDVALIDITY when it starts (the message files
// and the flags in their names stay; a "restore" also strips the flags). A TCP proxy can hold back a STORE.
import { readdirSync, renameSync, rmSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger, createMetrics } from '@workemon/service-kit';
import { getFreePort } from '@workemon/testkit';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink } from '@workemon/testkit/smtp-sink';
import { createChannelMetrics } from '../src/channel-metrics.js';
import { emailSettings, loadConfig } from '../src/config.js';
import { createImapMailbox } from '../src/email/imap-mailbox.js';
import { startFakeSecretary } from './fake-secretary.js';
import { buildEmail, waitUntil } from './harness.js';
import { startMailBehindProxy } from './mail-behind-proxy.js';
import { communicatorProcesses, sigkill } from './process-harness.js';

const USERS = Array.from({ length: 8 }, (_, i) => ({ user: `s36f${i}@example.test`, password: `pw-s36f-${i}` }));
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

const { spawnCommunicator } = communicatorProcesses();

/** The UIDVALIDITY of `user`'s INBOX now. */
async function uidValidityOf(user: string): Promise<bigint> {
  const client = await dovecot.connect(user);
  try {
    return (await client.mailboxOpen('INBOX')).uidValidity;
  } finally {
    await client.logout();
  }
}

/**
 * Gives `user`'s INBOX a new UIDVALIDITY (Dovecot rebuilds its uidlist and indexes at the next start, numbering the
 * messages again). `forgetFlags`: the mailbox comes back as a restore from before the flags were written (the
 * Maildir flags in the file names are stripped too). Every connection is dropped meanwhile, as a server restart does.
 */
async function changeUidValidity(user: string, options: { forgetFlags?: boolean } = {}) {
  const before = await uidValidityOf(user);
  await dovecot.stop();
  // Dovecot's new UIDVALIDITY is the time in seconds: one second later it cannot be the old one.
  await new Promise((resolve) => setTimeout(resolve, 1100));
  const root = join(dovecot.dir, 'mail', user);
  for (const name of readdirSync(root))
    if (name.startsWith('dovecot') && name !== 'dovecot-keywords') rmSync(join(root, name), { force: true });
  if (options.forgetFlags)
    for (const name of readdirSync(join(root, 'cur')))
      renameSync(join(root, 'cur', name), join(root, 'cur', name.replace(/:2,.*$/, ':2,')));
  await dovecot.start();
  const after = await uidValidityOf(user);
  expect(after).not.toBe(before);
}

/** A proxy to Dovecot that can hold back a client command (and everything after it on its connection) and refuse new connections. */
async function startHoldingProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  let hold: { pattern: RegExp; hits: number } | undefined;
  let paused = false;
  const server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => undefined);
    client.on('close', () => sockets.delete(client));
    if (paused) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(upstream);
    upstream.on('error', () => undefined);
    let held = false;
    client.on('data', (d: Buffer) => {
      if (!held && hold && hold.pattern.test(d.toString('latin1'))) {
        // The command never reaches the server, and nothing more goes either way; no FIN, no RST.
        held = true;
        hold.hits += 1;
      }
      if (!held) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!held) client.write(d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    /** Client commands matching `pattern` are held from now on (undefined: none); returns how many were. */
    holdCommands: (pattern: RegExp | undefined) => {
      hold = pattern && { pattern, hits: 0 };
      const current = hold;
      return () => current?.hits ?? 0;
    },
    /** Closes every connection and refuses new ones until `resume`. */
    pause: () => {
      paused = true;
      for (const s of sockets) s.destroy();
    },
    resume: () => {
      paused = false;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The UID STORE of an answered mail's flags. */
const ANSWERED_STORE = /UID STORE .*\\Answered/i;

/** The mail of `user` with this Message-ID (or the only one) once it is flagged \Answered again. */
const answeredAgain = (user: string, messageId?: string, timeoutMs = 30_000) =>
  waitUntil(
    async () => {
      const all = await dovecot.messages({ user });
      const m = messageId ? all.find((x) => x.messageId === messageId) : all[0];
      return m?.flags.includes('\\Answered') ? m : undefined;
    },
    'the mail flagged \\Answered under the new UIDVALIDITY',
    timeoutMs,
  );

/** Lets a second reply that is on its way arrive (the assertions then count the replies). */
const settleALittle = () => new Promise((resolve) => setTimeout(resolve, 1500));

/** A communicator (in this process) reading a new user's mailbox, through a holding proxy when `proxied`. */
async function world(proxied: boolean) {
  const user = USERS[nextUser++]!.user;
  const proxy = proxied ? await startHoldingProxy(dovecot.port) : undefined;
  if (proxy) open.push(proxy);
  const started = await startMailBehindProxy({
    dovecot,
    proxyPort: proxy?.port ?? dovecot.port,
    user,
    sweepS: 2,
    open,
  });
  return { user, proxy, ...started };
}

/**
 * Holds the \Answered STORE of the next reply, waits for the reply, then changes the UIDVALIDITY with the write
 * still pending (the proxy refuses connections meanwhile, so no reconnect can apply it first) and lets the
 * communicator back in.
 */
async function replyThenChangeWithWritePending(w: Awaited<ReturnType<typeof world>>, mail: Buffer): Promise<void> {
  const held = w.proxy!.holdCommands(ANSWERED_STORE);
  await dovecot.append(mail, { user: w.user });
  await w.sink.waitForMails(1, 20_000);
  await waitUntil(() => held() > 0 || undefined, 'the \\Answered STORE held');
  w.proxy!.holdCommands(undefined);
  w.proxy!.pause();
  await changeUidValidity(w.user);
  w.proxy!.resume();
}

describe('s36: a UIDVALIDITY change after a mail was answered', () => {
  it('the flags were written, then the mailbox is restored without them under a new UIDVALIDITY: no second reply, \\Answered again', async () => {
    const w = await world(false);
    await dovecot.append(buildEmail({ messageId: '<s36-restored@client.test>' }), { user: w.user });
    await w.sink.waitForMails(1, 20_000);
    await answeredAgain(w.user, '<s36-restored@client.test>');
    await changeUidValidity(w.user, { forgetFlags: true });
    expect((await dovecot.messages({ user: w.user }))[0]!.flags).not.toContain('\\Answered');

    const m = await answeredAgain(w.user, '<s36-restored@client.test>');
    await settleALittle();
    expect(m.flags).toEqual(expect.arrayContaining(['\\Seen', '\\Answered', '$WorkemonReplied']));
    expect(
      w.sink.mails.map((x) => x.header('message-id')),
      'one reply (a second one would carry the same Message-ID)',
    ).toHaveLength(1);
    expect(w.secretary.calls).toHaveLength(1);
    // The mailbox's mail is passed on as the IMAP intake (the secretary's audit rows: event_provider).
    expect(w.secretary.calls[0]!.intake).toBe('imap');
  }, 60_000);

  it('the \\Answered write is pending when the UIDVALIDITY changes (dropped): no second reply, \\Answered re-applied', async () => {
    const w = await world(true);
    await replyThenChangeWithWritePending(w, buildEmail({ messageId: '<s36-pending@client.test>' }));

    const m = await answeredAgain(w.user, '<s36-pending@client.test>');
    await settleALittle();
    expect(m.flags).toEqual(expect.arrayContaining(['\\Seen', '\\Answered', '$WorkemonReplied']));
    expect(w.sink.mails).toHaveLength(1);
    expect(w.secretary.calls).toHaveLength(1);
  }, 60_000);
});

describe('s36 review: the durable record decides, for this sender', () => {
  it('a restore while the record cannot be read (500): the mail waits unseen, then gets its flags back, never a second reply', async () => {
    const w = await world(false);
    await dovecot.append(buildEmail({ messageId: '<s36-lookup-down@client.test>' }), { user: w.user });
    await w.sink.waitForMails(1, 20_000);
    await answeredAgain(w.user, '<s36-lookup-down@client.test>');
    w.secretary.lookupFailure = 500;
    await changeUidValidity(w.user, { forgetFlags: true });
    const calls = w.secretary.deliveryCalls;
    await waitUntil(() => w.secretary.deliveryCalls >= calls + 2 || undefined, 'two failed look-ups', 30_000);
    // The analysis works, but the mail is not asked about nor answered while its record cannot be read.
    expect((await dovecot.messages({ user: w.user }))[0]!.flags).not.toContain('\\Seen');
    expect(w.sink.mails).toHaveLength(1);
    expect(w.secretary.calls).toHaveLength(1);

    w.secretary.lookupFailure = undefined;
    const m = await answeredAgain(w.user, '<s36-lookup-down@client.test>');
    await settleALittle();
    expect(m.flags).toEqual(expect.arrayContaining(['\\Seen', '\\Answered', '$WorkemonReplied']));
    expect(w.sink.mails).toHaveLength(1);
    expect(w.secretary.calls).toHaveLength(1);
  }, 90_000);

  it('another sender reusing an answered Message-ID (its answered copy gone) is answered, not silenced as a duplicate', async () => {
    const w = await world(false);
    const id = '<s36-reused@client.test>';
    await dovecot.append(buildEmail({ messageId: id, from: 'Alice <alice@client.test>', body: 'Нужен VPN.\r\n' }), {
      user: w.user,
    });
    await w.sink.waitForMails(1, 20_000);
    await answeredAgain(w.user, id);
    // Someone archives the answered mail; a stranger sends another mail under the same Message-ID.
    const client = await dovecot.connect(w.user);
    try {
      await client.mailboxOpen('INBOX');
      await client.messageDelete('1:*');
    } finally {
      await client.logout();
    }
    await dovecot.append(
      buildEmail({ messageId: id, from: 'Bob <bob@other.test>', subject: 'Принтер', body: 'Принтер не печатает.\r\n' }),
      { user: w.user },
    );
    const [, second] = await w.sink.waitForMails(2, 20_000);
    expect(w.secretary.calls.map((c) => c.username)).toEqual(['alice@client.test', 'bob@other.test']);
    expect(second!.envelope.to).toEqual(['bob@other.test']);
  }, 60_000);
});

describe('s36: mail without a Message-ID across a UIDVALIDITY change', () => {
  it.each([
    ['its \\Answered write pending at the change', 'pending'],
    ['the mailbox restored without its flags', 'restored'],
  ] as const)(
    '%s: exactly one reply, one secretary request',
    async (_what, kind) => {
      const w = await world(kind === 'pending');
      const mail = buildEmail({ messageId: null, subject: `Без идентификатора (${kind})` });
      if (kind === 'pending') await replyThenChangeWithWritePending(w, mail);
      else {
        await dovecot.append(mail, { user: w.user });
        await w.sink.waitForMails(1, 20_000);
        await answeredAgain(w.user);
        await changeUidValidity(w.user, { forgetFlags: true });
      }

      const m = await answeredAgain(w.user);
      await settleALittle();
      expect(m.flags).toEqual(expect.arrayContaining(['\\Seen', '\\Answered']));
      expect(
        w.sink.mails.map((x) => x.header('message-id')),
        'a second reply (another Message-ID: it was derived from <uidvalidity>:<uid>)',
      ).toHaveLength(1);
      expect(w.secretary.calls).toHaveLength(1);
      // The secretary's key of the request is the mail's content, not a UID.
      expect(w.secretary.calls[0]!.message_id).toMatch(/^sha256:[0-9a-f]{64}$/);
    },
    60_000,
  );
});

describe('s36: SIGKILL between the reply and the flag write, then a UIDVALIDITY change', () => {
  it('the real communicator process is killed with the \\Answered STORE on the wire; after the change and a restart: exactly one reply', async () => {
    const user = USERS[nextUser++]!;
    const proxy = await startHoldingProxy(dovecot.port);
    const sink = await startSmtpSink();
    const secretary = await startFakeSecretary();
    open.push(proxy, sink, secretary);
    const env = {
      IMAP_HOST: '127.0.0.1',
      IMAP_PORT: String(proxy.port),
      IMAP_SECURE: 'false',
      IMAP_USER: user.user,
      IMAP_PASSWORD: user.password,
      SMTP_HOST: '127.0.0.1',
      SMTP_PORT: String(sink.port),
      SMTP_SECURE: 'false',
      // Commands get 10 s: the held STORE does not time out (and get applied after a reconnect) before the kill.
      IMAP_SWEEP_INTERVAL_S: '20',
    };
    const held = proxy.holdCommands(ANSWERED_STORE);
    const first = spawnCommunicator(secretary.url, env);
    await dovecot.append(buildEmail({ messageId: '<s36-sigkill@client.test>' }), { user: user.user });
    await sink.waitForMails(1, 30_000);
    await waitUntil(() => held() > 0 || undefined, 'the \\Answered STORE held', 20_000);
    // The durable record goes out with the STORE; give it its round trip (before the fix there was none).
    await waitUntil(() => secretary.handled.size > 0 || undefined, 'a handled record', 3000).catch(() => undefined);
    await sigkill(first.child);
    proxy.holdCommands(undefined);
    await changeUidValidity(user.user);

    const second = spawnCommunicator(secretary.url, env);
    const m = await answeredAgain(user.user, '<s36-sigkill@client.test>', 40_000).catch((err: Error) => {
      throw new Error(`${err.message}; stderr: ${second.stderr()}`);
    });
    await settleALittle();
    expect(m.flags).toEqual(expect.arrayContaining(['\\Seen', '\\Answered', '$WorkemonReplied']));
    expect(sink.mails.map((x) => x.header('in-reply-to'))).toEqual(['<s36-sigkill@client.test>']);
    await sigkill(second.child);
  }, 120_000);
});

describe('s36: the reconnect backoff cap follows IMAP_SWEEP_INTERVAL_S', () => {
  /** The delays (ms) the mailbox logs between connection attempts to a closed port, `attempts` of them. */
  async function reconnectDelays(sweepS: number, attempts: number): Promise<number[]> {
    const port = await getFreePort();
    const settings = emailSettings(
      loadConfig({
        IMAP_HOST: '127.0.0.1',
        IMAP_PORT: String(port),
        IMAP_SECURE: 'false',
        IMAP_USER: 'bot@example.test',
        IMAP_PASSWORD: 'secret',
        IMAP_SWEEP_INTERVAL_S: String(sweepS),
      }),
    )!;
    const logger = createLogger({ service: 'communicator', level: 'error' });
    const info = vi.spyOn(logger, 'info');
    // The jitter's draw: 0 (no wait) until the last attempt, then 1 (the full step, i.e. the cap).
    let draws = 0;
    const mailbox = createImapMailbox({
      settings,
      logger,
      metrics: createChannelMetrics(createMetrics('communicator')),
      onChange: () => undefined,
      random: () => (++draws < attempts ? 0 : 1),
    });
    const delays = () =>
      info.mock.calls
        .map((c) => /^IMAP reconnecting in (\d+) ms$/.exec(String(c[0]))?.[1])
        .filter((d): d is string => d !== undefined)
        .map(Number);
    mailbox.start();
    await waitUntil(() => delays().length >= attempts || undefined, `${attempts} reconnect delays`, 8000).catch(
      () => undefined,
    );
    await mailbox.stop();
    return delays();
  }

  it('a cap of one sweep interval, at least 5 s and at most 5 min (was 60 s for any interval)', async () => {
    // 20 attempts: the exponential step (1 s × 2^19) is far past any cap.
    for (const [sweepS, cap] of [
      [1, 5_000],
      [20, 20_000],
      [60, 60_000],
      [600, 300_000],
    ] as const) {
      const delays = await reconnectDelays(sweepS, 20);
      expect(delays, `IMAP_SWEEP_INTERVAL_S=${sweepS}`).toHaveLength(20);
      expect(delays.at(-1), `IMAP_SWEEP_INTERVAL_S=${sweepS}`).toBe(cap);
    }
  }, 60_000);
});
