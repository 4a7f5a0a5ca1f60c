// Workemon beyond one machine, on one machine: three secretaries, two communicators and two workers of each LLM
// service as real processes (their main.ts under tsx) against one PostgreSQL database, one Dovecot mailbox, an SMTP
// listener and one fake Bot API. Mail and Telegram messages keep arriving while the communicator that polls is
// SIGKILLed: the other one must take over what it polled within the poller lease's time, and every
// message must be answered, mail exactly once (one distinct reply), Telegram at most once more inside the one
// documented window (the send in flight at the kill, per chat).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '@workemon/testkit';
import { bearer } from '@workemon/testkit/api-keys';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startFakeLlm, type FakeLlm } from '@workemon/testkit/fake-llm';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { createTestDatabase } from '@workemon/testkit/postgres';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import type {} from '@workemon/testkit/global-setup';
import { startService as startProcess, stopServices, type Proc } from './processes.js';

const LEASE_TTL_MS = 3000;
const MAILS = 24;
const UPDATES = 24;
const CHATS = 6;

const procs: Proc[] = [];
let db: { url: string; drop: () => Promise<void> };
let llm: FakeLlm;
let dovecot: DovecotServer;
let sink: SmtpSink;
let tg: FakeTelegram;

const startService = (service: string, name: string, env: Record<string, string>) =>
  startProcess(procs, service, name, env);

type Health = { checks: Record<string, { status: string; detail?: string }> };
// The checks' details (standby notes among them) are for admin and service keys (s27).
const health = async (p: Proc) =>
  (await (await fetch(`${p.url}/health`, { headers: bearer('service') })).json()) as Health;
/** The channels a communicator can hold a poller lease for (its /health checks of the same names). */
const CHANNELS = ['imap', 'telegram'] as const;
/** Per channel, whether a communicator polls it (its check does not say "standby"). */
const polled = async (p: Proc) => {
  const { checks } = await health(p);
  return Object.fromEntries(CHANNELS.map((c) => [c, !checks[c]?.detail?.startsWith('standby')])) as Record<
    (typeof CHANNELS)[number],
    boolean
  >;
};
/** Whether a communicator polls both the mailbox and the bot. */
const pollsBoth = async (p: Proc) => Object.values(await polled(p)).every(Boolean);

