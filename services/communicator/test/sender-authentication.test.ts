// Authentication-Results as Yandex, Gmail and Microsoft 365 stamp them (the header layouts of real received
// mail; addresses and hosts are the providers' or example ones), read the way DMARC reads them (RFC 7489 §3.1).
import { describe, expect, it } from 'vitest';
import {
  authenticateMail,
  authenticateSender,
  authenticationResultsHeaders,
  isAligned,
  organizationalDomain,
  parseAuthenticationResults,
} from '../src/email/sender-authentication.js';

const YANDEX =
  'mxfront3q.mail.yandex.net; spf=pass (mxfront3q.mail.yandex.net: domain of corp.example.ru designates ' +
  '2a02:6b8:0:1a2d::10 as permitted sender, rule=[ip6:2a02:6b8::/32]) smtp.mail=anna@corp.example.ru; ' +
  'dkim=pass header.i=@example.ru';
const YANDEX_SOFTFAIL =
  'mxfront10h.mail.yandex.net; spf=softfail (mxfront10h.mail.yandex.net: transitioning domain of example.ru ' +
  'does not designate 46.254.17.128 as permitted sender) smtp.mail=www-data@example.ru';
const GMAIL = [
  'mx.google.com;',
  '       dkim=pass header.i=@example.com header.s=20230601 header.b="Ab/Cd+Ef";',
  '       spf=pass (google.com: domain of alice@example.com designates 209.85.220.41 as permitted sender) smtp.mailfrom=alice@example.com;',
  '       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com',
].join('\r\n');
const GMAIL_SPOOFED =
  'mx.google.com; dkim=pass header.i=@mailer.attacker.test header.s=s1 header.b=xyz; ' +
  'spf=pass (google.com: domain of bounce@mailer.attacker.test designates 198.51.100.7 as permitted sender) ' +
  'smtp.mailfrom=bounce@mailer.attacker.test; dmarc=fail (p=REJECT sp=REJECT dis=QUARANTINE) header.from=example.com';
const MICROSOFT =
  'spf=pass (sender IP is 40.107.22.41) smtp.mailfrom=contoso.com; dkim=pass (signature was verified) ' +
  'header.d=contoso.com;dmarc=pass action=none header.from=contoso.com;compauth=pass reason=100';

describe('parseAuthenticationResults (RFC 8601 §2.2)', () => {
  it('reads Yandex: authserv-id, results, properties, with comments dropped', () => {
    expect(parseAuthenticationResults(YANDEX)).toEqual({
      authservId: 'mxfront3q.mail.yandex.net',
      results: [
        { method: 'spf', result: 'pass', properties: { 'smtp.mail': 'anna@corp.example.ru' } },
        { method: 'dkim', result: 'pass', properties: { 'header.i': '@example.ru' } },
      ],
    });
  });

  it('reads Gmail folded over lines, with a quoted value and a comment holding ";" and "="', () => {
    const parsed = parseAuthenticationResults(GMAIL);
    expect(parsed.authservId).toBe('mx.google.com');
    expect(parsed.results.map((r) => `${r.method}=${r.result}`)).toEqual(['dkim=pass', 'spf=pass', 'dmarc=pass']);
    expect(parsed.results[0]!.properties).toEqual({
      'header.i': '@example.com',
      'header.s': '20230601',
      'header.b': 'Ab/Cd+Ef',
    });
    expect(parsed.results[2]!.properties).toEqual({ 'header.from': 'example.com' });
    const tricky = parseAuthenticationResults('mx.example.net 1; dkim=pass (a;b=c (nested) ) header.d=example.net');
    expect(tricky).toEqual({
      authservId: 'mx.example.net',
      results: [{ method: 'dkim', result: 'pass', properties: { 'header.d': 'example.net' } }],
    });
  });

  it('reads Microsoft 365, which writes no authserv-id and non-standard extras', () => {
    const parsed = parseAuthenticationResults(MICROSOFT);
    expect(parsed.authservId).toBe('');
    expect(parsed.results.map((r) => `${r.method}=${r.result}`)).toEqual([
      'spf=pass',
      'dkim=pass',
      'dmarc=pass',
      'compauth=pass',
    ]);
    expect(parsed.results[1]!.properties).toEqual({ 'header.d': 'contoso.com' });
  });

  it('takes "none" (no result) and garbage without throwing', () => {
    expect(parseAuthenticationResults('mx.example.net; none')).toEqual({ authservId: 'mx.example.net', results: [] });
    expect(parseAuthenticationResults('(((;;;"')).toMatchObject({ results: [] });
  });
});

describe('authenticationResultsHeaders', () => {
  it('returns every field of the header block, topmost first, unfolded; never one from the body', () => {
    const mail = [
      'Received: by mxfront3q.mail.yandex.net',
      'Authentication-Results: mx.example.net;',
      '\tdkim=pass header.d=example.net',
      'authentication-results:second.example.net; spf=fail',
      'From: a@example.net',
      '',
      'Authentication-Results: body.example.net; dkim=pass',
    ].join('\r\n');
    expect(authenticationResultsHeaders(Buffer.from(mail))).toEqual([
      'mx.example.net; dkim=pass header.d=example.net',
      'second.example.net; spf=fail',
    ]);
  });
});

