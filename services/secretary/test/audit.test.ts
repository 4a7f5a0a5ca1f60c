// The audit log's API (POST /audit-events, GET /audit, /stats' `audit`) and its retention, once on a PostgreSQL
// server and once on the embedded PGlite: idempotent event ids, whole-batch validation, filters, cursor pages,
// key classes, counts that match the rows.
import { randomBytes } from 'node:crypto';
import supertest from 'supertest';
import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort } from '@workemon/testkit';
import { createAuditRepository, createAuditRetention, type AuditEventInput } from '../src/audit/audit-repository.js';
import { DATABASE_KINDS, createDatabaseOfKind, type TestDatabaseOfKind } from './database-kinds.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

type Event = Record<string, unknown>;

describe.each(DATABASE_KINDS)('audit log on %s', (kind) => {
  let database: TestDatabaseOfKind;
  let secretary: Secretary;
  beforeAll(async () => {
    database = await createDatabaseOfKind(kind, `secretary_audit_${kind}`);
    const nowhere = `http://127.0.0.1:${await getFreePort()}`;
    secretary = await startSecretary({ ...database.location, guesserUrl: nowhere, analystUrl: nowhere });
  });
  afterAll(async () => {
    await secretary?.close();
    await database?.remove();
  });

  const checked = (operationId: string, res: request.Response) => {
    expect(openapi.responseProblems(operationId, res.status, res.body)).toEqual([]);
    return res;
  };
  const post = async (events: Event[], keyClass: 'service' | 'admin' | 'client' = 'service') =>
    checked('recordAuditEvents', await keyed(secretary.url, keyClass).post('/audit-events').send({ events }));
  const list = async (query: Record<string, string | number | boolean>) =>
    checked('listAuditEvents', await keyed(secretary.url).get('/audit').query(query));
  const tag = () => randomBytes(4).toString('hex');
  const event = (overrides: Event = {}): Event => ({
    event_id: `email:<${tag()}@mail.example>:received`,
    channel: 'email',
    direction: 'inbound',
    outcome: 'received',
    ...overrides,
  });
  const rowsWithId = async (ids: string[]) =>
    (await secretary.db.knex('audit_events').whereIn('event_id', ids).count<{ n: number }[]>('* as n'))[0]!.n;

  it('stores a batch once: a repeated event_id is counted as a duplicate, not stored again', async () => {
    const message = `<${tag()}@mail.example>`;
    const events = [
      event({ event_id: `email:${message}:received`, message_id: message, sender: 'Anna@Example.test' }),
      event({
        event_id: `email:${message}:reply`,
        direction: 'outbound',
        outcome: 'delivered',
        message_id: message,
        recipient: 'anna@example.test',
        subject: 'Re: VPN',
      }),
    ];
    const first = await post(events);
    expect(first.status).toBe(202);
    expect(first.body).toEqual({ accepted: 2, duplicates: 0 });
    const again = await post([...events, events[0]!]);
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ accepted: 0, duplicates: 3 });
    const { body } = await list({ message_id: message });
    expect(body.items).toHaveLength(2);
    expect(body.items.map((i: Event) => i['outcome']).sort()).toEqual(['delivered', 'received']);
    expect(body.items[0]).toMatchObject({ channel: 'email', dry_run: false, message_id: message });
  });

  it.each([
    ['an unknown channel', { channel: 'pigeon' }],
    ['an unknown outcome', { outcome: 'lost' }],
    ['a subject over 300 characters', { subject: 'x'.repeat(301) }],
    ['a detail over 1000 characters', { detail: 'x'.repeat(1001) }],
    ['an empty event_id', { event_id: '' }],
    ['a field the interface does not have', { priority: 'high' }],
    ['a time that is not RFC 3339', { occurred_at: 'yesterday' }],
    ['a conversation id that is not an integer', { conversation_id: 'abc' }],
  ])('refuses a batch with %s (400 in the contract shape) and stores none of it', async (_what, bad) => {
    const good = event();
    const res = await post([good, event(bad)]);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'Bad Request', statusCode: 400 });
    expect(typeof res.body.message).toBe('string');
    expect(Number(await rowsWithId([String(good['event_id'])]))).toBe(0);
  });

  it('refuses an empty batch and one of more than 100 events', async () => {
    expect((await post([])).status).toBe(400);
    const many = Array.from({ length: 101 }, () => event());
    expect((await post(many)).status).toBe(400);
    expect(Number(await rowsWithId(many.map((e) => String(e['event_id']))))).toBe(0);
  });

  it('POST /audit-events takes only service keys, GET /audit only admin keys', async () => {
    const e = event();
    expect(
      (
        await keyed(secretary.url, 'client')
          .post('/audit-events')
          .send({ events: [e] })
      ).status,
    ).toBe(403);
    expect(
      (
        await keyed(secretary.url, 'admin')
          .post('/audit-events')
          .send({ events: [e] })
      ).status,
    ).toBe(403);
    expect(Number(await rowsWithId([String(e['event_id'])]))).toBe(0);
    expect((await keyed(secretary.url, 'service').get('/audit')).status).toBe(403);
    expect((await keyed(secretary.url, 'client').get('/audit')).status).toBe(403);
    expect((await keyed(secretary.url, 'admin').get('/audit')).status).toBe(200);
    const anonymous = await supertest(secretary.url)
      .post('/audit-events')
      .send({ events: [e] });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ error: 'Unauthorized', statusCode: 401 });
    expect((await supertest(secretary.url).get('/audit').set('Authorization', 'Bearer not-a-key')).status).toBe(401);
    expect(Number(await rowsWithId([String(e['event_id'])]))).toBe(0);
  });

  it('filters by channel, sender (any case), reason, outcome, direction, dry_run and time, and pages by cursor', async () => {
    const sender = `pager-${tag()}@example.test`;
    const base = Date.parse('2021-03-01T10:00:00.000Z');
    const events = Array.from({ length: 7 }, (_, i) =>
      event({
        event_id: `telegram:tg:${tag()}:skipped`,
        channel: i % 2 ? 'telegram' : 'mailgun',
        outcome: 'skipped',
        reason: i < 4 ? 'rate-limited' : 'automatic',
        sender,
        dry_run: i === 6,
        // Two share a time: the id orders them.
        occurred_at: new Date(base + Math.min(i, 5) * 60_000).toISOString(),
      }),
    );
    expect((await post(events)).body).toEqual({ accepted: 7, duplicates: 0 });

    const all = await list({ sender: sender.toUpperCase() });
    expect(all.body.items).toHaveLength(7);
    const times = all.body.items.map((i: Event) => String(i['occurred_at']));
    expect([...times].sort().reverse()).toEqual(times);

    expect((await list({ sender, channel: 'telegram' })).body.items).toHaveLength(3);
    expect((await list({ sender, reason: 'automatic' })).body.items).toHaveLength(3);
    expect((await list({ sender, dry_run: true })).body.items).toHaveLength(1);
    expect((await list({ sender, dry_run: false, outcome: 'skipped', direction: 'inbound' })).body.items).toHaveLength(
      6,
    );
    expect((await list({ sender, direction: 'outbound' })).body.items).toHaveLength(0);
    const window = await list({
      sender,
      since: new Date(base + 60_000).toISOString(),
      until: new Date(base + 3 * 60_000).toISOString(),
    });
    expect(window.body.items.map((i: Event) => i['occurred_at'])).toEqual([
      new Date(base + 2 * 60_000).toISOString(),
      new Date(base + 60_000).toISOString(),
    ]);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: request.Response = await list({ sender, limit: 3, ...(cursor ? { cursor } : {}) });
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((i: Event) => String(i['event_id'])));
      cursor = page.body.next_cursor as string | null;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(all.body.items.map((i: Event) => i['event_id']));
  });

  it('answers 400 for an unknown query key, a bad cursor, a bad limit and an empty window', async () => {
    for (const query of [
      { chanel: 'email' },
      { cursor: 'not-a-cursor' },
      { cursor: Buffer.from('["2021-01-01", 1]').toString('base64url') },
      { limit: 501 },
      { limit: 0 },
      { since: '2021-01-02T00:00:00Z', until: '2021-01-01T00:00:00Z' },
      { dry_run: 'maybe' },
    ]) {
      const res = await keyed(secretary.url).get('/audit').query(query);
      expect(res.status, JSON.stringify(query)).toBe(400);
      expect(res.body.statusCode).toBe(400);
    }
  });

  it('/stats keeps its fields and adds per-channel counts that match the rows, dry runs excluded', async () => {
    const day1 = '2019-06-10';
    const day2 = '2019-06-11';
    const at = (day: string, hh: string) => `${day}T${hh}:00:00.000Z`;
    const m = () => `<${tag()}@mail.example>`;
    const [a, b, c, d] = [m(), m(), m(), m()];
    const events: Event[] = [
      // a: received, answered, reply delivered.
      event({ event_id: `sendgrid:${a}:received`, channel: 'sendgrid', message_id: a, occurred_at: at(day1, '09') }),
      event({
        event_id: `sendgrid:${a}:reply`,
        channel: 'sendgrid',
        message_id: a,
        direction: 'outbound',
        outcome: 'delivered',
        occurred_at: at(day1, '09'),
      }),
      // b: received then skipped as automatic (one inbound message, one skip).
      event({ event_id: `sendgrid:${b}:received`, channel: 'sendgrid', message_id: b, occurred_at: at(day1, '10') }),
      event({
        event_id: `sendgrid:${b}:skipped`,
        channel: 'sendgrid',
        message_id: b,
        outcome: 'skipped',
        reason: 'automatic',
        occurred_at: at(day1, '10'),
      }),
      // c: rate-limited on day 2, reply of another message failed.
      event({
        event_id: `sendgrid:${c}:skipped`,
        channel: 'sendgrid',
        message_id: c,
        outcome: 'skipped',
        reason: 'rate-limited',
        occurred_at: at(day2, '08'),
      }),
      event({
        event_id: `sendgrid:${d}:reply`,
        channel: 'sendgrid',
        message_id: d,
        direction: 'outbound',
        outcome: 'failed',
        reason: 'smtp-rejected',
        occurred_at: at(day2, '08'),
      }),
      // A dry run counts nowhere.
      event({ event_id: `sendgrid:${m()}:received`, channel: 'sendgrid', dry_run: true, occurred_at: at(day2, '09') }),
      // Outside the window.
      event({ event_id: `sendgrid:${m()}:received`, channel: 'sendgrid', occurred_at: '2019-06-12T00:00:00.000Z' }),
    ];
    expect((await post(events)).status).toBe(202);
    const res = checked(
      'getStats',
      await keyed(secretary.url)
        .get('/stats')
        .query({ from: `${day1}T00:00:00Z`, to: '2019-06-12T00:00:00Z', period: 'day' }),
    );
    expect(res.status).toBe(200);
    expect(res.body).toHaveProperty('analyses');
    expect(res.body).toHaveProperty('by_channel');
    expect(res.body).toHaveProperty('latency_ms');
    const counts = (
      inbound: number,
      skipped: Record<string, number>,
      replied: number,
      failed: Record<string, number>,
    ) => ({
      inbound,
      skipped: Object.values(skipped).reduce((x, y) => x + y, 0),
      skipped_by_reason: skipped,
      decided: 0,
      replied,
      // The communicator's answers to requesters; no action notice among these rows (s36).
      requester_replies: replied,
      action_notices: 0,
      delivered: replied,
      failed: Object.values(failed).reduce((x, y) => x + y, 0),
      failed_by_reason: failed,
    });
    expect(res.body.audit).toEqual({
      from: `${day1}T00:00:00.000Z`,
      to: '2019-06-12T00:00:00.000Z',
      channels: { sendgrid: counts(3, { automatic: 1, 'rate-limited': 1 }, 1, { 'smtp-rejected': 1 }) },
      periods: [
        {
          start: `${day2}T00:00:00.000Z`,
          channels: { sendgrid: counts(1, { 'rate-limited': 1 }, 0, { 'smtp-rejected': 1 }) },
        },
        { start: `${day1}T00:00:00.000Z`, channels: { sendgrid: counts(2, { automatic: 1 }, 1, {}) } },
      ],
    });
    // The same counts from the rows themselves.
    const rows = await secretary.db
      .knex('audit_events')
      .where('occurred_at', '>=', `${day1}T00:00:00Z`)
      .where('occurred_at', '<', '2019-06-12T00:00:00Z')
      .where({ dry_run: false, channel: 'sendgrid' });
    expect(rows.filter((r) => r.outcome === 'skipped')).toHaveLength(res.body.audit.channels.sendgrid.skipped);
    expect(new Set(rows.filter((r) => r.direction === 'inbound').map((r) => r.message_id)).size).toBe(
      res.body.audit.channels.sendgrid.inbound,
    );

    expect((await keyed(secretary.url).get('/stats').query({ period: 'year' })).status).toBe(400);
    const plain = checked('getStats', await keyed(secretary.url).get('/stats'));
    expect(plain.body.audit).toMatchObject({ from: null, to: null });
    expect(plain.body.audit.periods).toBeUndefined();
  });

  it('retention deletes rows recorded longer ago than AUDIT_RETENTION_DAYS, on the first write and every 100th', async () => {
    const repository = createAuditRepository(secretary.db.knex);
    const old = event();
    const fresh = event();
    await repository.insert([old, fresh] as AuditEventInput[]);
    await secretary.db
      .knex('audit_events')
      .where({ event_id: old['event_id'] })
      .update({ recorded_at: secretary.db.knex.raw(`now() - interval '31 days'`) });
    const retention = createAuditRetention({ repository, retentionDays: 30, everyWrites: 100 });
    await retention.noteWrite();
    expect(Number(await rowsWithId([String(old['event_id'])]))).toBe(0);
    expect(Number(await rowsWithId([String(fresh['event_id'])]))).toBe(1);
    // Not due again until the 101st write.
    const later = event();
    await repository.insert([later] as AuditEventInput[]);
    await secretary.db
      .knex('audit_events')
      .where({ event_id: later['event_id'] })
      .update({ recorded_at: secretary.db.knex.raw(`now() - interval '31 days'`) });
    for (let i = 0; i < 99; i += 1) await retention.noteWrite();
    expect(Number(await rowsWithId([String(later['event_id'])]))).toBe(1);
    await retention.noteWrite();
    expect(Number(await rowsWithId([String(later['event_id'])]))).toBe(0);
  });
});
