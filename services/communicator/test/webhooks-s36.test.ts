// s36 on the communicator's side, over real HTTP to the fake secretary (its contract: /analyze-request,
// /rate-limits/consume and /rate-limits/check, /audit-events) and a real SMTP listener:
// - gap 2: the secretary is told how a mail came in (`intake`: the webhook's provider, `imap` for the mailbox), so
//   its audit rows can tell the intakes apart; a secretary older than the field still gets every mail;
// - gap 4: an admin's POST /test reports that the sender (or the whole mailbox) is over its budget — `skipped` /
//   `rate-limited` with the budget — read with /rate-limits/check, never drawn from.
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { bearer } from '@workemon/testkit/api-keys';
import { smtpSinkEnv, startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { mailgunPayload, sendgridRawPayload, type WebhookBody } from '@workemon/testkit/webhook-payloads';
import type { AnalysisResponse, AnalyzeRequest } from '@workemon/contracts';
import { createLogger } from '@workemon/service-kit';
import { withIntakeField } from '../src/email/mail-intake.js';
import type { SecretaryClient } from '../src/secretary-client.js';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { buildEmail, openapi, startCommunicator, type Running } from './harness.js';

const MAILGUN_KEY = 'key-mailgun-test-signing-0123456789';
const SENDGRID_SECRET = 'sendgrid-parse-secret-0123456789abcdef';

const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

type Setup = { sink: SmtpSink; secretary: FakeSecretary; communicator: Running };

async function setup(env: Record<string, string> = {}): Promise<Setup> {
  const sink = await startSmtpSink();
  const secretary = await startFakeSecretary();
  open.push(sink, secretary);
  const communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    env: {
      ...smtpSinkEnv(sink),
      MAILGUN_WEBHOOK_SIGNING_KEY: MAILGUN_KEY,
      SENDGRID_WEBHOOK_SECRET: SENDGRID_SECRET,
      ...env,
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
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('the intake of a mail reaches the secretary (gap 2)', () => {
  it('Mailgun and SendGrid mail are passed on with their provider as `intake`', async () => {
    const s = await setup();
    const mailgun = mailgunPayload({
      signingKey: MAILGUN_KEY,
      mime: buildEmail({ messageId: '<s36-mg@client.test>', body: 'Принтер на 3 этаже не печатает.\r\n' }),
    });
    expect((await post(s, '/webhook/mailgun', mailgun)).status).toBe(200);
    const sendgrid = sendgridRawPayload(
      buildEmail({ messageId: '<s36-sg@client.test>', body: 'Сбросьте пароль от VPN, пожалуйста.\r\n' }),
      { from: 'ivan@client.test', to: ['bot@example.test'] },
    );
    const path = `/webhook/sendgrid?key=${encodeURIComponent(SENDGRID_SECRET)}`;
    expect((await post(s, path, sendgrid)).status).toBe(200);
    await s.sink.waitForMails(2);
    expect(s.secretary.calls.map((c) => [c.message_id, c.channel, c.intake])).toEqual([
      ['<s36-mg@client.test>', 'email', 'mailgun'],
      ['<s36-sg@client.test>', 'email', 'sendgrid'],
    ]);
  });

  it('a secretary older than `intake` (400 naming it) still answers every mail: sent again without it, once', async () => {
    const s = await setup();
    const decide = s.secretary.decide;
    s.secretary.decide = (r) =>
      'intake' in r ? { status: 400, message: "Parameter 'intake' is not allowed" } : decide(r);
    for (const id of ['<s36-old-1@client.test>', '<s36-old-2@client.test>']) {
      const payload = mailgunPayload({
        signingKey: MAILGUN_KEY,
        mime: buildEmail({ messageId: id, body: 'Нужен доступ к отчётам по платежам.\r\n' }),
      });
      expect((await post(s, '/webhook/mailgun', payload)).body).toMatchObject({ outcome: 'replied' });
    }
    const [first, second] = await s.sink.waitForMails(2);
    // Answers, not the standard refusal.
    for (const mail of [first!, second!]) expect(mail.parsed.text).toContain('Ответ на:');
    // The first mail was tried with the field and again without it; the second went without it at once.
    expect(s.secretary.calls.map((c) => [c.message_id, c.intake ?? null])).toEqual([
      ['<s36-old-1@client.test>', 'mailgun'],
      ['<s36-old-1@client.test>', null],
      ['<s36-old-2@client.test>', null],
    ]);
  });

  it('an admin dry run names no intake (it came by neither); a request without one passes through untouched', async () => {
    const s = await setup();
    const res = await request(s.communicator.http.url)
      .post('/test')
      .set(bearer('admin'))
      .send({ from: 'ivan@client.test', subject: 'Доступ', text: 'Нужен доступ к VPN для новой сотрудницы' });
    expect(res.status).toBe(200);
    expect(s.secretary.dryRunCalls).toHaveLength(1);
    expect(s.secretary.dryRunCalls[0]).not.toHaveProperty('intake');
    // The wrapper never adds a field: a Telegram request (no intake) reaches the client as it was.
    const seen: AnalyzeRequest[] = [];
    const secretary = {
      analyze: async (r: AnalyzeRequest) => {
        seen.push(r);
        return {} as AnalysisResponse;
      },
    } as unknown as SecretaryClient;
    const client = withIntakeField(secretary, createLogger({ service: 'test', level: 'error' }));
    const tg: AnalyzeRequest = { channel: 'tg', username: 'a', request: 'x' };
    await client.analyze(tg);
    expect(seen).toEqual([tg]);
  });
});

describe('the dry run and the intakes share the durable keys (s36 review)', () => {
  it('an admin dry run of a mail answered through a webhook under a 230-character Message-ID reports duplicate', async () => {
    const s = await setup();
    const mime = buildEmail({ messageId: `<${'a'.repeat(230)}@client.test>` });
    expect((await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }))).status).toBe(200);
    await s.sink.waitForMails(1);
    // The key is the SHA-256 of the sender and Message-ID: over the secretary's 200 characters otherwise.
    expect([...s.secretary.handled.keys()].filter((k) => /^mail:sha256:[0-9a-f]{64}$/.test(k))).toHaveLength(1);
    const res = await request(s.communicator.http.url)
      .post('/test')
      .set(bearer('admin'))
      .set('Content-Type', 'message/rfc822')
      .send(mime);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ outcome: 'skipped', reason: 'duplicate' });
  });
});

