// The inbound mail webhooks (issue 15): Mailgun, SendGrid and SES-via-SNS payloads in the providers' wire formats,
// signed and forged, posted over real HTTP to a communicator that replies through a real SMTP listener and asks a
// fake of the secretary (its contract: /analyze-request, /deliveries). The SNS signing certificate is served over
// https by a local server whose certificate a test CA issued; the communicator trusts that CA via SES_SNS_CA_FILE.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import iconv from 'iconv-lite';
import { smtpSinkEnv, startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import {
  createSnsTestPki,
  mailgunPayload,
  mailgunSignature,
  multipartBody,
  sendgridParsedPayload,
  sendgridRawPayload,
  sesReceivedNotification,
  signSnsMessage,
  startSnsCertServer,
  type SnsCertServer,
  type SnsTestPki,
  type WebhookBody,
} from '@workemon/testkit/webhook-payloads';
import { startFakeS3, type FakeS3 } from '@workemon/testkit/fake-s3';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { loadConfig } from '../src/config.js';
import { buildEmail, openapi, startCommunicator, waitUntil, type Running } from './harness.js';

const MAILGUN_KEY = 'key-mailgun-test-signing-0123456789';
const SENDGRID_SECRET = 'sendgrid-parse-secret-0123456789abcdef';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:workemon-inbound';

let pki: SnsTestPki;
let certServer: SnsCertServer;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];

beforeAll(async () => {
  pki = createSnsTestPki();
  certServer = await startSnsCertServer(pki);
});
afterAll(async () => {
  await certServer?.close();
  pki?.remove();
});
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

type Setup = { sink: SmtpSink; secretary: FakeSecretary; communicator: Running };

/** A communicator's environment for these checks: SMTP to `sink`, the three providers' secrets, plus `env`. */
const webhookEnv = (sink: SmtpSink, env: Record<string, string> = {}) => ({
  ...smtpSinkEnv(sink),
  MAILGUN_WEBHOOK_SIGNING_KEY: MAILGUN_KEY,
  SENDGRID_WEBHOOK_SECRET: SENDGRID_SECRET,
  SES_SNS_TOPIC_ARNS: TOPIC,
  SES_SNS_CERT_HOSTS: 'localhost',
  SES_SNS_CA_FILE: pki.caFile,
  ...env,
});

async function setup(env: Record<string, string> = {}): Promise<Setup> {
  const sink = await startSmtpSink();
  const secretary = await startFakeSecretary();
  open.push(sink, secretary);
  const communicator = await startCommunicator({ secretaryUrl: secretary.url, env: webhookEnv(sink, env) });
  open.push(communicator);
  return { sink, secretary, communicator };
}

/** A second communicator replica behind the same (fake) secretary, sending through the same SMTP sink. */
async function startReplica(s: Setup): Promise<Running> {
  const replica = await startCommunicator({ secretaryUrl: s.secretary.url, env: webhookEnv(s.sink) });
  open.push(replica);
  return replica;
}

