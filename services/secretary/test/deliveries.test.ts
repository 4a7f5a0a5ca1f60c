// POST /deliveries and /deliveries/lookup: the communicator's durable record of handled inbound messages.
import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getFreePort } from '@workemon/testkit';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { DELIVERY_RETENTION_DAYS, createDeliveryRepository } from '../src/delivery-repository.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

let db: { url: string; drop: () => Promise<void> };
let secretary: Secretary;

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_deliveries');
  const nowhere = `http://127.0.0.1:${await getFreePort()}`;
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: nowhere, analystUrl: nowhere });
});

afterAll(async () => {
  await secretary?.close();
  await db?.drop();
});

const checked = (operationId: string, res: request.Response) => {
  expect(openapi.responseProblems(operationId, res.status, res.body)).toEqual([]);
  return res;
};
const record = (body: unknown) =>
  keyed(secretary.url, 'service')
    .post('/deliveries')
    .send(body as object);
const lookup = (keys: string[]) => keyed(secretary.url, 'service').post('/deliveries/lookup').send({ keys });

describe('handled inbound messages', () => {
  it('records keys once (the first outcome stays) and looks them up', async () => {
    const first = checked(
      'recordDeliveries',
      await record({ channel: 'tg', keys: ['tg:1:10', 'tg:1:11'], outcome: 'sent' }),
    );
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ recorded: 2 });
    const again = checked(
      'recordDeliveries',
      await record({ channel: 'tg', keys: ['tg:1:11', 'tg:2:5'], outcome: 'failed', reason: 'bot_blocked' }),
    );
    expect(again.body).toEqual({ recorded: 1 });

    const found = checked('lookupDeliveries', await lookup(['tg:1:10', 'tg:1:11', 'tg:2:5', 'tg:9:9']));
    expect(found.status).toBe(200);
    const byKey = Object.fromEntries(
      (found.body.handled as Array<{ key: string; outcome: string; reason: string | null }>).map((h) => [
        h.key,
        [h.outcome, h.reason],
      ]),
    );
    expect(byKey).toEqual({
      'tg:1:10': ['sent', null],
      'tg:1:11': ['sent', null],
      'tg:2:5': ['failed', 'bot_blocked'],
    });
    expect(await secretary.db.knex('deliveries').pluck('key')).toHaveLength(3);
  });

  it.each([
    [{ channel: 'tg', keys: [], outcome: 'sent' }, 'keys'],
    [{ channel: 'tg', keys: ['a'], outcome: 'answered' }, 'outcome'],
    [{ channel: 'fax', keys: ['a'], outcome: 'sent' }, 'channel'],
    [{ channel: 'tg', keys: ['a'], outcome: 'sent', extra: 1 }, 'extra'],
  ])('400 naming the parameter, nothing stored (%#)', async (body, parameter) => {
    const before = await secretary.db.knex('deliveries').pluck('key');
    const res = checked('recordDeliveries', await record(body));
    expect(res.status).toBe(400);
    expect(res.body.message).toContain(parameter);
    expect(await secretary.db.knex('deliveries').pluck('key')).toEqual(before);
  });
});

describe('the delivery repository', () => {
  /** Moves a key's recorded_at `days` back by the database clock. */
  const backdate = (key: string, days: number) =>
    secretary.db
      .knex('deliveries')
      .where({ key })
      .update({ recorded_at: secretary.db.knex.raw(`now() - make_interval(days => ?)`, [days]) });

  it('removes keys older than the retention on its first record call, keeping younger ones', async () => {
    const deliveries = createDeliveryRepository(secretary.db.knex);
    expect(await deliveries.lookup(['repo:old', 'repo:young'])).toEqual([]);
    expect(
      await keyed(secretary.url, 'service')
        .post('/deliveries')
        .send({
          channel: 'email',
          keys: ['repo:old', 'repo:young'],
          outcome: 'skipped',
          reason: 'automatic',
        }),
    ).toHaveProperty('body', { recorded: 2 });
    await backdate('repo:old', DELIVERY_RETENTION_DAYS + 1);
    await backdate('repo:young', DELIVERY_RETENTION_DAYS - 1);

    // A new repository prunes on its first write.
    expect(await deliveries.record({ channel: 'tg', keys: ['repo:new', 'repo:new'], outcome: 'sent' })).toBe(1);
    const left = await deliveries.lookup(['repo:old', 'repo:young', 'repo:new']);
    expect(left.map((d) => d.key).sort()).toEqual(['repo:new', 'repo:young']);
    expect(left.find((d) => d.key === 'repo:young')).toMatchObject({ outcome: 'skipped', reason: 'automatic' });
    for (const delivery of left) expect(new Date(delivery.recorded_at).toISOString()).toBe(delivery.recorded_at);
    expect(await deliveries.removeExpired()).toBe(0);
  });
});