describe('the dry run looks up mail without a Message-ID by its bytes', () => {
  it('an admin dry run of webhook mail answered without a Message-ID reports duplicate; a client key never does', async () => {
    const s = await setup();
    const mime = Buffer.from(
      buildEmail({ messageId: '<x@client.test>' })
        .toString('utf8')
        .replace(/^Message-ID:.*\r?\n/im, ''),
    );
    expect(mime.toString('utf8')).not.toMatch(/^Message-ID:/im);
    expect((await post(s, '/webhook/mailgun', mailgunPayload({ signingKey: MAILGUN_KEY, mime }))).status).toBe(200);
    await s.sink.waitForMails(1);
    // Recorded under the SHA-256 of its bytes (mail-handled-record.ts contentKeyOf).
    expect([...s.secretary.handled.keys()].filter((k) => /^mail:sha256:[0-9a-f]{64}$/.test(k))).toHaveLength(1);
    const dryRun = (keyClass: 'admin' | 'client', bytes: Buffer) =>
      request(s.communicator.http.url)
        .post('/test')
        .set(bearer(keyClass))
        .set('Content-Type', 'message/rfc822')
        .send(bytes);
    const admin = await dryRun('admin', mime);
    expect(admin.status).toBe(200);
    expect(admin.body).toMatchObject({ dry_run: true, outcome: 'skipped', reason: 'duplicate' });
    // Other bytes (one more character) are another mail: the admin sees the plan.
    const other = await dryRun('admin', Buffer.concat([mime, Buffer.from('\r\n')]));
    expect(other.body).not.toMatchObject({ reason: 'duplicate' });
    // A client key learns nothing of what was answered (test-mail-client-view.test.ts).
    const client = await dryRun('client', mime);
    expect(client.status).toBe(200);
    expect(client.body).not.toMatchObject({ reason: 'duplicate' });
    expect(s.sink.mails).toHaveLength(1);
  });
});

