// Replies that quote our own answer without '>' marks (test/fixtures/s28-cases): Outlook desktop RU and EN, the
// "-----Original Message-----" form, HTML-only Outlook desktop and Outlook on the web, an unmarked attribution
// line, a gateway banner, a header block naming only "Workemon", the answer typed inside the history above an older
// level with a signature after it, answers between our paragraphs and below them, a reply to our second answer,
// and a reply that only quotes us. Through the real mail path: the first request is APPENDed into Dovecot, the
// communicator's real reply is captured at the SMTP sink, each user's reply is built from that captured mail (its
// Message-ID and text) and APPENDed in turn; the fake secretary records what it received.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DovecotServer } from '@workemon/testkit/dovecot';
import type { ReceivedMail, SmtpSink } from '@workemon/testkit/smtp-sink';
import { ownTextDigest } from '../src/email/mail-own-text.js';
import { USER_MESSAGES } from '../src/email/mail-request.js';
import type { FakeSecretary } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { escapeHtml, outlookWrappedLines, startOwnQuoteReplay, type OwnQuoteReplay } from './own-quote-replay.js';

const DIR = new URL('./fixtures/s28-cases/', import.meta.url);
const FIRST_ID = '<s28-first@client.test>';

/**
 * Our clarifying question: long lines (re-wrapped by Outlook), characters HTML escapes (`&`, `<`, `>`), guillemets,
 * a dash and two paragraphs.
 */
const QUESTION =
  'Уточните, пожалуйста, аналитика каких операций вас интересует: движения средств (переводы & пополнения между ' +
  'кошельками) или авторизации <по картам и кошелькам>?\n\nНапример: «авторизации за ноябрь, по дням» — и ' +
  'укажите период.';

/** What the secretary must receive for each reply: its new text exactly, or `null` (unreadable, no call). */
const EXPECTED: Record<string, string | null> = {
  'O01-outlook-ru-bottom.eml.tmpl': 'Операции авторизации, за ноябрь.',
  'O02-outlook-en-bottom.eml.tmpl': 'Card authorisations for November, by day.',
  'O03-original-message.eml.tmpl': 'Движения средств: переводы между кошельками за октябрь.',
  'O04-outlook-html-only.eml.tmpl': 'Авторизации по картам & кошелькам, за ноябрь.',
  'O05-inside-history-signature.eml.tmpl': 'Операции авторизации, за ноябрь, по дням.',
  'O06-history-only.eml.tmpl': null,
  'O07-outlook-web-html-inside.eml.tmpl': 'Авторизации, за последнюю неделю.',
  'O08-unmarked-attribution.eml.tmpl': 'Авторизации по кошелькам, за октябрь.',
  'O09-outlook-web-underscores-name-only.eml.tmpl': 'Добрый день!\n\nАвторизации, за ноябрь.',
  // An Exchange banner above our mail as the author received it, quoted under the header block.
  'O10-outlook-en-external-banner.eml.tmpl': 'Авторизации по картам, за неделю.',
  // Answers typed between our two paragraphs and below them: both kept, in order.
  'O11-outlook-ru-between-paragraphs.eml.tmpl': 'Авторизации по кошелькам.\n\nЗа ноябрь, по дням.',
};

/** The placeholders of a template (fixtures/s28-cases/README.md) filled from our captured reply. */
function fill(template: string, ourId: string, ourText: string, earlierReferences = ''): Buffer {
  const lines = ourText.split('\n');
  const values: Record<string, string> = {
    FIRST_MESSAGE_ID: FIRST_ID,
    EARLIER_REFERENCES: earlierReferences,
    OUR_MESSAGE_ID: ourId,
    OUR_TEXT: lines.join('\r\n'),
    OUR_TEXT_WRAPPED: outlookWrappedLines(ourText).join('\r\n'),
    OUR_FIRST_PARAGRAPH_WRAPPED: outlookWrappedLines(ourText.split('\n\n')[0]!).join('\r\n'),
    OUR_REST_WRAPPED: outlookWrappedLines(ourText.split('\n\n').slice(1).join('\n\n')).join('\r\n'),
    OUR_TEXT_HTML: lines
      .map((l) =>
        l.trim()
          ? `<p class="MsoPlainText">${escapeHtml(l).replace(/ {2}/g, ' &nbsp;')}<o:p></o:p></p>`
          : '<p class="MsoPlainText"><o:p>&nbsp;</o:p></p>',
      )
      .join('\r\n'),
    OUR_TEXT_OWA: `<div class="PlainText">${lines.map(escapeHtml).join('<br>\r\n')}</div>`,
  };
  const filled = template
    .replace(/\r?\n/g, '\r\n')
    .replace(/\{\{([A-Z_]+)\}\}/g, (_m, name: string) => values[name] ?? `{{${name}}}`);
  expect(filled).not.toMatch(/\{\{[A-Z_]+\}\}/);
  return Buffer.from(filled, 'utf8');
}

/** Replies to our second answer (fixtures/s28-cases/second-round). */
const SECOND_ROUND = ['Z01-outlook-ru-second-level.eml.tmpl'];

const messageIdOf = (raw: Buffer) => /^Message-ID:\s*(<[^>]+>)/im.exec(raw.toString('utf8'))![1]!;

