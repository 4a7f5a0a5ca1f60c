// Security review s31, finding 3: POST /send answered 200 {"delivered":true,"duplicate":true} when an idempotency_key
// was reused with ANOTHER recipient or text, sending nothing: the caller was told a message it never sent was
// delivered. Such a reuse is now a 409 (draft-ietf-httpapi-idempotency-key-header §2.7; Stripe refuses it too).
// And in_reply_to must be one RFC 5322 msg-id: a CR/LF in it was folded into the In-Reply-To header (a Bcc).
// The real communicator over the fake Bot API and a real Dovecot and SMTP listener.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { createMetrics } from '@workemon/service-kit';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { createChannelMetrics } from '../src/channel-metrics.js';
import { createOutboundSender } from '../src/outbound-sender.js';
import type { SmtpMailer } from '../src/email/smtp-mailer.js';
import { startFakeSecretary } from './fake-secretary.js';
import { SERVICE_AUTH, openapi, startCommunicator, type Running } from './harness.js';

const USERS = [{ user: 'desk-send@example.test', password: 'pw-send' }];
let dovecot: DovecotServer;
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

async function setup(): Promise<{ communicator: Running; tg: FakeTelegram; sink: SmtpSink }> {
  const secretary = await startFakeSecretary();
  open.push(secretary);
  const tg = await startFakeTelegram();
  open.push(tg);
  const sink = await startSmtpSink();
  open.push(sink);
  const communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    dovecot,
    user: USERS[0]!.user,
    sink,
    telegram: tg,
  });
  open.push(communicator);
  return { communicator, tg, sink };
}

const send = (communicator: Running, body: Record<string, unknown>) =>
  request(communicator.app).post('/send').set(SERVICE_AUTH).send(body);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('POST /send: an idempotency_key reused for another message', () => {
  it('Telegram: another recipient or text under a delivered key is a 409 and sends nothing; the same message is a duplicate', async () => {
    const { communicator, tg } = await setup();
    const first = { channel: 'tg', to: '40001', text: 'Задача OPS-1 создана', idempotency_key: 's31-conflict-tg' };
    const delivered = await send(communicator, first);
    expect(delivered.status).toBe(200);
    expect(delivered.body).toMatchObject({ delivered: true, channel: 'tg' });

    for (const other of [
      { ...first, to: '40002' },
      { ...first, text: 'Задача OPS-2 создана' },
      { ...first, buttons: [{ text: 'Ок', callback_data: 'ok' }] },
    ]) {
      const refused = await send(communicator, other);
      expect(refused.status, JSON.stringify(other)).toBe(409);
      expect(openapi.responseProblems('send', refused.status, refused.body)).toEqual([]);
      expect(refused.body).toMatchObject({ error: 'Conflict', statusCode: 409 });
      expect(refused.headers['x-workemon-error-code']).toBe('idempotency_key_reused');
      expect(refused.body.message).toMatch(/idempotency_key was already used for another message/);
      expect(refused.body).not.toHaveProperty('delivered');
    }

    const again = await send(communicator, first);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ delivered: true, duplicate: true, message_id: delivered.body.message_id });
    expect(tg.sent.map((m) => [String(m.chat_id), m.text])).toEqual([['40001', 'Задача OPS-1 создана']]);
  });

  it('email: another subject or recipient under a delivered key is a 409; one mail reached the server', async () => {
    const { communicator, sink } = await setup();
    const first = {
      channel: 'email',
      to: 'finance-all@corp.test',
      subject: '[Workemon] Сверка',
      text: 'Напоминание про сверку',
      idempotency_key: 's31-conflict-mail',
    };
    expect((await send(communicator, first)).status).toBe(200);
    expect((await send(communicator, { ...first, to: 'legal-all@corp.test' })).status).toBe(409);
    expect((await send(communicator, { ...first, subject: '[Workemon] Другое' })).status).toBe(409);
    expect((await send(communicator, first)).body).toMatchObject({ delivered: true, duplicate: true });
    await sleep(300);
    expect(sink.mails.map((m) => m.envelope.to)).toEqual([['finance-all@corp.test']]);
  });

  it('a key whose delivery failed may carry another message (nothing was delivered under it)', async () => {
    const { communicator, tg } = await setup();
    tg.failChat(40011, { code: 403, description: 'Forbidden: bot was blocked by the user' });
    const failed = await send(communicator, { channel: 'tg', to: '40011', text: 'Раз', idempotency_key: 's31-failed' });
    expect(failed.status).toBeGreaterThanOrEqual(400);
    const other = await send(communicator, { channel: 'tg', to: '40012', text: 'Два', idempotency_key: 's31-failed' });
    expect(other.status).toBe(200);
    expect(tg.sent.map((m) => String(m.chat_id))).toEqual(['40012']);
  });
});

describe('POST /send: in_reply_to is one Message-ID', () => {
  it.each([
    ['a header injection', '<x@y>\r\nBcc: v@evil.test'],
    ['a bare LF', '<x@y>\nBcc: v@evil.test'],
    ['white space', '<x y@corp.test>'],
    ['no angle brackets', 'x@corp.test'],
    ['no @', '<x>'],
    ['two ids', '<a@corp.test> <b@corp.test>'],
  ])('%s is a 400 naming in_reply_to; nothing is sent', async (_kind, inReplyTo) => {
    const { communicator, sink } = await setup();
    const res = await send(communicator, {
      channel: 'email',
      to: 'anna@corp.test',
      text: 'Ответ',
      in_reply_to: inReplyTo,
      idempotency_key: `s31-irt-${Math.random()}`,
    });
    expect(res.status).toBe(400);
    expect(openapi.responseProblems('send', res.status, res.body)).toEqual([]);
    expect(res.body.message).toMatch(/^Parameter 'in_reply_to' /);
    await sleep(200);
    expect(sink.mails).toHaveLength(0);
  });

  it('a Message-ID is threaded as it is', async () => {
    const { communicator, sink } = await setup();
    const res = await send(communicator, {
      channel: 'email',
      to: 'anna@corp.test',
      text: 'Ответ',
      in_reply_to: '<q1.2@client.example>',
    });
    expect(res.status).toBe(200);
    const [mail] = await sink.waitForMails(1);
    expect(mail!.header('in-reply-to')).toBe('<q1.2@client.example>');
    expect(mail!.header('bcc')).toBeUndefined();
  });

  it('the sender refuses it on its own too (code paths without the OpenAPI validator): 400, the mailer never called', async () => {
    const sent: unknown[] = [];
    const mailer = {
      send: async (mail: unknown) => {
        sent.push(mail);
        return { messageId: '<m@corp.test>' };
      },
    } as unknown as SmtpMailer;
    const outbound = createOutboundSender({ mailer, metrics: createChannelMetrics(createMetrics('communicator')) });
    await expect(
      outbound.send({ channel: 'email', to: 'anna@corp.test', text: 'x', in_reply_to: '<x@y>\r\nBcc: v@evil.test' }),
    ).rejects.toMatchObject({ status: 400, code: 'invalid_parameter' });
    expect(sent).toHaveLength(0);
  });
});