async function post(s: Setup, path: string, payload: WebhookBody, headers: Record<string, string> = {}) {
  const res = await fetch(`${s.communicator.http.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': payload.contentType, ...headers },
    body: payload.body,
  });
  const body = (await res.json()) as Record<string, unknown>;
  const operationId = path.startsWith('/webhook/mailgun')
    ? 'mailgunInbound'
    : path.startsWith('/webhook/sendgrid')
      ? 'sendgridInbound'
      : 'sesInbound';
  // Every answer is one the contract documents, in its shape.
  expect(openapi.responseProblems(operationId, res.status, body)).toEqual([]);
  return { status: res.status, body, headers: res.headers };
}

const snsBody = (message: Record<string, string>): WebhookBody => ({
  body: Buffer.from(JSON.stringify(message), 'utf8'),
  contentType: 'text/plain; charset=UTF-8',
});

/** Nothing reached SMTP or the secretary. */
function expectUntouched(s: Setup) {
  expect(s.sink.mails).toHaveLength(0);
  expect(s.secretary.calls).toHaveLength(0);
  expect(s.secretary.deliveryCalls).toBe(0);
}

describe('POST /webhook/mailgun', () => {
  it('answers a signed raw-MIME mail once, by SMTP, in its thread', async () => {
    const s = await setup();
    const mime = buildEmail({
      messageId: '<mg-raw-1@client.test>',
      subject: 'Принтер',
      inReplyTo: '<earlier@client.test>',
      references: '<root@client.test> <earlier@client.test>',
      body: 'Принтер на 3 этаже не печатает.\r\n',
    });
    const payload = mailgunPayload({ signingKey: MAILGUN_KEY, mime });
    const res = await post(s, '/webhook/mailgun', payload);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ outcome: 'replied', message_id: '<mg-raw-1@client.test>' });
    const [reply] = await s.sink.waitForMails(1);
    expect(reply!.envelope.to).toEqual(['ivan@client.test']);
    expect(reply!.parsed.subject).toBe('Re: Принтер');
    expect(reply!.header('in-reply-to')).toBe('<mg-raw-1@client.test>');
    expect(reply!.header('references')).toBe('<root@client.test> <earlier@client.test> <mg-raw-1@client.test>');
    expect(reply!.header('auto-submitted')).toBe('auto-replied');
    expect(s.secretary.calls).toHaveLength(1);
    expect(s.secretary.calls[0]).toMatchObject({
      channel: 'email',
      username: 'ivan@client.test',
      message_id: '<mg-raw-1@client.test>',
      thread_key: '<root@client.test>',
    });
    expect(s.secretary.calls[0]!.request).toContain('Принтер на 3 этаже не печатает.');
    expect(s.secretary.handled.get('mail:ivan@client.test/<mg-raw-1@client.test>')?.outcome).toBe('sent');
    expect(s.secretary.handled.get(`mailgun-token:${payload.token}`)?.outcome).toBe('sent');
  });

  it('answers parsed fields (urlencoded, and multipart with an attachment) in the thread of message-headers', async () => {
    const s = await setup();
    const headers: Array<[string, string]> = [
      ['Received', 'from mx.client.test by mxa.mailgun.org'],
      ['From', 'Мария Иванова <maria@client.test>'],
      ['To', 'bot@example.test'],
      ['Subject', 'Re: Отпуск'],
      ['Message-Id', '<mg-parsed-1@client.test>'],
      ['In-Reply-To', '<workemon.abc@example.test>'],
      ['References', '<thread-root@client.test> <workemon.abc@example.test>'],
      ['Mime-Version', '1.0'],
      ['Content-Type', 'multipart/alternative; boundary="xyz"'],
    ];
    const parsed = {
      sender: 'maria@client.test',
      from: 'Мария Иванова <maria@client.test>',
      recipient: 'bot@example.test',
      subject: 'Re: Отпуск',
      'body-plain': 'Хочу оформить отпуск с 1 по 14 июля.\n\n> старая цитата\n',
      'stripped-text': 'Хочу оформить отпуск с 1 по 14 июля.',
      'body-html': '<p>Хочу оформить отпуск с 1 по 14 июля.</p>',
      'Message-Id': '<mg-parsed-1@client.test>',
      headers,
    };
    const first = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, parsed }));
    expect(first.status).toBe(200);
    expect(first.body['outcome']).toBe('replied');
    const [reply] = await s.sink.waitForMails(1);
    expect(reply!.envelope.to).toEqual(['maria@client.test']);
    expect(reply!.parsed.subject).toBe('Re: Отпуск');
    expect(reply!.header('in-reply-to')).toBe('<mg-parsed-1@client.test>');
    expect(reply!.header('references')).toBe(
      '<thread-root@client.test> <workemon.abc@example.test> <mg-parsed-1@client.test>',
    );
    expect(s.secretary.calls[0]!.request).toContain('Хочу оформить отпуск с 1 по 14 июля.');
    expect(s.secretary.calls[0]!.request).not.toContain('старая цитата');

    const withFile = {
      ...parsed,
      'Message-Id': '<mg-parsed-2@client.test>',
      headers: headers.map(([k, v]): [string, string] => [k, k === 'Message-Id' ? '<mg-parsed-2@client.test>' : v]),
      attachments: [{ filename: 'заявление.pdf', contentType: 'application/pdf', content: Buffer.from('%PDF-1.4\n') }],
    };
    const second = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, parsed: withFile }));
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ outcome: 'replied', message_id: '<mg-parsed-2@client.test>' });
    await s.sink.waitForMails(2);
    expect(s.secretary.calls[1]!.request).toContain('заявление.pdf');
  });

  it('refuses forged, stale, future and unsigned posts with 401: nothing reaches the secretary or SMTP', async () => {
    const s = await setup();
    const mime = buildEmail({ messageId: '<mg-forged@client.test>' });
    const forged = mailgunPayload({
      signingKey: MAILGUN_KEY,
      mime,
      signature: { ...mailgunSignature('some-other-key'), token: mailgunSignature(MAILGUN_KEY).token },
    });
    const wrongKey = mailgunPayload({ signingKey: 'some-other-key', mime });
    const now = Math.floor(Date.now() / 1000);
    const stale = mailgunPayload({ signingKey: MAILGUN_KEY, mime, timestamp: now - 6 * 60 });
    const future = mailgunPayload({ signingKey: MAILGUN_KEY, mime, timestamp: now + 6 * 60 });
    const unsigned = mailgunPayload({
      signingKey: MAILGUN_KEY,
      mime,
      signature: { timestamp: String(now), token: 'x'.repeat(50), signature: '' },
    });
    for (const payload of [forged, wrongKey, stale, future, unsigned]) {
      const res = await post(s, '/webhook/mailgun', payload);
      expect(res.status).toBe(401);
      expect(res.body['message']).not.toContain(MAILGUN_KEY);
    }
    expectUntouched(s);
  });

  it('answers the same post again (same token, same payload: Mailgun retrying after a lost 200) as a duplicate, once', async () => {
    const s = await setup();
    const payload = mailgunPayload({
      signingKey: MAILGUN_KEY,
      mime: buildEmail({ messageId: '<mg-replay@client.test>' }),
    });
    expect((await post(s, '/webhook/mailgun', payload)).status).toBe(200);
    await s.sink.waitForMails(1);
    const analyses = s.secretary.calls.length;
    // A 401 here made Mailgun retry a mail that was answered for 8 hours (s35 parity review).
    const retried = await post(s, '/webhook/mailgun', payload);
    expect(retried.status).toBe(200);
    expect(retried.body['outcome']).toBe('duplicate');
    expect(s.secretary.calls).toHaveLength(analyses);
    expect(s.sink.mails).toHaveLength(1);
  });

  it('the same post three times at once (a mail without a Message-ID): answered once, the others told to retry', async () => {
    const s = await setup();
    s.secretary.delayMs = 300;
    const payload = mailgunPayload({ signingKey: MAILGUN_KEY, mime: buildEmail({ messageId: null }) });
    const answers = await Promise.all([1, 2, 3].map(() => post(s, '/webhook/mailgun', payload)));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 503, 503]);
    expect(answers.filter((a) => a.status === 503).every((a) => Number(a.headers.get('retry-after')) > 0)).toBe(true);
    expect(s.secretary.calls).toHaveLength(1);
    expect(s.sink.mails).toHaveLength(1);
    // Mailgun's retry afterwards: a duplicate.
    expect((await post(s, '/webhook/mailgun', payload)).body['outcome']).toBe('duplicate');
    expect(s.sink.mails).toHaveLength(1);
  });

  it('answers a post another replica handled (the durable /deliveries record of its token) as a duplicate', async () => {
    const s = await setup();
    const payload = mailgunPayload({
      signingKey: MAILGUN_KEY,
      mime: buildEmail({ messageId: '<mg-other@client.test>' }),
    });
    // Another replica answered this post and recorded its token in the secretary.
    s.secretary.handled.set(`mailgun-token:${payload.token}`, { outcome: 'sent' });
    const res = await post(s, '/webhook/mailgun', payload);
    expect(res.status).toBe(200);
    expect(res.body['outcome']).toBe('duplicate');
    expect(s.sink.mails).toHaveLength(0);
    expect(s.secretary.calls).toHaveLength(0);
  });

  it('answers a Message-ID once even when it arrives again with a fresh signature', async () => {
    const s = await setup();
    const mime = buildEmail({ messageId: '<mg-dup@client.test>' });
    expect((await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }))).body['outcome']).toBe(
      'replied',
    );
    const again = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }));
    expect(again.status).toBe(200);
    expect(again.body['outcome']).toBe('duplicate');
    // Two copies at once (a provider retry racing the first post): still one reply.
    const twin = buildEmail({ messageId: '<mg-twin@client.test>' });
    s.secretary.delayMs = 300;
    const both = await Promise.all([
      post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime: twin })),
      post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime: twin })),
    ]);
    expect(both.map((r) => r.status).sort()).toEqual([200, 503]);
    await s.sink.waitForMails(2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(s.sink.mails).toHaveLength(2);
    expect(s.secretary.calls).toHaveLength(2);
  });

  it('answers 400 in the contract shape for malformed posts and changes nothing', async () => {
    const s = await setup();
    const sig = () => mailgunSignature(MAILGUN_KEY);
    const noMail = mailgunPayload({ signingKey: MAILGUN_KEY });
    const badHeaders = mailgunPayload({
      signingKey: MAILGUN_KEY,
      parsed: {
        sender: 'a@client.test',
        from: 'a@client.test',
        recipient: 'bot@example.test',
        subject: 's',
        'body-plain': 'text',
        headers: [],
      },
    });
    // message-headers that are not JSON: rebuild the form by hand.
    const s1 = sig();
    const notJson = multipartBody([
      ['from', 'a@client.test'],
      ['body-plain', 'text'],
      ['message-headers', '{not json'],
      ['timestamp', s1.timestamp],
      ['token', s1.token],
      ['signature', s1.signature],
    ]);
    const json = { body: Buffer.from(JSON.stringify(sig())), contentType: 'application/json' };
    const brokenMultipart = { body: Buffer.from('--b\r\nnonsense'), contentType: 'multipart/form-data; boundary=b' };
    for (const payload of [noMail, notJson, json, brokenMultipart]) {
      const res = await post(s, '/webhook/mailgun', payload);
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ error: expect.any(String), message: expect.any(String), statusCode: 400 });
    }
    expect(s.sink.mails).toHaveLength(0);
    expect(s.secretary.calls).toHaveLength(0);
    // The least a parsed post may hold (no message-headers: From and Subject come from the fields) is a mail.
    expect((await post(s, '/webhook/mailgun', badHeaders)).body['outcome']).toBe('replied');
    await s.sink.waitForMails(1);
  });

  it('answers 503 while the secretary is down (Mailgun retries) and replies once it is back', async () => {
    const s = await setup();
    const mime = buildEmail({ messageId: '<mg-down@client.test>' });
    s.secretary.down();
    const down = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }));
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBeTruthy();
    expect(s.sink.mails).toHaveLength(0);
    s.secretary.down('analysis');
    const analysisDown = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }));
    expect(analysisDown.status).toBe(503);
    expect(s.sink.mails).toHaveLength(0);
    s.secretary.up();
    const retried = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }));
    expect(retried.body['outcome']).toBe('replied');
    await s.sink.waitForMails(1);
    expect(s.sink.mails).toHaveLength(1);
  });

  it('answers a mail without Message-ID once: a repost of the same bytes is a duplicate', async () => {
    const s = await setup();
    const mime = buildEmail({ messageId: null, subject: 'Без идентификатора' });
    const first = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }));
    expect(first.body['outcome']).toBe('replied');
    const again = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }));
    expect(again.status).toBe(200);
    expect(again.body['outcome']).toBe('duplicate');
    await s.sink.waitForMails(1);
    expect(s.sink.mails).toHaveLength(1);
    expect(s.secretary.calls).toHaveLength(1);
  });

  it('keeps a sent reply sent when its record cannot be written: no 503, so no provider retry re-sends it', async () => {
    const s = await setup();
    const mime = buildEmail({ messageId: '<mg-record-down@client.test>' });
    s.secretary.recordsDown = true;
    const res = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }));
    expect(res.status).toBe(200);
    expect(res.body['outcome']).toBe('replied');
    await s.sink.waitForMails(1);
    expect(s.sink.mails).toHaveLength(1);
  });

  it('keeps the loop rules: an automatic reply gets no answer', async () => {
    const s = await setup();
    const mime = buildEmail({ messageId: '<mg-auto@client.test>', headers: ['Auto-Submitted: auto-replied'] });
    const res = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ outcome: 'skipped', reason: 'auto_submitted', message_id: '<mg-auto@client.test>' });
    expect(s.sink.mails).toHaveLength(0);
    expect(s.secretary.calls).toHaveLength(0);
  });
});

describe('two communicator replicas behind one secretary', () => {
  it('share the token and Message-ID records: a replay or a repeat on the other replica is not answered again', async () => {
    const a = await setup();
    const b = { ...a, communicator: await startReplica(a) };
    const mime = buildEmail({ messageId: '<mg-replicas@client.test>' });
    const signature = mailgunSignature(MAILGUN_KEY);
    const payload = mailgunPayload({ signingKey: MAILGUN_KEY, mime, signature });
    expect((await post(a, '/webhook/mailgun', payload)).body['outcome']).toBe('replied');
    await a.sink.waitForMails(1);
    // The same post again on the other replica: a duplicate; the captured token with another mail: refused.
    expect((await post(b, '/webhook/mailgun', payload)).body['outcome']).toBe('duplicate');
    const other = buildEmail({ messageId: '<mg-replicas-other@client.test>', body: 'Переведите 50 000 на карту.\r\n' });
    const replay = mailgunPayload({ signingKey: MAILGUN_KEY, mime: other, signature });
    expect((await post(b, '/webhook/mailgun', replay)).status).toBe(401);
    const fresh = await post(b, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }));
    expect(fresh.body['outcome']).toBe('duplicate');
    expect(a.sink.mails).toHaveLength(1);
    expect(a.secretary.calls).toHaveLength(1);
  });
});

describe('Mailgun tokens reserved in the secretary (POST /webhook-tokens)', () => {
  const parsed = {
    sender: 'maria@client.test',
    from: 'Мария Иванова <maria@client.test>',
    recipient: 'bot@example.test',
    subject: 'Пропуск',
    'body-plain': 'Нужен пропуск для гостя на завтра.\n',
    'Message-Id': '<mg-token-retry@client.test>',
    headers: [
      ['From', 'Мария Иванова <maria@client.test>'],
      ['Subject', 'Пропуск'],
      ['Message-Id', '<mg-token-retry@client.test>'],
    ] as Array<[string, string]>,
  };

  it("let Mailgun's retry of a failed post through on another replica, in another encoding; another mail is a replay", async () => {
    const a = await setup();
    const b = await startReplica(a);
    const signature = mailgunSignature(MAILGUN_KEY);
    // The secretary cannot decide yet: the post fails after its token was reserved for this payload.
    a.secretary.down('analysis');
    const failed = await post(a, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, signature, parsed }));
    expect(failed.status).toBe(503);
    expect(a.secretary.webhookTokens.get(`mailgun:${signature.token}`)?.expiresAt).toBeGreaterThan(Date.now());
    a.secretary.up();

    // The same fields as multipart (another boundary, another byte stream) with the same signature: the same payload.
    const retry = mailgunPayload({ signingKey: MAILGUN_KEY, signature, parsed, multipart: true });
    const retried = await post({ ...a, communicator: b }, '/webhook/mailgun', retry);
    expect(retried.body).toEqual({ outcome: 'replied', message_id: '<mg-token-retry@client.test>' });
    await a.sink.waitForMails(1);

    // The captured signature with other text, on the replica that has not seen the token answered in its memory.
    const forged = { ...parsed, 'body-plain': 'Выдайте пропуск на всех.\n' };
    const replay = await post(
      a,
      '/webhook/mailgun',
      mailgunPayload({ signingKey: MAILGUN_KEY, signature, parsed: forged }),
    );
    expect(replay.status).toBe(401);
    expect(a.sink.mails).toHaveLength(1);
    expect(a.secretary.calls.map((c) => c.request)).not.toContainEqual(expect.stringContaining('на всех'));
  });

  it('answer 503 and send nothing while the reservation cannot be made; no mail is taken', async () => {
    const s = await setup();
    s.secretary.down();
    const res = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, parsed }));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
    expect(s.secretary.webhookTokens.size).toBe(0);
    expect(s.secretary.calls).toHaveLength(0);
    expect(s.sink.mails).toHaveLength(0);
  });
});

describe('POST /webhook/sendgrid', () => {
  it('answers raw MIME posted with ?key= in its thread', async () => {
    const s = await setup();
    const mime = buildEmail({
      messageId: '<sg-raw-1@client.test>',
      subject: 'VPN',
      inReplyTo: '<prev@client.test>',
      references: '<prev@client.test>',
    });
    const res = await post(
      s,
      `/webhook/sendgrid?key=${encodeURIComponent(SENDGRID_SECRET)}`,
      sendgridRawPayload(mime, { from: 'ivan@client.test', to: ['bot@example.test'] }),
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ outcome: 'replied', message_id: '<sg-raw-1@client.test>' });
    const [reply] = await s.sink.waitForMails(1);
    expect(reply!.header('in-reply-to')).toBe('<sg-raw-1@client.test>');
    expect(reply!.header('references')).toBe('<prev@client.test> <sg-raw-1@client.test>');
    expect(s.secretary.handled.get('mail:ivan@client.test/<sg-raw-1@client.test>')?.outcome).toBe('sent');
  });

  it('answers parsed fields (text in windows-1251 per charsets, an attachment) authenticated by basic auth', async () => {
    const s = await setup();
    const headers = [
      'Received: by mx.sendgrid.net with SMTP id abc',
      'From: Пётр <petr@client.test>',
      'To: bot@example.test',
      'Subject: =?UTF-8?B?0J/QsNGA0L7Qu9GM?=',
      'Message-ID: <sg-parsed-1@client.test>',
      'Date: Mon, 2 Jun 2025 10:00:00 +0300',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="zzz"',
    ].join('\n');
    const payload = sendgridParsedPayload({
      headers,
      from: 'Пётр <petr@client.test>',
      to: 'bot@example.test',
      subject: 'Пароль',
      text: 'Забыл пароль от почты, помогите сбросить.',
      textCharset: 'windows-1251',
      encodeText: (t) => iconv.encode(t, 'windows-1251'),
      attachments: [{ filename: 'screen.txt', contentType: 'text/plain', content: Buffer.from('log') }],
    });
    const basic = `Basic ${Buffer.from(`sendgrid:${SENDGRID_SECRET}`).toString('base64')}`;
    const res = await post(s, '/webhook/sendgrid', payload, { Authorization: basic });
    expect(res.status).toBe(200);
    expect(res.body['outcome']).toBe('replied');
    const [reply] = await s.sink.waitForMails(1);
    expect(reply!.envelope.to).toEqual(['petr@client.test']);
    expect(reply!.parsed.subject).toBe('Re: Пароль');
    expect(reply!.header('in-reply-to')).toBe('<sg-parsed-1@client.test>');
    expect(s.secretary.calls[0]!.request).toContain('Забыл пароль от почты, помогите сбросить.');
  });

  it('refuses a missing or wrong secret with 401 and touches nothing', async () => {
    const s = await setup();
    const payload = sendgridRawPayload(buildEmail({ messageId: '<sg-forged@client.test>' }), {
      from: 'ivan@client.test',
      to: ['bot@example.test'],
    });
    const wrongBasic = `Basic ${Buffer.from('sendgrid:wrong-secret').toString('base64')}`;
    for (const [path, headers] of [
      ['/webhook/sendgrid', {}],
      ['/webhook/sendgrid?key=wrong-secret', {}],
      [`/webhook/sendgrid?key=${SENDGRID_SECRET.slice(0, -1)}`, {}],
      ['/webhook/sendgrid', { Authorization: wrongBasic }],
      ['/webhook/sendgrid', { Authorization: `Bearer ${SENDGRID_SECRET}` }],
    ] as Array<[string, Record<string, string>]>) {
      const res = await post(s, path, payload, headers);
      expect(res.status).toBe(401);
    }
    expectUntouched(s);
  });

  it('answers 400 for a post that holds no mail', async () => {
    const s = await setup();
    const key = `?key=${encodeURIComponent(SENDGRID_SECRET)}`;
    const empty = multipartBody([['to', 'bot@example.test']]);
    const notMultipart = { body: Buffer.from('email=x'), contentType: 'application/x-www-form-urlencoded' };
    for (const payload of [empty, notMultipart]) {
      const res = await post(s, `/webhook/sendgrid${key}`, payload);
      expect(res.status).toBe(400);
      expect(res.body['statusCode']).toBe(400);
    }
    expectUntouched(s);
  });
});

describe('POST /webhook/ses (SNS)', () => {
  const sign = (fields: Record<string, string> & { Type: string; Message: string }, version: '1' | '2' = '2') =>
    signSnsMessage(
      { TopicArn: TOPIC, ...fields },
      { signingKeyPem: pki.signingKeyPem, certUrl: certServer.certUrl, version },
    );

  it('confirms a subscription to an allowed topic by GET on SubscribeURL', async () => {
    const s = await setup();
    const before = certServer.requests.length;
    const subscribeUrl = `${certServer.origin}/?Action=ConfirmSubscription&TopicArn=${encodeURIComponent(TOPIC)}&Token=tok-1`;
    const message = sign({
      Type: 'SubscriptionConfirmation',
      Token: 'tok-1',
      Message: `You have chosen to subscribe to the topic ${TOPIC}.`,
      SubscribeURL: subscribeUrl,
    });
    const res = await post(s, '/webhook/ses', snsBody(message));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ outcome: 'subscribed' });
    expect(certServer.requests.slice(before)).toContain(subscribeUrl.slice(certServer.origin.length));

    // Another topic: refused before any request is made.
    const otherTopic = signSnsMessage(
      {
        ...message,
        TopicArn: 'arn:aws:sns:eu-west-1:999999999999:elsewhere',
        Type: 'SubscriptionConfirmation',
        Message: message['Message']!,
      },
      { signingKeyPem: pki.signingKeyPem, certUrl: certServer.certUrl },
    );
    const count = certServer.requests.length;
    expect((await post(s, '/webhook/ses', snsBody(otherTopic))).status).toBe(401);
    expect(certServer.requests.length).toBe(count);
    expectUntouched(s);
  });

  it('answers SES mail from a verified notification (SignatureVersion 1 and 2, UTF8 and Base64) once per Message-ID', async () => {
    const s = await setup();
    const pemFetches = () => certServer.requests.filter((r) => r.endsWith('.pem')).length;
    const fetchesBefore = pemFetches();
    const utf8 = buildEmail({
      messageId: '<ses-1@client.test>',
      subject: 'Справка',
      body: 'Нужна справка 2-НДФЛ.\r\n',
    });
    const v1 = sign(
      {
        Type: 'Notification',
        Subject: 'Amazon SES Email Receipt Notification',
        Message: sesReceivedNotification(utf8, { topicArn: TOPIC, encoding: 'UTF8' }),
      },
      '1',
    );
    const first = await post(s, '/webhook/ses', snsBody(v1));
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ outcome: 'replied', message_id: '<ses-1@client.test>' });
    const [reply] = await s.sink.waitForMails(1);
    expect(reply!.header('in-reply-to')).toBe('<ses-1@client.test>');
    expect(reply!.parsed.subject).toBe('Re: Справка');
    expect(s.secretary.calls[0]!.request).toContain('Нужна справка 2-НДФЛ.');

    const b64 = buildEmail({ messageId: '<ses-2@client.test>' });
    const v2 = sign({
      Type: 'Notification',
      Message: sesReceivedNotification(b64, { topicArn: TOPIC, encoding: 'BASE64' }),
    });
    expect((await post(s, '/webhook/ses', snsBody(v2))).body['outcome']).toBe('replied');
    await s.sink.waitForMails(2);

    // SNS redelivers the same notification: one reply.
    const again = await post(s, '/webhook/ses', snsBody(v2));
    expect(again.body['outcome']).toBe('duplicate');
    expect(s.sink.mails).toHaveLength(2);
    // Three verified messages, one certificate download: it is cached.
    expect(pemFetches() - fetchesBefore).toBe(1);
  });

  it('refuses a notification signed more than an hour ago (a replay), and answers a re-posted one without Message-ID once', async () => {
    const s = await setup();
    const mime = buildEmail({ messageId: null, subject: 'Старое' });
    const old = sign({
      Type: 'Notification',
      Timestamp: new Date(Date.now() - 2 * 60 * 60 * 1000).toISOString(),
      Message: sesReceivedNotification(mime, { topicArn: TOPIC, encoding: 'UTF8' }),
    });
    const refused = await post(s, '/webhook/ses', snsBody(old));
    expect(refused.status).toBe(401);
    expectUntouched(s);

    const fresh = sign({
      Type: 'Notification',
      Message: sesReceivedNotification(mime, { topicArn: TOPIC, encoding: 'UTF8' }),
    });
    expect((await post(s, '/webhook/ses', snsBody(fresh))).body['outcome']).toBe('replied');
    const again = await post(s, '/webhook/ses', snsBody(fresh));
    expect(again.status).toBe(200);
    expect(again.body['outcome']).toBe('duplicate');
    await s.sink.waitForMails(1);
    expect(s.sink.mails).toHaveLength(1);
    expect(s.secretary.calls).toHaveLength(1);
  });

  it('refuses tampered, wrongly signed and untrusted-certificate messages with 401: nothing stored or sent', async () => {
    const s = await setup();
    const mime = buildEmail({ messageId: '<ses-forged@client.test>' });
    const good = sign({ Type: 'Notification', Message: sesReceivedNotification(mime, { topicArn: TOPIC }) });
    const tampered = { ...good, Message: good['Message']!.replace('ivan@client.test', 'boss@client.test') };
    const wrongVersion = { ...good, SignatureVersion: '3' };
    const otherPki = createSnsTestPki();
    try {
      // Signed by a key whose certificate is not the one at SigningCertURL.
      const otherKey = signSnsMessage(
        { Type: 'Notification', TopicArn: TOPIC, Message: good['Message']! },
        { signingKeyPem: otherPki.signingKeyPem, certUrl: certServer.certUrl },
      );
      const before = certServer.requests.length;
      // The attacker's own certificate, from hosts that are not allowed or not https.
      const ipHost = signSnsMessage(
        { Type: 'Notification', TopicArn: TOPIC, Message: good['Message']! },
        { signingKeyPem: otherPki.signingKeyPem, certUrl: certServer.certUrl.replace('localhost', '127.0.0.1') },
      );
      const plainHttp = signSnsMessage(
        { Type: 'Notification', TopicArn: TOPIC, Message: good['Message']! },
        { signingKeyPem: otherPki.signingKeyPem, certUrl: certServer.certUrl.replace('https:', 'http:') },
      );
      const notPem = signSnsMessage(
        { Type: 'Notification', TopicArn: TOPIC, Message: good['Message']! },
        { signingKeyPem: otherPki.signingKeyPem, certUrl: `${certServer.origin}/evil.txt` },
      );
      for (const message of [ipHost, plainHttp, notPem])
        expect((await post(s, '/webhook/ses', snsBody(message))).status).toBe(401);
      expect(certServer.requests.length).toBe(before);
      for (const message of [tampered, wrongVersion, otherKey])
        expect((await post(s, '/webhook/ses', snsBody(message))).status).toBe(401);
    } finally {
      otherPki.remove();
    }
    expectUntouched(s);
  });

  it('never trusts a certificate served by a TLS server outside the CA it was told to trust', async () => {
    // Without SES_SNS_CA_FILE the test CA is unknown: the certificate cannot be fetched, nothing is accepted.
    const s = await setup({ SES_SNS_CA_FILE: '' });
    const message = sign({ Type: 'Notification', Message: sesReceivedNotification(buildEmail(), { topicArn: TOPIC }) });
    const res = await post(s, '/webhook/ses', snsBody(message));
    expect(res.status).toBe(503);
    expect(s.sink.mails).toHaveLength(0);
    expect(s.secretary.calls).toHaveLength(0);
  });

  it('answers 422 for an S3 action, 400 for malformed bodies, 200 for an unsubscribe', async () => {
    const s = await setup();
    const s3 = sign({
      Type: 'Notification',
      Message: sesReceivedNotification(buildEmail(), { topicArn: TOPIC, action: 'S3' }),
    });
    const s3res = await post(s, '/webhook/ses', snsBody(s3));
    expect(s3res.status).toBe(422);
    expect(s3res.body['message']).toMatch(/S3/);
    for (const body of [
      { body: Buffer.from('{not json'), contentType: 'text/plain' },
      { body: Buffer.from(JSON.stringify({ Type: 'Notification' })), contentType: 'text/plain' },
      snsBody(sign({ Type: 'Notification', Message: 'not json' })),
      snsBody(sign({ Type: 'Notification', Message: JSON.stringify({ notificationType: 'Received', receipt: {} }) })),
    ]) {
      const res = await post(s, '/webhook/ses', body);
      expect(res.status).toBe(400);
      expect(res.body['statusCode']).toBe(400);
    }
    const unsubscribe = sign({
      Type: 'UnsubscribeConfirmation',
      Token: 'tok-2',
      Message: 'You have chosen to deactivate subscription.',
      SubscribeURL: `${certServer.origin}/?Action=ConfirmSubscription&Token=tok-2`,
    });
    expect((await post(s, '/webhook/ses', snsBody(unsubscribe))).body).toEqual({ outcome: 'unsubscribed' });
    expect(s.sink.mails).toHaveLength(0);
    expect(s.secretary.calls).toHaveLength(0);
  });
});

describe('POST /webhook/ses with an S3 action (SES_S3_*)', () => {
  const S3_CREDS = { accessKeyId: 'AKIAFAKES3TEST000001', secretAccessKey: 'fake-s3-secret-key-0123456789abcdef' };
  const sign = (message: string) =>
    signSnsMessage(
      { TopicArn: TOPIC, Type: 'Notification', Message: message },
      { signingKeyPem: pki.signingKeyPem, certUrl: certServer.certUrl, version: '2' },
    );
  async function setupS3(env: Record<string, string> = {}): Promise<Setup & { s3: FakeS3 }> {
    const s3 = await startFakeS3({ region: 'eu-west-1', ...S3_CREDS });
    open.push(s3);
    const s = await setup({
      SES_S3_BUCKETS: 'inbound-bucket',
      SES_S3_REGION: 'eu-west-1',
      SES_S3_ENDPOINT: s3.url,
      SES_S3_ACCESS_KEY_ID: S3_CREDS.accessKeyId,
      SES_S3_SECRET_ACCESS_KEY: S3_CREDS.secretAccessKey,
      SES_S3_TIMEOUT: '2s',
      ...env,
    });
    return { ...s, s3 };
  }

  it('fetches the mail by one signed GET and answers it once by SMTP, in its thread', async () => {
    const s = await setupS3();
    const mime = buildEmail({
      messageId: '<ses-s3-1@client.test>',
      subject: 'Пропуск',
      references: '<root-s3@client.test>',
      inReplyTo: '<root-s3@client.test>',
      body: 'Нужен пропуск для гостя.\r\n',
    });
    s.s3.put('inbound-bucket', 'mail/ses s3 1', mime);
    const message = sign(sesReceivedNotification(mime, { topicArn: TOPIC, action: 'S3', objectKey: 'mail/ses s3 1' }));
    const res = await post(s, '/webhook/ses', snsBody(message));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ outcome: 'replied', message_id: '<ses-s3-1@client.test>' });
    const [reply] = await s.sink.waitForMails(1);
    expect(reply!.header('in-reply-to')).toBe('<ses-s3-1@client.test>');
    expect(reply!.parsed.subject).toBe('Re: Пропуск');
    expect(s.secretary.calls[0]!.request).toContain('Нужен пропуск для гостя.');
    expect(s.s3.requests).toEqual([
      { method: 'GET', path: '/inbound-bucket/mail/ses%20s3%201', signed: true, status: 200 },
    ]);
    expect(s.sink.mails).toHaveLength(1);
  });

  it('refuses a bucket not in SES_S3_BUCKETS with 422 without calling S3', async () => {
    const s = await setupS3();
    const message = sign(sesReceivedNotification(buildEmail(), { topicArn: TOPIC, action: 'S3', bucket: 'other' }));
    const res = await post(s, '/webhook/ses', snsBody(message));
    expect(res.status).toBe(422);
    expect(res.body['message']).toMatch(/SES_S3_BUCKETS/);
    expect(s.s3.requests).toHaveLength(0);
    expectUntouched(s);
  });

  it('answers 422 for a missing key or a wrong signature, 503 for an S3 5xx (SNS retries)', async () => {
    const s = await setupS3();
    const message = sign(
      sesReceivedNotification(buildEmail(), { topicArn: TOPIC, action: 'S3', objectKey: 'mail/gone' }),
    );
    s.s3.put('inbound-bucket', 'mail/other', buildEmail());
    const missing = await post(s, '/webhook/ses', snsBody(message));
    expect(missing.status).toBe(422);
    expect(missing.body['message']).toMatch(/404 NoSuchKey/);
    expect(s.s3.requests.at(-1)).toMatchObject({ signed: true, status: 404 });

    s.s3.failNext(500, 'InternalError');
    const down = await post(s, '/webhook/ses', snsBody(message));
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('60');
    expectUntouched(s);

    const wrong = await setupS3({ SES_S3_SECRET_ACCESS_KEY: 'not-the-secret-key-0123456789abcdef' });
    wrong.s3.put('inbound-bucket', 'mail/abc', buildEmail());
    const forged = await post(
      wrong,
      '/webhook/ses',
      snsBody(sign(sesReceivedNotification(buildEmail(), { topicArn: TOPIC, action: 'S3' }))),
    );
    expect(forged.status).toBe(422);
    expect(forged.body['message']).toMatch(/403 SignatureDoesNotMatch/);
    expect(wrong.s3.requests).toEqual([expect.objectContaining({ signed: false, status: 403 })]);
    expectUntouched(wrong);
  });

  it('answers 503 when S3 does not answer within SES_S3_TIMEOUT, 422 for an object over WEBHOOK_MAX_BYTES', async () => {
    const s = await setupS3({ SES_S3_TIMEOUT: '300ms', WEBHOOK_MAX_BYTES: '10000' });
    s.s3.put('inbound-bucket', 'mail/abc', buildEmail({ body: 'Длинное письмо. '.repeat(1000) }));
    const message = sign(sesReceivedNotification(buildEmail(), { topicArn: TOPIC, action: 'S3' }));
    s.s3.holdNext(2000);
    const slow = await post(s, '/webhook/ses', snsBody(message));
    expect(slow.status).toBe(503);
    const big = await post(s, '/webhook/ses', snsBody(message));
    expect(big.status).toBe(422);
    expect(big.body['message']).toMatch(/larger than 10000 bytes/);
    expectUntouched(s);
  });

  it('lists every SES_S3_* key in .env.example, and wants both explicit credentials or neither', () => {
    const example = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');
    for (const key of [
      'SES_S3_BUCKETS',
      'SES_S3_REGION',
      'SES_S3_ENDPOINT',
      'SES_S3_ACCESS_KEY_ID',
      'SES_S3_SECRET_ACCESS_KEY',
      'SES_S3_TIMEOUT',
    ])
      expect(example).toMatch(new RegExp(`^#? ?${key}=`, 'm'));
    expect(() => loadConfig({ SES_S3_ACCESS_KEY_ID: 'AKIA' })).toThrow(/SES_S3_ACCESS_KEY_ID/);
    expect(() => loadConfig({ SES_S3_BUCKETS: 'inbound-bucket' })).toThrow(/SES_S3_BUCKETS: needs credentials/);
    expect(
      loadConfig({ SES_S3_BUCKETS: 'b', AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 'secret' }).sesS3Buckets,
    ).toEqual(['b']);
  });
});

