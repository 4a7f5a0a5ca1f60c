// Durable rate limits: the GCRA store on both databases the secretary runs on, POST /rate-limits/consume over
// HTTP (atomic, retry_after, shared by two secretaries on one database, kept across a restart), and the
// per-username / per-key limits of /analyze-request (429 + Retry-After, nothing stored for a refused request).
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { migrateDatabase, type Database } from '../src/database.js';
import { createHistoryWriteRepository } from '../src/history-write-repository.js';
import {
  MAX_DRAW_BATCH,
  createBudgetDrawer,
  createRateLimitStore,
  gcra,
  type RateLimitEntry,
} from '../src/rate-limits/rate-limit-store.js';
import { DATABASE_KINDS, createDatabaseOfKind, type TestDatabaseOfKind } from './database-kinds.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';
import { createAuthenticator } from '@workemon/service-kit';
import { TEST_KEYS } from '@workemon/testkit/api-keys';

const HOUR = 3600;

function expectContract(operationId: string, res: { status: number; body: unknown }) {
  expect(openapi.responseProblems(operationId, res.status, res.body)).toEqual([]);
}

describe('gcra (pure)', () => {
  it('lets `limit` units through at once, then one per window / limit, and says when the next one is free', () => {
    const entry = { limit: 3, windowSeconds: 60 };
    let tat = 0;
    const now = 1_000_000;
    for (let i = 0; i < 3; i += 1) {
      const d = gcra(entry, tat, now);
      expect(d.allowed).toBe(true);
      if (d.allowed) tat = d.tatMs;
    }
    const refused = gcra(entry, tat, now);
    expect(refused).toEqual({ allowed: false, retryAfterMs: 20_000 });
    // 20 s later exactly one unit is back.
    expect(gcra(entry, tat, now + 20_000).allowed).toBe(true);
    expect(gcra(entry, tat, now + 19_999).allowed).toBe(false);
  });
});

