// Issue 15, the communicator's side: durable rate limits through the secretary (POST /rate-limits/consume),
// audit events (POST /audit-events) for every inbound message and every reply, and POST /test (a dry run).
// Real Dovecot, a real SMTP listener and the fake Bot API; the secretary is the fake that speaks the agreed
// interfaces (fake-secretary.ts), so its budgets outlive the communicators a test restarts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { createLogger, createMetrics } from '@workemon/service-kit';
import { bearer } from '@workemon/testkit/api-keys';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { createAuditReporter } from '../src/audit-reporter.js';
import { createSecretaryClient } from '../src/secretary-client.js';
import { answer, startFakeSecretary, type AuditEventBody, type FakeSecretary } from './fake-secretary.js';
import { SERVICE_AUTH, buildEmail, openapi, startCommunicator, waitUntil, type Running } from './harness.js';

const USERS = Array.from({ length: 14 }, (_, i) => ({ user: `desk${i}@example.test`, password: `pw-${i}` }));
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

type Mail = { user: string; sink: SmtpSink };

async function mailbox(): Promise<Mail> {
  const sink = await startSmtpSink();
  open.push(sink);
  return { user: USERS[nextUser++]!.user, sink };
}

async function secretaryFake(): Promise<FakeSecretary> {
  const secretary = await startFakeSecretary();
  open.push(secretary);
  return secretary;
}

async function communicatorFor(
  secretary: FakeSecretary,
  mail?: Mail,
  options: { env?: Record<string, string>; telegram?: FakeTelegram } = {},
): Promise<Running> {
  const c = await startCommunicator({
    secretaryUrl: secretary.url,
    dovecot: mail ? dovecot : undefined,
    user: mail?.user,
    sink: mail?.sink,
    telegram: options.telegram,
    env: options.env,
  });
  open.push(c);
  return c;
}

const flagsOf = async (user: string, uid: number) =>
  (await dovecot.messages({ user })).find((m) => m.uid === uid)?.flags ?? [];
const waitSeen = (user: string, uid: number) =>
  waitUntil(async () => (await flagsOf(user, uid)).includes('\\Seen'), `\\Seen on uid ${uid}`);
const eventsOf = (secretary: FakeSecretary, messageId: string) =>
  secretary.auditEvents.filter((e) => e.message_id === messageId);
const waitEvent = (secretary: FakeSecretary, match: (e: AuditEventBody) => boolean, what: string) =>
  waitUntil(() => secretary.auditEvents.find(match), what);