describe('replies that quote our answer without quote marks, through the real mail path', () => {
  const templates = readdirSync(DIR)
    .filter((f) => f.endsWith('.eml.tmpl'))
    .sort();
  let replay: OwnQuoteReplay;
  let dovecot: DovecotServer;
  let sink: SmtpSink;
  let secretary: FakeSecretary;
  let ours: ReceivedMail;
  let second: ReceivedMail;
  const raws = new Map<string, Buffer>();

  beforeAll(async () => {
    // The first request gets our clarifying question; every reply gets its request echoed. Our display name:
    // Outlook on the web quotes us by it alone (O09), and only a head naming it counts.
    replay = await startOwnQuoteReplay({
      firstRequest: new URL('first-request.eml', DIR),
      firstId: FIRST_ID,
      question: QUESTION,
      ratePerHour: 100,
    });
    ({ dovecot, sink, secretary, ours } = replay);
    const { ourText } = replay;
    for (const file of templates) {
      const raw = fill(readFileSync(new URL(file, DIR), 'utf8'), ours.parsed.messageId!, ourText);
      raws.set(file, raw);
      await dovecot.append(raw);
    }
    await sink.waitForMails(1 + templates.length, 90_000);
    // The second round: a reply to our answer to O01, naming both of our Message-IDs in References.
    const o01 = messageIdOf(raws.get('O01-outlook-ru-bottom.eml.tmpl')!);
    second = sink.mails.find((m) => m.header('in-reply-to') === o01)!;
    const secondText = (second.parsed.text ?? '').replace(/\r\n/g, '\n').trimEnd();
    for (const file of SECOND_ROUND) {
      const template = readFileSync(new URL(`second-round/${file}`, DIR), 'utf8');
      const raw = fill(template, second.parsed.messageId!, secondText, `${FIRST_ID} ${ours.parsed.messageId} ${o01}`);
      raws.set(file, raw);
      await dovecot.append(raw);
    }
    await sink.waitForMails(1 + templates.length + SECOND_ROUND.length, 90_000);
  }, 240_000);

  afterAll(async () => {
    await replay?.close();
  });

  it('sends our question with a Message-ID that carries the digest of its text', () => {
    expect(ours.header('in-reply-to')).toBe(FIRST_ID);
    expect(ours.parsed.text?.trim()).toBe(QUESTION);
    expect(ours.parsed.messageId).toMatch(/^<workemon\.[0-9a-f]{32}\.[0-9a-f]{16}\.[0-9a-f]{8}@example\.test>$/);
    expect(ours.parsed.messageId!.split('.')[2]!.split('@')[0]).toBe(ownTextDigest(QUESTION));
  });

  it('covers every template and answers each reply exactly once', async () => {
    expect(Object.keys(EXPECTED).sort()).toEqual(templates);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sink.mails).toHaveLength(1 + templates.length + SECOND_ROUND.length);
    await waitUntil(
      async () => (await dovecot.messages()).every((m) => m.flags.includes('\\Answered')),
      'every mail flagged answered',
    );
  });

  for (const file of Object.keys(EXPECTED)) {
    it(`${file}: the secretary receives exactly the new text, in the same conversation`, () => {
      const id = messageIdOf(raws.get(file)!);
      const calls = secretary.calls.filter((c) => c.message_id === id);
      const replies = sink.mails.filter((m) => m.header('in-reply-to') === id);
      expect(replies).toHaveLength(1);
      const reply = replies[0]!;
      // Our answer continues the thread: its References end with our question and the user's reply.
      expect(reply.header('references')).toBe(`${FIRST_ID} ${ours.parsed.messageId} ${id}`);
      const want = EXPECTED[file];
      if (want === null) {
        // Our history and nothing new: no secretary (so no LLM) call, the polite request for text.
        expect(calls).toHaveLength(0);
        expect(reply.parsed.text?.trim()).toBe(USER_MESSAGES.unreadable);
        return;
      }
      expect(calls).toHaveLength(1);
      expect(calls[0]!.request).toBe(want);
      // The same conversation as the first request: the thread's root Message-ID.
      expect(calls[0]!.thread_key).toBe(FIRST_ID);
      expect(reply.parsed.text?.trim()).toBe(`Ответ на: ${want}`);
      expect(reply.parsed.messageId).toMatch(/^<workemon\.[0-9a-f]{32}\.[0-9a-f]{16}\.[0-9a-f]{8}@example\.test>$/);
    });
  }

  it('second-round/Z01: a reply to our second answer, two of our Message-IDs in References, reads its new text', () => {
    const id = messageIdOf(raws.get('Z01-outlook-ru-second-level.eml.tmpl')!);
    expect(second.parsed.text?.trim()).toBe('Ответ на: Операции авторизации, за ноябрь.');
    const calls = secretary.calls.filter((c) => c.message_id === id);
    expect(calls.map((c) => [c.request, c.thread_key])).toEqual([['И за октябрь тоже, пожалуйста.', FIRST_ID]]);
    expect(sink.mails.filter((m) => m.header('in-reply-to') === id)).toHaveLength(1);
  });

  it('asked the secretary about the first request in the conversation the replies continue', () => {
    const first = secretary.calls.find((c) => c.message_id === FIRST_ID);
    expect(first).toMatchObject({
      thread_key: FIRST_ID,
      request: 'Аналитика\n\nЯ хочу получать аналитику о операциях наших кошельков',
    });
  });
});