describe.each(DATABASE_KINDS)('rate-limit store on %s', (kind) => {
  let handle: TestDatabaseOfKind;
  let db: Database;

  beforeAll(async () => {
    handle = await createDatabaseOfKind(kind, 'secretary_rate_limits');
    db = handle.open();
    await migrateDatabase(db);
  });
  afterAll(async () => {
    await db?.close();
    await handle?.remove();
  });

  it('takes one unit per call up to the limit, then refuses with the key and whole seconds to wait', async () => {
    const store = createRateLimitStore(db.knex);
    const entry = { key: 'email:alice@corp.example', limit: 3, windowSeconds: HOUR };
    for (let i = 0; i < 3; i += 1) expect(await store.consume([entry])).toEqual({ allowed: true });
    const refused = await store.consume([entry]);
    expect(refused).toMatchObject({ allowed: false, key: entry.key });
    // One unit comes back every hour / 3 = 1200 s.
    expect(refused.allowed === false && refused.retryAfterSeconds).toBeGreaterThan(1190);
    expect(refused.allowed === false && refused.retryAfterSeconds).toBeLessThanOrEqual(1200);
  });

  it('is all or nothing across keys: a refusal takes nothing from the keys that had budget', async () => {
    const store = createRateLimitStore(db.knex);
    const spent = { key: 'reply-to:list@corp.example', limit: 1, windowSeconds: HOUR };
    const fresh = { key: 'email:bob@corp.example', limit: 2, windowSeconds: HOUR };
    expect(await store.consume([spent])).toEqual({ allowed: true });
    for (let i = 0; i < 3; i += 1) {
      expect(await store.consume([fresh, spent])).toMatchObject({ allowed: false, key: spent.key });
    }
    // bob's two units are all still there.
    expect(await store.consume([fresh])).toEqual({ allowed: true });
    expect(await store.consume([fresh])).toEqual({ allowed: true });
    expect(await store.consume([fresh])).toMatchObject({ allowed: false, key: fresh.key });
  });

  it('names the first exhausted key in the order given', async () => {
    const store = createRateLimitStore(db.knex);
    const a = { key: 'telegram:1001', limit: 1, windowSeconds: 60 };
    const b = { key: 'telegram:1002', limit: 1, windowSeconds: 60 };
    await store.consume([a]);
    await store.consume([b]);
    expect(await store.consume([b, a])).toMatchObject({ allowed: false, key: b.key });
    expect(await store.consume([a, b])).toMatchObject({ allowed: false, key: a.key });
  });

  it('draws twice from a key named twice in one call, all or nothing', async () => {
    const store = createRateLimitStore(db.knex);
    const entry = { key: 'email:twice@corp.example', limit: 3, windowSeconds: HOUR };
    expect(await store.consume([entry, entry])).toEqual({ allowed: true });
    // One unit is left: two more are refused whole, and the one is still there.
    expect(await store.consume([entry, entry])).toMatchObject({ allowed: false, key: entry.key });
    expect(await store.consume([entry])).toEqual({ allowed: true });
    expect(await store.consume([entry])).toMatchObject({ allowed: false, key: entry.key });
  });

  it('check() answers like consume() without taking anything', async () => {
    const store = createRateLimitStore(db.knex);
    const entry = { key: 'analyze:username:peek', limit: 1, windowSeconds: 60 };
    for (let i = 0; i < 3; i += 1) expect(await store.check([entry])).toEqual({ allowed: true });
    expect(await store.consume([entry])).toEqual({ allowed: true });
    expect(await store.check([entry])).toMatchObject({ allowed: false, key: entry.key });
  });

  it('holds under concurrent calls: exactly `limit` of many simultaneous consumes are allowed', async () => {
    const store = createRateLimitStore(db.knex);
    const entries = [
      { key: 'email:burst@corp.example', limit: 7, windowSeconds: HOUR },
      { key: 'reply-to:burst-list@corp.example', limit: 50, windowSeconds: HOUR },
    ];
    const verdicts = await Promise.all(Array.from({ length: 20 }, () => store.consume(entries)));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(7);
    // The refused 13 took nothing from the second key: 50 - 7 units are left there.
    const left = await Promise.all(Array.from({ length: 44 }, () => store.consume([entries[1]!])));
    expect(left.filter((v) => v.allowed)).toHaveLength(43);
  });

  it('draws beside the request lookup: exactly `limit` of many simultaneous lookups, all or nothing', async () => {
    const history = createHistoryWriteRepository(db.knex);
    const lookupDrawing = (budget: RateLimitEntry[]) =>
      history.lookupRequest({
        channel: 'direct',
        sender: 'burst',
        messageId: undefined,
        threadKey: undefined,
        clarificationTtlMs: 60_000,
        leaseMs: 60_000,
        budget,
      });
    // Keys never drawn from before: the first-ever draws race on creating their rows.
    const entries = [
      { key: 'analyze:username:burst', limit: 7, windowSeconds: HOUR },
      { key: 'analyze:key:burst', limit: 50, windowSeconds: HOUR },
    ];
    const found = await Promise.all(Array.from({ length: 20 }, () => lookupDrawing(entries)));
    expect(found.filter((f) => f.rateLimit?.allowed)).toHaveLength(7);
    const refused = found.find((f) => f.rateLimit?.allowed === false)?.rateLimit;
    expect(refused).toMatchObject({ allowed: false, key: entries[0]!.key });
    expect(refused?.allowed === false && refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    // The same budget as consume() sees it: the username's is spent, the key's has 50 - 7 units left.
    const store = createRateLimitStore(db.knex);
    expect(await store.check([entries[0]!])).toMatchObject({ allowed: false, key: entries[0]!.key });
    const left = await Promise.all(Array.from({ length: 44 }, () => lookupDrawing([entries[1]!])));
    expect(left.filter((f) => f.rateLimit?.allowed)).toHaveLength(43);
    // No budget asked for: nothing drawn, no verdict.
    expect((await lookupDrawing([])).rateLimit).toBeUndefined();
  });

  it('answers draws that arrive together in the order they came, as single draws would be answered', async () => {
    const drawer = createBudgetDrawer(db.knex);
    // 10 per hour: one unit every 360 s.
    const entry = { key: 'analyze:username:together', limit: 10, windowSeconds: HOUR };
    const verdicts = await Promise.all(Array.from({ length: 30 }, () => drawer.draw([entry])));
    expect(verdicts.slice(0, 10)).toEqual(Array.from({ length: 10 }, () => ({ allowed: true })));
    for (const refused of verdicts.slice(10)) {
      expect(refused).toMatchObject({ allowed: false, key: entry.key });
      expect(refused.allowed === false && refused.retryAfterSeconds).toBeGreaterThan(350);
      expect(refused.allowed === false && refused.retryAfterSeconds).toBeLessThanOrEqual(360);
    }
    // The same budget as consume() keeps: spent.
    const store = createRateLimitStore(db.knex);
    expect(await store.consume([entry])).toMatchObject({ allowed: false, key: entry.key });
  });

  it('takes a batch from every key only as far as the scarcest allows, naming it, and nothing for the rest', async () => {
    const drawer = createBudgetDrawer(db.knex);
    const store = createRateLimitStore(db.knex);
    const wide = { key: 'analyze:key:batch', limit: 5, windowSeconds: HOUR };
    const narrow = { key: 'analyze:username:batch', limit: 3, windowSeconds: HOUR };
    expect(await store.consume([narrow])).toEqual({ allowed: true });
    const verdicts = await Promise.all(Array.from({ length: 6 }, () => drawer.draw([wide, narrow])));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(2);
    expect(verdicts.filter((v) => !v.allowed)).toEqual(
      Array.from({ length: 4 }, () => expect.objectContaining({ allowed: false, key: narrow.key })),
    );
    // The refused draws took nothing from the wide key: 5 - 2 units are left there.
    const left = await Promise.all(Array.from({ length: 4 }, () => store.consume([wide])));
    expect(left.filter((v) => v.allowed)).toHaveLength(3);
  });

  it('holds across processes: drawers of several secretaries racing on keys never drawn from share one budget', async () => {
    // Each drawer coalesces only its own process's draws; these race each other on creating and locking the rows.
    const drawers = [createBudgetDrawer(db.knex), createBudgetDrawer(db.knex), createBudgetDrawer(db.knex)];
    const entries = [
      { key: 'analyze:key:replicas', limit: 40, windowSeconds: HOUR },
      { key: 'analyze:username:replicas', limit: 9, windowSeconds: HOUR },
    ];
    const verdicts = await Promise.all(
      Array.from({ length: 30 }, (_, i) => drawers[i % drawers.length]!.draw(i % 2 ? entries : [...entries].reverse())),
    );
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(9);
    const store = createRateLimitStore(db.knex);
    const left = await Promise.all(Array.from({ length: 32 }, () => store.consume([entries[0]!])));
    expect(left.filter((v) => v.allowed)).toHaveLength(31);
  });

  it('draws again from a key whose row the clean-up deleted, as from a new one', async () => {
    const drawer = createBudgetDrawer(db.knex);
    const store = createRateLimitStore(db.knex);
    const entry = { key: 'analyze:key:cleaned', limit: 2, windowSeconds: 1 };
    expect(await drawer.draw([entry])).toEqual({ allowed: true });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await store.cleanup();
    expect(await db.knex('rate_limit_buckets').where({ key: entry.key }).first()).toBeUndefined();
    const verdicts = await Promise.all(Array.from({ length: 3 }, () => drawer.draw([entry])));
    expect(verdicts.map((v) => v.allowed)).toEqual([true, true, false]);
  });

  it('leaves nothing behind for a draw refused whole: no rows for keys it saw first', async () => {
    const drawer = createBudgetDrawer(db.knex);
    const spent = { key: 'analyze:key:spent-first', limit: 1, windowSeconds: HOUR };
    expect(await drawer.draw([spent])).toEqual({ allowed: true });
    const fresh = Array.from({ length: 5 }, (_, i) => ({
      key: `analyze:username:never-${i}`,
      limit: 10,
      windowSeconds: HOUR,
    }));
    const verdicts = await Promise.all(fresh.map((f) => drawer.draw([spent, f])));
    expect(verdicts.every((v) => !v.allowed && v.key === spent.key)).toBe(true);
    const keys = await db
      .knex('rate_limit_buckets')
      .whereIn('key', [spent.key, ...fresh.map((f) => f.key)])
      .pluck('key');
    expect(keys).toEqual([spent.key]);
  });

  it('names the key single draws would name when one key is further over its window than another', async () => {
    const drawer = createBudgetDrawer(db.knex);
    const store = createRateLimitStore(db.knex);
    const a = { key: 'analyze:key:over-a', limit: 2, windowSeconds: 60 };
    const b = { key: 'analyze:key:over-b', limit: 2, windowSeconds: 60 };
    // a: spent, a unit back in 30 s; b: 140 s further ahead than its window (another caller with a longer window).
    const now = 'extract(epoch from clock_timestamp()) * 1000';
    await db.knex('rate_limit_buckets').insert([
      { key: a.key, tat_ms: db.knex.raw(`${now} + 59000`) },
      { key: b.key, tat_ms: db.knex.raw(`${now} + 200000`) },
    ]);
    const single = await store.check([a, b]);
    expect(single).toMatchObject({ allowed: false, key: a.key });
    const drawn = await drawer.draw([a, b]);
    expect(drawn).toEqual(single);
  });

  it('names the first exhausted key in the order given when several are', async () => {
    const drawer = createBudgetDrawer(db.knex);
    const a = { key: 'analyze:key:order-a', limit: 2, windowSeconds: 60 };
    const b = { key: 'analyze:key:order-b', limit: 2, windowSeconds: 60 };
    const verdicts = await Promise.all(Array.from({ length: 3 }, () => drawer.draw([b, a])));
    expect(verdicts[2]).toMatchObject({ allowed: false, key: b.key });
    expect(await drawer.draw([a, b])).toMatchObject({ allowed: false, key: a.key });
  });

  it(`takes more draws than one call holds (${MAX_DRAW_BATCH}) in several calls, losing none`, async () => {
    const drawer = createBudgetDrawer(db.knex);
    // A unit a day back every 86.4 s: none comes back while the test runs.
    const entry = { key: 'analyze:key:many', limit: 1_000, windowSeconds: 24 * HOUR };
    const count = MAX_DRAW_BATCH * 2 + 10;
    const verdicts = await Promise.all(Array.from({ length: count }, () => drawer.draw([entry])));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(count);
    const rest = await Promise.all(Array.from({ length: 1_000 - count + 1 }, () => drawer.draw([entry])));
    expect(rest.filter((v) => v.allowed)).toHaveLength(1_000 - count);
  });

  it('rejects every draw of a call that failed, takes nothing, and draws again on the next call', async () => {
    const drawer = createBudgetDrawer(db.knex);
    const good = { key: 'analyze:key:fails', limit: 5, windowSeconds: 60 };
    // A limit of 0 divides by zero in the database: the call fails whole.
    const broken = { key: 'analyze:username:fails', limit: 0, windowSeconds: 60 };
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => drawer.draw([good, broken])));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/division by zero/);
    const verdicts = await Promise.all(Array.from({ length: 6 }, () => drawer.draw([good])));
    expect(verdicts.filter((v) => v.allowed)).toHaveLength(5);
  });

  it('cleanup deletes only rows that hold no budget any more', async () => {
    const store = createRateLimitStore(db.knex);
    await store.consume([{ key: 'email:short@corp.example', limit: 1, windowSeconds: 1 }]);
    await store.consume([{ key: 'email:long@corp.example', limit: 1, windowSeconds: HOUR }]);
    await new Promise((r) => setTimeout(r, 1100));
    expect(await store.cleanup()).toBeGreaterThanOrEqual(1);
    const keys = await db.knex('rate_limit_buckets').pluck('key');
    expect(keys).not.toContain('email:short@corp.example');
    expect(keys).toContain('email:long@corp.example');
  });
});

