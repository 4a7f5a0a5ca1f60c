import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import iconv from 'iconv-lite';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { answer, clarify, startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { buildEmail, startCommunicator, waitUntil, type Running } from './harness.js';

const USERS = Array.from({ length: 20 }, (_, i) => ({ user: `bot${i}@example.test`, password: `pw-${i}` }));
let dovecot: DovecotServer;
let nextUser = 0;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];

beforeAll(async () => {
  dovecot = await startDovecot(USERS);
});
afterAll(async () => {
  await dovecot?.destroy();
});
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

type Setup = { user: string; sink: SmtpSink; secretary: FakeSecretary; communicator?: Running };

async function setup(
  options: { env?: Record<string, string>; start?: boolean } = {},
): Promise<Setup & { start: () => Promise<Running> }> {
  const user = USERS[nextUser++]!.user;
  const sink = await startSmtpSink();
  const secretary = await startFakeSecretary();
  open.push(sink, secretary);
  const s: Setup & { start: () => Promise<Running> } = {
    user,
    sink,
    secretary,
    start: async () => {
      const c = await startCommunicator({ secretaryUrl: secretary.url, dovecot, user, sink, env: options.env });
      open.push(c);
      s.communicator = c;
      return c;
    },
  };
  if (options.start !== false) await s.start();
  return s;
}

const append = (s: Setup, raw: Buffer, flags?: string[]) => dovecot.append(raw, { user: s.user, flags });
const flagsOf = async (s: Setup, uid: number) =>
  (await dovecot.messages({ user: s.user })).find((m) => m.uid === uid)?.flags ?? [];
const waitFlags = (s: Setup, uid: number, flag: string) =>
  waitUntil(async () => (await flagsOf(s, uid)).includes(flag), `flag ${flag} on uid ${uid}`);

