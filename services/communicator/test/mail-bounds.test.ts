// Session 33: bounds on the text steps' work, and a mail cut inside a character. A helper's attack round found that a
// TNEF body skipped the 200,000-character bound (a 2 MB winmail.dat body took a second and 100 MB of heap), that the
// cut could split a quote line (its tail reached the secretary without its '>'), and that a mail cut at
// MAX_MAIL_BYTES inside a UTF-8 character was read whole as a Cyrillic guess's mojibake. Each failed before its fix.
import { describe, expect, it } from 'vitest';
import { MAX_BODY_TEXT_CHARS, boundedBodyText, parseInboundMail } from '../src/email/mail-parsing.js';

const OWN = { ownAddresses: ['bot@example.test'] };

/** A TNEF stream (MS-OXTNEF §2.1: signature, key, one attBody attribute) whose message body is `body`. */
function tnefWithBody(body: Buffer): Buffer {
  const head = Buffer.alloc(6);
  head.writeUInt32LE(0x223e9f78, 0);
  head.writeUInt16LE(1, 4);
  const attribute = Buffer.alloc(9);
  attribute.writeUInt8(1, 0);
  attribute.writeUInt32LE(0x0002800c, 1);
  attribute.writeUInt32LE(body.length, 5);
  let checksum = 0;
  for (const byte of body) checksum = (checksum + byte) & 0xffff;
  const sum = Buffer.alloc(2);
  sum.writeUInt16LE(checksum, 0);
  return Buffer.concat([head, attribute, body, sum]);
}

describe('bounds of the text steps', () => {
  it('a 2 MB body inside winmail.dat is cut like any body: its start read, the mail marked truncated', async () => {
    const body = `Hello, I need help with the VPN.\r\n${'lorem ipsum dolor sit amet\r\n'.repeat(80_000)}`;
    const tnef = tnefWithBody(Buffer.from(body, 'latin1')).toString('base64').replace(/.{76}/g, '$&\r\n');
    const raw = Buffer.from(
      [
        'From: Ivan <ivan.petrov@example.test>',
        'To: bot@example.test',
        'Subject: VPN',
        'Message-ID: <tnef-big@example.test>',
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary=B',
        '',
        '--B',
        'Content-Type: application/ms-tnef; name=winmail.dat',
        'Content-Disposition: attachment; filename=winmail.dat',
        'Content-Transfer-Encoding: base64',
        '',
        tnef,
        '--B--',
        '',
      ].join('\r\n'),
    );
    const mail = await parseInboundMail(raw, OWN);
    expect(mail.text.startsWith('Hello, I need help with the VPN.')).toBe(true);
    expect(mail.text.length).toBeLessThanOrEqual(MAX_BODY_TEXT_CHARS + 10);
    expect(mail.truncated).toBe(true);
  });

  it('the cut falls between lines, so a quote line keeps its mark', () => {
    const lines = Array.from({ length: 12_000 }, (_, i) => `> строка ${i} из ответа, который цитируют`);
    const text = ['Мой вопрос выше всего.', ...lines, 'А это мой ответ под цитатой.'].join('\n');
    const { text: cut, cut: wasCut } = boundedBodyText(text);
    expect(wasCut).toBe(true);
    const [head, tail] = cut.split('\n\n[…]\n\n');
    for (const line of [...head!.split('\n').slice(1), ...tail!.split('\n').slice(0, -1)])
      expect(line.startsWith('> строка ')).toBe(true);
    expect(head!.startsWith('Мой вопрос выше всего.')).toBe(true);
    expect(tail!.endsWith('А это мой ответ под цитатой.')).toBe(true);
  });

  it('a UTF-8 mail cut inside its last character is read as UTF-8, not guessed as another charset', async () => {
    const body = Buffer.from('Нужен доступ к VPN для отдела платежей.\r\nСпасибо', 'utf8');
    const raw = Buffer.concat([
      Buffer.from(
        'From: Ivan <ivan.petrov@example.test>\r\nTo: bot@example.test\r\nSubject: VPN\r\nMessage-ID: <cut-utf8@example.test>\r\n' +
          'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n',
      ),
      body.subarray(0, body.length - 1), // MAX_MAIL_BYTES ended inside the last "о"
    ]);
    const mail = await parseInboundMail(raw, { ...OWN, truncated: true });
    expect(mail.text).toContain('Нужен доступ к VPN для отдела платежей.');
  });
});
