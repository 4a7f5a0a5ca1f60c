import { afterAll, beforeAll, expect, it } from 'vitest';
import { startPostgresServer, type PostgresServer } from '@workemon/testkit/postgres';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { askExport, keyed, startSecretary, type Secretary } from './secretary-harness.js';

// A private server: this test stops and restarts it under a running secretary.
let pg: PostgresServer;
let llm: LlmServices;
let secretary: Secretary;

beforeAll(async () => {
  pg = await startPostgresServer();
  llm = await startLlmServices();
  secretary = await startSecretary({ databaseUrl: pg.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl });
});

afterAll(async () => {
  await secretary?.close();
  await llm?.close();
  await pg?.destroy();
});

const ask = (message_id: string) => askExport(secretary.url, 'outage', message_id);

it('Postgres stopped → 503 with no LLM call; started again → 200 without restarting the secretary', async () => {
  expect((await ask('before')).status).toBe(200);
  const calls = llm.guesserLlm.requests.length;

  await pg.stop();
  const down = await ask('during');
  expect(down.status).toBe(503);
  expect(down.body).toEqual({
    error: 'Service Unavailable',
    message: "Dependency 'postgres' is unavailable",
    statusCode: 503,
  });
  // The request could not be stored, so no LLM was asked.
  expect(llm.guesserLlm.requests.length).toBe(calls);
  const health = await keyed(secretary.url).get('/health');
  expect(health.status).toBe(503);
  expect(health.body).toMatchObject({ status: 'down', checks: { postgres: { status: 'down' } } });
  expect((await keyed(secretary.url).get('/employees')).status).toBe(503);

  await pg.start();
  const back = await ask('during');
  expect(back.status).toBe(200);
  expect(back.body).toMatchObject({ is_enough: true, action: 'ответить сообщением' });
  expect((await keyed(secretary.url).get('/health')).status).toBe(200);
  const rows = await secretary.db
    .knex('messages')
    .where({ channel: 'tg', role: 'user' })
    .orderBy('id')
    .pluck('message_id');
  expect(rows).toEqual(['before', 'during']);
});

it('Postgres away while the LLMs work → the same process records the answer when it is back: 200, one LLM call', async () => {
  const calls = llm.guesserLlm.requests.length;
  llm.guesserLlm.delayMs = 1500;
  const inFlight = ask('mid-analysis');
  await new Promise((resolve) => setTimeout(resolve, 300));
  await pg.stop();
  // The LLMs answer meanwhile; recording fails and is retried.
  await new Promise((resolve) => setTimeout(resolve, 2000));
  llm.guesserLlm.delayMs = 0;
  await pg.start();
  const res = await inFlight;
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ is_enough: true, action: 'ответить сообщением' });
  expect(llm.guesserLlm.requests.length - calls).toBe(1);
  const message = await secretary.db.knex('messages').where({ channel: 'tg', message_id: 'mid-analysis' }).first();
  expect(message.state).toBe('answered');
  // A repeat returns the stored answer.
  expect((await ask('mid-analysis')).body).toEqual(res.body);
  expect(llm.guesserLlm.requests.length - calls).toBe(1);
});