describe('POST /test reports "would be rate limited" without drawing from the budget (gap 4)', () => {
  const fill = (s: Setup, key: string, n: number) =>
    s.secretary.budgets.set(
      key,
      Array.from({ length: n }, () => Date.now()),
    );
  const dryRun = (s: Setup, keyClass: 'admin' | 'client', from = 'ivan@client.test') =>
    request(s.communicator.http.url)
      .post('/test')
      .set(bearer(keyClass))
      .send({ from, subject: 'Доступ', text: 'Нужен доступ к VPN для новой сотрудницы' });

  it('a sender over RATE_LIMIT_PER_HOUR: skipped / rate-limited with the budget; no decision, nothing drawn', async () => {
    const s = await setup({ RATE_LIMIT_PER_HOUR: '3' });
    fill(s, 'email:ivan@client.test', 3);
    const res = await dryRun(s, 'admin');
    expect(res.status).toBe(200);
    expect(openapi.responseProblems('testMail', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({
      dry_run: true,
      outcome: 'skipped',
      reason: 'rate-limited',
      detail: 'over RATE_LIMIT_PER_HOUR',
      rate_limit: { limit: 'sender', key: 'email:ivan@client.test', retry_after_seconds: expect.any(Number) },
    });
    expect(s.secretary.dryRunCalls).toHaveLength(0);
    // Read through /rate-limits/check; nothing consumed (neither the sender's nor the caller's POST /test budget).
    expect(s.secretary.checkCalls).toEqual([{ keys: ['email:ivan@client.test'], limit: 3, window_seconds: 3600 }]);
    expect(s.secretary.consumeCalls).toHaveLength(0);
    expect(s.secretary.budgets.get('email:ivan@client.test')).toHaveLength(3);
    expect(s.sink.mails).toHaveLength(0);
  });

  it('the whole mailbox over RATE_LIMIT_MAILBOX_PER_HOUR (mailbox:all): reported as the mailbox limit', async () => {
    const s = await setup({ RATE_LIMIT_MAILBOX_PER_HOUR: '2' });
    fill(s, 'mailbox:all', 2);
    const res = await dryRun(s, 'admin', 'stranger@elsewhere.test');
    expect(res.body).toMatchObject({
      outcome: 'skipped',
      reason: 'rate-limited',
      detail: 'over RATE_LIMIT_MAILBOX_PER_HOUR (all mail together)',
      rate_limit: { limit: 'mailbox', key: 'mailbox:all' },
    });
    expect(s.secretary.checkCalls.map((c) => c.keys)).toEqual([['email:stranger@elsewhere.test'], ['mailbox:all']]);
    expect(s.secretary.budgets.get('mailbox:all')).toHaveLength(2);
    expect(s.secretary.budgets.get('email:stranger@elsewhere.test') ?? []).toHaveLength(0);
  });

  it('within budget: decided as before, the budgets read and left whole', async () => {
    const s = await setup({ RATE_LIMIT_PER_HOUR: '3', RATE_LIMIT_MAILBOX_PER_HOUR: '5' });
    fill(s, 'email:ivan@client.test', 2);
    const res = await dryRun(s, 'admin');
    expect(res.body).toMatchObject({ dry_run: true, outcome: 'decided' });
    expect(res.body.rate_limit).toBeUndefined();
    expect(s.secretary.dryRunCalls).toHaveLength(1);
    expect(s.secretary.checkCalls.map((c) => c.keys)).toEqual([['email:ivan@client.test'], ['mailbox:all']]);
    expect(s.secretary.budgets.get('email:ivan@client.test')).toHaveLength(2);
    expect(s.secretary.budgets.get('mailbox:all') ?? []).toHaveLength(0);
    // Only the caller's own POST /test budget was drawn from.
    expect(s.secretary.consumeCalls.map((c) => c.keys)).toEqual([[expect.stringMatching(/^test:key:admin:/)]]);
  });

  it('a client key’s view does not read the budgets (they tell the mailbox’s history), as the duplicate check', async () => {
    const s = await setup({ RATE_LIMIT_PER_HOUR: '3' });
    fill(s, 'email:ivan@client.test', 3);
    const res = await dryRun(s, 'client');
    expect(res.body).toMatchObject({ dry_run: true, outcome: 'decided' });
    expect(s.secretary.checkCalls).toHaveLength(0);
  });

  it('the budgets cannot be read (the secretary’s store down): 503, never a guessed verdict', async () => {
    const s = await setup();
    s.secretary.rateLimitsDown = true;
    const res = await dryRun(s, 'admin');
    expect(res.status).toBe(503);
    expect(s.secretary.dryRunCalls).toHaveLength(0);
  });
});
