// Shared by the tests of replies that quote our own answer without '>' marks (mail-own-text.ts): how clients
// re-wrap and escape our text, and the real mail path they run on (Dovecot, the SMTP sink, the fake secretary, a
// real communicator) up to our first answer, captured at the sink so each reply can be built from it.
import { readFileSync } from 'node:fs';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { answer, clarify, startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { startCommunicator, type Running } from './harness.js';

/** The bot's mailbox in these tests. */
export const OWN_QUOTE_USER = { user: 'bot@example.test', password: 'secret' };

/** `&`, `<` and `>` escaped for HTML text. */
export const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * `text` re-wrapped as Outlook's plain text quotes it: each line cut at the last space before `width` characters
 * (at `width` when there is none), the rest of the line starting without its leading spaces. Returns the lines.
 */
export function outlookWrappedLines(text: string, width = 76): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let rest = line;
    while (rest.length > width) {
      const cut = rest.lastIndexOf(' ', width);
      const at = cut > 0 ? cut : width;
      out.push(rest.slice(0, at));
      rest = rest.slice(at).trimStart();
    }
    out.push(rest);
  }
  return out;
}

/** The running path and our first answer as the user received it (its text with LF line ends, trailing space off). */
export type OwnQuoteReplay = {
  dovecot: DovecotServer;
  sink: SmtpSink;
  secretary: FakeSecretary;
  communicator: Running;
  ours: ReceivedMail;
  ourText: string;
  /** Stops the communicator, then the sink, the fake secretary and Dovecot. */
  close: () => Promise<void>;
};

/**
 * Starts the real mail path with MAIL_FROM `Workemon <bot@example.test>` (a display name: Outlook on the web quotes
 * us by it alone), APPENDs `firstRequest` (whose Message-ID is `firstId`), and waits for our answer: the fake
 * secretary answers that request with the clarifying question `question`, and every later mail with
 * `Ответ на: <its request>`.
 */
export async function startOwnQuoteReplay(options: {
  firstRequest: URL;
  firstId: string;
  question: string;
  /** RATE_LIMIT_PER_HOUR of the communicator: above the number of mails the test sends. */
  ratePerHour: number;
}): Promise<OwnQuoteReplay> {
  const dovecot = await startDovecot([OWN_QUOTE_USER]);
  const sink = await startSmtpSink();
  const secretary = await startFakeSecretary((r) =>
    r.message_id === options.firstId
      ? clarify(options.question, r.request)
      : answer(`Ответ на: ${r.request}`, r.request),
  );
  const communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    dovecot,
    sink,
    env: { RATE_LIMIT_PER_HOUR: String(options.ratePerHour), MAIL_FROM: 'Workemon <bot@example.test>' },
  });
  await dovecot.append(readFileSync(options.firstRequest));
  const ours = (await sink.waitForMails(1, 60_000))[0]!;
  return {
    dovecot,
    sink,
    secretary,
    communicator,
    ours,
    ourText: (ours.parsed.text ?? '').replace(/\r\n/g, '\n').trimEnd(),
    close: async () => {
      await communicator.stop();
      await sink.close();
      await secretary.close();
      await dovecot.destroy();
    },
  };
}