describe('durable rate limits (POST /rate-limits/consume)', () => {
  it('email: the budget outlives a restart of the communicator', async () => {
    const secretary = await secretaryFake();
    const mail = await mailbox();
    const first = await communicatorFor(secretary, mail, { env: { RATE_LIMIT_PER_HOUR: '1' } });
    await dovecot.append(buildEmail({ messageId: '<rl-1@client.test>' }), { user: mail.user });
    await mail.sink.waitForMails(1);
    // The sender's budget, then all mail together (RATE_LIMIT_MAILBOX_PER_HOUR, default 1000).
    expect(secretary.consumeCalls).toEqual([
      { keys: ['email:ivan@client.test'], limit: 1, window_seconds: 3600 },
      { keys: ['mailbox:all'], limit: 1000, window_seconds: 3600 },
    ]);
    await first.stop();

    await communicatorFor(secretary, mail, { env: { RATE_LIMIT_PER_HOUR: '1' } });
    const second = await dovecot.append(buildEmail({ messageId: '<rl-2@client.test>' }), { user: mail.user });
    await waitSeen(mail.user, second);
    expect(await flagsOf(mail.user, second)).not.toContain('\\Answered');
    expect(mail.sink.mails).toHaveLength(1);
    expect(secretary.calls.map((c) => c.message_id)).toEqual(['<rl-1@client.test>']);
    await waitEvent(
      secretary,
      (e) => e.message_id === '<rl-2@client.test>' && e.outcome === 'skipped',
      'the rate-limited audit event',
    );
    expect(eventsOf(secretary, '<rl-2@client.test>').find((e) => e.outcome === 'skipped')).toMatchObject({
      event_id: 'email:<rl-2@client.test>:skipped',
      channel: 'email',
      direction: 'inbound',
      reason: 'rate-limited',
      sender: 'ivan@client.test',
    });
  });

  it('email: two communicators (two mailboxes) share one sender budget', async () => {
    const secretary = await secretaryFake();
    const [a, b] = [await mailbox(), await mailbox()];
    const env = { RATE_LIMIT_PER_HOUR: '2' };
    await communicatorFor(secretary, a, { env });
    await communicatorFor(secretary, b, { env });
    await dovecot.append(buildEmail({ messageId: '<two-1@client.test>' }), { user: a.user });
    await a.sink.waitForMails(1);
    await dovecot.append(buildEmail({ messageId: '<two-2@client.test>' }), { user: b.user });
    await b.sink.waitForMails(1);
    const third = await dovecot.append(buildEmail({ messageId: '<two-3@client.test>' }), { user: a.user });
    await waitSeen(a.user, third);
    expect(a.sink.mails.map((m) => m.header('in-reply-to'))).toEqual(['<two-1@client.test>']);
    expect(b.sink.mails.map((m) => m.header('in-reply-to'))).toEqual(['<two-2@client.test>']);
    expect(secretary.budgets.get('email:ivan@client.test')).toHaveLength(2);
  });

  it('email: the sender and a foreign-domain Reply-To share one all-or-nothing check', async () => {
    const secretary = await secretaryFake();
    const mail = await mailbox();
    await communicatorFor(secretary, mail, { env: { RATE_LIMIT_PER_HOUR: '1', COMPANY_DOMAINS: 'corp.test' } });
    await dovecot.append(
      buildEmail({ from: 'a@client.test', messageId: '<rt-a@client.test>', headers: ['Reply-To: desk@corp.test'] }),
      { user: mail.user },
    );
    await mail.sink.waitForMails(1);
    // Another sender aims at the same reply address: refused, and its own budget is left untouched.
    const refused = await dovecot.append(
      buildEmail({ from: 'c@client.test', messageId: '<rt-c@client.test>', headers: ['Reply-To: desk@corp.test'] }),
      { user: mail.user },
    );
    await waitSeen(mail.user, refused);
    // The mailbox's budget is taken only after the sender's allowed the mail.
    expect(secretary.consumeCalls.map((c) => c.keys)).toEqual([
      ['email:a@client.test', 'reply-to:desk@corp.test'],
      ['mailbox:all'],
      ['email:c@client.test', 'reply-to:desk@corp.test'],
    ]);
    expect(secretary.budgets.get('email:c@client.test')).toEqual([]);
    expect(mail.sink.mails).toHaveLength(1);
  });

  it('email: while the secretary cannot check the budget, the mail is not answered and not lost', async () => {
    const secretary = await secretaryFake();
    secretary.rateLimitsDown = true;
    const mail = await mailbox();
    const c = await communicatorFor(secretary, mail, { env: { MAX_ATTEMPTS: '2' } });
    const uid = await dovecot.append(buildEmail({ messageId: '<wait@client.test>' }), { user: mail.user });
    // More tries than MAX_ATTEMPTS: an outage is not counted against the mail.
    await waitUntil(() => secretary.consumeCalls.length >= 3, 'three budget checks');
    expect(mail.sink.mails).toHaveLength(0);
    expect(secretary.calls).toHaveLength(0);
    expect(await flagsOf(mail.user, uid)).not.toContain('\\Seen');
    secretary.rateLimitsDown = false;
    await mail.sink.waitForMails(1);
    await waitUntil(async () => (await flagsOf(mail.user, uid)).includes('\\Answered'), 'answered');
    expect(await c.metric('workemon_email_failed_total')).toBe(0);
    expect(secretary.budgets.get('email:ivan@client.test')).toHaveLength(1);
  });

  it('telegram: the budget outlives a restart; an outage holds the update until the check is possible', async () => {
    const secretary = await secretaryFake();
    const tg = await startFakeTelegram();
    open.push(tg);
    const env = { RATE_LIMIT_PER_HOUR: '1' };
    const first = await communicatorFor(secretary, undefined, { telegram: tg, env });
    tg.pushMessage({ text: 'Нужен пропуск', from: { id: 4242, username: 'u4242' } });
    await tg.waitForSent(1);
    await waitUntil(() => tg.pending() === 0, 'confirmed');
    await first.stop();

    await communicatorFor(secretary, undefined, { telegram: tg, env });
    secretary.rateLimitsDown = true;
    const { chat_id, message_id } = tg.pushMessage({ text: 'И ещё один', from: { id: 4242, username: 'u4242' } });
    await waitUntil(() => secretary.consumeCalls.length >= 3, 'budget checks during the outage');
    expect(tg.pending()).toBe(1);
    secretary.rateLimitsDown = false;
    await waitUntil(() => tg.pending() === 0, 'the second update confirmed');
    expect(tg.sent).toHaveLength(1);
    expect(secretary.calls).toHaveLength(1);
    expect(secretary.consumeCalls.every((c) => c.keys.join() === 'telegram:4242' && c.limit === 1)).toBe(true);
    const skipped = await waitEvent(
      secretary,
      (e) => e.message_id === `tg:${chat_id}:${message_id}` && e.outcome === 'skipped',
      'the rate-limited event',
    );
    expect(skipped).toMatchObject({ channel: 'telegram', reason: 'rate-limited', sender: 'tg:4242' });
  });
});

