// Our own answer quoted without '>' marks (Outlook's header block, "-----Original Message-----", an unmarked
// attribution line): found by the text digest our Message-ID carries, removed, and the author's text below or inside
// the history kept (mail-own-text.ts). No digest, no match, another sender's block: today's behaviour.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  digestForm,
  ownTextDigest,
  ownTextDigestsOf,
  withoutOwnQuotedText,
  type OwnTextContext,
} from '../src/email/mail-own-text.js';
import { parseInboundMail } from '../src/email/mail-parsing.js';
import { htmlToText } from '../src/email/mail-text.js';
import { replyMessageId } from '../src/email/smtp-mailer.js';
import { buildEmail } from './harness.js';
import { outlookWrappedLines } from './own-quote-replay.js';

const OURS =
  'Уточните, пожалуйста, аналитика каких операций вас интересует: движения средств (переводы & пополнения) или ' +
  'авторизации <по картам и кошелькам>?\n\nНапример: «авторизации за ноябрь, по дням».';
const OUR_ID = replyMessageId('<m06a@client.test>', 'bot@example.test', OURS);
const own = (address: string) => address.toLowerCase() === 'bot@example.test';
const context: OwnTextContext = { digests: ownTextDigestsOf([OUR_ID]), isOwnAddress: own, ownNames: ['Workemon'] };

/** `text` re-wrapped as Outlook's plain text does, CRLF line ends. */
const wrapped = (text: string, width = 76) => outlookWrappedLines(text, width).join('\r\n');

describe('the text digest in our Message-IDs', () => {
  it('names the key and the text: <workemon.{32 hex}.{16 hex}@domain>, the same for the same key and text', () => {
    expect(OUR_ID).toMatch(/^<workemon\.[0-9a-f]{32}\.[0-9a-f]{16}@example\.test>$/);
    expect(OUR_ID.split('.')[2]!.split('@')[0]).toBe(ownTextDigest(OURS));
    expect(replyMessageId('<m06a@client.test>', 'bot@example.test', OURS)).toBe(OUR_ID);
    expect(replyMessageId('<m06a@client.test>', 'bot@example.test', `${OURS} Ещё.`)).not.toBe(OUR_ID);
    // The key part is the one every earlier Message-ID had.
    expect(OUR_ID.slice(0, 42)).toBe(replyMessageId('<m06a@client.test>', 'bot@example.test').slice(0, 42));
  });

  it('survives what clients do to a quoted plain-text mail', () => {
    const digest = ownTextDigest(OURS);
    expect(ownTextDigest(wrapped(OURS))).toBe(digest);
    expect(ownTextDigest(OURS.replace(/ /g, '\u00a0'))).toBe(digest);
    expect(ownTextDigest(OURS.replace(/ /g, '\u2009').replace(/\n/g, '\r\n'))).toBe(digest);
    expect(ownTextDigest(`\uFEFF${OURS.replace('Например', 'Напри\u200Bмер')}  \n`)).toBe(digest);
    // Outlook's HTML copy of a plain-text mail, one <p> per line, back through htmlToText.
    const html = OURS.split('\n')
      .map(
        (l) =>
          `<p class="MsoNormal">${l.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;') || '&nbsp;'}</p>`,
      )
      .join('\r\n');
    expect(ownTextDigest(htmlToText(`<html><body>${html}</body></html>`))).toBe(digest);
    // Decomposed letters (й as и + U+0306) read as the composed ones.
    expect(ownTextDigest(OURS.normalize('NFD'))).toBe(digest);
    expect(digestForm(' a\u00a0b\r\nc\u2028d\u3000e ')).toBe('abcde');
  });

  it('but not a changed word, letter case or punctuation', () => {
    const digest = ownTextDigest(OURS);
    expect(ownTextDigest(OURS.replace('ноябрь', 'октябрь'))).not.toBe(digest);
    expect(ownTextDigest(OURS.replace('Уточните', 'уточните'))).not.toBe(digest);
    expect(ownTextDigest(OURS.replace('?', '.'))).not.toBe(digest);
  });

  it('is read only from our Message-IDs that carry one', () => {
    const digest = ownTextDigest(OURS);
    expect(ownTextDigestsOf(['<root@client.test>', OUR_ID, OUR_ID])).toEqual([digest]);
    expect(ownTextDigestsOf([OUR_ID.toUpperCase()])).toEqual([digest]);
    expect(ownTextDigestsOf([replyMessageId('<k>', 'bot@example.test')])).toEqual([]);
    expect(ownTextDigestsOf(['<workemon.q01@example.test>', '<workemon.abc.def@example.test>', 'junk'])).toEqual([]);
  });
});

const HEAD_RU = [
  'От: Workemon <bot@example.test>',
  'Отправлено: 21 ноября 2026 г. 10:05',
  'Кому: user08@example.test',
  'Тема: Аналитика',
];
const HEAD_EN = [
  'From: Workemon <bot@example.test>',
  'Sent: Saturday, November 21, 2026 10:05 AM',
  'To: user08@example.test',
  'Subject: RE: Аналитика',
];
const OLDER = [
  'From: Иван Петров <user08@example.test>',
  'Sent: Saturday, November 21, 2026 10:00 AM',
  'To: bot@example.test',
  'Subject: Аналитика',
  '',
  'Я хочу получать аналитику о операциях наших кошельков',
];
const ANSWER = 'Операции авторизации, за ноябрь.';

