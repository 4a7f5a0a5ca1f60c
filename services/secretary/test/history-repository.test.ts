import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { migrateDatabase, openDatabase, type Database } from '../src/database.js';
import { createHistoryRepository, type ClaimInput } from '../src/history-repository.js';

let testDb: { url: string; drop: () => Promise<void> };
let db: Database;

beforeAll(async () => {
  testDb = await createTestDatabase(inject('postgresUrl'), 'secretary_history');
  db = openDatabase({ url: testDb.url, poolMax: 20 });
  await migrateDatabase(db);
});
afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

const claimInput = (overrides: Partial<ClaimInput> = {}): ClaimInput => ({
  channel: 'tg',
  sender: 'racer',
  employeeId: undefined,
  department: 'unknown',
  position: 'unknown',
  text: 'Авторизации',
  messageId: 'update-1',
  threadKey: undefined,
  clarificationTtlMs: 3600_000,
  leaseMs: 60_000,
  ...overrides,
});

it('of many simultaneous claims of one message_id exactly one owns it, and the losers leave no rows', async () => {
  const history = createHistoryRepository(db.knex);
  const claims = await Promise.all(Array.from({ length: 12 }, () => history.claim(claimInput())));
  expect(claims.filter((c) => c.kind === 'owner')).toHaveLength(1);
  expect(claims.filter((c) => c.kind === 'busy')).toHaveLength(11);
  expect(await db.knex('conversations').where({ sender: 'racer' })).toHaveLength(1);
  expect(await db.knex('messages').where({ message_id: 'update-1' })).toHaveLength(1);
  expect(await db.knex('analyses')).toHaveLength(1);
});

it('an attempt left pending past its lease (its process died) is taken over once; a fresh one is not', async () => {
  const history = createHistoryRepository(db.knex);
  const input = claimInput({ messageId: 'update-2', sender: 'crashed' });
  const first = await history.claim(input);
  expect(first.kind).toBe('owner');
  expect((await history.claim(input)).kind).toBe('busy');

  await db
    .knex('messages')
    .where({ message_id: 'update-2' })
    .update({ claimed_at: new Date(Date.now() - 120_000) });
  const [a, b] = await Promise.all([history.claim(input), history.claim(input)]);
  expect([a.kind, b.kind].sort()).toEqual(['busy', 'owner']);
  const message = await db.knex('messages').where({ message_id: 'update-2' }).first();
  expect(message).toMatchObject({ state: 'pending', attempts: 2 });
  expect(await db.knex('analyses').where({ message_id: message.id })).toHaveLength(2);
});
