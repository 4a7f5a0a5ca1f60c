// The communicator as a real child process (src/main.ts under tsx, as `npm start` runs it) draining a Dovecot
// mailbox with 16 mails in flight (their IMAP commands coalesced), SIGKILLed in the middle of the batch, round
// after round, and restarted against the same mailbox, SMTP sink and secretary. No mail may be lost, and a mail
// is sent twice only inside the documented window (SMTP accepted the reply, the \Answered STORE had not been
// applied when the process died) — and then with the same reply Message-ID, so the recipient sees one message.
import { afterEach, describe, expect, it } from 'vitest';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { buildEmail, waitUntil } from './harness.js';
import { communicatorProcesses, sigkill } from './process-harness.js';

const open: Array<{ close: () => Promise<void> } | { destroy: () => Promise<void> }> = [];
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await ('close' in item ? item.close() : item.destroy());
});

const { spawnCommunicator } = communicatorProcesses();

function startCommunicatorProcess(
  dovecot: DovecotServer,
  sink: SmtpSink,
  secretary: FakeSecretary,
  env: Record<string, string> = {},
) {
  const user = dovecot.users[0]!;
  return spawnCommunicator(secretary.url, {
    IMAP_HOST: '127.0.0.1',
    IMAP_PORT: String(dovecot.port),
    IMAP_SECURE: 'false',
    IMAP_USER: user.user,
    IMAP_PASSWORD: user.password,
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(sink.port),
    SMTP_SECURE: 'false',
    EMAIL_CONCURRENCY: '16',
    ...env,
  }).child;
}

const kill = sigkill;

/** A Dovecot mailbox, an SMTP sink and the fake secretary, closed after the test. */
async function startMailWorld() {
  const dovecot = await startDovecot();
  const sink = await startSmtpSink();
  const secretary = await startFakeSecretary();
  open.push(dovecot, sink, secretary);
  return { dovecot, sink, secretary };
}

const MAILS = 60;
const ROUNDS = 3;

describe('email across SIGKILL of the communicator', () => {
  it(
    'answers every mail of a 60-mail batch; a repeat only for a reply in flight at the kill, with the same Message-ID',
    { timeout: 240_000 },
    async () => {
      const { dovecot, sink, secretary } = await startMailWorld();
      // A little analysis time, so a kill lands in the middle of the batch.
      secretary.delayFor = () => 20 + Math.floor(Math.random() * 80);
      for (let i = 0; i < MAILS; i++) {
        await dovecot.append(
          buildEmail({ from: `employee${i}@corp.test`, messageId: `<crash-${i}@corp.test>`, body: `Запрос ${i}` }),
        );
      }

      let midBatchKills = 0;
      for (let round = 0; round < ROUNDS; round++) {
        const child = startCommunicatorProcess(dovecot, sink, secretary);
        const before = new Set(sink.mails.map((m) => m.header('in-reply-to'))).size;
        if (before >= MAILS) break;
        // Kill once this process has sent a few replies of its own (it holds the lease and is mid-batch).
        await waitUntil(() => sink.mails.length >= before + 3 || undefined, 'replies before the kill', 60_000);
        await kill(child);
        if (new Set(sink.mails.map((m) => m.header('in-reply-to'))).size < MAILS) midBatchKills += 1;
      }
      expect(midBatchKills).toBeGreaterThan(0);

      // The last process drains the rest.
      startCommunicatorProcess(dovecot, sink, secretary);
      await waitUntil(
        () => new Set(sink.mails.map((m) => m.header('in-reply-to'))).size >= MAILS || undefined,
        'a reply to every mail',
        120_000,
      );
      const messages = await waitUntil(async () => {
        const all = await dovecot.messages();
        return all.every((m) => m.flags.includes('\\Answered')) ? all : undefined;
      }, 'every mail flagged answered');

      // Nothing lost: every mail answered, flagged answered and seen, none set aside.
      expect(messages).toHaveLength(MAILS);
      for (const m of messages) {
        expect(m.flags).toEqual(expect.arrayContaining(['\\Seen', '\\Answered', '$WorkemonReplied']));
        expect(m.flags).not.toContain('$WorkemonFailed');
      }
      // A repeat is the same message (same reply Message-ID) and only for the replies in flight at a kill: at most
      // EMAIL_CONCURRENCY per kill.
      const replyIds = new Map<string, Set<string>>();
      for (const m of sink.mails) {
        const to = m.header('in-reply-to')!;
        replyIds.set(to, (replyIds.get(to) ?? new Set()).add(m.header('message-id')!));
      }
      expect(replyIds.size).toBe(MAILS);
      for (const ids of replyIds.values()) expect(ids.size).toBe(1);
      expect(sink.mails.length - MAILS).toBeLessThanOrEqual(16 * ROUNDS);
    },
  );

  it(
    "sixteen 4 MB text mails at once under the images' 128 MB old space: each answered once, the process lives",
    { timeout: 240_000 },
    async () => {
      const { dovecot, sink, secretary } = await startMailWorld();
      // A request, then 4 MB of pasted log in Russian. Before, the text steps took about 50 MB of heap per million
      // characters: one such mail exhausted the old space and killed the process with every mail in flight; and
      // sixteen parsed at once (EMAIL_CONCURRENCY) did too, until parses shared a budget of megabytes.
      const log = Array.from({ length: 52_000 }, (_, i) => `10:00:${i} терминал 7781 платёж принят, код ${i}`);
      for (let i = 0; i < 16; i++)
        await dovecot.append(
          buildEmail({
            from: `big${i}@corp.test`,
            messageId: `<big-${i}@corp.test>`,
            body: `Почему терминал 7781 отклоняет платежи?\r\n\r\n${log.join('\r\n')}\r\n`,
          }),
        );
      const child = startCommunicatorProcess(dovecot, sink, secretary, {
        NODE_OPTIONS: '--max-old-space-size=128 --max-semi-space-size=8',
      });
      await sink.waitForMails(16, 150_000);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(child.exitCode).toBeNull();
      expect(sink.mails).toHaveLength(16);
      for (const call of secretary.calls) {
        expect(call.request).toContain('Почему терминал 7781 отклоняет платежи?');
        expect(call.request).toContain('[…письмо обрезано');
      }
      await kill(child);
    },
  );
});