describe('audit events (POST /audit-events)', () => {
  it('email: received, delivered, and a skipped event for each kind the mailbox has', async () => {
    const secretary = await secretaryFake();
    secretary.decide = (r) =>
      r.request.includes('рассылка')
        ? { ...answer(''), response: '', question: '', 'context-response': '', no_reply: true }
        : r.request.includes('сломай')
          ? { status: 500, message: 'analysis failed' }
          : answer(`Ответ на: ${r.request}`, r.request);
    const mail = await mailbox();
    const c = await communicatorFor(secretary, mail, { env: { RATE_LIMIT_PER_HOUR: '1', MAX_ATTEMPTS: '2' } });
    const put = (raw: Buffer) => dovecot.append(raw, { user: mail.user });
    await put(buildEmail({ messageId: '<ok@client.test>' }));
    await mail.sink.waitForMails(1);
    // The same Message-ID again (a second copy): duplicate.
    await put(buildEmail({ messageId: '<ok@client.test>' }));
    await put(buildEmail({ messageId: '<auto@client.test>', headers: ['Auto-Submitted: auto-replied'] }));
    await put(buildEmail({ messageId: '<limit@client.test>' }));
    await put(buildEmail({ from: 'news@client.test', messageId: '<news@client.test>', body: 'рассылка' }));
    await put(buildEmail({ from: 'p@client.test', messageId: '<poison@client.test>', body: 'сломай всё' }));
    const reasons = {
      '<auto@client.test>': 'automatic',
      '<limit@client.test>': 'rate-limited',
      '<news@client.test>': 'no-reply',
      '<poison@client.test>': 'poison',
      '<ok@client.test>': 'duplicate',
    };
    await waitUntil(
      () => Object.keys(reasons).every((id) => eventsOf(secretary, id).some((e) => e.outcome === 'skipped')),
      'a skipped event for every kind',
      30_000,
    );
    for (const [messageId, reason] of Object.entries(reasons)) {
      const events = eventsOf(secretary, messageId);
      expect(
        events.filter((e) => e.outcome === 'received'),
        messageId,
      ).toHaveLength(1);
      expect(
        events.find((e) => e.outcome === 'skipped'),
        messageId,
      ).toMatchObject({
        event_id: `email:${messageId}:skipped`,
        channel: 'email',
        // The intake (docs/audit.md "Intake"): the mailbox's own rows say it, as the secretary's rows of the mail do.
        event_provider: 'imap',
        direction: 'inbound',
        reason,
      });
    }
    expect(eventsOf(secretary, '<auto@client.test>').find((e) => e.outcome === 'skipped')?.detail).toBe(
      'auto_submitted',
    );
    // The events of a mail carry the X-Request-Id its analysis was asked with (the secretary's decision row has it).
    const okRequestId =
      secretary.analyzeRequestIds[secretary.calls.findIndex((x) => x.message_id === '<ok@client.test>')];
    expect(okRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(eventsOf(secretary, '<ok@client.test>').find((e) => e.outcome === 'delivered')).toMatchObject({
      request_id: okRequestId,
      event_id: 'email:<ok@client.test>:reply',
      event_provider: 'imap',
      direction: 'outbound',
      recipient: 'ivan@client.test',
      sender: 'ivan@client.test',
      subject: 'Доступ к VPN',
    });
    expect(mail.sink.mails).toHaveLength(1);
    expect(secretary.auditEvents.every((e) => !e.dry_run)).toBe(true);
    expect(await c.metric('workemon_audit_events_dropped_total')).toBe(0);
  });

  it('email: a secretary older than `event_provider` still gets every row of the mailbox, without it, one warning', async () => {
    const secretary = await secretaryFake();
    secretary.auditEventProviderUnknown = true;
    const mail = await mailbox();
    const c = await communicatorFor(secretary, mail);
    await dovecot.append(buildEmail({ messageId: '<old-1@client.test>' }), { user: mail.user });
    await mail.sink.waitForMails(1);
    await waitUntil(
      () => eventsOf(secretary, '<old-1@client.test>').some((e) => e.outcome === 'delivered'),
      'the reply reported',
    );
    await dovecot.append(buildEmail({ messageId: '<old-2@client.test>' }), { user: mail.user });
    await mail.sink.waitForMails(2);
    await waitUntil(
      () => eventsOf(secretary, '<old-2@client.test>').some((e) => e.outcome === 'delivered'),
      'the second reply reported',
    );
    const rows = secretary.auditEvents.filter((e) => e.message_id?.startsWith('<old-'));
    expect(rows.map((e) => `${e.message_id} ${e.outcome}`).sort()).toEqual([
      '<old-1@client.test> delivered',
      '<old-1@client.test> received',
      '<old-2@client.test> delivered',
      '<old-2@client.test> received',
    ]);
    expect(rows.every((e) => e.event_provider === undefined)).toBe(true);
    expect(await c.metric('workemon_audit_events_dropped_total')).toBe(0);
    // Refused once (the first batch), then every batch goes without the field at once.
    expect(secretary.auditEventProviderRefusals).toBe(1);
  });

  it('email: a reply the SMTP server keeps refusing is reported failed once, when the mail is given up', async () => {
    const secretary = await secretaryFake();
    const mail = await mailbox();
    mail.sink.reject(550, 'Mailbox unavailable');
    await communicatorFor(secretary, mail);
    const uid = await dovecot.append(buildEmail({ messageId: '<bounce@client.test>' }), { user: mail.user });
    const failed = await waitEvent(
      secretary,
      (e) => e.message_id === '<bounce@client.test>' && e.outcome === 'failed',
      'the failed delivery',
    );
    expect(failed).toMatchObject({
      event_id: 'email:<bounce@client.test>:reply',
      direction: 'outbound',
      reason: 'smtp-rejected',
      recipient: 'ivan@client.test',
    });
    await waitUntil(async () => (await flagsOf(mail.user, uid)).includes('$WorkemonFailed'), 'set aside');
    expect(eventsOf(secretary, '<bounce@client.test>').map((e) => e.outcome)).toEqual(['received', 'failed']);
  });

  it('telegram: received, the reply delivered, and skipped as automatic, not-addressed, untrusted', async () => {
    const secretary = await secretaryFake();
    const tg = await startFakeTelegram();
    open.push(tg);
    await communicatorFor(secretary, undefined, { telegram: tg, env: { APPROVER_TELEGRAM_CHAT_ID: '-900' } });
    const asked = tg.pushMessage({ text: 'Где взять ноутбук?', from: { id: 11, username: 'u11' } });
    const group = { id: -300, type: 'group' as const };
    const chatter = tg.pushMessage({ text: 'всем привет', from: { id: 13, username: 'u13' }, chat: group });
    const press = tg.pushCallbackQuery({ data: 'action:approve:5', from: { id: 14, username: 'u14' } });
    await waitUntil(() => tg.pending() === 0, 'all updates confirmed');
    const id = (m: { chat_id: number; message_id: number }) => `tg:${m.chat_id}:${m.message_id}`;
    const skippedReason = (messageId: string) =>
      secretary.auditEvents.find((e) => e.message_id === messageId && e.outcome === 'skipped')?.reason;
    await waitUntil(() => skippedReason(`tg:callback:${press.callback_query_id}`), 'the press event');
    // The reporter sends its events in batches (200 ms apart), so the reply's event may come in a later batch.
    await waitUntil(() => eventsOf(secretary, id(asked)).length >= 2, 'the reply event');
    await waitUntil(() => skippedReason(id(chatter)), 'the group chatter event');
    expect(eventsOf(secretary, id(asked)).map((e) => [e.event_id, e.outcome, e.direction])).toEqual([
      [`telegram:${id(asked)}:received`, 'received', 'inbound'],
      [`telegram:${id(asked)}:reply`, 'delivered', 'outbound'],
    ]);
    expect(eventsOf(secretary, id(asked))[1]).toMatchObject({
      recipient: '11',
      sender: 'tg:11',
      request_id: secretary.analyzeRequestIds[0],
    });
    expect(skippedReason(id(chatter))).toBe('not-addressed');
    expect(skippedReason(`tg:callback:${press.callback_query_id}`)).toBe('untrusted');
    // A message whose sender is a bot (the fake marks no sender as a bot, so push one by hand).
    tg.pushUpdate({
      message: {
        message_id: 900,
        date: Math.floor(Date.now() / 1000),
        chat: { id: 15, type: 'private' },
        from: { id: 15, is_bot: true, first_name: 'Bot', username: 'some_bot' },
        text: 'автоматическое сообщение',
      },
    });
    await waitUntil(() => skippedReason('tg:15:900'), 'the bot message event');
    expect(skippedReason('tg:15:900')).toBe('automatic');
  });

  it('POST /send: the delivery is reported once per idempotency key, with the request id', async () => {
    const secretary = await secretaryFake();
    const mail = await mailbox();
    const c = await communicatorFor(secretary, mail);
    const body = {
      channel: 'email',
      to: 'lead@corp.test',
      subject: 'Задача',
      text: 'Создана задача',
      idempotency_key: 'act-7',
    };
    for (let i = 0; i < 2; i += 1) {
      const res = await request(c.app).post('/send').set(SERVICE_AUTH).set('x-request-id', 'req-send-7').send(body);
      expect(res.status).toBe(200);
    }
    await mail.sink.waitForMails(1);
    const delivered = await waitEvent(secretary, (e) => e.event_id === 'email:send:act-7:delivered', 'the delivery');
    expect(delivered).toMatchObject({
      channel: 'email',
      direction: 'outbound',
      outcome: 'delivered',
      recipient: 'lead@corp.test',
      request_id: 'req-send-7',
    });
    mail.sink.reject(550, 'no such user');
    const failed = await request(c.app)
      .post('/send')
      .set(SERVICE_AUTH)
      .send({ ...body, idempotency_key: 'act-8' });
    expect(failed.status).toBe(400);
    const event = await waitEvent(secretary, (e) => e.event_id.startsWith('email:send:act-8:failed'), 'the failure');
    expect(event).toMatchObject({ outcome: 'failed', reason: 'smtp-rejected' });
    expect(mail.sink.mails).toHaveLength(1);
  });
});

describe('audit reporting never blocks or loses mail', () => {
  it('keeps events while the secretary refuses them with 503 and delivers them once it is back', async () => {
    const secretary = await secretaryFake();
    secretary.auditFailure = 503;
    const mail = await mailbox();
    const c = await communicatorFor(secretary, mail);
    await dovecot.append(buildEmail({ messageId: '<later@client.test>' }), { user: mail.user });
    // The mail is answered although the audit log is away.
    await mail.sink.waitForMails(1);
    await waitUntil(() => secretary.auditCalls >= 2, 'audit retries');
    expect(secretary.auditEvents).toHaveLength(0);
    secretary.auditFailure = undefined;
    await waitUntil(() => eventsOf(secretary, '<later@client.test>').length === 2, 'the events, late', 20_000);
    expect(await c.metric('workemon_audit_events_dropped_total')).toBe(0);
  });

  it('drops (and counts) what the secretary refuses, what overflows the queue, and what is left at shutdown', async () => {
    const secretary = await secretaryFake();
    const metrics = createMetrics('communicator');
    const logger = createLogger({ service: 'communicator', level: 'error' });
    logger.silent = true;
    const client = createSecretaryClient({
      baseURL: secretary.url,
      apiKey: 'test-service-key-9d1f3b5a7c2e4a6d',
      timeoutMs: 2000,
      metrics,
      logger,
    });
    const dropped = async (reason: string) =>
      (await metrics.registry.getMetricsAsJSON())
        .find((m) => m.name === 'workemon_audit_events_dropped_total')
        ?.values.find((v) => v.labels['reason'] === reason)?.value ?? 0;
    const event = (n: number) => ({
      event_id: `email:<n${n}@client.test>:received`,
      channel: 'email' as const,
      direction: 'inbound' as const,
      outcome: 'received' as const,
      message_id: `<n${n}@client.test>`,
    });

    const reporter = createAuditReporter({
      send: (events) => client.postAuditEvents(events),
      logger,
      metrics,
      maxBuffered: 3,
      batchDelayMs: 20,
      retryDelaysMs: [50],
    });
    for (let n = 1; n <= 5; n += 1) reporter.report(event(n));
    expect(reporter.pending()).toBe(3);
    expect(await dropped('overflow')).toBe(2);
    await waitUntil(() => reporter.pending() === 0, 'sent');
    expect(secretary.auditEvents.map((e) => e.message_id)).toEqual([
      '<n3@client.test>',
      '<n4@client.test>',
      '<n5@client.test>',
    ]);

    secretary.auditFailure = 400;
    reporter.report(event(6));
    await waitUntil(async () => (await dropped('rejected')) === 1, 'the refused event dropped');

    secretary.auditFailure = 503;
    reporter.report(event(7));
    await waitUntil(async () => (await dropped('unavailable')) === 1, 'given up after its retries');
    reporter.report(event(8));
    await reporter.close(100);
    expect(await dropped('shutdown')).toBe(1);
    expect(secretary.auditEvents).toHaveLength(3);
  });
});

describe('POST /test (dry run)', () => {
  it("returns the decision and the reply; no SMTP, no sender's budget, no flag; one audit event marked dry_run", async () => {
    const secretary = await secretaryFake();
    const mail = await mailbox();
    const c = await communicatorFor(secretary, mail);
    const raw = buildEmail({ messageId: '<dry-1@client.test>', subject: 'Нужен Jira-тикет' });
    const res = await request(c.app)
      .post('/test')
      .set(bearer('client'))
      .set('Content-Type', 'message/rfc822')
      .send(raw);
    expect(res.status).toBe(200);
    expect(openapi.responseProblems('testMail', 200, res.body)).toEqual([]);
    const expected = answer(`Ответ на: ${secretary.dryRunCalls[0]!.request}`, secretary.dryRunCalls[0]!.request);
    expect(res.body).toEqual({
      dry_run: true,
      outcome: 'decided',
      message_id: '<dry-1@client.test>',
      decision: {
        ...expected,
        dry_run: true,
        would_execute: [{ action: expected.action, target: 'ivan@client.test', text: expected.response }],
      },
      reply: {
        to: 'ivan@client.test',
        subject: 'Re: Нужен Jira-тикет',
        in_reply_to: '<dry-1@client.test>',
        text: expected.response,
      },
    });
    expect(secretary.dryRunCalls).toHaveLength(1);
    expect(secretary.dryRunCalls[0]).toMatchObject({ channel: 'email', message_id: '<dry-1@client.test>' });
    expect(secretary.calls).toHaveLength(0);
    // No sender's budget: the one draw is the caller key's (TEST_RATE_LIMIT_PER_KEY_PER_MINUTE).
    expect(secretary.consumeCalls).toHaveLength(1);
    expect(secretary.consumeCalls[0]).toMatchObject({ limit: 30, window_seconds: 60 });
    expect(secretary.consumeCalls[0]!.keys).toEqual([expect.stringMatching(/^test:key:/)]);
    expect(secretary.handled.size).toBe(0);
    const event = await waitEvent(secretary, (e) => e.dry_run === true, 'the dry-run event');
    expect(event).toMatchObject({ channel: 'email', outcome: 'decided', message_id: '<dry-1@client.test>' });
    // A dry run then the real mail: the real one is answered normally (nothing was remembered).
    await dovecot.append(raw, { user: mail.user });
    await mail.sink.waitForMails(1);
    expect(mail.sink.mails).toHaveLength(1);
    expect(secretary.auditEvents.filter((e) => e.dry_run)).toHaveLength(1);
  });

  it('takes JSON {from, subject, text}; loop rules say skipped; bad input is a 400 that changes nothing', async () => {
    const secretary = await secretaryFake();
    const mail = await mailbox();
    const c = await communicatorFor(secretary, mail);
    const json = await request(c.app).post('/test').set(bearer('admin')).send({
      from: 'Анна <anna@client.test>',
      subject: 'Пароль',
      text: 'Сбросьте пароль, пожалуйста',
      in_reply_to: '<q0@corp.test>',
    });
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({
      dry_run: true,
      outcome: 'decided',
      reply: { to: 'anna@client.test', subject: 'Re: Пароль', text: `Ответ на: ${secretary.dryRunCalls[0]!.request}` },
    });
    expect(secretary.dryRunCalls[0]!.request).toContain('Сбросьте пароль, пожалуйста');
    expect(secretary.dryRunCalls[0]).toMatchObject({
      username: 'anna@client.test',
      sender_authentication: { verified: false },
    });

    const auto = await request(c.app)
      .post('/test')
      .set(bearer('client'))
      .set('Content-Type', 'message/rfc822')
      .send(buildEmail({ messageId: '<ooo@client.test>', headers: ['Auto-Submitted: auto-replied'] }));
    expect(auto.body).toEqual({
      dry_run: true,
      outcome: 'skipped',
      reason: 'automatic',
      detail: 'auto_submitted',
      message_id: '<ooo@client.test>',
    });

    for (const [body, type] of [
      [{ from: 'anna@client.test' }, 'application/json'],
      [{ from: 'anna@client.test', text: 'x', extra: 1 }, 'application/json'],
      [{ from: 'a@b.test\r\nBcc: x@y.test', text: 'x' }, 'application/json'],
      ['', 'message/rfc822'],
    ] as const) {
      const bad = await request(c.app).post('/test').set(bearer('client')).set('Content-Type', type).send(body);
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(openapi.responseProblems('testMail', 400, bad.body)).toEqual([]);
    }
    const plain = await request(c.app).post('/test').set(bearer('client')).set('Content-Type', 'text/plain').send('hi');
    expect(plain.status).toBe(415);
    expect((await request(c.app).post('/test').send({ from: 'a@b.test', text: 'x' })).status).toBe(401);
    expect((await request(c.app).post('/test').set(SERVICE_AUTH).send({ from: 'a@b.test', text: 'x' })).status).toBe(
      403,
    );
    expect(secretary.dryRunCalls).toHaveLength(1);
    // Only the decided mail drew from its caller key's budget; the skipped and refused ones took nothing.
    expect(secretary.consumeCalls.map((call) => call.keys[0])).toEqual([expect.stringMatching(/^test:key:/)]);
    expect(mail.sink.mails).toHaveLength(0);
  });

  it('a secretary that does not confirm the dry run is a 502, never a pretended dry run', async () => {
    const secretary = await secretaryFake();
    const mail = await mailbox();
    const c = await communicatorFor(secretary, mail);
    // A secretary that drops the flag: it answers, but without dry_run.
    secretary.ignoreDryRun = true;
    const res = await request(c.app)
      .post('/test')
      .set(bearer('client'))
      .set('Content-Type', 'message/rfc822')
      .send(buildEmail({ messageId: '<old@client.test>' }));
    expect(res.status).toBe(502);
    expect(res.body.message).toContain('dry run');
    expect(mail.sink.mails).toHaveLength(0);
  });
});