describe('webhook bodies over WEBHOOK_MAX_BYTES', () => {
  it('are refused with 413 before anything is verified or stored', async () => {
    const s = await setup({ WEBHOOK_MAX_BYTES: '10000' });
    const big = buildEmail({ messageId: '<mg-big@client.test>', body: 'Очень длинное письмо. '.repeat(1000) });
    const res = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime: big }));
    expect(res.status).toBe(413);
    expectUntouched(s);
  });
});

describe('webhook configuration', () => {
  it('refuses a short SendGrid secret and an unreadable CA file, naming the keys', () => {
    expect(() => loadConfig({ SENDGRID_WEBHOOK_SECRET: 'short', SES_SNS_CA_FILE: '/nonexistent/ca.pem' })).toThrow(
      /SENDGRID_WEBHOOK_SECRET[\s\S]*SES_SNS_CA_FILE/,
    );
    expect(loadConfig({ SENDGRID_WEBHOOK_SECRET: SENDGRID_SECRET, SES_SNS_CA_FILE: pki.caFile }).sesSnsCaFile).toBe(
      pki.caFile,
    );
  });
});

describe('webhooks not configured', () => {
  it('answer 501 and never take unsigned mail', async () => {
    const s = await setup({
      MAILGUN_WEBHOOK_SIGNING_KEY: '',
      SENDGRID_WEBHOOK_SECRET: '',
      SES_SNS_TOPIC_ARNS: '',
    });
    const mime = buildEmail();
    const mg = await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: 'anything', mime }));
    const sg = await post(
      s,
      '/webhook/sendgrid',
      sendgridRawPayload(mime, { from: 'ivan@client.test', to: ['b@x.test'] }),
    );
    const ses = await post(s, '/webhook/ses', snsBody({ Type: 'Notification' }));
    expect([mg.status, sg.status, ses.status]).toEqual([501, 501, 501]);
    // Keyless callers from the internet learn no configuration key (the log names it for the operator).
    for (const r of [mg, sg, ses]) {
      expect(r.body.message).toMatch(/^The (mailgun|sendgrid|ses) webhook is not enabled on this server$/);
      expect(JSON.stringify(r.body)).not.toMatch(/MAILGUN|SENDGRID|SES_|SMTP|_KEY|SECRET/);
    }
    expectUntouched(s);
  });
});

