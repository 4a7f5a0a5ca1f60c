// POST /webhook-tokens: one reservation per provider token across communicator replicas (docs/webhooks.md), on
// both databases the secretary runs on.
import { createHash } from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort } from '@workemon/testkit';
import { DATABASE_KINDS, createDatabaseOfKind, type TestDatabaseOfKind } from './database-kinds.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const checked = (res: request.Response) => {
  expect(openapi.responseProblems('reserveWebhookToken', res.status, res.body)).toEqual([]);
  return res;
};

describe.each(DATABASE_KINDS)('webhook token reservations (%s)', (kind) => {
  let db: TestDatabaseOfKind;
  let secretary: Secretary;

  beforeAll(async () => {
    db = await createDatabaseOfKind(kind, 'secretary_webhook_tokens');
    const nowhere = `http://127.0.0.1:${await getFreePort()}`;
    secretary = await startSecretary({ ...db.location, guesserUrl: nowhere, analystUrl: nowhere });
  });

  afterAll(async () => {
    await secretary?.close();
    await db?.remove();
  });

  const reserve = (body: object) => keyed(secretary.url, 'service').post('/webhook-tokens').send(body);
  const rows = () =>
    secretary.db
      .knex('webhook_tokens')
      .orderBy('token')
      .select<Array<{ token: string; payload_sha256: string }>>('token', 'payload_sha256');
  /** Moves a reservation's expiry into the past by the database clock. */
  const expire = (token: string) =>
    secretary.db
      .knex('webhook_tokens')
      .where({ provider: 'mailgun', token })
      .update({ expires_at: secretary.db.knex.raw(`now() - interval '1 second'`) });

  it('reserves a token once: 201, then 200 for the same payload (unchanged), 409 for another', async () => {
    const body = { provider: 'mailgun', token: 'tok-a', payload_sha256: sha256('mail one'), ttl_seconds: 600 };
    const first = checked(await reserve(body));
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ provider: 'mailgun', token: 'tok-a', payload_sha256: sha256('mail one') });
    const ttlMs = Date.parse(first.body.expires_at) - Date.parse(first.body.reserved_at);
    expect(ttlMs).toBe(600_000);

    const retry = checked(await reserve({ ...body, ttl_seconds: 3600 }));
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);

    const replay = checked(await reserve({ ...body, payload_sha256: sha256('another mail') }));
    expect(replay.status).toBe(409);
    expect(replay.headers['x-workemon-error-code']).toBe('token_reserved');
    expect(replay.body).toMatchObject({ statusCode: 409 });
    expect(replay.body.message).toContain('another payload');
    expect(await rows()).toEqual([{ token: 'tok-a', payload_sha256: sha256('mail one') }]);
  });

  it('gives a token raced by several payloads to exactly one of them', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        reserve({ provider: 'mailgun', token: 'tok-race', payload_sha256: sha256(`mail ${i}`), ttl_seconds: 600 }),
      ),
    );
    for (const answer of answers) checked(answer);
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409, 409, 409, 409, 409]);
    const winner = answers.find((a) => a.status === 201)!;
    const stored = (await rows()).find((r) => r.token === 'tok-race');
    expect(stored?.payload_sha256).toBe(winner.body.payload_sha256);
  });

  it('purges expired reservations and lets an expired token be reserved again', async () => {
    const base = { provider: 'mailgun', ttl_seconds: 600 };
    expect((await reserve({ ...base, token: 'tok-old', payload_sha256: sha256('old') })).status).toBe(201);
    expect((await reserve({ ...base, token: 'tok-stale', payload_sha256: sha256('stale') })).status).toBe(201);
    await expire('tok-old');
    await expire('tok-stale');

    expect((await reserve({ ...base, token: 'tok-new', payload_sha256: sha256('new') })).status).toBe(201);
    const tokens = (await rows()).map((r) => r.token);
    expect(tokens).toContain('tok-new');
    expect(tokens).not.toContain('tok-old');
    expect(tokens).not.toContain('tok-stale');

    // Its signed timestamp is stale by now, so the communicator refuses it anyway; the table no longer holds it.
    const again = checked(await reserve({ ...base, token: 'tok-old', payload_sha256: sha256('other') }));
    expect(again.status).toBe(201);
    expect(again.body.payload_sha256).toBe(sha256('other'));
  });

  it.each([
    [{ provider: 'sendgrid', token: 't', payload_sha256: sha256('x'), ttl_seconds: 60 }, 'provider'],
    [{ provider: 'mailgun', token: '', payload_sha256: sha256('x'), ttl_seconds: 60 }, 'token'],
    [{ provider: 'mailgun', token: 't', payload_sha256: 'ABC', ttl_seconds: 60 }, 'payload_sha256'],
    [{ provider: 'mailgun', token: 't', payload_sha256: sha256('x'), ttl_seconds: 0 }, 'ttl_seconds'],
    [{ provider: 'mailgun', token: 't', payload_sha256: sha256('x'), ttl_seconds: 60, extra: 1 }, 'extra'],
  ])('400 naming the parameter, nothing stored (%#)', async (body, parameter) => {
    const before = await rows();
    const res = checked(await reserve(body));
    expect(res.status).toBe(400);
    expect(res.body.message).toContain(parameter);
    expect(await rows()).toEqual(before);
  });

  it('takes the service key only', async () => {
    const before = await rows();
    const body = { provider: 'mailgun', token: 'tok-auth', payload_sha256: sha256('x'), ttl_seconds: 60 };
    for (const keyClass of ['client', 'admin'] as const) {
      const res = checked(await keyed(secretary.url, keyClass).post('/webhook-tokens').send(body));
      expect(res.status).toBe(403);
    }
    const anonymous = await request(secretary.url).post('/webhook-tokens').send(body);
    expect(checked(anonymous).status).toBe(401);
    expect(await rows()).toEqual(before);
  });
});
