// POST /telegram-parked-updates, /list and /remove: the communicator's parked Telegram updates (docs/communicator.md
// "Telegram: exactly once"), on the real PostgreSQL.
import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { getFreePort } from '@workemon/testkit';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { DELIVERY_RETENTION_DAYS } from '../src/delivery-repository.js';
import {
  PARKED_UPDATES_MAX_PER_RESOURCE,
  PARKED_UPDATE_MAX_AGE_DAYS,
  PARKED_UPDATE_MAX_BYTES,
} from '../src/parked-updates/parked-update-repository.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

let db: { url: string; drop: () => Promise<void> };
let secretary: Secretary;

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_parked_updates');
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
const service = () => keyed(secretary.url, 'service');
const park = async (body: unknown) =>
  checked(
    'parkTelegramUpdates',
    await service()
      .post('/telegram-parked-updates')
      .send(body as object),
  );
const list = async (body: unknown) =>
  checked(
    'listParkedTelegramUpdates',
    await service()
      .post('/telegram-parked-updates/list')
      .send(body as object),
  );
const remove = async (body: unknown) =>
  checked(
    'removeParkedTelegramUpdates',
    await service()
      .post('/telegram-parked-updates/remove')
      .send(body as object),
  );
/** A Bot API Update with a text message from `chat` (the shape getUpdates returns). */
const updateOf = (id: number, chat: number, text: string) => ({
  update_id: id,
  message: { message_id: id, date: 1_700_000_000, chat: { id: chat, type: 'private' }, from: { id: chat }, text },
});
const rows = (resource: string) =>
  secretary.db.knex('telegram_parked_updates').where({ resource }).orderBy('update_id').pluck('update_id');