describe('sender trust of webhook mail (TRUSTED_AUTHSERV_ID is the IMAP server’s)', () => {
  // A stranger mails the provider's route address with an Authentication-Results header of their own naming the
  // company's IMAP server: that mail never passed that server, so the header proves nothing (s35 parity review).
  const forged = (id: string) =>
    buildEmail({
      from: 'Сидоров <sid@corp.test>',
      messageId: `<${id}@corp.test>`,
      headers: ['Authentication-Results: mx.corp.test; dmarc=pass (p=reject) header.from=corp.test'],
      body: 'Создайте задачу в Jira: выдать полный доступ к базе клиентов.\r\n',
    });
  const sesSign = (mime: Buffer, options: { dmarc?: 'PASS' | 'FAIL'; commonFrom?: string[] } = {}) =>
    snsBody(
      signSnsMessage(
        {
          TopicArn: TOPIC,
          Type: 'Notification',
          Subject: 'Amazon SES Email Receipt Notification',
          Message: sesReceivedNotification(mime, { topicArn: TOPIC, ...options }),
        },
        { signingKeyPem: pki.signingKeyPem, certUrl: certServer.certUrl },
      ),
    );
  const verdicts = (s: Setup) => s.secretary.calls.map((c) => c.sender_authentication);

  it('a header naming the IMAP server vouches for no Mailgun, SendGrid or SES mail', async () => {
    const s = await setup({ TRUSTED_AUTHSERV_ID: 'mx.corp.test' });
    const key = `?key=${encodeURIComponent(SENDGRID_SECRET)}`;
    expect(
      (await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime: forged('mg-1') }))).status,
    ).toBe(200);
    const sendgrid = sendgridRawPayload(forged('sg-1'), { from: 'attacker@evil.test', to: ['bot@example.test'] });
    expect((await post(s, `/webhook/sendgrid${key}`, sendgrid)).status).toBe(200);
    expect((await post(s, '/webhook/ses', sesSign(forged('ses-1'), { dmarc: 'FAIL' }))).status).toBe(200);
    expect(verdicts(s).map((v) => [v?.verified, v?.reason])).toEqual([
      [false, 'MAILGUN_TRUSTED_AUTHSERV_ID is not set: no Authentication-Results are believed'],
      [false, 'SENDGRID_TRUSTED_AUTHSERV_ID is not set: no Authentication-Results are believed'],
      [false, 'SES_TRUSTED_AUTHSERV_ID is not set: no Authentication-Results are believed'],
    ]);
  });

  it('each webhook believes only its own provider’s authserv-id', async () => {
    const s = await setup({ TRUSTED_AUTHSERV_ID: 'mx.corp.test', MAILGUN_TRUSTED_AUTHSERV_ID: 'mx.mailgun.test' });
    const stamped = (id: string, by: string) =>
      buildEmail({
        from: 'Сидоров <sid@corp.test>',
        messageId: `<${id}@corp.test>`,
        headers: [`Authentication-Results: ${by}; dkim=pass header.d=corp.test; spf=pass smtp.mailfrom=corp.test`],
        body: 'Нужен доступ к VPN.\r\n',
      });
    await post(
      s,
      '/webhook/mailgun',
      mailgunPayload({ signingKey: MAILGUN_KEY, mime: stamped('mg-2', 'mx.mailgun.test') }),
    );
    // Mailgun's id in mail that came through SendGrid was written by its sender.
    const key = `?key=${encodeURIComponent(SENDGRID_SECRET)}`;
    const viaSendgrid = sendgridRawPayload(stamped('sg-2', 'mx.mailgun.test'), {
      from: 'sid@corp.test',
      to: ['bot@example.test'],
    });
    await post(s, `/webhook/sendgrid${key}`, viaSendgrid);
    expect(verdicts(s).map((v) => v?.verified)).toEqual([true, false]);
    expect(verdicts(s)[0]?.reason).toBe('dkim=pass by corp.test, aligned with corp.test (mx.mailgun.test)');
  });

  it('SES mail: the signed receipt’s DMARC pass for the From: domain counts, nothing else does', async () => {
    const s = await setup({ TRUSTED_AUTHSERV_ID: 'mx.corp.test' });
    const mail = (id: string) =>
      buildEmail({ from: 'Сидоров <sid@corp.test>', messageId: `<${id}@corp.test>`, body: 'Нужен доступ к VPN.\r\n' });
    await post(s, '/webhook/ses', sesSign(mail('ses-pass')));
    await post(s, '/webhook/ses', sesSign(mail('ses-gray'), { dmarc: 'FAIL' }));
    // SES evaluated another From: than the one the mail shows, or two of them: its verdict is not for this sender.
    await post(s, '/webhook/ses', sesSign(mail('ses-other'), { commonFrom: ['boss@other.test'] }));
    await post(s, '/webhook/ses', sesSign(mail('ses-two'), { commonFrom: ['sid@corp.test', 'boss@other.test'] }));
    expect(verdicts(s).map((v) => [v?.verified, v?.method])).toEqual([
      [true, 'dmarc'],
      [false, 'none'],
      [false, 'none'],
      [false, 'none'],
    ]);
    expect(verdicts(s)[0]?.reason).toBe('dmarc=pass for corp.test (SES receipt, signed by SNS)');
  });

  it('SES mail: the receipt’s From: with a comment, or an internationalised domain in either form, is the same sender', async () => {
    const s = await setup();
    const commented = buildEmail({ from: 'sid@corp.test', messageId: '<ses-comment@corp.test>' });
    await post(s, '/webhook/ses', sesSign(commented, { commonFrom: ['sid@corp.test (Сидоров)'] }));
    const idn = buildEmail({ from: 'ivan@почта.рф', messageId: '<ses-idn@corp.test>' });
    await post(s, '/webhook/ses', sesSign(idn, { commonFrom: ['Иван <ivan@xn--80a1acny.xn--p1ai>'] }));
    expect(verdicts(s).map((v) => v?.verified)).toEqual([true, true]);
  });
});

