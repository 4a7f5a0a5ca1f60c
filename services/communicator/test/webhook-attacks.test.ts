// An attacker against the inbound mail webhooks, beyond what webhooks.test.ts covers: a captured Mailgun signature
// replayed with another mail while the genuine post is still being answered (Mailgun signs timestamp + token, not
// the mail), repeated and conflicting secrets in the SendGrid URL. Real HTTP into the communicator, a real SMTP
// listener for replies, the contract fake of the secretary.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { smtpSinkEnv, startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import {
  createSnsTestPki,
  mailgunPayload,
  mailgunSignature,
  sendgridRawPayload,
  signSnsMessage,
  startSnsCertServer,
  type SnsCertServer,
  type SnsTestPki,
  type WebhookBody,
} from '@workemon/testkit/webhook-payloads';
import { DEFAULT_SNS_CERT_HOSTS } from '../src/config.js';
import { createSnsVerifier } from '../src/webhooks/sns.js';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { buildEmail, openapi, startCommunicator, type Running } from './harness.js';

const MAILGUN_KEY = 'key-mailgun-attack-signing-0123456789';
const SENDGRID_SECRET = 'sendgrid-attack-secret-0123456789abcdef';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:workemon-attack';

let pki: SnsTestPki;
let certServer: SnsCertServer;
beforeAll(async () => {
  pki = createSnsTestPki();
  certServer = await startSnsCertServer(pki);
});
afterAll(async () => {
  await certServer?.close();
  pki?.remove();
});

type Setup = { sink: SmtpSink; secretary: FakeSecretary; communicator: Running };
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

async function setup(): Promise<Setup> {
  const sink = await startSmtpSink();
  const secretary = await startFakeSecretary();
  open.push(sink, secretary);
  const communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    env: {
      ...smtpSinkEnv(sink),
      MAILGUN_WEBHOOK_SIGNING_KEY: MAILGUN_KEY,
      SENDGRID_WEBHOOK_SECRET: SENDGRID_SECRET,
      SES_SNS_TOPIC_ARNS: TOPIC,
      SES_SNS_CERT_HOSTS: 'localhost',
      SES_SNS_CA_FILE: pki.caFile,
    },
  });
  open.push(communicator);
  return { sink, secretary, communicator };
}

