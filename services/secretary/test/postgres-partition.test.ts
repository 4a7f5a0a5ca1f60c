// A database that stops answering without closing the connection: a frozen server or VM, a silent network
// partition, a middlebox that dropped the flow. No FIN, no RST; without a deadline the pooled connections wait for
// the kernel's ~15 minutes of retransmissions and the secretary answers nothing. DATABASE_QUERY_TIMEOUT drops them.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import { inject } from 'vitest';
import type {} from '@workemon/testkit/global-setup';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import { DatabaseQueryTimeoutError, openDatabase, type Database } from '../src/database.js';
import { startLlmServices } from './llm-services.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

/**
 * A TCP relay between the secretary and PostgreSQL that can go silent: while `silent`, bytes in either direction
 * are swallowed and no socket is closed, as on a link that lost its route. Counts the client sockets closed by the
 * client (the secretary dropping a connection) as `closedByClient`.
 */
type SilentLink = { url: string; silent: boolean; closedByClient: number; close: () => Promise<void> };

async function startSilentLink(targetUrl: string): Promise<SilentLink> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  const link: SilentLink = { url: '', silent: false, closedByClient: 0, close: async () => {} };
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('data', (chunk) => {
      if (!link.silent) upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!link.silent) client.write(chunk);
    });
    client.on('close', () => {
      link.closedByClient += 1;
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  const url = new URL(targetUrl);
  url.hostname = '127.0.0.1';
  url.port = String(address.port);
  link.url = url.toString();
  link.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return link;
}

let database: { url: string; drop: () => Promise<void> };
let link: SilentLink;
let llm: LlmServices;
let secretary: Secretary;

beforeAll(async () => {
  database = await createTestDatabase(inject('postgresUrl'), 'partition');
  link = await startSilentLink(database.url);
  llm = await startLlmServices();
  secretary = await startSecretary({
    databaseUrl: link.url,
    guesserUrl: llm.guesserUrl,
    analystUrl: llm.analystUrl,
    databaseQueryTimeoutMs: 1000,
  });
});

afterAll(async () => {
  await secretary?.close();
  await llm?.close();
  await link?.close();
  await database?.drop();
});

const ask = async (message_id: string) => {
  const res = await keyed(secretary.url).post('/analyze-request').send({
    channel: 'tg',
    username: 'partition',
    request: 'Нужна выгрузка операций авторизации по кошелькам за май',
    message_id,
  });
  expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
  return res;
};

it('the link to PostgreSQL goes silent → 503 once the deadline passes, no LLM call; back → 200 on new connections', async () => {
  expect((await ask('before')).status).toBe(200);
  const calls = llm.guesserLlm.requests.length;
  const closedBefore = link.closedByClient;

  link.silent = true;
  const down = await ask('during');
  expect(down.status).toBe(503);
  expect(down.body).toEqual({
    error: 'Service Unavailable',
    message: "Dependency 'postgres' is unavailable",
    statusCode: 503,
  });
  expect(llm.guesserLlm.requests.length).toBe(calls);
  // The secretary itself dropped the silent connection: nothing was closed on the link's side.
  expect(link.closedByClient).toBeGreaterThan(closedBefore);
  const logged = secretary.logs.lines.join('\n');
  expect(logged).toContain('PostgreSQL did not answer a statement within 1 s');

  link.silent = false;
  const back = await ask('during');
  expect(back.status).toBe(200);
  expect(back.body).toMatchObject({ is_enough: true, action: 'ответить сообщением' });
  expect(llm.guesserLlm.requests.length - calls).toBe(1);
  const rows = await secretary.db
    .knex('messages')
    .where({ channel: 'tg', role: 'user' })
    .orderBy('id')
    .pluck('message_id');
  expect(rows).toEqual(['before', 'during']);
}, 60_000);

it('a statement past the deadline fails with DatabaseQueryTimeoutError; the pool serves the next one', async () => {
  const db: Database = openDatabase({ url: database.url, poolMax: 1, queryTimeoutMs: 500 });
  try {
    const slow = db.knex.raw('select pg_sleep(3)');
    await expect(slow).rejects.toBeInstanceOf(DatabaseQueryTimeoutError);
    await expect(slow).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    // The one pooled connection was dropped; the next statement gets a new one and its answer.
    const { rows } = (await db.knex.raw('select 41 + 1 as answer')) as { rows: { answer: number }[] };
    expect(rows).toEqual([{ answer: 42 }]);
    // Statements under the deadline are not touched, however many run on the connection.
    for (let i = 0; i < 20; i += 1) await db.knex.raw('select pg_sleep(0.02)');
  } finally {
    await db.close();
  }
}, 30_000);

it('DATABASE_QUERY_TIMEOUT=0 times nothing', async () => {
  const db: Database = openDatabase({ url: database.url, poolMax: 1, queryTimeoutMs: 0 });
  try {
    const { rows } = (await db.knex.raw('select pg_sleep(1.5), 7 as answer')) as { rows: { answer: number }[] };
    expect(rows[0]?.answer).toBe(7);
  } finally {
    await db.close();
  }
}, 30_000);