describe('RATE_LIMIT_MAILBOX_PER_HOUR: colleagues and retries', () => {
  it('an authenticated colleague is answered when strangers have used the mailbox’s budget up; a forged one is not', async () => {
    const s = await setup({
      RATE_LIMIT_MAILBOX_PER_HOUR: '2',
      COMPANY_DOMAINS: 'corp.test',
      MAILGUN_TRUSTED_AUTHSERV_ID: 'mx.mailgun.test',
    });
    const postMail = async (from: string, id: string, headers: string[] = []) =>
      (
        await post(
          s,
          '/webhook/mailgun',
          mailgunPayload({ signingKey: MAILGUN_KEY, mime: buildEmail({ from, messageId: `<${id}@x.test>`, headers }) }),
        )
      ).body['outcome'];
    for (let i = 0; i < 3; i += 1) await postMail(`stranger${i}@random${i}.example`, `stranger-${i}`);
    const proof = [
      'Authentication-Results: mx.mailgun.test; dkim=pass header.d=corp.test; spf=pass smtp.mailfrom=corp.test',
    ];
    expect(await postMail('anna@corp.test', 'anna-1', proof)).toBe('replied');
    // The same address without the provider's proof is anyone's: it counts against the mailbox.
    expect(await postMail('boss@corp.test', 'boss-1')).toBe('rate-limited');
    expect(s.secretary.budgets.get('mailbox:all')).toHaveLength(2);
  });

  it('a retry after the secretary failed between the two checks takes the sender’s unit once', async () => {
    const s = await setup({ RATE_LIMIT_MAILBOX_PER_HOUR: '5' });
    s.secretary.rateLimitsDownFor = (keys) => keys.includes('mailbox:all');
    const payload = mailgunPayload({
      signingKey: MAILGUN_KEY,
      mime: buildEmail({ from: 'ivan@client.test', messageId: '<retry-between@client.test>' }),
    });
    expect((await post(s, '/webhook/mailgun', payload)).status).toBe(503);
    s.secretary.rateLimitsDownFor = undefined;
    expect((await post(s, '/webhook/mailgun', payload)).body['outcome']).toBe('replied');
    expect(s.secretary.budgets.get('email:ivan@client.test')).toHaveLength(1);
  });
});

