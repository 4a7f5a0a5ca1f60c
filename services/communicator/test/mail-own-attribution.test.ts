// An attribution line naming our own address without a date ("Workemon <bot@example.test> wrote:", Thunderbird's
// and K-9's "Name wrote:" forms) above our answer quoted without '>' marks: the history it starts is cut, so neither
// the attribution with our address nor our own text reaches the LLM (field case M07), whether or not the quoted text
// is exactly what we sent. The same line naming someone else's address stays the author's text, as before; an
// answer written only below it is still read (M06). Through the real MIME parser (parseInboundMail).
import { describe, expect, it } from 'vitest';
import { parseInboundMail } from '../src/email/mail-parsing.js';
import { extractNewText } from '../src/email/mail-text.js';
import { buildEmail } from './harness.js';

const OWN = (address: string) => address.toLowerCase() === 'bot@example.test';
// Not the text we sent (no digest in In-Reply-To matches it): only the attribution tells it is ours.
const QUOTED = 'Уточните, пожалуйста, период выгрузки:\nза октябрь или за ноябрь?';

const reply = (body: string) =>
  buildEmail({
    from: 'Иван Петров <user08@example.test>',
    subject: 'Re: Аналитика',
    inReplyTo: '<workemon.0123456789abcdef0123456789abcdef@example.test>',
    references: '<m06a@client.test> <workemon.0123456789abcdef0123456789abcdef@example.test>',
    body: body.replace(/\r?\n/g, '\r\n'),
  });
const parse = (raw: Buffer) => parseInboundMail(raw, { ownAddresses: ['bot@example.test'] });

describe('an undated attribution naming our address', () => {
  it.each([
    ['Workemon <bot@example.test> wrote:'],
    ['Workemon <bot@example.test> пишет:'],
    ['"Workemon" <BOT@example.test> написал:'],
    ['bot@example.test wrote:'],
  ])('%s above our unmarked text: only the answer above it is read', async (attribution) => {
    const body = `За ноябрь, по дням.\n\n${attribution}\n${QUOTED}\n`;
    expect(extractNewText(body, { isOwnAddress: OWN })).toBe('За ноябрь, по дням.');
    const mail = await parse(reply(body));
    expect(mail.text).toBe('За ноябрь, по дням.');
    expect(mail.text).not.toContain('bot@example.test');
  });

  it('wrapped over two lines, the address on the second', async () => {
    const body = 'За ноябрь.\n\nWorkemon\n<bot@example.test> wrote:\n' + QUOTED;
    expect((await parse(reply(body))).text).toBe('За ноябрь.');
  });

  it("naming someone else's address it stays the author's text, as without our address before", async () => {
    const body = `Коллега прислал вопрос, прошу помочь.\n\nИван Сидоров <sidorov@example.test> wrote:\n${QUOTED}`;
    expect(extractNewText(body, { isOwnAddress: OWN })).toBe(body);
    expect((await parse(reply(body))).text).toBe(body);
  });

  it('without isOwnAddress nothing changes: the undated line is not taken for an attribution', () => {
    const body = `За ноябрь, по дням.\n\nWorkemon <bot@example.test> wrote:\n${QUOTED}`;
    expect(extractNewText(body)).toBe(body);
  });

  it('with nothing above it, the answer written below is still read, not "no text" (M06)', async () => {
    const body = `Workemon <bot@example.test> wrote:\n${QUOTED}\n\nЗа ноябрь.`;
    const mail = await parse(reply(body));
    expect(mail.text).toContain('За ноябрь.');
  });
});
