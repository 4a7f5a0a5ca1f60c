// Issue 14: one /analyze-request costs at most four round trips to PostgreSQL (lookup, claim, record, and the
// routing rules only when they changed). Counted on the wire by a proxy between the secretary and the server
// (Query and Sync messages), so whatever path a statement takes (knex, pg, a transaction's BEGIN/COMMIT) counts.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { startRoundTripCounter, type RoundTripCounter } from './pg-round-trip-counter.js';
import { startWiredSecretary, type WiredSecretary } from './request-path-harness.js';
import { keyed, openapi } from './secretary-harness.js';

const MAX_ROUND_TRIPS = 4;
const REQUEST = 'Хочу получать аналитику по операциям авторизации наших кошельков за прошлый месяц';

let database: { url: string; drop: () => Promise<void> };
let counter: RoundTripCounter;
let llm: LlmServices;
let secretary: WiredSecretary;

beforeAll(async () => {
  database = await createTestDatabase(inject('postgresUrl'), 'secretary_round_trips');
  counter = await startRoundTripCounter(database.url);
  llm = await startLlmServices();
  secretary = await startWiredSecretary({
    databaseUrl: counter.url,
    guesserUrl: llm.guesserUrl,
    analystUrl: llm.analystUrl,
  });
  const admin = keyed(secretary.url);
  expect((await admin.put('/employees/anna').send({ email: 'anna@corp.test', department: 'Финансы' })).status).toBe(
    201,
  );
  expect((await admin.put('/employees/boris').send({ telegram_username: 'boris', telegram_id: '4242' })).status).toBe(
    201,
  );
});

afterAll(async () => {
  await secretary?.close();
  await llm?.close();
  await counter?.close();
  await database?.drop();
});

/** Sends one /analyze-request and answers its response with the round trips it cost. */
async function analyzeCounted(body: Record<string, unknown>, keyClass: 'client' | 'service' = 'client') {
  counter.reset();
  const res = await keyed(secretary.url, keyClass).post('/analyze-request').send(body);
  const trips = counter.count();
  expect(res.status).toBe(200);
  expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
  return { body: res.body as { action: string; is_enough: boolean; request: string }, trips };
}