describe('POST /rate-limits/consume across secretaries and restarts', () => {
  let database: { url: string; drop: () => Promise<void> };
  let first: Secretary;
  let second: Secretary;
  const unreachable = { guesserUrl: 'http://127.0.0.1:9', analystUrl: 'http://127.0.0.1:9' };

  beforeAll(async () => {
    database = await createTestDatabase(inject('postgresUrl'), 'secretary_rate_limit_http');
    first = await startSecretary({ databaseUrl: database.url, ...unreachable });
    second = await startSecretary({ databaseUrl: database.url, ...unreachable });
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
    await database?.drop();
  });

  const consume = (s: Secretary, body: object) => keyed(s.url, 'service').post('/rate-limits/consume').send(body);

  it('shares one budget between two secretaries on one database, and keeps it across a restart', async () => {
    const body = { keys: ['email:carol@corp.example'], limit: 2, window_seconds: HOUR };
    const a = await consume(first, body);
    expectContract('consumeRateLimit', a);
    expect(a.body).toEqual({ allowed: true });
    expect((await consume(second, body)).body).toEqual({ allowed: true });
    const refused = await consume(first, body);
    expectContract('consumeRateLimit', refused);
    expect(refused.status).toBe(200);
    expect(refused.body).toMatchObject({ allowed: false, key: 'email:carol@corp.example' });
    expect(refused.body.retry_after_seconds).toBeGreaterThanOrEqual(1);

    // The first secretary goes away and comes back: the budget is still spent.
    await first.close();
    first = await startSecretary({ databaseUrl: database.url, ...unreachable });
    const afterRestart = await consume(first, body);
    expect(afterRestart.body).toMatchObject({ allowed: false, key: 'email:carol@corp.example' });
    // Another sender is not affected.
    expect((await consume(first, { ...body, keys: ['email:dave@corp.example'] })).body).toEqual({ allowed: true });
  });

  it('takes one unit from each key, all or nothing, and counts a key named twice once', async () => {
    const body = { keys: ['email:erin@corp.example', 'reply-to:team@corp.example'], limit: 1, window_seconds: 60 };
    expect((await consume(first, { ...body, keys: ['reply-to:team@corp.example'] })).body.allowed).toBe(true);
    const refused = await consume(second, body);
    expect(refused.body).toMatchObject({ allowed: false, key: 'reply-to:team@corp.example' });
    const twice = await consume(first, { ...body, keys: ['email:erin@corp.example', 'email:erin@corp.example'] });
    expect(twice.body).toEqual({ allowed: true });
  });

  it('refuses bad bodies with 400 in the contract shape and takes nothing', async () => {
    for (const body of [
      {},
      { keys: [], limit: 1, window_seconds: 60 },
      { keys: ['k'], limit: 0, window_seconds: 60 },
      { keys: ['k'], limit: 1, window_seconds: 86_401 },
      { keys: Array.from({ length: 11 }, (_, i) => `k${i}`), limit: 1, window_seconds: 60 },
      { keys: ['x'.repeat(301)], limit: 1, window_seconds: 60 },
      { keys: ['k'], limit: 1, window_seconds: 60, extra: true },
    ]) {
      const res = await consume(first, body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expectContract('consumeRateLimit', res);
      expect(res.body).toMatchObject({ error: expect.any(String), message: expect.any(String), statusCode: 400 });
    }
    expect(await first.db.knex('rate_limit_buckets').where('key', 'k').first()).toBeUndefined();
  });

  it('takes service keys only', async () => {
    const body = { keys: ['email:x@corp.example'], limit: 1, window_seconds: 60 };
    expect((await keyed(first.url, 'client').post('/rate-limits/consume').send(body)).status).toBe(403);
    expect((await request(first.url).post('/rate-limits/consume').send(body)).status).toBe(401);
  });
});

describe.each(DATABASE_KINDS)('/analyze-request limits on %s', (kind) => {
  let handle: TestDatabaseOfKind;
  let llm: LlmServices;
  let secretary: Secretary;
  const REQUEST = 'Пожалуйста, подскажите, где посмотреть отчёт по продажам за прошлый месяц?';

  beforeAll(async () => {
    handle = await createDatabaseOfKind(kind, 'secretary_analyze_limits');
    llm = await startLlmServices();
    secretary = await startSecretary({
      ...handle.location,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: { analyzeLimits: { perUsernamePerHour: 2, perKeyPerMinute: 5 } },
    });
  });
  afterAll(async () => {
    await secretary?.close();
    await llm?.close();
    await handle?.remove();
  });

  const stored = async () => {
    const count = async (table: string) => Number((await secretary.db.knex(table).count({ n: '*' }))[0]!['n']);
    return { messages: await count('messages'), analyses: await count('analyses') };
  };
  const analyze = (keyClass: 'client' | 'admin' | 'service', username: string, extra: object = {}) =>
    keyed(secretary.url, keyClass)
      .post('/analyze-request')
      .send({ channel: 'direct', username, request: REQUEST, ...extra });

  it('answers 429 with Retry-After past the per-username limit, storing nothing for the refused request', async () => {
    for (let i = 0; i < 2; i += 1) expect((await analyze('client', 'Frank')).status).toBe(200);
    const before = await stored();
    // The username is matched case-insensitively, as the directory does.
    const refused = await analyze('client', ' frank ');
    expect(refused.status).toBe(429);
    expectContract('analyzeRequestPost', refused);
    expect(refused.body).toMatchObject({ error: 'Too Many Requests', statusCode: 429 });
    expect(refused.body.message).toMatch(/username 'frank' \(2 requests per hour\)/);
    const retryAfter = Number(refused.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(1700);
    expect(retryAfter).toBeLessThanOrEqual(1800);
    expect(await stored()).toEqual(before);
    // GET is limited the same way.
    const viaGet = await keyed(secretary.url, 'client')
      .get('/analyze-request')
      .query({ channel: 'direct', username: 'frank', request: REQUEST });
    expect(viaGet.status).toBe(429);
  });

  it('answers 429 past the per-key limit whatever the username; service keys are exempt', async () => {
    // The admin key has made no call yet: 5 per minute.
    for (let i = 0; i < 5; i += 1) expect((await analyze('admin', `grace${i}`)).status).toBe(200);
    const refused = await analyze('admin', 'heidi');
    expect(refused.status).toBe(429);
    expect(refused.body.message).toMatch(/this API key \(5 requests per minute\)/);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // heidi's own hourly budget was not touched by the refusal (all or nothing): a client key still gets through.
    expect((await analyze('client', 'heidi')).status).toBe(200);
    // The communicator (service key) limits per sender itself: neither limit applies to it.
    for (let i = 0; i < 3; i += 1) expect((await analyze('service', 'frank')).status).toBe(200);
  });

  it('survives a restart of the secretary', async () => {
    await secretary.close();
    secretary = await startSecretary({
      ...handle.location,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: { analyzeLimits: { perUsernamePerHour: 2, perKeyPerMinute: 100 } },
    });
    expect((await analyze('client', 'frank')).status).toBe(429);
  });
});

describe.each(DATABASE_KINDS)('/analyze-request dry runs and the limits on %s', (kind) => {
  let handle: TestDatabaseOfKind;
  let llm: LlmServices;
  let secretary: Secretary;
  const REQUEST = 'Пожалуйста, подскажите, где посмотреть отчёт по продажам за прошлый месяц?';

  beforeAll(async () => {
    handle = await createDatabaseOfKind(kind, 'secretary_dry_run_limits');
    llm = await startLlmServices();
    secretary = await startSecretary({
      ...handle.location,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: { analyzeLimits: { perUsernamePerHour: 2, perKeyPerMinute: 6 } },
    });
  });
  afterAll(async () => {
    await secretary?.close();
    await llm?.close();
    await handle?.remove();
  });

  const analyze = (username: string, extra: object = {}) =>
    keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username, request: REQUEST, ...extra });
  const llmCalls = () => llm.guesserLlm.requests.length + llm.analystLlm.requests.length;

  it("takes a dry run from the key's budget (it calls the model), only checks the username's", async () => {
    // Two dry runs for ivan: his hourly budget of 2 answers is untouched by them…
    for (let i = 0; i < 2; i += 1) expect((await analyze('ivan', { dry_run: true })).status, `dry run ${i}`).toBe(200);
    expect((await analyze('ivan')).status).toBe(200);
    expect((await analyze('ivan')).status).toBe(200);
    // …and a dry run past it is refused like a real call (the username matched as the directory does), before any
    // model is called, taking nothing from the key.
    let calls = llmCalls();
    const overUsername = await analyze(' Ivan ', { dry_run: true });
    expect(overUsername.status).toBe(429);
    expectContract('analyzeRequestPost', overUsername);
    expect(overUsername.body.message).toMatch(/username 'Ivan' \(2 requests per hour\)/);
    expect(llmCalls()).toBe(calls);
    // The key's 6 per minute: two dry runs and two answers so far, the refusal took nothing. Two more dry runs…
    for (let i = 0; i < 2; i += 1) expect((await analyze('petr', { dry_run: true })).status, `petr ${i}`).toBe(200);
    // …spend it: the next call, dry or not, is refused before any model is called.
    calls = llmCalls();
    const overKey = await analyze('olga', { dry_run: true });
    expect(overKey.status).toBe(429);
    expectContract('analyzeRequestPost', overKey);
    expect(overKey.body.message).toMatch(/this API key \(6 requests per minute\)/);
    expect(Number(overKey.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await analyze('olga')).status).toBe(429);
    expect(llmCalls()).toBe(calls);
  });
});

