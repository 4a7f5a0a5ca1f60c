// s36, gaps 2–4 on the secretary's side, over real HTTP and a real Postgres:
// - the intake of a mail (`intake` on /analyze-request from the communicator) reaches the audit log as
//   `event_provider` beside the unchanged `channel: email`, and GET /audit filters by it;
// - /stats counts answers to requesters and the actions' outcome notices apart (`requester_replies`,
//   `action_notices`), `replied` keeping its contract meaning (every `…:reply`);
// - POST /rate-limits/check answers what consume would, taking nothing (the communicator's dry runs).
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '@workemon/testkit/api-keys';
import { defaultGuesserReply } from '@workemon/testkit/llm-stack';
import { keyed, openapi } from './secretary-harness.js';
import { analyze, startS36Stack, type S36Stack } from './s36-stack.js';

const JIRA = 'создать jira-task';

let stack: S36Stack;

beforeAll(async () => {
  // Every request classified with confidence: the Jira action runs without a person (gap 1 is not in the way).
  stack = await startS36Stack({
    name: 's36_audit_intake',
    guesser: (req) => ({ ...(defaultGuesserReply(req) as object), category: 'payments', confidence: 0.95 }),
  });
});
afterAll(async () => {
  await stack?.close();
});

async function audit(query: Record<string, string>) {
  const res = await keyed(stack.url).get('/audit').query(query);
  expect(openapi.responseProblems('listAuditEvents', res.status, res.body)).toEqual([]);
  return res;
}

type Row = { event_id: string; channel: string; outcome: string; event_provider: string | null; message_id: string };

describe('the intake of a mail in the audit log (event_provider)', () => {
  it('webhook and IMAP mail: the decided row keeps channel email and names its intake; GET /audit filters by it', async () => {
    const byIntake: Record<string, string> = {};
    for (const intake of ['mailgun', 'imap', 'ses']) {
      const text = `Подскажите пожалуйста статус платежа номер ${intake} от вчерашнего дня`;
      const { res, messageId, problems } = await analyze(stack, {
        channel: 'email',
        username: 'anna@corp.test',
        request: text,
        intake,
      });
      expect(problems).toEqual([]);
      expect(res.status).toBe(200);
      byIntake[intake] = messageId;
    }
    const all = (await audit({ outcome: 'decided', limit: '50' })).body.items as Row[];
    for (const [intake, messageId] of Object.entries(byIntake)) {
      const row = all.find((r) => r.message_id === messageId);
      expect(row, intake).toMatchObject({ channel: 'email', event_provider: intake });
    }
    const mailgun = (await audit({ event_provider: 'mailgun' })).body.items as Row[];
    expect(mailgun.map((r) => r.message_id)).toEqual([byIntake['mailgun']]);
    const imap = (await audit({ event_provider: 'imap', channel: 'email' })).body.items as Row[];
    expect(imap.map((r) => r.message_id)).toEqual([byIntake['imap']]);
  });

  it('the communicator’s rows under a webhook channel carry the provider too, so one filter shows the whole mail', async () => {
    const text = 'Не проходит возврат по карте клиента уже третий день подряд';
    const { messageId } = await analyze(stack, {
      channel: 'email',
      username: 'ivan@corp.test',
      request: text,
      intake: 'sendgrid',
    });
    const posted = await request(stack.url)
      .post('/audit-events')
      .set(bearer('service'))
      .send({
        events: [
          {
            event_id: `sendgrid:${messageId}:received`,
            channel: 'sendgrid',
            direction: 'inbound',
            outcome: 'received',
            message_id: messageId,
          },
        ],
      });
    expect(posted.status).toBe(202);
    const rows = (await audit({ event_provider: 'sendgrid' })).body.items as Row[];
    expect(rows.map((r) => [r.channel, r.outcome])).toEqual([
      ['sendgrid', 'received'],
      ['email', 'decided'],
    ]);
  });

  it('the mailbox’s own rows (channel email, event_provider imap) join its decision under one filter', async () => {
    const text = 'Не приходит выписка по счёту за ноябрь, проверьте пожалуйста рассылку';
    const { messageId } = await analyze(stack, {
      channel: 'email',
      username: 'olga@corp.test',
      request: text,
      intake: 'imap',
    });
    const skippedId = '<imap-skipped@corp.test>';
    const posted = await request(stack.url)
      .post('/audit-events')
      .set(bearer('service'))
      .send({
        events: [
          { event_id: `email:${messageId}:received`, channel: 'email', direction: 'inbound', outcome: 'received' },
          {
            event_id: `email:${skippedId}:skipped`,
            channel: 'email',
            direction: 'inbound',
            outcome: 'skipped',
            reason: 'automatic',
          },
        ].map((e, i) => ({ ...e, message_id: i ? skippedId : messageId, event_provider: 'imap' })),
      });
    expect(posted.status).toBe(202);
    const rows = (await audit({ event_provider: 'imap', limit: '50' })).body.items as Row[];
    expect(
      rows
        .filter((r) => r.message_id === messageId)
        .map((r) => `${r.channel} ${r.outcome}`)
        .sort(),
    ).toEqual(['email decided', 'email received']);
    expect(rows.filter((r) => r.message_id === skippedId).map((r) => r.outcome)).toEqual(['skipped']);
    // An intake the audit log does not know is refused, and nothing of the batch is stored.
    const bad = await request(stack.url)
      .post('/audit-events')
      .set(bearer('service'))
      .send({
        events: [
          {
            event_id: 'email:<pop3@corp.test>:received',
            channel: 'email',
            direction: 'inbound',
            outcome: 'received',
            message_id: '<pop3@corp.test>',
            event_provider: 'pop3',
          },
        ],
      });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/event_provider/);
    expect((await audit({ message_id: '<pop3@corp.test>' })).body.items).toEqual([]);
  });

  it('a REST caller cannot set the intake: its rows are direct and name none; an unknown intake is a 400', async () => {
    const text = 'Подскажите пожалуйста лимиты по переводам для юридических лиц';
    const { res, messageId } = await analyze(
      stack,
      {
        channel: 'email',
        username: 'anna@corp.test',
        request: text,
        intake: 'mailgun',
      },
      'admin',
    );
    expect(res.status).toBe(200);
    const rows = (await audit({ message_id: messageId })).body.items as Row[];
    expect(rows.map((r) => [r.channel, r.outcome, r.event_provider])).toEqual([
      ['direct', 'decided', null],
      ['direct', 'received', null],
    ]);
    const bad = await analyze(stack, { channel: 'email', username: 'a@corp.test', request: text, intake: 'pop3' });
    expect(bad.res.status).toBe(400);
    expect(bad.res.body.message).toMatch(/intake/);
    expect((await keyed(stack.url).get('/audit').query({ event_provider: 'pop3' })).status).toBe(400);
  });
});

