// A database that stops answering without closing the connection: a frozen server or VM, a silent network
// partition, a middlebox that dropped the flow. No FIN, no RST; without a deadline the pooled connections wait for
// the kernel's ~15 minutes of retransmissions and the secretary answers nothing. DATABASE_QUERY_TIMEOUT drops them.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import { inject } from 'vitest';
import type {} from '@workemon/testkit/global-setup';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import type { Knex } from 'knex';
import {
  DatabaseQueryTimeoutError,
  isDatabaseUnavailable,
  migrateDatabase,
  openDatabase,
  type Database,
} from '../src/database.js';
import { migrationSource } from '../src/migrations.js';
import { startLlmServices } from './llm-services.js';
import { askExport, startSecretary, type Secretary } from './secretary-harness.js';

/**
 * A TCP relay between the secretary and PostgreSQL that can go silent: while `silent`, bytes in either direction
 * are swallowed and no socket is closed, as on a link that lost its route. With `silentAfter` set, the connection
 * that next sends those bytes (a statement's name) goes silent towards the client only, once: the server runs and
 * commits the statement, its answer is lost. Counts the client sockets closed by the client (the secretary
 * dropping a connection) as `closedByClient`.
 */
type SilentLink = {
  url: string;
  silent: boolean;
  silentAfter?: string;
  closedByClient: number;
  close: () => Promise<void>;
};

