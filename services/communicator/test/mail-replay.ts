// Replays directories of raw mails (test/fixtures/<dir>/*.eml) through the real communicator — IMAP APPEND into
// Dovecot, the fake secretary records the request it received, the SMTP sink the reply sent — and checks, for
// each mail, the exact request text (or no secretary call and the polite "send text" reply) and one reply in the
// thread to the sender. Shared by email-field-cases.test.ts and email-adversarial.test.ts.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { USER_MESSAGES } from '../src/email/mail-request.js';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { startCommunicator, waitUntil, type Running } from './harness.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);
const USER = { user: 'bot@example.test', password: 'secret' };

/**
 * What the secretary must receive for a mail: the exact text, a check of the text, or `null` (nothing readable:
 * no secretary call, the polite request for text).
 */
export type ExpectedRequest = string | null | ((request: string) => void);

/** An ExpectedRequest that checks the request holds every `want` and none of `never` (substrings). */
export const holds =
  (want: string[], never: string[] = []) =>
  (request: string): void => {
    for (const w of want) expect(request).toContain(w);
    for (const n of never) expect(request).not.toContain(n);
  };

const messageIdOf = (raw: Buffer) => /^Message-ID:\s*(<[^>]+>)/im.exec(raw.toString('latin1'))![1]!;

/**
 * A `describe` block named `title` over every `.eml` in `dirs` (under test/fixtures); `expected` must name each
 * file as `<dir>/<file>.eml`, and only those.
 */
export function describeMailReplay(title: string, dirs: string[], expected: Record<string, ExpectedRequest>): void {
  const files = dirs.flatMap((dir) =>
    readdirSync(new URL(`${dir}/`, FIXTURES))
      .filter((f) => f.endsWith('.eml'))
      .map((f) => `${dir}/${f}`),
  );
  let dovecot: DovecotServer;
  let sink: SmtpSink;
  let secretary: FakeSecretary;
  let communicator: Running;
  const raws = new Map<string, Buffer>();

  beforeAll(async () => {
    dovecot = await startDovecot([USER]);
    sink = await startSmtpSink();
    secretary = await startFakeSecretary();
    communicator = await startCommunicator({
      secretaryUrl: secretary.url,
      dovecot,
      sink,
      env: { RATE_LIMIT_PER_HOUR: '100' },
    });
    for (const file of files) {
      const raw = readFileSync(new URL(file, FIXTURES));
      raws.set(file, raw);
      await dovecot.append(raw);
    }
    await sink.waitForMails(files.length, 60_000);
  }, 120_000);

  afterAll(async () => {
    await communicator?.stop();
    await sink?.close();
    await secretary?.close();
    await dovecot?.destroy();
  });

  describe(title, () => {
    it('covers every fixture and answers each mail exactly once', async () => {
      expect(Object.keys(expected).sort()).toEqual([...files].sort());
      // A moment for any stray second reply to arrive before counting.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(sink.mails).toHaveLength(files.length);
      await waitUntil(
        async () => (await dovecot.messages()).every((m) => m.flags.includes('\\Answered')),
        'every mail flagged answered',
      );
    });

    for (const file of files) {
      it(`${file}: the secretary's request and the reply`, () => {
        const id = messageIdOf(raws.get(file)!);
        const calls = secretary.calls.filter((c) => c.message_id === id);
        const replies: ReceivedMail[] = sink.mails.filter((m) => m.header('in-reply-to') === id);
        expect(replies).toHaveLength(1);
        const want = expected[file];
        if (want === null) {
          // Nothing readable: no secretary (and so no LLM) call, one polite Russian request for text.
          expect(calls).toHaveLength(0);
          expect(replies[0]!.parsed.text?.trim()).toBe(USER_MESSAGES.unreadable);
          return;
        }
        expect(calls).toHaveLength(1);
        const request = calls[0]!.request;
        if (typeof want === 'function') want(request);
        else expect(request).toBe(want);
        // The reply is the secretary's answer, in the thread, to the sender.
        expect(replies[0]!.parsed.text?.trim()).toBe(`Ответ на: ${request}`.trim());
        expect(replies[0]!.envelope.to).toEqual([calls[0]!.username]);
        // No attribution or header line with our own address reaches the secretary.
        expect(request).not.toContain(USER.user);
      });
    }
  });
}