describe('withoutOwnQuotedText', () => {
  it.each([
    ['Outlook RU, answer below', [...HEAD_RU, '', wrapped(OURS), '', ANSWER].join('\n')],
    ['Outlook EN, answer below', [...HEAD_EN, '', OURS, '', ANSWER, ''].join('\n')],
    [
      'Original Message separator',
      [
        '-----Original Message-----',
        'From: Workemon [mailto:bot@example.test]',
        ...HEAD_EN.slice(1),
        '',
        OURS,
        ANSWER,
      ].join('\n'),
    ],
    [
      'Outlook RU separator',
      [
        '-----Исходное сообщение-----',
        'От: Workemon [mailto:bot@example.test]',
        'Отправлено: 21 ноября 2026 г. 10:05',
        'Кому: Иван Петров',
        'Тема: Re: Аналитика',
        '',
        wrapped(OURS),
        '',
        ANSWER,
      ].join('\n'),
    ],
    [
      'Outlook for Mac',
      [
        'From: Workemon <bot@example.test>',
        'Date: Saturday, 21 November 2026 at 10:05',
        'To: Ivan Petrov <user08@example.test>',
        'Subject: Re: Аналитика',
        '',
        OURS,
        '',
        ANSWER,
      ].join('\n'),
    ],
    ['Outlook with only a display name', ['From: Workemon', ...HEAD_EN.slice(1), '', OURS, '', ANSWER].join('\n')],
    [
      'an unmarked attribution line',
      ['21.11.2026, 10:05, "Workemon" <bot@example.test>:', OURS, '', ANSWER].join('\n'),
    ],
  ])('%s: our text goes, the answer stays', (_name, body) => {
    const rest = withoutOwnQuotedText(body.replace(/\r\n/g, '\n'), context);
    expect(rest.trim()).toBe(ANSWER);
  });

  it("takes an attribution wrapped over two lines whole, and never the author's line above a whole one", () => {
    const gmail = ['On Sat, Nov 21, 2026 at 10:05 AM Workemon <', 'bot@example.test> wrote:'];
    expect(withoutOwnQuotedText(['Спасибо.', ...gmail, OURS, '', ANSWER].join('\n'), context)).toBe(
      ['Спасибо.', '', '', ANSWER].join('\n'),
    );
    const yandex = '21.11.2026, 10:05, "Workemon" <bot@example.test>:';
    expect(withoutOwnQuotedText(['Спасибо.', yandex, OURS, '', ANSWER].join('\n'), context)).toBe(
      ['Спасибо.', '', '', ANSWER].join('\n'),
    );
  });

  it('takes a gateway banner between the header block and our text as part of our mail', () => {
    const banner = [
      'ВНИМАНИЕ: письмо от внешнего отправителя. Не открывайте ссылки и вложения, если не уверены в отправителе.',
      '',
      'CAUTION: This email originated from outside of the organization.',
    ];
    const body = [...HEAD_RU, '', ...banner, '', wrapped(OURS).replace(/\r\n/g, '\n'), '', ANSWER].join('\n');
    expect(withoutOwnQuotedText(body, context).trim()).toBe(ANSWER);
  });

  it('keeps an answer typed between our paragraphs, and one below our text too', () => {
    const [question, example] = OURS.split('\n\n') as [string, string];
    const inside = [
      ...HEAD_RU,
      '',
      wrapped(question).replace(/\r/g, ''),
      '',
      'Авторизации.',
      '',
      example,
      '',
      ANSWER,
    ].join('\n');
    expect(withoutOwnQuotedText(inside, context).replace(/\n+/g, '\n').trim()).toBe(`Авторизации.\n${ANSWER}`);
    const only = [...HEAD_EN, '', question, '', 'Авторизации.', '', example].join('\n');
    expect(withoutOwnQuotedText(only, context).trim()).toBe('Авторизации.');
    // An answer at the top of our quoted text and one between its paragraphs: both kept (s28-break).
    const three = `${OURS}\n\nИ укажите разрез.`;
    const twice = [
      ...HEAD_EN,
      '',
      'Авторизации.',
      ...three.split('\n').flatMap((l, n) => (n === 2 ? ['Да.', l] : [l])),
    ];
    const threeContext = { digests: [ownTextDigest(three)], isOwnAddress: own };
    expect(withoutOwnQuotedText(twice.join('\n'), threeContext).replace(/\n+/g, '\n').trim()).toBe('Авторизации.\nДа.');
    // Two runs of the author's lines inside our text are not looked for: the body is left as it is.
    const inTwoPlaces = [
      ...HEAD_EN,
      '',
      ...three.split('\n').flatMap((l, n) => (n === 2 ? ['Да.', l] : n === 4 ? ['Нет.', l] : [l])),
    ];
    expect(withoutOwnQuotedText(inTwoPlaces.join('\n'), threeContext)).toBe(inTwoPlaces.join('\n'));
  });

  it('keeps the text above, inside and the older history below (extractNewText cuts that later)', () => {
    const body = ['Добрый день!', '', ...HEAD_RU, '', OURS, '', ANSWER, '', 'С уважением,', 'Иван', '', ...OLDER].join(
      '\n',
    );
    expect(withoutOwnQuotedText(body, context)).toBe(
      ['Добрый день!', '', '', '', ANSWER, '', 'С уважением,', 'Иван', '', ...OLDER].join('\n'),
    );
  });

  it('leaves the body as it is without a digest, without a match, or under another sender’s block', () => {
    const body = [...HEAD_RU, '', OURS, '', ANSWER].join('\n');
    expect(withoutOwnQuotedText(body, { digests: [], isOwnAddress: own })).toBe(body);
    expect(withoutOwnQuotedText(body, { digests: [ownTextDigest('Другой текст.')], isOwnAddress: own })).toBe(body);
    const edited = body.replace('ноябрь, по дням', 'октябрь, по дням');
    expect(withoutOwnQuotedText(edited, context)).toBe(edited);
    const foreign = body.replace('Workemon <bot@example.test>', 'Пётр <petr@example.test>');
    expect(withoutOwnQuotedText(foreign, context)).toBe(foreign);
    // Our text not under a history head is the author's own (a paste): it stays.
    const pasted = [OURS, '', ANSWER].join('\n');
    expect(withoutOwnQuotedText(pasted, context)).toBe(pasted);
  });

  it('gives up after a bounded number of heads on a hostile mail', () => {
    const head = ['From: Workemon <bot@example.test>', 'Sent: Saturday, November 21, 2026 10:05 AM', 'x'];
    const body = [...Array.from({ length: 5000 }, () => head).flat(), ...HEAD_EN, '', OURS, ANSWER].join('\n');
    // The real block comes after 5,000 heads whose text is not ours: it is never reached.
    expect(withoutOwnQuotedText(body, context)).toBe(body);
  });
});

