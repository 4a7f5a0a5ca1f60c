// One budget per mailbox (issue 15): address variants that reach the same mailbox share the sender's limit.
import { describe, expect, it } from 'vitest';
import { mailboxKey, rateLimitKey } from '../src/sender-rate-limit.js';

describe('mailboxKey', () => {
  it('folds case, quoting, sub-addresses (RFC 5233) and compatibility forms into one key', () => {
    const variants = [
      'victim@client.test',
      'Victim@Client.TEST',
      'victim+1@client.test',
      'victim+anything+else@client.test',
      '"victim"@client.test',
      '"victim+2"@client.test',
      'ｖｉｃｔｉｍ@client.test', // fullwidth letters (NFKC)
      'victim@client.test.',
    ];
    expect(new Set(variants.map(mailboxKey))).toEqual(new Set(['victim@client.test']));
  });

  it('keeps different mailboxes apart and writes international domains in their ASCII form', () => {
    expect(mailboxKey('other@client.test')).not.toBe(mailboxKey('victim@client.test'));
    expect(mailboxKey('victim@client.example')).not.toBe(mailboxKey('victim@client.test'));
    expect(mailboxKey('иван@пример.рф')).toBe('иван@xn--e1afmkfd.xn--p1ai');
    // A local part that is only a "+detail" is not emptied.
    expect(mailboxKey('+1@client.test')).toBe('+1@client.test');
  });

  it('is what the sender and Reply-To budget keys are made of', () => {
    expect(rateLimitKey.email('Victim+news@Client.test')).toBe('email:victim@client.test');
    expect(rateLimitKey.replyTo('"List"@Corp.test')).toBe('reply-to:list@corp.test');
  });
});