describe('round trips to PostgreSQL per /analyze-request', () => {
  it('the counter sees the statements of a request (the proxy is on the path)', async () => {
    counter.reset();
    expect((await keyed(secretary.url).get('/employees')).status).toBe(200);
    expect(counter.count()).toBe(1);
  });

  it(`a direct request of a known employee: at most ${MAX_ROUND_TRIPS}`, async () => {
    const { body, trips } = await analyzeCounted({ channel: 'direct', username: 'anna', request: REQUEST });
    expect(body).toMatchObject({ is_enough: true, action: 'ответить сообщением' });
    expect(trips).toBeGreaterThan(0);
    expect(trips).toBeLessThanOrEqual(MAX_ROUND_TRIPS);
  });

  it(`a request of an unknown sender (as the benchmark sends): at most ${MAX_ROUND_TRIPS}`, async () => {
    const { trips } = await analyzeCounted({ channel: 'direct', username: 'bench', request: REQUEST });
    expect(trips).toBeLessThanOrEqual(MAX_ROUND_TRIPS);
  });

  it(`a Telegram update with message_id and a vouched user id: at most ${MAX_ROUND_TRIPS}; its duplicate: one`, async () => {
    const update = {
      channel: 'tg',
      username: 'boris',
      request: REQUEST,
      message_id: 'tg-update-1',
      thread_key: 'tg:4242',
      telegram_user_id: '4242',
    };
    const first = await analyzeCounted(update, 'service');
    expect(first.trips).toBeLessThanOrEqual(MAX_ROUND_TRIPS);
    const again = await analyzeCounted(update, 'service');
    expect(again.body).toEqual(first.body);
    // Answered before: the lookup finds the stored decision, nothing is written.
    expect(again.trips).toBe(1);
  });

  it(`a failed attempt retried with the same message_id (its take-over): at most ${MAX_ROUND_TRIPS}`, async () => {
    const update = { channel: 'tg', username: 'boris', request: REQUEST, message_id: 'tg-update-failing' };
    // The guesser's model answers nonsense once: 502, the attempt is recorded as failed.
    llm.guesserLlm.failNext(1, { status: 400, body: 'not a completion' });
    counter.reset();
    const failed = await keyed(secretary.url, 'service').post('/analyze-request').send(update);
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(counter.count()).toBeLessThanOrEqual(MAX_ROUND_TRIPS);
    const retried = await analyzeCounted(update, 'service');
    expect(retried.body).toMatchObject({ is_enough: true, action: 'ответить сообщением' });
    expect(retried.trips).toBeLessThanOrEqual(MAX_ROUND_TRIPS);
    const attempts = await secretary.db
      .knex('analyses as a')
      .join('messages as m', 'm.id', 'a.message_id')
      .where('m.message_id', 'tg-update-failing')
      .orderBy('a.id')
      .select('a.outcome');
    expect(attempts).toEqual([{ outcome: 'failed' }, { outcome: 'succeeded' }]);
  });

  it(`a mail with Message-ID (company domains from the directory): at most ${MAX_ROUND_TRIPS}`, async () => {
    const { trips } = await analyzeCounted(
      {
        channel: 'email',
        username: 'Anna <anna@corp.test>',
        request: REQUEST,
        message_id: '<m1@corp.test>',
        subject: 'Аналитика',
      },
      'service',
    );
    expect(trips).toBeLessThanOrEqual(MAX_ROUND_TRIPS);
  });

  it(`a client-key request with the /analyze-request limits on (as main.ts runs): at most ${MAX_ROUND_TRIPS} in sequence, the draw beside the lookup`, async () => {
    const limited = await startWiredSecretary({
      databaseUrl: counter.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      analyzeLimits: { perUsernamePerHour: 1, perKeyPerMinute: 100 },
    });
    try {
      // Connections opened, the rules read and the once-a-minute clean-up of spent buckets (sent in the background
      // as the request is answered) done, by another username's request.
      const warm = await keyed(limited.url)
        .post('/analyze-request')
        .send({ channel: 'direct', username: 'boris', request: REQUEST });
      expect(warm.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The first draws the username's one unit for the hour; the second is refused, storing nothing. The draw
      // is a call of its own, sent on another connection at the same time as the lookup (createBudgetDrawer).
      for (const status of [200, 429]) {
        counter.reset();
        const res = await keyed(limited.url)
          .post('/analyze-request')
          .send({ channel: 'direct', username: 'anna', request: REQUEST });
        expect(res.status).toBe(status);
        expect(counter.sequential()).toBeLessThanOrEqual(MAX_ROUND_TRIPS - 1);
        expect(counter.count()).toBeLessThanOrEqual(MAX_ROUND_TRIPS);
        expect(counter.count()).toBe(counter.sequential() + 1);
      }
    } finally {
      await limited.close();
    }
  });

  it('counts as sequential only the round trips that began while none other was awaiting its answer', async () => {
    const clients = [
      new pg.Client({ connectionString: counter.url }),
      new pg.Client({ connectionString: counter.url }),
    ];
    await Promise.all(clients.map((c) => c.connect()));
    try {
      counter.reset();
      // The second is sent while the first sleeps: beside it.
      await Promise.all([clients[0]!.query('select pg_sleep(0.2)'), clients[1]!.query('select 1')]);
      expect({ count: counter.count(), sequential: counter.sequential() }).toEqual({ count: 2, sequential: 1 });
      // This one waited for both.
      await clients[0]!.query({ name: 'round_trip_counter_check', text: 'select $1::int as one', values: [1] });
      expect({ count: counter.count(), sequential: counter.sequential() }).toEqual({ count: 3, sequential: 2 });
    } finally {
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  it(`a clarifying question and its answer: at most ${MAX_ROUND_TRIPS} each`, async () => {
    // The test guesser asks back on a request of few words.
    const question = await analyzeCounted({ channel: 'direct', username: 'anna', request: 'Отчёт' });
    expect(question.body.action).toBe('уточнить');
    expect(question.trips).toBeLessThanOrEqual(MAX_ROUND_TRIPS);
    const answer = await analyzeCounted({ channel: 'direct', username: 'anna', request: REQUEST });
    expect(answer.body.request).toContain('Отчёт');
    expect(answer.trips).toBeLessThanOrEqual(MAX_ROUND_TRIPS);
  });
});
