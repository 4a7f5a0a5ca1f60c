import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startFakeTelegram } from '@workemon/testkit/fake-telegram';
import { smtpSinkEnv, startSmtpSink } from '@workemon/testkit/smtp-sink';
import { startFakeSecretary } from './fake-secretary.js';
import { SERVICE_AUTH, openapi, startCommunicator, waitUntil } from './harness.js';

let dovecot: DovecotServer;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
beforeAll(async () => {
  dovecot = await startDovecot([{ user: 'bot@example.test', password: 'pw' }]);
});
afterAll(async () => {
  await dovecot?.destroy();
});
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

async function everything(env: Record<string, string> = {}) {
  const sink = await startSmtpSink();
  const tg = await startFakeTelegram();
  const secretary = await startFakeSecretary();
  open.push(sink, tg, secretary);
  const c = await startCommunicator({ secretaryUrl: secretary.url, dovecot, sink, telegram: tg, env });
  open.push(c);
  return { sink, tg, secretary, c };
}

function checked(operationId: string, res: request.Response) {
  expect(openapi.responseProblems(operationId, res.status, res.body)).toEqual([]);
  return res;
}

describe('POST /send', () => {
  it('delivers an email with the thread headers and Auto-Submitted, and a Telegram message', async () => {
    const { sink, tg, c } = await everything({ SERVICE_API_KEYS: 'send-key' });
    const mail = checked(
      'send',
      await request(c.app).post('/send').set('Authorization', 'Bearer send-key').send({
        channel: 'email',
        to: 'dept@example.test',
        text: 'Новая заявка: доступ к VPN',
        subject: 'Заявка',
        in_reply_to: '<orig@client.test>',
      }),
    );
    expect(mail.status).toBe(200);
    expect(mail.body).toMatchObject({ delivered: true, channel: 'email' });
    const [received] = await sink.waitForMails(1);
    expect(received!.envelope.to).toEqual(['dept@example.test']);
    expect(received!.parsed.subject).toBe('Заявка');
    expect(received!.header('in-reply-to')).toBe('<orig@client.test>');
    expect(received!.header('auto-submitted')).toBe('auto-generated');
    expect(received!.parsed.messageId).toBe(mail.body.message_id);

    const chat = checked(
      'send',
      await request(c.app)
        .post('/send')
        .set(SERVICE_AUTH)
        .set('Authorization', 'Bearer send-key')
        .send({ channel: 'tg', to: '12345', text: 'Вам назначена задача' }),
    );
    expect(chat.status).toBe(200);
    expect(tg.sent.map((m) => [m.chat_id, m.text])).toEqual([[12345, 'Вам назначена задача']]);
    expect(chat.body.message_id).toBe(String(tg.sent[0]!.message_id));
  });

  it('sends nothing twice for the same idempotency_key', async () => {
    const { tg, c } = await everything();
    const body = { channel: 'tg', to: '12345', text: 'Один раз', idempotency_key: 'action-7' };
    const first = checked('send', await request(c.app).post('/send').set(SERVICE_AUTH).send(body));
    const second = checked('send', await request(c.app).post('/send').set(SERVICE_AUTH).send(body));
    expect(first.body.duplicate).toBeUndefined();
    expect(second.body).toMatchObject({ delivered: true, duplicate: true, message_id: first.body.message_id });
    expect(tg.sent).toHaveLength(1);
  });

  it('rejects missing keys, bad bodies and unconfigured channels in the contract’s shape', async () => {
    const { c } = await everything({ SERVICE_API_KEYS: 'send-key' });
    const noKey = checked('send', await request(c.app).post('/send').send({ channel: 'tg', to: '1', text: 'x' }));
    expect(noKey.status).toBe(401);
    const auth = { Authorization: 'Bearer send-key' };
    const badChannel = checked(
      'send',
      await request(c.app).post('/send').set(auth).send({ channel: 'sms', to: '1', text: 'x' }),
    );
    expect(badChannel.status).toBe(400);
    expect(badChannel.body.message).toBe("Parameter 'channel' must be one of: email, tg");
    const badAddress = checked(
      'send',
      await request(c.app).post('/send').set(auth).send({ channel: 'email', to: 'nobody', text: 'x' }),
    );
    expect(badAddress.status).toBe(400);
    expect(badAddress.body.message).toMatch(/^Parameter 'to'/);
    // A list of recipients is not one address: nodemailer would deliver to each of them.
    const twoRecipients = checked(
      'send',
      await request(c.app).post('/send').set(auth).send({ channel: 'email', to: 'a,b@example.test', text: 'x' }),
    );
    expect(twoRecipients.status).toBe(400);

    const secretary = await startFakeSecretary();
    open.push(secretary);
    const bare = await startCommunicator({ secretaryUrl: secretary.url });
    open.push(bare);
    const off = checked(
      'send',
      await request(bare.app).post('/send').set(SERVICE_AUTH).send({ channel: 'tg', to: '1', text: 'x' }),
    );
    // Not configured is stable, not an outage: 501, never retried by the secretary (skipped at once).
    expect(off.status).toBe(501);
    expect(off.body).toEqual({
      error: 'Not Implemented',
      message: "Channel 'tg' is not configured: set TELEGRAM_BOT_TOKEN",
      statusCode: 501,
    });
  });

  it('SMTP without a mailbox to read (webhooks and POST /send only): /health checks the SMTP server', async () => {
    // Before, `smtp` said disabled ("IMAP_USER is not configured") while every webhook reply went out by SMTP, so
    // an SMTP outage showed nowhere (s35 parity review).
    const sink = await startSmtpSink();
    const secretary = await startFakeSecretary();
    open.push(secretary);
    const c = await startCommunicator({ secretaryUrl: secretary.url, env: smtpSinkEnv(sink) });
    open.push(c);
    const up = checked('getHealth', await request(c.app).get('/health').set(SERVICE_AUTH));
    expect(up.body.checks).toMatchObject({ imap: { status: 'disabled' }, smtp: { status: 'ok' } });
    await sink.close();
    // Nothing listens there any more: the next install's SMTP server is down.
    const broken = await startCommunicator({ secretaryUrl: secretary.url, env: smtpSinkEnv(sink) });
    open.push(broken);
    const down = checked('getHealth', await request(broken.app).get('/health').set(SERVICE_AUTH));
    expect(down.body.checks.smtp).toMatchObject({ status: 'down', detail: 'login to the SMTP server failed' });
  });

  it('SMTP_USER and SMTP_PASSWORD without a mailbox to read: POST /send delivers by mail, no 501', async () => {
    // Before, SMTP alone served webhook replies only, and POST /send answered 501 asking for "SMTP_*".
    const sink = await startSmtpSink();
    const secretary = await startFakeSecretary();
    open.push(sink, secretary);
    const c = await startCommunicator({ secretaryUrl: secretary.url, env: smtpSinkEnv(sink) });
    open.push(c);
    const sent = checked(
      'send',
      await request(c.app)
        .post('/send')
        .set(SERVICE_AUTH)
        .send({ channel: 'email', to: 'payments-team@example.test', subject: 'Запрос', text: 'Нужна выгрузка.' }),
    );
    expect(sent.status).toBe(200);
    const [mail] = await sink.waitForMails(1);
    expect(mail!.envelope.to).toEqual(['payments-team@example.test']);
    expect(mail!.parsed.text?.trim()).toBe('Нужна выгрузка.');
    // Telegram stays off: its 501 names what to set, as before.
    const off = await request(c.app).post('/send').set(SERVICE_AUTH).send({ channel: 'tg', to: '1', text: 'x' });
    expect(off.status).toBe(501);
  });

  it('maps a Telegram rejection to 400 and an SMTP outage to 503', async () => {
    const { sink, tg, c } = await everything();
    tg.failNext('sendMessage', { code: 400, description: 'Bad Request: chat not found' });
    const rejected = checked(
      'send',
      await request(c.app).post('/send').set(SERVICE_AUTH).send({ channel: 'tg', to: '999', text: 'x' }),
    );
    expect(rejected.status).toBe(400);
    expect(rejected.body.message).toBe('Telegram rejected the message: Bad Request: chat not found');
    expect(rejected.body.message).not.toContain(tg.token);
    await sink.close();
    const down = checked(
      'send',
      await request(c.app).post('/send').set(SERVICE_AUTH).send({ channel: 'email', to: 'a@example.test', text: 'x' }),
    );
    expect(down.status).toBe(503);
  });
});