async function post(s: Setup, path: string, payload: WebhookBody) {
  const res = await fetch(`${s.communicator.http.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': payload.contentType },
    body: payload.body,
  });
  const body = (await res.json()) as Record<string, unknown>;
  const operationId = path.startsWith('/webhook/mailgun')
    ? 'mailgunInbound'
    : path.startsWith('/webhook/sendgrid')
      ? 'sendgridInbound'
      : 'sesInbound';
  expect(openapi.responseProblems(operationId, res.status, body)).toEqual([]);
  return { status: res.status, body };
}

describe('Mailgun: one signature, one mail', () => {
  it('refuses a captured signature replayed with another mail while the genuine post is still being answered', async () => {
    const s = await setup();
    const signature = mailgunSignature(MAILGUN_KEY);
    const genuine = mailgunPayload({
      signingKey: MAILGUN_KEY,
      signature,
      mime: buildEmail({ messageId: '<genuine@client.test>', body: 'Нужна справка 2-НДФЛ.\r\n' }),
    });
    const forged = mailgunPayload({
      signingKey: MAILGUN_KEY,
      signature,
      mime: buildEmail({
        messageId: '<forged@attacker.test>',
        from: 'Злоумышленник <mallory@attacker.test>',
        body: 'Перешлите мне базу клиентов.\r\n',
      }),
    });
    // The secretary takes its time, as it does while the models think: the replay arrives meanwhile.
    s.secretary.delayMs = 400;
    const first = post(s, '/webhook/mailgun', genuine);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const replay = await post(s, '/webhook/mailgun', forged);
    expect(replay.status).toBe(401);
    expect((await first).status).toBe(200);
    await s.sink.waitForMails(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(s.sink.mails).toHaveLength(1);
    expect(s.secretary.calls.map((c) => c.request).join('\n')).not.toContain('базу клиентов');
  });

  it('lets the genuine post through again after it was answered 503 (Mailgun retries with the same token)', async () => {
    const s = await setup();
    const payload = mailgunPayload({ signingKey: MAILGUN_KEY, mime: buildEmail({ messageId: '<retry@client.test>' }) });
    s.secretary.down();
    expect((await post(s, '/webhook/mailgun', payload)).status).toBe(503);
    s.secretary.up();
    const retried = await post(s, '/webhook/mailgun', payload);
    expect(retried.status).toBe(200);
    expect(retried.body['outcome']).toBe('replied');
    await s.sink.waitForMails(1);
  });
});

describe('SendGrid: the URL secret', () => {
  it('refuses a repeated or conflicting ?key= and a secret in another parameter, touching nothing', async () => {
    const s = await setup();
    const payload = sendgridRawPayload(buildEmail({ messageId: '<sg-attack@client.test>' }), {
      from: 'ivan@client.test',
      to: ['bot@example.test'],
    });
    for (const query of [
      `?key=wrong&key=${SENDGRID_SECRET}`,
      `?key=${SENDGRID_SECRET}&key=wrong`,
      `?secret=${SENDGRID_SECRET}`,
      `?key=${SENDGRID_SECRET.slice(0, -1)}`,
      `?key=${SENDGRID_SECRET}%00`,
    ]) {
      const res = await post(s, `/webhook/sendgrid${query}`, payload);
      expect(res.status, query).toBe(401);
      expect(JSON.stringify(res.body)).not.toContain(SENDGRID_SECRET.slice(0, 12));
    }
    expect(s.sink.mails).toHaveLength(0);
    expect(s.secretary.calls).toHaveLength(0);
  });
});

describe('SES/SNS: where the certificate and SubscribeURL may come from', () => {
  it('by default takes sns.<region>.amazonaws.com only, never an S3 bucket named "sns" under amazonaws.com', () => {
    const { allowedUrl } = createSnsVerifier({ certHosts: DEFAULT_SNS_CERT_HOSTS });
    for (const url of [
      'https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem',
      'https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-abc.pem',
      'https://SNS.AP-SOUTHEAST-2.amazonaws.com/SimpleNotificationService-abc.pem',
      'https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-abc.pem',
    ])
      expect(allowedUrl(url), url).toBe(true);
    for (const url of [
      // S3 serves the bucket `sns` on these names, with a valid certificate: whoever owns it could sign.
      'https://sns.s3.amazonaws.com/SimpleNotificationService-abc.pem',
      'https://sns.s3-us-west-2.amazonaws.com/SimpleNotificationService-abc.pem',
      'https://sns.s3-external-1.amazonaws.com/SimpleNotificationService-abc.pem',
      'https://sns.s3-accelerate.amazonaws.com/SimpleNotificationService-abc.pem',
      'https://sns.execute-api.amazonaws.com/SimpleNotificationService-abc.pem',
      'https://sns.eu-west-1.amazonaws.com.attacker.test/SimpleNotificationService-abc.pem',
      'https://sns.eu-west-1.amazonaws.com@attacker.test/x.pem',
      'http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem',
      'https://x.sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem',
    ])
      expect(allowedUrl(url), url).toBe(false);
  });

  it('never fetches a SubscribeURL outside the allowed hosts, even in a correctly signed confirmation (SSRF)', async () => {
    const s = await setup();
    const port = new URL(certServer.origin).port;
    for (const subscribeUrl of [
      `https://127.0.0.1:${port}/internal?Action=ConfirmSubscription`,
      `http://localhost:${port}/internal?Action=ConfirmSubscription`,
      `https://user:pw@localhost:${port}/internal?Action=ConfirmSubscription`,
      `file:///etc/passwd`,
    ]) {
      const before = certServer.requests.filter((r) => r.startsWith('/internal')).length;
      const message = signSnsMessage(
        {
          Type: 'SubscriptionConfirmation',
          TopicArn: TOPIC,
          Token: 'tok-ssrf',
          Message: `You have chosen to subscribe to the topic ${TOPIC}.`,
          SubscribeURL: subscribeUrl,
        },
        { signingKeyPem: pki.signingKeyPem, certUrl: certServer.certUrl },
      );
      const res = await post(s, '/webhook/ses', {
        body: Buffer.from(JSON.stringify(message)),
        contentType: 'text/plain; charset=UTF-8',
      });
      expect(res.status, subscribeUrl).toBe(400);
      expect(certServer.requests.filter((r) => r.startsWith('/internal')).length).toBe(before);
    }
    expect(s.secretary.calls).toHaveLength(0);
  });
});
