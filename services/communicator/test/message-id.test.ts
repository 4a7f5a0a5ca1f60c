// The msg-id of a Message-ID field (RFC 5322 §3.6.4): what the reply's In-Reply-To and References carry, the
// idempotency key the secretary stores and the audit id of mail given up before it could be parsed. Each form here
// is one a mail client or server writes; parseInboundMail and headerMessageId must read them alike.
import { describe, expect, it } from 'vitest';
import { headerMessageId } from '../src/email/mail-audit.js';
import { parseInboundMail } from '../src/email/mail-parsing.js';
import { msgIdOf } from '../src/email/message-id.js';

const CASES: Array<[string, string, string | undefined]> = [
  ['plain', '<a.1@client.test>', '<a.1@client.test>'],
  ['a trailing comment (Exchange)', '<a.2@client.test> (Microsoft Exchange)', '<a.2@client.test>'],
  ['a leading comment with a nested one', '(relay (2)) <a.3@client.test>', '<a.3@client.test>'],
  ['folded, white space inside the brackets (RFC 5322 §4.5.4)', '<\r\n a.4@client.test >', '<a.4@client.test>'],
  ['without brackets (old mailers)', 'a.5@client.test', '<a.5@client.test>'],
  ['UTF-8 (RFC 6532 §3.2)', '<заявка-6@пример.рф>', '<заявка-6@пример.рф>'],
  ['two ids: the first', '<a.7@client.test> <b.7@client.test>', '<a.7@client.test>'],
  ['empty brackets', '<>', undefined],
  ['only a comment', '(none)', undefined],
];

describe('msg-id of a Message-ID field', () => {
  for (const [what, value, want] of CASES) {
    it(`${what}: ${JSON.stringify(value)} → ${want ?? 'none'}`, async () => {
      expect(msgIdOf(value.replace(/\r\n/g, ''))).toBe(want);
      const raw = Buffer.from(
        `From: a@client.test\r\nTo: bot@example.test\r\nSubject: x\r\nMessage-ID: ${value}\r\n` +
          'Content-Type: text/plain; charset=utf-8\r\n\r\nНужен доступ к VPN.\r\n',
        'utf8',
      );
      expect(headerMessageId(raw)).toBe(want);
      const mail = await parseInboundMail(raw, { ownAddresses: ['bot@example.test'] });
      expect(mail.messageId).toBe(want);
      if (want) expect(mail.references.at(-1)).toBe(want);
    });
  }
});

// The secretary answers 400 to a control character in message_id or thread_key (RFC 5322 §3.6.4 allows none); a
// mail carrying one (a broken mailer, or an outsider planting a References root) got the refusal instead of an answer.
describe('ids sent to the secretary hold no control character', () => {
  const CONTROL = /\p{Cc}/u;
  for (const [what, headers] of [
    ['DEL in Message-ID', 'Message-ID: <abc\x7fdef@mailer.example>\r\n'],
    ['C1 NEL (0x85) in Message-ID', 'Message-ID: <abc\x85def@mailer.example>\r\n'],
    [
      'SOH in the References root',
      'Message-ID: <ok@corp.example>\r\nReferences: <root\x01x@old.example> <p@corp.example>\r\n',
    ],
    ['a tab in In-Reply-To', 'Message-ID: <ok2@corp.example>\r\nIn-Reply-To: <r\tx@old.example>\r\n'],
    ['NUL in In-Reply-To', 'Message-ID: <ok3@corp.example>\r\nIn-Reply-To: <r\x00x@old.example>\r\n'],
  ] as const) {
    it(what, async () => {
      const raw = Buffer.from(
        `From: Ivan <ivan@corp.example>\r\nTo: bot@example.test\r\nSubject: Re: выгрузка\r\n${headers}` +
          'Content-Type: text/plain; charset=utf-8\r\n\r\nНужна выгрузка за ноябрь\r\n',
        'latin1',
      );
      const mail = await parseInboundMail(raw, { ownAddresses: ['bot@example.test'] });
      expect(mail.messageId).toMatch(/^<[^<>\s]+@[^<>\s]+>$/);
      for (const id of [mail.messageId, mail.threadRoot, ...mail.references])
        expect(CONTROL.test(id ?? '')).toBe(false);
    });
  }
});