/**
 * A secretary with its own database, the LLM services and `keys`, under `limits` (beforeAll/afterAll of the
 * enclosing describe); the returned function gives it once started.
 */
function limitedSecretary(
  database: string,
  keys: Parameters<typeof createAuthenticator>[0],
  limits: { perUsernamePerHour: number; perKeyPerMinute: number },
): () => Secretary {
  let handle: TestDatabaseOfKind;
  let llm: LlmServices;
  let secretary: Secretary;
  beforeAll(async () => {
    handle = await createDatabaseOfKind('postgres', database);
    llm = await startLlmServices();
    secretary = await startSecretary({
      ...handle.location,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: { auth: createAuthenticator(keys), analyzeLimits: limits },
    });
  });
  afterAll(async () => {
    await secretary?.close();
    await llm?.close();
    await handle?.remove();
  });
  return () => secretary;
}

describe('/analyze-request per-key budgets of same-named keys', () => {
  // Names need only be unique within a class: the client key and the admin key are both called `ops`.
  const secretary = limitedSecretary(
    'secretary_key_names',
    {
      client: [{ name: 'ops', key: TEST_KEYS.client }],
      admin: [{ name: 'ops', key: TEST_KEYS.admin }],
      service: [{ name: 'svc', key: TEST_KEYS.service }],
    },
    { perUsernamePerHour: 100, perKeyPerMinute: 2 },
  );

  it("a client key's calls do not spend the admin key's budget of the same name", async () => {
    const call = (keyClass: 'client' | 'admin', username: string) =>
      keyed(secretary().url, keyClass)
        .post('/analyze-request')
        .send({ channel: 'direct', username, request: 'Где найти регламент выдачи доступа к VPN?', dry_run: true });
    expect((await call('client', 'anna')).status).toBe(200);
    expect((await call('client', 'boris')).status).toBe(200);
    expect((await call('client', 'vera')).status).toBe(429);
    expect((await call('admin', 'gleb')).status).toBe(200);
    expect((await call('admin', 'dina')).status).toBe(200);
    expect((await call('admin', 'egor')).status).toBe(429);
  });
});