describe('/stats: answers to requesters and action notices are counted apart', () => {
  it('a Jira request answered by mail: one requester reply, one action notice; replied keeps counting both', async () => {
    const before = await stats();
    const text = 'Заведите задачу на сверку комиссий эквайринга за октябрь';
    const { res, messageId } = await analyze(stack, { channel: 'email', username: 'anna@corp.test', request: text });
    expect(res.body.action).toBe(JIRA);
    await stack.idle();
    // The communicator reports the answer it mailed (its `<channel>:<message id>:reply`).
    const posted = await request(stack.url)
      .post('/audit-events')
      .set(bearer('service'))
      .send({
        events: [
          {
            event_id: `email:${messageId}:reply`,
            channel: 'email',
            direction: 'outbound',
            outcome: 'delivered',
            message_id: messageId,
          },
        ],
      });
    expect(posted.status).toBe(202);
    // The worker's rows: the Jira issue (a delivery, not a reply) and the notice to the requester.
    const actionRows = ((await audit({ direction: 'outbound', limit: '50' })).body.items as Row[]).filter((r) =>
      r.event_id.startsWith('action:'),
    );
    expect(actionRows.map((r) => r.event_id.replace(/^action:\d+/, 'action:N')).sort()).toEqual([
      'action:N:execution',
      'action:N:reply',
    ]);
    const after = await stats();
    expect(after.requester_replies - before.requester_replies).toBe(1);
    expect(after.action_notices - before.action_notices).toBe(1);
    expect(after.replied - before.replied).toBe(2);
    expect(after.delivered - before.delivered).toBe(3);
  });

  async function stats() {
    const res = await keyed(stack.url).get('/stats');
    expect(openapi.responseProblems('getStats', res.status, res.body)).toEqual([]);
    const email = res.body.audit.channels.email ?? {};
    return {
      replied: email.replied ?? 0,
      requester_replies: email.requester_replies ?? 0,
      action_notices: email.action_notices ?? 0,
      delivered: email.delivered ?? 0,
    } as Record<'replied' | 'requester_replies' | 'action_notices' | 'delivered', number>;
  }
});

describe('POST /rate-limits/check', () => {
  const body = (keys: string[]) => ({ keys, limit: 2, window_seconds: 3600 });
  const post = (path: string, keys: string[], keyClass: 'service' | 'client' = 'service') =>
    request(stack.url).post(path).set(bearer(keyClass)).send(body(keys));

  it('answers what consume would, and takes nothing', async () => {
    const key = `email:s36-${Date.now()}@client.test`;
    expect((await post('/rate-limits/check', [key])).body).toEqual({ allowed: true });
    for (let i = 0; i < 2; i++) expect((await post('/rate-limits/consume', [key])).body).toEqual({ allowed: true });
    for (let i = 0; i < 3; i++) {
      const res = await post('/rate-limits/check', [key, 'mailbox:s36']);
      expect(openapi.responseProblems('checkRateLimit', res.status, res.body)).toEqual([]);
      expect(res.body).toEqual({ allowed: false, key, retry_after_seconds: expect.any(Number) });
    }
    // Checks drew nothing: another key still has its whole budget.
    const other = `email:s36-other-${Date.now()}@client.test`;
    for (let i = 0; i < 5; i++) await post('/rate-limits/check', [other]);
    for (let i = 0; i < 2; i++) expect((await post('/rate-limits/consume', [other])).body).toEqual({ allowed: true });
  });

  it('takes only the service key and a valid body', async () => {
    expect((await post('/rate-limits/check', ['email:a@b.test'], 'client')).status).toBe(403);
    const bad = await request(stack.url).post('/rate-limits/check').set(bearer('service')).send({ keys: [] });
    expect(bad.status).toBe(400);
  });
});