describe('GET /health', () => {
  it('reports every dependency when all channels are configured', async () => {
    const { c, tg } = await everything();
    await waitUntil(
      () => c.email!.health().lastSweepAt !== undefined && tg.callsOf('getUpdates').length > 0,
      'first sweep and poll',
    );
    await waitUntil(() => c.telegram!.health().lastPollAt !== undefined, 'a finished poll');
    const res = checked('getHealth', await request(c.app).get('/health'));
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('ok');
    expect(
      Object.fromEntries(
        Object.entries(res.body.checks as Record<string, { status: string }>).map(([k, v]) => [k, v.status]),
      ),
    ).toEqual({
      secretary: 'ok',
      imap: 'ok',
      smtp: 'ok',
      telegram: 'ok',
    });
  });

  it('shows unconfigured channels as disabled and a down secretary as down (503)', async () => {
    const secretary = await startFakeSecretary();
    open.push(secretary);
    const c = await startCommunicator({ secretaryUrl: secretary.url });
    open.push(c);
    const ok = checked('getHealth', await request(c.app).get('/health'));
    expect(ok.status).toBe(200);
    expect(ok.body.checks).toMatchObject({
      imap: { status: 'disabled' },
      smtp: { status: 'disabled' },
      telegram: { status: 'disabled' },
    });
    await secretary.close();
    // The details are for admin and service keys (s27).
    const down = checked('getHealth', await request(c.app).get('/health').set(SERVICE_AUTH));
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('down');
    expect(down.body.checks.secretary).toMatchObject({
      status: 'down',
      detail:
        `nothing answers at ${secretary.url} (SECRETARY_URL): start the secretary (npm start runs every service) ` +
        'or correct SECRETARY_URL',
    });
  });

  it('names why the mailbox and the bot cannot be reached, never the password or the token', async () => {
    const password = 'wrong-imap-password-0123';
    const token = '123456:WRONG-token-for-health';
    const { c } = await everything({ IMAP_PASSWORD: password, TELEGRAM_BOT_TOKEN: token });
    let body: { checks: Record<string, { status: string; detail?: string }> } | undefined;
    await waitUntil(async () => {
      body = (await request(c.app).get('/health').set(SERVICE_AUTH)).body as typeof body;
      return (
        /last connection error: login refused/.test(body!.checks['imap']!.detail ?? '') &&
        /last error: start: unauthorized \(HTTP 401\)/.test(body!.checks['telegram']!.detail ?? '')
      );
    }, 'IMAP and Telegram failures named in /health');
    expect(body!.checks['imap']!.detail).toMatch(/check IMAP_USER and IMAP_PASSWORD/);
    expect(body!.checks['telegram']!.status).toBe('down');
    const text = JSON.stringify(body);
    expect(text).not.toContain(password);
    expect(text).not.toContain('WRONG-token-for-health');
  });

  // Real time throughout: five 1 s sweeps to `down`, then the IMAP reconnect's backoff once Dovecot is back (4–8 s
  // alone here; more on a loaded CI machine, where 30 s was once not enough).
  it(
    'reports IMAP degraded, then down (503), when sweeps stop, and ok again after Dovecot returns',
    { timeout: 90_000 },
    async () => {
      const { c } = await everything({ IMAP_SWEEP_INTERVAL_S: '1' });
      await waitUntil(() => c.email!.health().connected, 'IMAP connected', 45_000);
      await dovecot.stop();
      try {
        await waitUntil(
          async () => (await request(c.app).get('/health')).body.checks.imap.status === 'degraded',
          'imap degraded',
        );
        const degraded = checked('getHealth', await request(c.app).get('/health'));
        expect(degraded.status).toBe(200);
        expect(degraded.body.status).toBe('degraded');
        // Five sweep intervals without a successful sweep: the communicator cannot do its job.
        await waitUntil(
          async () => (await request(c.app).get('/health')).body.checks.imap.status === 'down',
          'imap down',
        );
        const down = checked('getHealth', await request(c.app).get('/health'));
        expect(down.status).toBe(503);
        expect(down.body.status).toBe('down');
      } finally {
        await dovecot.start();
      }
      await waitUntil(
        async () => (await request(c.app).get('/health')).body.checks.imap.status === 'ok',
        'imap ok again',
        60_000,
      );
    },
  );
});