describe("/analyze-request: a username's hourly budget per client key", () => {
  const BOB = 'bob-client-key-3a5c7e9b1d2f4a68';
  const ALICE = 'alice-client-key-8e6c4a2f1b3d5c79';
  const secretary = limitedSecretary(
    'secretary_username_per_key',
    {
      client: [
        { name: 'bob', key: BOB },
        { name: 'alice', key: ALICE },
      ],
      admin: [{ name: 'ops', key: TEST_KEYS.admin }],
      service: [{ name: 'svc', key: TEST_KEYS.service }],
    },
    { perUsernamePerHour: 2, perKeyPerMinute: 100 },
  );

  it("one client key spending a username's budget does not lock that username out of another key", async () => {
    const call = (key: string, username: string) =>
      request(secretary().url)
        .post('/analyze-request')
        .set('Authorization', `Bearer ${key}`)
        .send({ channel: 'direct', username, request: 'Где найти регламент выдачи доступа к VPN?' });
    // Before: 62 calls as `Victim2` from one key answered another key's calls for `victim2` with 429.
    expect((await call(BOB, 'Victim2')).status).toBe(200);
    expect((await call(BOB, 'victim2')).status).toBe(200);
    const refused = await call(BOB, ' VICTIM2 ');
    expect(refused.status).toBe(429);
    expect(refused.body.message).toMatch(/username 'VICTIM2' \(2 requests per hour\)/);
    expect((await call(ALICE, 'victim2')).status).toBe(200);
  });
});