describe('RATE_LIMIT_MAILBOX_PER_HOUR: all mail together', () => {
  it('a flood of forged senders, each within its own budget, is answered only up to the mailbox’s limit', async () => {
    const s = await setup({ RATE_LIMIT_MAILBOX_PER_HOUR: '3' });
    const outcomes: unknown[] = [];
    for (let i = 0; i < 5; i += 1) {
      const mime = buildEmail({ from: `victim${i}@random${i}.example`, messageId: `<flood-${i}@random.example>` });
      outcomes.push(
        (await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }))).body['outcome'],
      );
    }
    expect(outcomes).toEqual(['replied', 'replied', 'replied', 'rate-limited', 'rate-limited']);
    expect(s.sink.mails).toHaveLength(3);
    expect(s.secretary.calls).toHaveLength(3);
    expect(s.secretary.budgets.get('mailbox:all')).toHaveLength(3);
    expect(s.secretary.consumeCalls.filter((c) => c.keys.includes('mailbox:all')).map((c) => c.limit)).toEqual([
      3, 3, 3, 3, 3,
    ]);
    const refused = () => s.secretary.auditEvents.filter((e) => e.reason === 'rate-limited');
    await waitUntil(() => refused().length === 2, 'the two refusals in the audit log');
    expect(refused().map((e) => e.detail)).toEqual([
      'over RATE_LIMIT_MAILBOX_PER_HOUR (all mail together)',
      'over RATE_LIMIT_MAILBOX_PER_HOUR (all mail together)',
    ]);
    expect(await s.communicator.metric('workemon_messages_skipped_total', { reason: 'mailbox_rate_limited' })).toBe(2);
  });
});