describe('DMARC relaxed alignment (RFC 7489 §3.1) on the Public Suffix List', () => {
  it('uses organizational domains', () => {
    expect(organizationalDomain('mail.corp.example.co.uk')).toBe('example.co.uk');
    expect(organizationalDomain('corp.example.ru')).toBe('example.ru');
    expect(isAligned('mail.example.ru', 'example.ru')).toBe(true);
    expect(isAligned('example.co.uk', 'other.co.uk')).toBe(false);
    // A private-section suffix (github.io) is a public suffix too: two sites there are not one organisation.
    expect(isAligned('alice.github.io', 'mallory.github.io')).toBe(false);
  });
});

describe('authenticateSender', () => {
  const yandexTrusted = ['*.mail.yandex.net'];

  it('Yandex: DKIM pass by the organizational domain of the From: subdomain → verified by dkim', () => {
    const verdict = authenticateSender({
      headers: [YANDEX],
      from: 'anna@corp.example.ru',
      trustedAuthservIds: yandexTrusted,
    });
    expect(verdict).toMatchObject({ verified: true, method: 'dkim' });
    expect(verdict.reason).toContain('aligned with corp.example.ru');
  });

  it('Yandex: SPF pass on smtp.mail aligned → verified by spf when there is no DKIM', () => {
    const spfOnly =
      'mxfront8g.mail.yandex.net; spf=pass (mxfront8g.mail.yandex.net: domain of example.ru designates ' +
      '66.111.4.222 as permitted sender, rule=[ip4:66.111.4.0/24]) smtp.mail=robot@mail.example.ru';
    expect(
      authenticateSender({ headers: [spfOnly], from: 'Анна <anna@example.ru>', trustedAuthservIds: yandexTrusted }),
    ).toMatchObject({ verified: true, method: 'spf' });
  });

  it('Yandex: softfail, or a pass for an unrelated domain → not verified, and says what was seen', () => {
    const softfail = authenticateSender({
      headers: [YANDEX_SOFTFAIL],
      from: 'www-data@example.ru',
      trustedAuthservIds: yandexTrusted,
    });
    expect(softfail).toMatchObject({ verified: false, method: 'none' });
    expect(softfail.reason).toContain('spf=softfail (example.ru)');
    const unrelated = authenticateSender({
      headers: [YANDEX],
      from: 'ceo@victim.example.com',
      trustedAuthservIds: yandexTrusted,
    });
    expect(unrelated).toMatchObject({ verified: false });
    expect(unrelated.reason).toContain('no DKIM or SPF pass aligned with victim.example.com');
  });

  it('Gmail: dmarc=pass for the From: domain → verified by dmarc', () => {
    expect(
      authenticateSender({ headers: [GMAIL], from: 'alice@example.com', trustedAuthservIds: ['mx.google.com'] }),
    ).toMatchObject({ verified: true, method: 'dmarc' });
  });

  it('Gmail: a spoofed From: (the attacker signs and sends for its own domain) → not verified', () => {
    const verdict = authenticateSender({
      headers: [GMAIL_SPOOFED],
      from: 'boss@example.com',
      trustedAuthservIds: ['mx.google.com'],
    });
    expect(verdict).toMatchObject({ verified: false, method: 'none' });
    expect(verdict.reason).toContain('dmarc=fail (example.com)');
  });

  it('a dmarc=pass that names no From: domain (header.from) does not count: it may have judged another reading', () => {
    // `<ceo@corp.test>@evil.test` parses to ceo@corp.test here, while a verifier may have passed evil.test (s35 review).
    const bare = 'mx.google.com; dmarc=pass (p=REJECT sp=REJECT dis=NONE)';
    expect(
      authenticateSender({ headers: [bare], from: 'ceo@corp.test', trustedAuthservIds: ['mx.google.com'] }),
    ).toMatchObject({
      verified: false,
      method: 'none',
    });
  });

  it('a dmarc=pass for another From: domain does not count', () => {
    expect(
      authenticateSender({ headers: [GMAIL], from: 'boss@other.example', trustedAuthservIds: ['mx.google.com'] }),
    ).toMatchObject({ verified: false });
  });

  it('headers of other authserv-ids are ignored, however good they look (anyone can write them)', () => {
    const forged = 'mx.attacker.test; dkim=pass header.d=example.com; dmarc=pass header.from=example.com';
    const verdict = authenticateSender({
      headers: [forged, GMAIL],
      from: 'alice@example.com',
      trustedAuthservIds: ['mx.example.net'],
    });
    expect(verdict).toMatchObject({ verified: false });
    expect(verdict.reason).toContain('no Authentication-Results from a trusted server (mx.example.net)');
    // A wildcard matches hosts under the suffix only, never the suffix's look-alikes.
    expect(
      authenticateSender({
        headers: ['mxfront1.mail.yandex.net.attacker.test; dkim=pass header.i=@example.ru'],
        from: 'anna@example.ru',
        trustedAuthservIds: yandexTrusted,
      }),
    ).toMatchObject({ verified: false });
  });

  it('only the topmost trusted header counts: a forged copy below the server’s own cannot override it', () => {
    const forgedBelow = 'mxfront1a.mail.yandex.net; dkim=pass header.i=@example.ru';
    expect(
      authenticateSender({
        headers: [YANDEX_SOFTFAIL, forgedBelow],
        from: 'anna@example.ru',
        trustedAuthservIds: yandexTrusted,
      }),
    ).toMatchObject({ verified: false });
  });

  it('Microsoft 365 headers carry no authserv-id, so they are never trusted', () => {
    expect(
      authenticateSender({ headers: [MICROSOFT], from: 'a@contoso.com', trustedAuthservIds: ['contoso.com'] }),
    ).toMatchObject({ verified: false });
  });

  it('TRUSTED_AUTHSERV_ID unset → never verified', () => {
    expect(authenticateSender({ headers: [GMAIL], from: 'alice@example.com', trustedAuthservIds: [] })).toEqual({
      verified: false,
      method: 'none',
      reason: 'TRUSTED_AUTHSERV_ID is not set: no Authentication-Results are believed',
    });
  });
});