function mail(i: number): string {
  return [
    `From: Сотрудник ${i} <employee${i}@multi.example>`,
    'To: bot@example.test',
    `Subject: Запрос ${i}`,
    `Message-ID: <multi-${i}@multi.example>`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Подскажите, пожалуйста, где посмотреть отчёт по операциям кошельков за октябрь, номер ${i}`,
    '',
  ].join('\r\n');
}

let communicators: Proc[];

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'multi_replica');
  llm = await startFakeLlm({ wire: 'openai' });
  llm.reply(() => ({
    is_enough: true,
    response: 'Отчёт лежит в витрине операций кошельков.',
    action: 'ответить сообщением',
  }));
  dovecot = await startDovecot();
  sink = await startSmtpSink();
  tg = await startFakeTelegram();
  const llmEnv = {
    LLM_PROVIDER: 'openai',
    LLM_BASE_URL: llm.url,
    LLM_API_KEY: llm.apiKey ?? '',
    LLM_MODEL: llm.model,
    LLM_MAX_RETRIES: '0',
  };
  const [guessers, analysts] = await Promise.all([
    Promise.all([0, 1].map((i) => startService('guesser', `guesser-${i}`, llmEnv))),
    Promise.all([0, 1].map((i) => startService('system-analyst', `analyst-${i}`, llmEnv))),
  ]);
  // The first secretary migrates; the others start against the migrated database (they would wait on the lock).
  const secretaries: Proc[] = [];
  for (const i of [0, 1, 2]) {
    secretaries.push(
      await startService('secretary', `secretary-${i}`, {
        DATABASE_URL: db.url,
        GUESSER_URL: guessers[i % 2]!.url,
        SYSTEM_ANALYST_URL: analysts[i % 2]!.url,
        UNKNOWN_USER_POLICY: 'reply-only',
      }),
    );
  }
  const user = dovecot.users[0]!;
  communicators = await Promise.all(
    [0, 1].map((i) =>
      startService('communicator', `communicator-${i}`, {
        SECRETARY_URL: secretaries[i]!.url,
        SECRETARY_TIMEOUT: '10s',
        POLLER_LEASE_TTL: `${LEASE_TTL_MS}ms`,
        IMAP_HOST: '127.0.0.1',
        IMAP_PORT: String(dovecot.port),
        IMAP_SECURE: 'false',
        IMAP_USER: user.user,
        IMAP_PASSWORD: user.password,
        IMAP_SWEEP_INTERVAL_S: '2',
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String(sink.port),
        SMTP_SECURE: 'false',
        TELEGRAM_BOT_TOKEN: tg.token,
        TELEGRAM_API_ROOT: tg.url,
        TELEGRAM_POLL_TIMEOUT_S: '1',
        RETRY_BASE_DELAY: '200ms',
        RATE_LIMIT_PER_HOUR: '1000',
      }),
    ),
  );
}, 240_000);

afterAll(async () => {
  await stopServices(procs);
  await tg?.close();
  await sink?.close();
  await dovecot?.destroy();
  await llm?.close();
  await db?.drop();
}, 60_000);

describe('three secretaries, two communicators, two workers of each LLM service', () => {
  it('one communicator polls each channel; when the mailbox poller is killed mid-stream the other takes over within the lease time and every message is answered', async () => {
    // Each channel is polled by exactly one of the two; the other replica is its standby. The two leases are taken
    // independently, so when both replicas start together each may take one (a legitimate split). Nine processes
    // share the two cores of a CI machine: the first leases and checks can take well over 20 s there.
    let roles: Record<(typeof CHANNELS)[number], boolean>[] = [];
    await waitFor(
      async () => {
        roles = await Promise.all(communicators.map(polled));
        return CHANNELS.every((c) => roles.filter((r) => r[c]).length === 1);
      },
      { what: 'one active communicator per channel', timeoutMs: 60_000 },
    );
    // The replica that polls the mailbox is killed; it may or may not hold the bot as well.
    const active = communicators[roles.findIndex((r) => r.imap)]!;
    const standby = communicators[roles.findIndex((r) => !r.imap)]!;
    expect((await health(standby)).checks['imap']?.detail).toMatch(/^standby/);

    // A stream of mail and Telegram messages; the active communicator dies halfway.
    const sentUpdates: { update_id: number; chat_id: number }[] = [];
    let killedAt = 0;
    for (let i = 0; i < Math.max(MAILS, UPDATES); i++) {
      if (i < MAILS) await dovecot.append(mail(i));
      if (i < UPDATES) {
        const chat = 1000 + (i % CHATS);
        const pushed = tg.pushMessage({
          text: `Где найти отчёт по операциям кошельков за октябрь? Вопрос ${i}`,
          from: { id: chat, username: `user${chat}` },
          chat: { id: chat, type: 'private' },
        });
        sentUpdates.push({ update_id: pushed.update_id, chat_id: chat });
      }
      if (i === Math.floor(MAILS / 2)) {
        // Wait until it is busy answering, then kill it (no shutdown, no lease release).
        await waitFor(() => sink.mails.length > 0 && tg.sent.length > 0, { what: 'first answers', timeoutMs: 60_000 });
        active.child.kill('SIGKILL');
        killedAt = Date.now();
      }
      await new Promise((r) => setTimeout(r, 150));
    }

    // The survivor then polls both: what the killed replica held lapses after the lease's TTL, and the standby
    // tries every quarter of it.
    await waitFor(() => pollsBoth(standby), { what: 'the standby takes over', timeoutMs: 30_000, intervalMs: 100 });
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThan(LEASE_TTL_MS * 2 + 2000);

    // Every mail answered; one distinct reply per mail (a repeat carries the same Message-ID).
    await waitFor(() => new Set(sink.mails.map((m) => m.header('in-reply-to'))).size >= MAILS, {
      what: `replies to ${MAILS} mails`,
      timeoutMs: 120_000,
    });
    const byMail = new Map<string, Set<string>>();
    for (const m of sink.mails) {
      const key = m.header('in-reply-to')!;
      byMail.set(key, (byMail.get(key) ?? new Set()).add(m.header('message-id')!));
    }
    expect(byMail.size).toBe(MAILS);
    for (const [inReplyTo, ids] of byMail) expect(ids.size, inReplyTo).toBe(1);

    // Every Telegram message answered; a repeat only for a send in flight at the kill (one per chat at most).
    await waitFor(
      () =>
        new Set(tg.sent.map((m) => `${m.chat_id}:${String(m.params['reply_to_message_id'] ?? m.text)}`)).size > 0 &&
        sentUpdates.every(({ chat_id }) => tg.sent.some((m) => Number(m.chat_id) === chat_id)) &&
        tg.pending() === 0,
      { what: 'all updates handled', timeoutMs: 120_000 },
    );
    const perChat = new Map<number, number>();
    for (const m of tg.sent) perChat.set(Number(m.chat_id), (perChat.get(Number(m.chat_id)) ?? 0) + 1);
    for (const chat of new Set(sentUpdates.map((u) => u.chat_id))) {
      const expected = sentUpdates.filter((u) => u.chat_id === chat).length;
      expect(perChat.get(chat), `chat ${chat}`).toBeGreaterThanOrEqual(expected);
      expect(perChat.get(chat), `chat ${chat}`).toBeLessThanOrEqual(expected + 1);
    }
  }, 300_000);
});