describe('parked Telegram updates', () => {
  it('parks updates once, lists them lowest first a page at a time, and removes them', async () => {
    const resource = 'telegram:1001';
    const first = await park({
      resource,
      updates: [
        { update_id: 12, update: updateOf(12, 5, 'двенадцать') },
        { update_id: 10, update: updateOf(10, 5, 'десять') },
      ],
    });
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ parked: [12, 10], conflicts: [] });
    // The same again (a retried call): still parked, nothing doubled; another update_id content is a conflict.
    const again = await park({
      resource,
      updates: [
        { update_id: 10, update: updateOf(10, 5, 'десять') },
        { update_id: 12, update: updateOf(12, 7, 'другое') },
        { update_id: 11, update: updateOf(11, 6, 'одиннадцать') },
      ],
    });
    expect(again.body).toEqual({ parked: [10, 11], conflicts: [12] });
    expect((await rows(resource)).map(Number)).toEqual([10, 11, 12]);
    // Another bot's updates are apart.
    await park({ resource: 'telegram:2002', updates: [{ update_id: 10, update: updateOf(10, 9, 'чужой') }] });

    const page = await list({ resource, limit: 2 });
    expect(page.status).toBe(200);
    expect(page.body.updates.map((u: { update_id: number }) => u.update_id)).toEqual([10, 11]);
    expect(page.body.updates[0].update).toEqual(updateOf(10, 5, 'десять'));
    expect(new Date(page.body.updates[0].parked_at).toISOString()).toBe(page.body.updates[0].parked_at);
    const rest = await list({ resource, after_update_id: 11 });
    expect(rest.body.updates.map((u: { update_id: number }) => u.update_id)).toEqual([12]);
    expect(rest.body.updates[0].update).toEqual(updateOf(12, 5, 'двенадцать'));

    const removed = await remove({ resource, update_ids: [10, 12, 99] });
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ removed: 2 });
    expect((await list({ resource })).body.updates.map((u: { update_id: number }) => u.update_id)).toEqual([11]);
    expect((await list({ resource: 'telegram:2002' })).body.updates).toHaveLength(1);
  });

  it('refuses an update over the size bound (413) and a full store (409), storing nothing', async () => {
    const resource = 'telegram:3003';
    const big = updateOf(1, 5, 'я'.repeat(PARKED_UPDATE_MAX_BYTES / 2));
    const tooLarge = await park({
      resource,
      updates: [
        { update_id: 1, update: big },
        { update_id: 2, update: updateOf(2, 5, 'ok') },
      ],
    });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.message).toContain(`over ${PARKED_UPDATE_MAX_BYTES} bytes`);
    expect(await rows(resource)).toEqual([]);

    const filler = Array.from({ length: PARKED_UPDATES_MAX_PER_RESOURCE - 1 }, (_, i) => ({
      resource,
      update_id: 1000 + i,
      body: '{}',
    }));
    for (let at = 0; at < filler.length; at += 1000)
      await secretary.db.knex('telegram_parked_updates').insert(filler.slice(at, at + 1000));
    const full = await park({
      resource,
      updates: [
        { update_id: 3, update: updateOf(3, 5, 'a') },
        { update_id: 4, update: updateOf(4, 5, 'b') },
      ],
    });
    expect(full.status).toBe(409);
    expect(full.body.message).toContain(`At most ${PARKED_UPDATES_MAX_PER_RESOURCE} updates`);
    // One more fits exactly; an update parked before still answers as parked.
    expect((await park({ resource, updates: [{ update_id: 3, update: updateOf(3, 5, 'a') }] })).body).toEqual({
      parked: [3],
      conflicts: [],
    });
    expect((await park({ resource, updates: [{ update_id: 3, update: updateOf(3, 5, 'a') }] })).status).toBe(200);
    expect(await rows(resource)).toHaveLength(PARKED_UPDATES_MAX_PER_RESOURCE);
  });

  it.each([
    ['/telegram-parked-updates', { resource: 'telegram:1', updates: [] }, 'updates'],
    ['/telegram-parked-updates', { resource: 'telegram:1', updates: [{ update_id: -1, update: {} }] }, 'update_id'],
    ['/telegram-parked-updates', { resource: '', updates: [{ update_id: 1, update: {} }] }, 'resource'],
    ['/telegram-parked-updates/list', { resource: 'telegram:1', limit: 101 }, 'limit'],
    ['/telegram-parked-updates/remove', { resource: 'telegram:1', update_ids: [] }, 'update_ids'],
  ])('%s: 400 naming the parameter, nothing stored (%#)', async (path, body, parameter) => {
    const before = await secretary.db.knex('telegram_parked_updates').count<[{ count: string }]>('*');
    const res = await service().post(path).send(body);
    expect(res.status).toBe(400);
    expect(res.body.message).toContain(parameter);
    expect(await secretary.db.knex('telegram_parked_updates').count('*')).toEqual(before);
  });

  it('takes only the service key', async () => {
    const body = { resource: 'telegram:1', updates: [{ update_id: 1, update: {} }] };
    expect((await keyed(secretary.url, 'admin').post('/telegram-parked-updates').send(body)).status).toBe(403);
    expect((await keyed(secretary.url, 'client').post('/telegram-parked-updates/list').send(body)).status).toBe(403);
  });

  // Review s36 finding 1: a row nobody removed must not outlive the handled record that stops a second answer.
  it('expires parked rows before the handled records that guard them: not listed, pruned, not counted', async () => {
    expect(PARKED_UPDATE_MAX_AGE_DAYS).toBeLessThan(DELIVERY_RETENTION_DAYS);
    const resource = 'telegram:4004';
    await park({
      resource,
      updates: [
        { update_id: 1, update: updateOf(1, 5, 'старое') },
        { update_id: 2, update: updateOf(2, 5, 'свежее') },
      ],
    });
    const olderThanBound = new Date(Date.now() - (PARKED_UPDATE_MAX_AGE_DAYS * 24 + 1) * 3600_000);
    await secretary.db
      .knex('telegram_parked_updates')
      .where({ resource, update_id: 1 })
      .update({ parked_at: olderThanBound });
    // Not listed, even before the prune (a later page), and pruned by the first page.
    expect(
      (await list({ resource, after_update_id: 0 })).body.updates.map((u: { update_id: number }) => u.update_id),
    ).toEqual([2]);
    expect((await list({ resource })).body.updates.map((u: { update_id: number }) => u.update_id)).toEqual([2]);
    expect((await rows(resource)).map(Number)).toEqual([2]);
    // A park call prunes too (under its lock, before the bound is counted).
    await park({ resource, updates: [{ update_id: 3, update: updateOf(3, 5, 'ещё') }] });
    await secretary.db
      .knex('telegram_parked_updates')
      .where({ resource, update_id: 3 })
      .update({ parked_at: olderThanBound });
    await park({ resource, updates: [{ update_id: 4, update: updateOf(4, 5, 'новое') }] });
    expect((await rows(resource)).map(Number)).toEqual([2, 4]);
  });

  // Review s36 finding 2: a row stored under one id with an Update of another could never be removed.
  it('refuses (400) an Update whose own update_id differs from the id it is parked under, storing nothing', async () => {
    const resource = 'telegram:5005';
    const res = await park({
      resource,
      updates: [
        { update_id: 5, update: updateOf(5, 5, 'ok') },
        { update_id: 6, update: updateOf(77, 5, 'чужой id') },
      ],
    });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain('update_id');
    expect(await rows(resource)).toEqual([]);
  });
});
