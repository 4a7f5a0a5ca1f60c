// Poller leases (PUT/DELETE /poller-leases/{name}): one communicator replica polls each mailbox and bot token.
// On real PostgreSQL and on the embedded PGlite, since both back the secretary.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

const NOWHERE = 'http://127.0.0.1:9';

describe.each(['postgres', 'pglite'] as const)('poller leases on %s', (kind) => {
  let secretary: Secretary;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    if (kind === 'postgres') {
      const db = await createTestDatabase(inject('postgresUrl'), 'secretary_leases');
      secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: NOWHERE, analystUrl: NOWHERE });
      cleanup = db.drop;
    } else {
      const dir = await mkdtemp(join(tmpdir(), 'leases-pglite-'));
      secretary = await startSecretary({ pgliteDir: dir, guesserUrl: NOWHERE, analystUrl: NOWHERE });
      cleanup = () => rm(dir, { recursive: true, force: true });
    }
  });
  afterAll(async () => {
    await secretary?.close();
    await cleanup?.();
  });

  const acquire = (name: string, holder: string, ttl_ms = 10_000) =>
    keyed(secretary.url, 'service')
      .put(`/poller-leases/${encodeURIComponent(name)}`)
      .send({ holder, ttl_ms });
  const check = (res: request.Response, operation: string) =>
    expect(openapi.responseProblems(operation, res.status, res.body)).toEqual([]);

  it('grants a free lease, renews it for its holder with the same epoch, and refuses another holder with 409', async () => {
    const first = await acquire('imap:bot@mail:993/INBOX', 'replica-a');
    expect(first.status).toBe(200);
    check(first, 'acquirePollerLease');
    expect(first.body).toMatchObject({ name: 'imap:bot@mail:993/INBOX', holder: 'replica-a', epoch: 1 });

    const renewed = await acquire('imap:bot@mail:993/INBOX', 'replica-a');
    expect(renewed.status).toBe(200);
    expect(renewed.body.epoch).toBe(1);
    expect(Date.parse(renewed.body.expires_at)).toBeGreaterThanOrEqual(Date.parse(first.body.expires_at));

    const other = await acquire('imap:bot@mail:993/INBOX', 'replica-b');
    expect(other.status).toBe(409);
    check(other, 'acquirePollerLease');
    expect(other.body).toMatchObject({ error: 'Conflict', statusCode: 409 });
    expect(other.body.message).toContain('replica-a');
  });

  it('lets another holder take a lapsed lease, with a new epoch', async () => {
    expect((await acquire('telegram:42', 'replica-a', 1000)).status).toBe(200);
    expect((await acquire('telegram:42', 'replica-b', 1000)).status).toBe(409);
    await new Promise((r) => setTimeout(r, 1100));
    const taken = await acquire('telegram:42', 'replica-b', 1000);
    expect(taken.status).toBe(200);
    expect(taken.body).toMatchObject({ holder: 'replica-b', epoch: 2 });
    // The old holder, back after the lapse, is now the one refused.
    expect((await acquire('telegram:42', 'replica-a', 1000)).status).toBe(409);
  });

  it('hands over at once on release by the holder; a release by anyone else changes nothing', async () => {
    expect((await acquire('telegram:7', 'replica-a')).status).toBe(200);
    const foreign = await keyed(secretary.url, 'service')
      .delete('/poller-leases/telegram%3A7')
      .query({ holder: 'replica-b' });
    expect(foreign.status).toBe(204);
    expect((await acquire('telegram:7', 'replica-b')).status).toBe(409);

    const released = await keyed(secretary.url, 'service')
      .delete('/poller-leases/telegram%3A7')
      .query({ holder: 'replica-a' });
    expect(released.status).toBe(204);
    const taken = await acquire('telegram:7', 'replica-b');
    expect(taken.status).toBe(200);
    expect(taken.body).toMatchObject({ holder: 'replica-b', epoch: 2 });
  });

  it('refuses a bad body in the contract shape and stores nothing', async () => {
    for (const body of [{ holder: 'x' }, { holder: '', ttl_ms: 5000 }, { holder: 'x', ttl_ms: 10 }]) {
      const res = await keyed(secretary.url, 'service').put('/poller-leases/telegram%3A9').send(body);
      expect(res.status).toBe(400);
      check(res, 'acquirePollerLease');
    }
    const rows = await secretary.db.knex('poller_leases').where({ name: 'telegram:9' });
    expect(rows).toEqual([]);
  });

  it('gives one lease to exactly one of many replicas racing for it', async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => acquire('imap:race@mail:993/INBOX', `replica-${i}`)),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status === 409)).toHaveLength(11);
  });
});