async function startSilentLink(targetUrl: string): Promise<SilentLink> {
  const target = new URL(targetUrl);
  const sockets = new Set<Socket>();
  const link: SilentLink = { url: '', silent: false, closedByClient: 0, close: async () => {} };
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    let answersLost = false;
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      if (link.silent) return;
      if (link.silentAfter && chunk.includes(link.silentAfter)) {
        answersLost = true;
        link.silentAfter = undefined;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!link.silent && !answersLost) client.write(chunk);
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

const ask = (message_id: string) => askExport(secretary.url, 'partition', message_id);

it('the link to PostgreSQL goes silent → 503 once the deadline passes, no LLM call; back → 200 on new connections', async () => {
  expect((await ask('before')).status).toBe(200);
  const calls = llm.guesserLlm.requests.length;
  const closedBefore = link.closedByClient;

  link.silent = true;
  // The first finds its pooled connection silent; the next ones open new connections that never get an answer
  // (pg's connect timeout): 503 each, never a 500.
  for (const id of ['during', 'during-2', 'during-3']) {
    const down = await ask(id);
    expect(down.status).toBe(503);
    expect(down.body).toEqual({
      error: 'Service Unavailable',
      message: "Dependency 'postgres' is unavailable",
      statusCode: 503,
    });
  }
  expect(llm.guesserLlm.requests.length).toBe(calls);
  // The secretary itself dropped the silent connection: nothing was closed on the link's side.
  expect(link.closedByClient).toBeGreaterThan(closedBefore);
  const logged = secretary.logs.lines.join('\n');
  // The deadline is the timeout and its grace (queryDeadlineGraceMs): 1 s + 0.5 s.
  expect(logged).toContain('PostgreSQL did not answer a statement within 1.5 s');
  expect(logged).not.toContain('Internal server error');

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

it('the answer to the recorded decision is lost after COMMIT: the retry owns it, one answer, one LLM analysis', async () => {
  const calls = llm.guesserLlm.requests.length;
  link.silentAfter = 'workemon_record_decision';
  const res = await ask('lost-ack');
  expect(link.silentAfter).toBeUndefined();
  expect(res.status).toBe(200);
  expect(res.body).toMatchObject({ is_enough: true, action: 'ответить сообщением' });
  expect(llm.guesserLlm.requests.length - calls).toBe(1);
  const message = await secretary.db.knex('messages').where({ channel: 'tg', message_id: 'lost-ack' }).first();
  expect(message).toMatchObject({ state: 'answered', attempts: 1 });
  const answers = await secretary.db
    .knex('messages')
    .where({ conversation_id: message.conversation_id, role: 'assistant' })
    .where('id', '>', message.id);
  expect(answers).toHaveLength(1);
  const analyses = await secretary.db.knex('analyses').where({ message_id: message.id }).pluck('outcome');
  expect(analyses).toEqual(['succeeded']);
  // The LLM calls' provenance once: the retry of the statement that had committed adds no second copy.
  const analysisId = await secretary.db
    .knex('analyses')
    .where({ message_id: message.id })
    .first()
    .then((a) => a.id);
  expect(
    await secretary.db.knex('analysis_llm_calls').where({ analysis_id: analysisId }).orderBy('id').pluck('service'),
  ).toEqual(['guesser', 'system-analyst']);
  // A repeat returns the stored answer.
  expect((await ask('lost-ack')).body).toEqual(res.body);
  expect(llm.guesserLlm.requests.length - calls).toBe(1);
}, 60_000);

it('a live server cancels a statement past the timeout itself (57014, a 503): it rolls back, the connection stays', async () => {
  const db: Database = openDatabase({ url: database.url, poolMax: 1, queryTimeoutMs: 500 });
  const locker = openDatabase({ url: database.url, poolMax: 1, queryTimeoutMs: 0 });
  try {
    await db.knex.raw('create table counters (id integer primary key, value integer not null)');
    await db.knex.raw('insert into counters values (1, 0)');
    const pid = async () => ((await db.knex.raw('select pg_backend_pid() as pid')) as { rows: { pid: number }[] }).rows;
    const before = await pid();
    // Another session holds the row: the update waits on its lock past the timeout.
    await locker.knex.transaction(async (trx) => {
      await trx.raw('select * from counters where id = 1 for update');
      // A knex query runs again at every `then`: one promise of it.
      const update = db.knex.raw('update counters set value = value + 1 where id = 1').then(() => 'updated');
      await expect(update).rejects.toMatchObject({ code: '57014' });
      expect(await update.catch((err: unknown) => isDatabaseUnavailable(err))).toBe(true);
    });
    // The lock is gone now: a cancelled update was rolled back there, it does not commit behind the caller.
    const { rows } = (await db.knex.raw('select value from counters where id = 1')) as { rows: { value: number }[] };
    expect(rows).toEqual([{ value: 0 }]);
    // The same connection answered: cancelling is the server's, nothing was dropped.
    expect(await pid()).toEqual(before);
    // Statements under the timeout are not touched, however many run on the connection.
    for (let i = 0; i < 20; i += 1) await db.knex.raw('select pg_sleep(0.02)');
    expect(await pid()).toEqual(before);
  } finally {
    await locker.close();
    await db.close();
  }
}, 30_000);

it('a silent connection is dropped after the timeout and its grace: DatabaseQueryTimeoutError; the next one answers', async () => {
  const db: Database = openDatabase({ url: link.url, poolMax: 1, queryTimeoutMs: 500 });
  try {
    await db.knex.raw('select 1');
    link.silent = true;
    const lost = db.knex.raw('select 2').then(() => 'answered');
    await expect(lost).rejects.toBeInstanceOf(DatabaseQueryTimeoutError);
    await expect(lost).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    link.silent = false;
    const { rows } = (await db.knex.raw('select 41 + 1 as answer')) as { rows: { answer: number }[] };
    expect(rows).toEqual([{ answer: 42 }]);
  } finally {
    link.silent = false;
    await db.close();
  }
}, 30_000);

it('migrations lift the server-side timeout: a migration longer than it completes', async () => {
  const scratch = await createTestDatabase(inject('postgresUrl'), 'partition_migrate');
  const db: Database = openDatabase({ url: scratch.url, poolMax: 2, queryTimeoutMs: 300 });
  try {
    const slow = { ...migrationSource };
    slow.getMigrations = async () => [
      ...(await migrationSource.getMigrations([])),
      { name: '999_slow', up: async (k: Knex) => void (await k.raw('select pg_sleep(0.8)')), down: async () => {} },
    ];
    const applied = await migrateDatabase(db, { source: slow as Knex.MigrationSource<unknown> });
    expect(applied).toContain('999_slow');
    // Outside migrations the timeout holds.
    await expect(db.knex.raw('select pg_sleep(0.8)')).rejects.toMatchObject({ code: '57014' });
  } finally {
    await db.close();
    await scratch.drop();
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