/** A user's reply to our mail OUR_ID in plain text; `references` false: only In-Reply-To names it. */
const reply = (body: string, messageIds = `<m06a@client.test> ${OUR_ID}`) =>
  buildEmail({
    from: 'Иван Петров <user08@example.test>',
    subject: 'RE: Аналитика',
    inReplyTo: OUR_ID,
    references: messageIds,
    body: body.replace(/\r?\n/g, '\r\n'),
  });
const parse = (raw: Buffer) => parseInboundMail(raw, { ownAddresses: ['bot@example.test'] });

describe('parseInboundMail with our answer quoted unmarked', () => {
  it('reads the answer written below our text, and the answer inside the history before the older level', async () => {
    expect((await parse(reply([...HEAD_RU, '', wrapped(OURS), '', ANSWER].join('\n')))).text).toBe(ANSWER);
    const inside = [
      ...HEAD_EN,
      '',
      OURS,
      '',
      ANSWER,
      '',
      'С уважением,',
      'Иван Петров',
      'Отдел аналитики',
      '',
      ...OLDER,
    ];
    const mail = await parse(reply(inside.join('\n')));
    expect(mail.text).toBe(ANSWER);
    expect(mail.forwards).toEqual([]);
  });

  it('finds the digest in References alone', async () => {
    const raw = buildEmail({
      from: 'user08@example.test',
      subject: 'RE: Аналитика',
      references: `<m06a@client.test> ${OUR_ID}`,
      body: [...HEAD_EN, '', OURS, '', ANSWER].join('\r\n'),
    });
    expect((await parse(raw)).text).toBe(ANSWER);
  });

  it('reads nothing in a reply that only quotes our text, and keeps today’s cut without a digest', async () => {
    expect((await parse(reply([...HEAD_RU, '', OURS, ''].join('\n')))).text).toBe('');
    const noDigest = reply([...HEAD_RU, '', OURS, '', ANSWER].join('\n'), '<m06a@client.test>');
    const raw = Buffer.from(noDigest.toString('utf8').replace(`In-Reply-To: ${OUR_ID}`, 'In-Reply-To: <x@y.test>'));
    expect((await parse(raw)).text).toBe('');
  });

  it('leaves X11 (history and a screenshot, nothing new) unreadable even when it answers a digest', async () => {
    const x11 = readFileSync(new URL('./fixtures/adv-cases/X11-screenshot-with-reply-history.eml', import.meta.url));
    const withDigest = Buffer.from(
      x11
        .toString('utf8')
        .replace(
          'Message-ID:',
          `In-Reply-To: ${replyMessageId('<e>', 'bot@example.test', 'Пришлите текст ошибки.')}\r\nMessage-ID:`,
        ),
    );
    for (const raw of [x11, withDigest]) {
      const mail = await parse(raw);
      expect(mail.text).toBe('');
      expect(mail.unreadableAttachments).toEqual(['image001.png']);
    }
  });
});