describe('authenticateMail', () => {
  const header = 'Authentication-Results: mx.yandex.ru; dkim=pass header.i=@corp.ru; dmarc=pass header.from=corp.ru';
  it('verifies a mail with one From: field as authenticateSender does', () => {
    const source = `${header}\r\nFrom: Boss <boss@corp.ru>\r\nSubject: x\r\n\r\nbody\r\n`;
    expect(authenticateMail({ source, from: 'boss@corp.ru', trustedAuthservIds: ['mx.yandex.ru'] })).toMatchObject({
      verified: true,
    });
  });

  it('never verifies a mail with two From: fields (RFC 5322 §3.6), whichever one a parser picks', () => {
    const source =
      'Authentication-Results: mx.yandex.ru; dkim=pass header.i=@evil.com; dmarc=pass\r\n' +
      'From: attacker@evil.com\r\nFrom: boss@corp.ru\r\nSubject: x\r\n\r\nbody\r\n';
    for (const from of ['boss@corp.ru', 'attacker@evil.com']) {
      expect(authenticateMail({ source, from, trustedAuthservIds: ['mx.yandex.ru'] })).toMatchObject({
        verified: false,
        method: 'none',
      });
    }
  });

  it('never verifies a From: whose quoted local part looks like another address, whoever vouches for its domain', () => {
    const from = '"<ceo@corp.ru>"@evil.test';
    const source = `Authentication-Results: mx.yandex.ru; dmarc=pass header.from=evil.test\r\nFrom: ${from}\r\n\r\nx\r\n`;
    const provider = { domain: 'evil.test', by: 'SES receipt, signed by SNS' };
    for (const verdict of [
      authenticateMail({ source, from, trustedAuthservIds: ['mx.yandex.ru'] }),
      authenticateMail({ source, from, trustedAuthservIds: [], providerDmarcPass: provider }),
    ])
      expect(verdict).toMatchObject({
        verified: false,
        method: 'none',
        reason: expect.stringContaining('quoted local part'),
      });
    // An ordinary address at that domain still passes.
    const plain = source.replace(from, 'ivan@evil.test');
    expect(
      authenticateMail({ source: plain, from: 'ivan@evil.test', trustedAuthservIds: ['mx.yandex.ru'] }).verified,
    ).toBe(true);
  });

  it("takes a provider's signed DMARC pass only for the mail's own From: domain and one From: field", () => {
    const provider = { domain: 'corp.ru', by: 'SES receipt, signed by SNS' };
    const one = 'From: Boss <boss@corp.ru>\r\nSubject: x\r\n\r\nbody\r\n';
    const setting = 'SES_TRUSTED_AUTHSERV_ID';
    expect(
      authenticateMail({
        source: one,
        from: 'boss@corp.ru',
        trustedAuthservIds: [],
        setting,
        providerDmarcPass: provider,
      }),
    ).toEqual({ verified: true, method: 'dmarc', reason: 'dmarc=pass for corp.ru (SES receipt, signed by SNS)' });
    expect(
      authenticateMail({
        source: one,
        from: 'boss@other.ru',
        trustedAuthservIds: [],
        setting,
        providerDmarcPass: provider,
      }),
    ).toMatchObject({
      verified: false,
      reason: 'SES_TRUSTED_AUTHSERV_ID is not set: no Authentication-Results are believed',
    });
    const two = `From: boss@corp.ru\r\n${one}`;
    expect(
      authenticateMail({
        source: two,
        from: 'boss@corp.ru',
        trustedAuthservIds: [],
        setting,
        providerDmarcPass: provider,
      }),
    ).toMatchObject({ verified: false, method: 'none' });
  });
});
