import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import iconv from 'iconv-lite';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { USER_MESSAGES } from '../src/email/mail-request.js';
import { answer, clarify, startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { startMailBehindProxy } from './mail-behind-proxy.js';
import { buildEmail, startCommunicator, waitUntil, type Running } from './harness.js';

const USERS = Array.from({ length: 48 }, (_, i) => ({ user: `bot${i}@example.test`, password: `pw-${i}` }));
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
      reason: 'TRUSTED_AUTHSERV_ID is not set: no Authentication-Results are believed',
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
    expect(first.parsed.text).toContain('Ответ на: VPN\n\nЗдравствуйте! Нужен доступ к VPN');

    const second = mails[1]!;
    expect(second.parsed.subject).toBe('Re: Принтер');
    expect(second.envelope.to).toEqual(['ivan.reply@client.test']);
    expect(second.header('in-reply-to')).toBe('<idle-1@client.test>');
    expect(second.header('references')).toBe(`${threadRoot} <earlier@client.test> <idle-1@client.test>`);
    expect(second.parsed.messageId).toMatch(/^<workemon\.[0-9a-f]{32}\.[0-9a-f]{16}\.[0-9a-f]{8}@example\.test>$/);

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
    expect(requests).toEqual([1, 2, 3, 4, 5].map((n) => `Доступ к VPN\n\n${text} ${n}`));
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
    expect(requests).toContain('Доступ к VPN\n\nНужен новый ноутбук для стажёра.');
    expect(requests).toContain('Доступ к VPN\n\nСломалась мышь, нужна замена.\n\n[Вложения (не переданы): act.pdf]');
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
      // Autoresponders that write no Auto-Submitted: their own headers, Precedence, or only their subject.
      ['auto_submitted', buildEmail({ headers: ['X-Loop: vacation@client.test'] })],
      ['auto_submitted', buildEmail({ headers: ['X-Autogenerated: Reply'] })],
      ['auto_submitted', buildEmail({ subject: 'Automatic reply: Доступ к VPN', inReplyTo: '<asked@client.test>' })],
      ['auto_submitted', buildEmail({ subject: 'Автоответ: Доступ к VPN', inReplyTo: '<asked@client.test>' })],
      ['auto_submitted', buildEmail({ subject: 'Out of Office: Доступ к VPN', inReplyTo: '<asked@client.test>' })],
      ['precedence', buildEmail({ headers: ['Precedence: auto_reply'] })],
      ['own_address', buildEmail({ from: `Bot <${s.user}.>` })],
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

  it('answers a person whose subject merely mentions an autoresponder', async () => {
    const s = await setup();
    await append(s, buildEmail({ subject: 'Автоответ не работает', messageId: '<autoreply-broken@client.test>' }));
    // A new mail (it answers none) titled like an autoresponder's reply is a person's question.
    await append(
      s,
      buildEmail({ subject: 'Автоответ: как включить на время отпуска?', messageId: '<autoreply-how@client.test>' }),
    );
    const mails = await s.sink.waitForMails(2);
    expect(mails.map((m) => m.header('in-reply-to')).sort()).toEqual([
      '<autoreply-broken@client.test>',
      '<autoreply-how@client.test>',
    ]);
    const requests = s.secretary.calls.map((c) => c.request).join('\n');
    expect(requests).toContain('Автоответ не работает');
    expect(requests).toContain('Автоответ: как включить на время отпуска?');
  });

  it('never aims an answer at its own mailbox through Reply-To: the answer goes to From', async () => {
    const s = await setup();
    const domain = s.user.split('@')[1]!;
    await append(
      s,
      buildEmail({
        from: `Иван Петров <ivan@${domain}>`,
        headers: [`Reply-To: Support <${s.user.toUpperCase()}.>`],
        messageId: '<reply-to-bot@client.test>',
      }),
    );
    const [mail] = await s.sink.waitForMails(1);
    expect(mail!.header('in-reply-to')).toBe('<reply-to-bot@client.test>');
    expect(mail!.envelope.to).toEqual([`ivan@${domain}`]);
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
    // The durable record's look-up (POST /deliveries/lookup) is the first call to the secretary: nothing gets further
    // (no budget drawn, no decision asked).
    await waitUntil(() => s.secretary.deliveryCalls >= 2, 'two failed attempts');
    expect(s.secretary.consumeCalls).toHaveLength(0);
    expect(s.secretary.calls).toHaveLength(0);
    expect(await flagsOf(s, uid)).not.toContain('\\Seen');
    // The waiting mail shows in the backlog gauge.
    await waitUntil(
      async () => (await s.communicator!.metric('workemon_imap_oldest_unseen_age_seconds')) > 0,
      'oldest unseen age above 0',
    );
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

  it('never tells the sender they are unknown when the secretary refuses the communicator’s own key (401)', async () => {
    const s = await setup();
    const decide = s.secretary.decide;
    s.secretary.decide = () => ({ status: 401, message: 'Invalid API key' });
    const uid = await append(s, buildEmail({ messageId: '<key-refused@client.test>' }));
    await waitUntil(() => s.secretary.calls.length >= 2, 'two refused attempts');
    // A fault of the deployment, not of the employee: the mail waits, unseen and unanswered.
    expect(s.sink.mails).toHaveLength(0);
    expect(await flagsOf(s, uid)).not.toContain('\\Seen');
    s.secretary.decide = decide;
    const [mail] = await s.sink.waitForMails(1);
    await waitFlags(s, uid, '\\Answered');
    expect(mail!.header('in-reply-to')).toBe('<key-refused@client.test>');
    expect(mail!.parsed.text).not.toContain(USER_MESSAGES.forbidden);
    expect(mail!.parsed.text?.trim()).toMatch(/^Ответ на: /);
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

  it('a reply whose SMTP answer never came is sent again as the same message (RFC 1047), once', async () => {
    // The server takes the data but answers the final "." after SMTP_TIMEOUT: nobody can tell whether it kept
    // the reply. It is retried (a lost answer is worse than a repeat), with the same Message-ID and text.
    const s = await setup({ env: { SMTP_TIMEOUT: '1s' } });
    s.sink.delay(2500, 1);
    const uid = await append(s, buildEmail({ messageId: '<smtp-silent@client.test>' }));
    await s.sink.waitForMails(2, 20_000);
    await waitFlags(s, uid, '\\Answered');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const [first, second] = s.sink.mails;
    expect(s.sink.mails).toHaveLength(2);
    expect(second!.header('message-id')).toBe(first!.header('message-id'));
    expect(second!.parsed.text).toBe(first!.parsed.text);
    expect(second!.header('in-reply-to')).toBe('<smtp-silent@client.test>');
    // The secretary answered the repeat from its record: one analysis, asked twice by message_id.
    expect(new Set(s.secretary.calls.map((c) => c.message_id))).toEqual(new Set(['<smtp-silent@client.test>']));
  });

  it('never mails the secretary’s own 4xx message: the sender gets a Russian text written for them', async () => {
    const s = await setup();
    s.secretary.decide = () => ({ status: 403, message: "Sender 'stranger@outside.test' is not in the directory" });
    const uid = await append(s, buildEmail({ from: 'stranger@outside.test' }));
    const [mail] = await s.sink.waitForMails(1);
    expect(mail!.parsed.text?.trim()).toBe(USER_MESSAGES.forbidden);
    expect(mail!.parsed.text).not.toContain('directory');
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

  it('sets poison mail (5,000 MIME parts) aside after MAX_ATTEMPTS, counted on the message, and answers the mail after it', async () => {
    const s = await setup({ env: { MAX_ATTEMPTS: '3' } });
    const parts = Array.from(
      { length: 5000 },
      (_, i) => `--p\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nчасть ${i}\r\n`,
    ).join('');
    const poison = await append(
      s,
      buildEmail({
        messageId: '<poison@client.test>',
        contentType: 'multipart/mixed; boundary="p"',
        body: `${parts}--p--\r\n`,
      }),
    );
    const after = await append(s, buildEmail({ messageId: '<after-poison@client.test>' }));
    // The mail after the poison is answered while the poison still waits for its retries.
    await waitFlags(s, after, '\\Answered');
    await waitFlags(s, poison, '$WorkemonFailed');
    const flags = await flagsOf(s, poison);
    expect(flags).toEqual(expect.arrayContaining(['$WorkemonAttempt1', '$WorkemonAttempt2', '$WorkemonAttempt3']));
    expect(flags).not.toContain('$WorkemonAttempt4');
    expect(flags).not.toContain('\\Seen');
    expect(s.secretary.calls.map((c) => c.message_id)).toEqual(['<after-poison@client.test>']);
    expect(s.sink.mails.map((m) => m.header('in-reply-to'))).toEqual(['<after-poison@client.test>']);
    expect(await s.communicator!.metric('workemon_email_failed_total')).toBe(1);
  });

  it('counts poison-mail attempts across communicator restarts', async () => {
    // One attempt per run (the retry is an hour away), so only restarts bring the next attempt.
    const s = await setup({ start: false, env: { MAX_ATTEMPTS: '3', RETRY_BASE_DELAY: '1h' } });
    const uid = await append(
      s,
      buildEmail({
        messageId: '<crashes-us@client.test>',
        contentType: 'multipart/mixed; boundary="r"',
        body: `${'--r\r\n\r\nx\r\n'.repeat(1200)}--r--\r\n`,
      }),
    );
    for (const n of [1, 2]) {
      const c = await s.start();
      await waitFlags(s, uid, `$WorkemonAttempt${n}`);
      await c.stop();
      expect(await flagsOf(s, uid)).not.toContain('$WorkemonFailed');
    }
    // The third run makes the last attempt and, when it fails too, sets the mail aside.
    await s.start();
    await waitFlags(s, uid, '$WorkemonFailed');
    expect(await flagsOf(s, uid)).toContain('$WorkemonAttempt3');
    expect(await flagsOf(s, uid)).not.toContain('$WorkemonAttempt4');
    await append(s, buildEmail({ messageId: '<after-restarts@client.test>' }));
    const [reply] = await s.sink.waitForMails(1);
    expect(reply!.header('in-reply-to')).toBe('<after-restarts@client.test>');
  });

  it('counts attempts across restarts: attempts recorded by an earlier run count toward MAX_ATTEMPTS', async () => {
    const s = await setup({ start: false, env: { MAX_ATTEMPTS: '3' } });
    // Two earlier runs tried this mail (and, say, crashed on it); this run gets one last attempt.
    const uid = await append(
      s,
      buildEmail({
        messageId: '<tried-before@client.test>',
        contentType: 'multipart/mixed; boundary="q"',
        body: `${'--q\r\n\r\nx\r\n'.repeat(1500)}--q--\r\n`,
      }),
      ['$WorkemonAttempt1', '$WorkemonAttempt2'],
    );
    await s.start();
    await waitFlags(s, uid, '$WorkemonFailed');
    expect(await flagsOf(s, uid)).toContain('$WorkemonAttempt3');
    expect(await flagsOf(s, uid)).not.toContain('$WorkemonAttempt4');
    // A mail whose attempts are already spent is set aside without another try.
    const spent = await append(s, buildEmail({ messageId: '<spent@client.test>' }), [
      '$WorkemonAttempt1',
      '$WorkemonAttempt2',
      '$WorkemonAttempt3',
    ]);
    await waitFlags(s, spent, '$WorkemonFailed');
    expect(s.secretary.calls).toHaveLength(0);
    expect(s.sink.mails).toHaveLength(0);
  });

  it('honours Reply-To only in the sender’s or a company domain, and rate-limits the reply address', async () => {
    const s = await setup({ env: { COMPANY_DOMAINS: 'corp.test', RATE_LIMIT_PER_HOUR: '1' } });
    await append(
      s,
      buildEmail({
        from: 'a@client.test',
        messageId: '<rt-outside@client.test>',
        headers: ['Reply-To: victim@elsewhere.test'],
      }),
    );
    await append(
      s,
      buildEmail({
        from: 'b@client.test',
        messageId: '<rt-company@client.test>',
        headers: ['Reply-To: desk@corp.test'],
      }),
    );
    const [first, second] = await s.sink.waitForMails(2);
    const to = Object.fromEntries([first!, second!].map((m) => [m.header('in-reply-to'), m.envelope.to]));
    expect(to).toEqual({
      '<rt-outside@client.test>': ['a@client.test'],
      '<rt-company@client.test>': ['desk@corp.test'],
    });
    // Another sender aiming replies at the same address: over the per-address limit, no reply.
    const third = await append(
      s,
      buildEmail({ from: 'c@client.test', messageId: '<rt-again@client.test>', headers: ['Reply-To: desk@corp.test'] }),
    );
    await waitFlags(s, third, '\\Seen');
    await append(s, buildEmail({ from: 'd@client.test', messageId: '<rt-last@client.test>' }));
    await s.sink.waitForMails(3);
    expect(s.sink.mails.map((m) => m.header('in-reply-to'))).not.toContain('<rt-again@client.test>');
    expect(await s.communicator!.metric('workemon_messages_skipped_total', { reason: 'rate_limited' })).toBe(1);
  });

  it('replaces a connection that stops answering without closing and answers the next mail (TCP proxy)', async () => {
    const { user, proxy, sink, secretary, c } = await proxied({ sweepS: 2 });
    // The middlebox goes silent: no FIN, no RST, nothing forwarded on the open connection.
    proxy.freeze();
    await dovecot.append(readFileSync(new URL('./fixtures/field-cases/M14-idle-dropped.eml', import.meta.url)), {
      user,
    });
    // The default socket timeout is five minutes; the sweep's command deadline finds the silence in seconds.
    const [reply] = await sink.waitForMails(1, 20_000);
    expect(reply!.header('in-reply-to')).toBe('<idle-2@example.test>');
    expect(secretary.calls.map((x) => x.request)).toEqual(['idle\n\nНужна статистика авторизаций по кошелькам']);
    expect(proxy.connections()).toBeGreaterThanOrEqual(2);
    expect(
      await c.metric('workemon_channel_poll_errors_total', { channel: 'email', kind: 'timeout' }),
    ).toBeGreaterThanOrEqual(1);
    expect(await c.metric('workemon_imap_reconnects_total')).toBeGreaterThanOrEqual(1);
  });

  // imapflow answers a failed STORE or SEARCH with `false` instead of throwing: a reply's \Answered write lost
  // with its connection, or refused, must still be written, and the mail never answered a second time.
  for (const action of ['cut', 'no'] as const) {
    it(`writes the \\Answered flag after the STORE was ${action === 'cut' ? 'cut off with the connection' : 'refused (NO) once'}, and answers once`, async () => {
      const { user, proxy, sink, secretary, c } = await proxied();
      const trapped = proxy.onCommand(/UID STORE \S+ \+FLAGS \(\\Seen \\Answered/, action);
      const uid = await dovecot.append(buildEmail({ messageId: `<store-${action}@client.test>` }), { user });
      await sink.waitForMails(1, 20_000);
      await trapped;
      await waitUntil(
        async () => (await flagsIn(user, uid)).includes('\\Answered'),
        'the flag written after all',
        20_000,
      );
      // Sweeps run every second: time for a second reply, if one were coming.
      await sleep(2500);
      expect(sink.mails).toHaveLength(1);
      expect(secretary.calls).toHaveLength(1);
      // A lost connection is replaced; a refusal is only tried again, on the same connection.
      if (action === 'cut') expect(proxy.connections()).toBeGreaterThanOrEqual(2);
      else expect(await c.metric('workemon_imap_reconnects_total')).toBe(0);
    });
  }

  it('a STORE the server always refuses: each mail answered once, the mailbox keeps working, no reconnect loop', async () => {
    const { user, proxy, sink, secretary, c } = await proxied();
    void proxy.onCommand(/UID STORE \S+ \+FLAGS \(\\Seen \\Answered/, 'no', Number.POSITIVE_INFINITY);
    const first = await dovecot.append(buildEmail({ messageId: '<refused-1@client.test>' }), { user });
    await sink.waitForMails(1, 20_000);
    // Tried again three times (0.2, 0.8, 3.2 s here), then given up; the mail stays unseen in the mailbox.
    await sleep(5000);
    await dovecot.append(buildEmail({ messageId: '<refused-2@client.test>' }), { user });
    await sink.waitForMails(2, 20_000);
    await sleep(2500);
    expect(sink.mails.map((m) => m.header('in-reply-to'))).toEqual([
      '<refused-1@client.test>',
      '<refused-2@client.test>',
    ]);
    expect(secretary.calls).toHaveLength(2);
    expect(await flagsIn(user, first)).not.toContain('\\Seen');
    expect(await c.metric('workemon_imap_reconnects_total')).toBe(0);
    expect(c.email!.health().connected).toBe(true);
  });

  it(
    'a flag write that loses the connection at every login is given up: the mailbox connects and works on',
    { timeout: 90_000 },
    async () => {
      const { user, proxy, sink, c } = await proxied();
      void proxy.onCommand(/UID STORE \S+ \+FLAGS \(\\Seen \\Answered/, 'cut', Number.POSITIVE_INFINITY);
      await dovecot.append(buildEmail({ messageId: '<lost-1@client.test>' }), { user });
      await sink.waitForMails(1, 20_000);
      // Before: the kept write was applied before the session counted as connected, failed again, for ever.
      await waitUntil(() => c.email!.health().connected, 'connected again after the write was given up', 30_000);
      await dovecot.append(buildEmail({ messageId: '<lost-2@client.test>' }), { user });
      await sink.waitForMails(2, 30_000);
      await sleep(2500);
      expect(sink.mails.map((m) => m.header('in-reply-to'))).toEqual(['<lost-1@client.test>', '<lost-2@client.test>']);
    },
  );

  it('a mailbox that keeps no flags (PERMANENTFLAGS ()): answered once each, nothing stored, no reconnect loop', async () => {
    const { user, sink, c } = await proxied({
      rewrite: (d) => d.replace(/\[PERMANENTFLAGS \([^)]*\)\]/g, '[PERMANENTFLAGS ()]'),
    });
    await dovecot.append(buildEmail({ messageId: '<noflags-1@client.test>' }), { user });
    await sink.waitForMails(1, 20_000);
    await dovecot.append(buildEmail({ messageId: '<noflags-2@client.test>' }), { user });
    await sink.waitForMails(2, 20_000);
    await sleep(2500);
    expect(sink.mails).toHaveLength(2);
    expect(await c.metric('workemon_imap_reconnects_total')).toBe(0);
  });

  it('a Message-ID no SEARCH can carry (70,000 characters) neither blocks nor spoils the duplicate check of other mail', async () => {
    const { user, sink } = await proxied();
    const hostile = buildEmail({ messageId: `<${'b'.repeat(70_000)}@client.test>`, from: 'h@client.test' });
    // Appended together, so their "already answered?" questions share one SEARCH.
    await Promise.all([
      dovecot.append(hostile, { user }),
      dovecot.append(buildEmail({ messageId: '<beside-nul@client.test>', from: 'b@client.test' }), { user }),
    ]);
    await sink.waitForMails(2, 20_000);
    await sleep(2500);
    expect(sink.mails.map((m) => m.envelope.to[0]).sort()).toEqual(['b@client.test', 'h@client.test']);
    expect((await dovecot.messages({ user })).every((m) => m.flags.includes('\\Answered'))).toBe(true);
  });

  it('a second copy whose "already answered?" SEARCH is refused is looked at again, not answered', async () => {
    const { user, proxy, sink, c } = await proxied();
    const raw = buildEmail({ messageId: '<copy-no@client.test>' });
    const first = await dovecot.append(raw, { user });
    await sink.waitForMails(1, 20_000);
    await waitUntil(async () => (await flagsIn(user, first)).includes('\\Answered'), 'the first copy answered');
    const refused = proxy.onCommand(/UID SEARCH .*HEADER Message-ID/i, 'no');
    const second = await dovecot.append(raw, { user });
    await refused;
    await waitUntil(
      async () => (await flagsIn(user, second)).includes('\\Seen'),
      'the second copy skipped as a duplicate',
      20_000,
    );
    expect(sink.mails).toHaveLength(1);
    expect(await c.metric('workemon_messages_skipped_total', { reason: 'duplicate' })).toBe(1);
  });

  // RFC 6532 §3.2 allows UTF-8 in a msg-id, and RFC 5322 §3.2.2 comments around it (Exchange adds them): both were
  // kept out of the "already answered?" SEARCH (a comment even went into the reply's In-Reply-To as mailparser
  // returned it, `<id> (comment)>`), so a second delivered copy was answered again.
  for (const [kind, header, id] of [
    ['in UTF-8', '<заявка-7@пример.рф>', '<заявка-7@пример.рф>'],
    ['with a comment', '<cmt-7@client.test> (Microsoft Exchange)', '<cmt-7@client.test>'],
  ] as const) {
    it(`a Message-ID ${kind}: the reply names the bare id, a second copy is not answered again`, async () => {
      const { user, sink, secretary, c } = await proxied();
      const raw = buildEmail({ messageId: header });
      const first = await dovecot.append(raw, { user });
      await sink.waitForMails(1, 20_000);
      expect(sink.mails[0]!.header('in-reply-to')).toBe(id);
      expect(secretary.calls[0]!.message_id).toBe(id);
      await waitUntil(async () => (await flagsIn(user, first)).includes('\\Answered'), 'the first copy answered');
      const second = await dovecot.append(raw, { user });
      await waitUntil(
        async () => (await flagsIn(user, second)).includes('\\Seen'),
        'the second copy skipped as a duplicate',
        20_000,
      );
      expect(sink.mails).toHaveLength(1);
      expect(await c.metric('workemon_messages_skipped_total', { reason: 'duplicate' })).toBe(1);
    });
  }

  it('a mail whose "already answered?" SEARCH is always refused, on a server without keywords, is set aside after MAX_ATTEMPTS', async () => {
    const { user, proxy, sink, secretary, c } = await proxied({
      // No `\*`: no attempt keyword counts the tries on the message, and setting aside moves the mail.
      rewrite: (d) => d.replace(/\[PERMANENTFLAGS \([^)]*\)\]/g, '[PERMANENTFLAGS (\\Answered \\Seen \\Deleted)]'),
      env: { MAX_ATTEMPTS: '3' },
    });
    void proxy.onCommand(/UID SEARCH .*HEADER Message-ID/i, 'no', Number.POSITIVE_INFINITY);
    await dovecot.append(buildEmail({ messageId: '<always-no@client.test>' }), { user });
    // Before: retried at every sweep for ever, the mail never answered nor set aside.
    await waitUntil(
      async () => (await c.metric('workemon_email_failed_total')) === 1,
      'the mail given up after three refused SEARCHes',
      30_000,
    );
    await waitUntil(async () => (await dovecot.messages({ user })).length === 0, 'the mail moved out of INBOX');
    expect(sink.mails).toHaveLength(0);
    expect(secretary.calls).toHaveLength(0);
  });

  it('a sweep whose SEARCH is refused is a failed sweep, not an empty mailbox', async () => {
    const { user, proxy, sink, c } = await proxied();
    await proxy.onCommand(/UID SEARCH .*UNSEEN/, 'no');
    await waitUntil(
      async () => (await c.metric('workemon_channel_poll_errors_total', { channel: 'email', kind: 'sweep' })) >= 1,
      'the refused SEARCH counted as a failed sweep',
    );
    // The next sweep finds the mail as usual.
    await dovecot.append(buildEmail({ messageId: '<after-no@client.test>' }), { user });
    await sink.waitForMails(1, 20_000);
  });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const flagsIn = async (user: string, uid: number) =>
  (await dovecot.messages({ user })).find((m) => m.uid === uid)?.flags ?? [];

/**
 * A communicator reading a fresh mailbox through startFreezableProxy (a sweep every `sweepS` seconds, default 1), its
 * sink and fake secretary; resolves after its first sweep. `rewrite` edits what Dovecot sends from the start.
 */
async function proxied(
  options: { rewrite?: (fromServer: string) => string; sweepS?: number; env?: Record<string, string> } = {},
) {
  const user = USERS[nextUser++]!.user;
  const proxy = await startFreezableProxy(dovecot.port);
  if (options.rewrite) proxy.rewriteServer(options.rewrite);
  open.push(proxy);
  const started = await startMailBehindProxy({
    dovecot,
    proxyPort: proxy.port,
    user,
    sweepS: options.sweepS ?? 1,
    env: options.env,
    open,
  });
  return { user, proxy, ...started };
}

/**
 * A TCP proxy to Dovecot that can go silent like a dead middlebox: after `freeze()` the connections it holds
 * stay open but nothing is forwarded either way; new connections are forwarded normally. `onCommand` intercepts
 * the next client commands matching a pattern before Dovecot sees them: `cut` drops the connection, `no`
 * answers with a tagged `NO` (RFC 9051 §7.1.2) in the server's place. `rewriteServer` edits the server's side.
 */
async function startFreezableProxy(targetPort: number) {
  const held: Socket[] = [];
  let count = 0;
  let trap: { pattern: RegExp; action: 'cut' | 'no'; left: number; sprung: () => void } | undefined;
  let rewrite: ((fromServer: string) => string) | undefined;
  const server = createServer((client) => {
    count += 1;
    const upstream = connect(targetPort, '127.0.0.1');
    held.push(client, upstream);
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('data', (d) => {
      const line = d.toString('latin1');
      if (trap && trap.pattern.test(line)) {
        const { action, sprung } = trap;
        trap.left -= 1;
        if (trap.left <= 0) trap = undefined;
        if (action === 'cut') {
          client.destroy();
          upstream.destroy();
        } else client.write(`${line.split(' ')[0]} NO [SERVERBUG] Internal error occurred\r\n`);
        sprung();
        return;
      }
      if (!frozen.has(client)) upstream.write(d);
    });
    upstream.on('data', (d: Buffer) => {
      if (!frozen.has(client)) client.write(rewrite ? Buffer.from(rewrite(d.toString('latin1')), 'latin1') : d);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const frozen = new Set<Socket>();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    connections: () => count,
    freeze: () => {
      for (const s of held) frozen.add(s);
    },
    /** Resolves once the next command matching `pattern` was cut off or refused (the next `times` are). */
    onCommand: (pattern: RegExp, action: 'cut' | 'no', times = 1) =>
      new Promise<void>((resolve) => {
        trap = { pattern, action, left: times, sprung: resolve };
      }),
    /** Rewrites what Dovecot sends on every connection from now on (by chunk, as latin1). */
    rewriteServer: (fn: (fromServer: string) => string) => {
      rewrite = fn;
    },
    close: async () => {
      for (const s of held) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