describe('email channel', () => {
  it("passes the receiving server's verdict on the sender (TRUSTED_AUTHSERV_ID), ignoring other servers' headers", async () => {
    const s = await setup({ env: { TRUSTED_AUTHSERV_ID: 'mx.client-isp.test' } });
    await append(
      s,
      buildEmail({
        messageId: '<signed-1@client.test>',
        headers: ['Authentication-Results: mx.client-isp.test; dkim=pass header.d=client.test header.s=sel; spf=none'],
      }),
    );
    await s.sink.waitForMails(1);
    await append(
      s,
      buildEmail({
        messageId: '<forged-1@client.test>',
        headers: ['Authentication-Results: mx.attacker.test; dkim=pass header.d=client.test; dmarc=pass'],
      }),
    );
    await s.sink.waitForMails(2);
    expect(s.secretary.calls.map((c) => [c.message_id, c.sender_authentication])).toEqual([
      [
        '<signed-1@client.test>',
        {
          verified: true,
          method: 'dkim',
          reason: 'dkim=pass by client.test, aligned with client.test (mx.client-isp.test)',
        },
      ],
      [
        '<forged-1@client.test>',
        {
          verified: false,
          method: 'none',
          reason: 'no Authentication-Results from a trusted server (mx.client-isp.test)',
        },
      ],
    ]);
  });

  it('without TRUSTED_AUTHSERV_ID no mail is authenticated, whatever its headers say', async () => {
    const s = await setup();
    await append(
      s,
      buildEmail({
        messageId: '<unset-1@client.test>',
        headers: ['Authentication-Results: mx.client-isp.test; dmarc=pass header.from=client.test'],
      }),
    );
    await s.sink.waitForMails(1);
    expect(s.secretary.calls[0]!.sender_authentication).toEqual({
      verified: false,
      method: 'none',
      reason: 'TRUSTED_AUTHSERV_ID is not set: no mail is authenticated',
    });
  });

  it('answers mail waiting at start and mail arriving during IDLE, once each, in the thread', async () => {
    const s = await setup({ start: false });
    const waiting = await append(s, buildEmail({ messageId: '<waiting-1@client.test>', subject: 'VPN' }));
    await s.start();
    await s.sink.waitForMails(1);
    await waitFlags(s, waiting, '\\Seen');

    // The communicator is now idling; new mail is pushed by the server.
    const threadRoot = '<root-1@client.test>';
    const idleUid = await append(
      s,
      buildEmail({
        messageId: '<idle-1@client.test>',
        subject: 'Re: Принтер',
        inReplyTo: '<earlier@client.test>',
        references: `${threadRoot} <earlier@client.test>`,
        headers: ['Reply-To: Helpdesk Ivan <ivan.reply@client.test>'],
        body: 'Принтер на 3 этаже не печатает.\r\n',
      }),
    );
    const mails = await s.sink.waitForMails(2);
    await waitFlags(s, idleUid, '\\Answered');

    const first = mails[0]!;
    expect(first.parsed.subject).toBe('Re: VPN');
    expect(first.header('in-reply-to')).toBe('<waiting-1@client.test>');
    expect(first.header('auto-submitted')).toBe('auto-replied');
    expect(first.envelope.to).toEqual(['ivan@client.test']);
    expect(first.envelope.from).toBe(s.user);
    expect(first.parsed.text).toContain('Ответ на: Здравствуйте! Нужен доступ к VPN');

    const second = mails[1]!;
    expect(second.parsed.subject).toBe('Re: Принтер');
    expect(second.envelope.to).toEqual(['ivan.reply@client.test']);
    expect(second.header('in-reply-to')).toBe('<idle-1@client.test>');
    expect(second.header('references')).toBe(`${threadRoot} <earlier@client.test> <idle-1@client.test>`);
    expect(second.parsed.messageId).toMatch(/^<workemon\.[0-9a-f]{32}@example\.test>$/);

    expect(s.secretary.calls.map((c) => [c.channel, c.username, c.message_id, c.thread_key])).toEqual([
      ['email', 'ivan@client.test', '<waiting-1@client.test>', '<waiting-1@client.test>'],
      ['email', 'ivan@client.test', '<idle-1@client.test>', threadRoot],
    ]);
    expect(await flagsOf(s, waiting)).toEqual(expect.arrayContaining(['\\Seen', '\\Answered', '$WorkemonReplied']));
    expect(await s.communicator!.metric('workemon_messages_received_total', { channel: 'email' })).toBe(2);
    expect(await s.communicator!.metric('workemon_replies_sent_total', { channel: 'email', outcome: 'sent' })).toBe(2);
    expect(s.sink.mails).toHaveLength(2);
  });

  it('decodes Cyrillic in windows-1251, koi8-r, base64, quoted-printable and undeclared 8-bit charsets', async () => {
    const s = await setup();
    const text = 'Прошу выдать доступ к отчёту по продажам';
    const variants: Array<[string, Buffer]> = [
      [
        'cp1251',
        buildEmail({ contentType: 'text/plain; charset=windows-1251', body: iconv.encode(`${text} 1\r\n`, 'win1251') }),
      ],
      [
        'koi8 base64',
        buildEmail({
          contentType: 'text/plain; charset=koi8-r',
          transferEncoding: 'base64',
          body: Buffer.from(iconv.encode(`${text} 2\r\n`, 'koi8-r').toString('base64') + '\r\n'),
        }),
      ],
      [
        'utf-8 qp',
        buildEmail({
          transferEncoding: 'quoted-printable',
          body: Buffer.from(
            Buffer.from(`${text} 3`, 'utf8')
              .toString('hex')
              .replace(/(..)/g, '=$1')
              .toUpperCase()
              .replace(/(.{72})/g, '$1=\r\n') + '\r\n',
          ),
        }),
      ],
      ['undeclared cp1251', buildEmail({ contentType: 'text/plain', body: iconv.encode(`${text} 4\r\n`, 'win1251') })],
      [
        'mislabelled koi8-r',
        buildEmail({ contentType: 'text/plain; charset=utf-8', body: iconv.encode(`${text} 5\r\n`, 'koi8-r') }),
      ],
    ];
    for (const [, raw] of variants) await append(s, raw);
    await s.sink.waitForMails(variants.length);
    const requests = s.secretary.calls.map((c) => c.request).sort();
    expect(requests).toEqual([1, 2, 3, 4, 5].map((n) => `${text} ${n}`));
  });

  it('turns HTML-only mail into text and strips quoted history, signature and attachments', async () => {
    const s = await setup();
    await append(
      s,
      buildEmail({
        contentType: 'text/html; charset=utf-8',
        body: '<div>Нужен <b>новый ноутбук</b> для стажёра.</div><div class="gmail_quote">12.03 Пётр написал:<blockquote>старое письмо</blockquote></div>',
      }),
    );
    await append(
      s,
      buildEmail({
        contentType: 'multipart/mixed; boundary="b1"',
        body: [
          '--b1',
          'Content-Type: text/plain; charset=utf-8',
          '',
          'Сломалась мышь, нужна замена.',
          '',
          'С уважением,',
          'Иван Петров, бухгалтерия',
          '',
          'On Mon, 1 Jan 2024 Bot <bot@example.test> wrote:',
          '> Ваш прошлый вопрос решён',
          '--b1',
          'Content-Type: application/pdf; name="act.pdf"',
          'Content-Disposition: attachment; filename="act.pdf"',
          'Content-Transfer-Encoding: base64',
          '',
          'JVBERi0xLjQK',
          '--b1--',
          '',
        ].join('\r\n'),
      }),
    );
    await s.sink.waitForMails(2);
    const requests = s.secretary.calls.map((c) => c.request);
    expect(requests).toContain('Нужен новый ноутбук для стажёра.');
    expect(requests).toContain('Сломалась мышь, нужна замена.\n\n[Вложения (не переданы): act.pdf]');
    expect(requests).toHaveLength(2);
  });

  it('never answers automatic mail, and counts each kind', async () => {
    const s = await setup();
    const automatic: Array<[string, Buffer]> = [
      ['auto_submitted', buildEmail({ headers: ['Auto-Submitted: auto-replied'] })],
      ['auto_submitted', buildEmail({ headers: ['X-Autoreply: yes'] })],
      ['precedence', buildEmail({ headers: ['Precedence: bulk'] })],
      ['precedence', buildEmail({ headers: ['Precedence: junk'] })],
      ['precedence', buildEmail({ headers: ['Precedence: first-class', 'Precedence: list'] })],
      ['auto_submitted', buildEmail({ headers: ['Auto-Submitted: notified-by-robot'] })],
      ['mailing_list', buildEmail({ headers: ['List-Id: <staff.example.test>'] })],
      [
        'delivery_report',
        buildEmail({
          contentType: 'multipart/report; report-type=delivery-status; boundary="x"',
          body: '--x\r\nContent-Type: text/plain\r\n\r\nDelivery failed\r\n--x--\r\n',
        }),
      ],
      ['null_sender', buildEmail({ headers: ['Return-Path: <>'] })],
      ['robot_sender', buildEmail({ from: 'MAILER-DAEMON@mx.client.test' })],
      ['robot_sender', buildEmail({ from: 'Service <no-reply@service.test>' })],
      ['own_address', buildEmail({ from: `Bot <${s.user}>` })],
    ];
    const uids: number[] = [];
    for (const [, raw] of automatic) uids.push(await append(s, raw));
    for (const uid of uids) await waitFlags(s, uid, '\\Seen');
    // A real mail after them is answered: the channel is alive, so silence above is a decision.
    await append(s, buildEmail({ messageId: '<human@client.test>' }));
    const mails = await s.sink.waitForMails(1);
    expect(mails.map((m) => m.header('in-reply-to'))).toEqual(['<human@client.test>']);
    expect(s.secretary.calls).toHaveLength(1);
    for (const uid of uids) expect(await flagsOf(s, uid)).not.toContain('\\Answered');
    const counts: Record<string, number> = {};
    for (const [reason] of automatic) counts[reason] = (counts[reason] ?? 0) + 1;
    for (const [reason, n] of Object.entries(counts)) {
      expect(
        await s.communicator!.metric('workemon_messages_skipped_total', { channel: 'email', reason }),
        reason,
      ).toBe(n);
    }
  });

  it('recognises our own address in any case and with a +tag', async () => {
    const s = await setup();
    const [local, domain] = s.user.split('@');
    const uids = [
      await append(s, buildEmail({ from: `Bot <${s.user.toUpperCase()}>` })),
      await append(s, buildEmail({ from: `Bot <${local}+loop@${domain!.toUpperCase()}>` })),
    ];
    for (const uid of uids) await waitFlags(s, uid, '\\Seen');
    await append(s, buildEmail({ messageId: '<human-after-own@client.test>' }));
    const mails = await s.sink.waitForMails(1);
    expect(mails.map((m) => m.header('in-reply-to'))).toEqual(['<human-after-own@client.test>']);
    expect(await s.communicator!.metric('workemon_messages_skipped_total', { reason: 'own_address' })).toBe(2);
  });

  it('answers the same Message-ID once, even delivered twice', async () => {
    const s = await setup();
    const a = await append(s, buildEmail({ messageId: '<dup@client.test>' }));
    await s.sink.waitForMails(1);
    await waitFlags(s, a, '\\Answered');
    const b = await append(s, buildEmail({ messageId: '<dup@client.test>' }));
    await waitFlags(s, b, '\\Seen');
    // One more mail to be sure the duplicate's decision was final before counting.
    await append(s, buildEmail({ messageId: '<after-dup@client.test>' }));
    await s.sink.waitForMails(2);
    expect(s.sink.mails.map((m) => m.header('in-reply-to'))).toEqual(['<dup@client.test>', '<after-dup@client.test>']);
    expect(await flagsOf(s, b)).not.toContain('\\Answered');
    expect(await s.communicator!.metric('workemon_messages_skipped_total', { reason: 'duplicate' })).toBe(1);
  });

  it('leaves mail unseen while the secretary is down and answers exactly once when it is back', async () => {
    const s = await setup();
    s.secretary.down();
    const uid = await append(s, buildEmail({ messageId: '<outage@client.test>' }));
    await waitUntil(() => s.secretary.calls.length >= 2, 'two failed attempts');
    expect(await flagsOf(s, uid)).not.toContain('\\Seen');
    expect(s.sink.mails).toHaveLength(0);
    s.secretary.up();
    await s.sink.waitForMails(1);
    await waitFlags(s, uid, '\\Answered');
    const callsAtReply = s.secretary.calls.length;
    // Nothing else is pending: a later mail is the only further work.
    await append(s, buildEmail({ messageId: '<after-outage@client.test>' }));
    await s.sink.waitForMails(2);
    expect(s.secretary.calls.length).toBe(callsAtReply + 1);
    expect(s.sink.mails.map((m) => m.header('in-reply-to'))).toEqual([
      '<outage@client.test>',
      '<after-outage@client.test>',
    ]);
  });

  it('flags $WorkemonFailed after MAX_ATTEMPTS and leaves the mail in the mailbox', async () => {
    const s = await setup({ env: { MAX_ATTEMPTS: '2' } });
    s.sink.reject(451, 'Try later');
    const uid = await append(s, buildEmail());
    await waitFlags(s, uid, '$WorkemonFailed');
    expect(await flagsOf(s, uid)).not.toContain('\\Seen');
    expect(await s.communicator!.metric('workemon_email_failed_total')).toBe(1);
    expect(await s.communicator!.metric('workemon_replies_sent_total', { outcome: 'failed' })).toBe(2);
  });

  it('retries after SMTP refuses for a while and then replies once', async () => {
    const s = await setup();
    s.sink.reject(421, 'Service not available');
    const uid = await append(s, buildEmail({ messageId: '<smtp-down@client.test>' }));
    await waitUntil(
      async () => (await s.communicator!.metric('workemon_replies_sent_total', { outcome: 'failed' })) >= 1,
      'a refused delivery',
    );
    expect(await flagsOf(s, uid)).not.toContain('\\Seen');
    s.sink.accept();
    await s.sink.waitForMails(1);
    await waitFlags(s, uid, '\\Answered');
    expect(s.sink.mails).toHaveLength(1);
  });

  it('replies with the secretary’s message when it rejects the sender, then marks the mail seen', async () => {
    const s = await setup();
    s.secretary.decide = () => ({ status: 403, message: 'Извините, ваш адрес не найден в справочнике сотрудников.' });
    const uid = await append(s, buildEmail({ from: 'stranger@outside.test' }));
    const [mail] = await s.sink.waitForMails(1);
    expect(mail!.parsed.text?.trim()).toBe('Извините, ваш адрес не найден в справочнике сотрудников.');
    expect(mail!.envelope.to).toEqual(['stranger@outside.test']);
    await waitFlags(s, uid, '\\Seen');
  });

  it('does not answer a sender beyond RATE_LIMIT_PER_HOUR', async () => {
    const s = await setup({ env: { RATE_LIMIT_PER_HOUR: '1' } });
    await append(s, buildEmail({ messageId: '<r1@client.test>' }));
    await s.sink.waitForMails(1);
    const second = await append(s, buildEmail({ messageId: '<r2@client.test>' }));
    await waitFlags(s, second, '\\Seen');
    await append(s, buildEmail({ from: 'other@client.test', messageId: '<r3@client.test>' }));
    await s.sink.waitForMails(2);
    expect(s.sink.mails.map((m) => m.header('in-reply-to'))).toEqual(['<r1@client.test>', '<r3@client.test>']);
    expect(await s.communicator!.metric('workemon_messages_skipped_total', { reason: 'rate_limited' })).toBe(1);
  });

  it('carries a clarification round trip in one thread', async () => {
    const s = await setup();
    s.secretary.decide = (r) =>
      r.request.includes('отчёт') && !r.request.includes('продажам')
        ? clarify('Уточните, какой отчёт вам нужен?', r.request)
        : answer('Отчёт по продажам лежит в BI, раздел «Продажи».', r.request);
    await append(s, buildEmail({ messageId: '<q1@client.test>', subject: 'Нужен отчёт', body: 'Нужен отчёт\r\n' }));
    const [question] = await s.sink.waitForMails(1);
    expect(question!.parsed.text?.trim()).toBe('Уточните, какой отчёт вам нужен?');
    // The user answers our question from their mail client, quoting it.
    await append(
      s,
      buildEmail({
        messageId: '<q2@client.test>',
        subject: question!.parsed.subject,
        inReplyTo: question!.parsed.messageId,
        references: `<q1@client.test> ${question!.parsed.messageId}`,
        body: `По продажам за март.\r\n\r\n> Уточните, какой отчёт вам нужен?\r\n`,
      }),
    );
    const mails = await s.sink.waitForMails(2);
    expect(mails[1]!.parsed.text?.trim()).toBe('Отчёт по продажам лежит в BI, раздел «Продажи».');
    expect(mails[1]!.parsed.subject).toBe('Re: Нужен отчёт');
    expect(s.secretary.calls.map((c) => [c.request, c.thread_key])).toEqual([
      ['Нужен отчёт', '<q1@client.test>'],
      ['По продажам за март.', '<q1@client.test>'],
    ]);
  });

  it('reconnects after Dovecot restarts and misses nothing', async () => {
    const s = await setup();
    await append(s, buildEmail({ messageId: '<before-restart@client.test>' }));
    await s.sink.waitForMails(1);
    await dovecot.restart();
    await append(s, buildEmail({ messageId: '<after-restart@client.test>' }));
    await s.sink.waitForMails(2);
    expect(s.sink.mails.map((m) => m.header('in-reply-to'))).toEqual([
      '<before-restart@client.test>',
      '<after-restart@client.test>',
    ]);
    expect(await s.communicator!.metric('workemon_imap_reconnects_total')).toBeGreaterThanOrEqual(1);
  });
});
