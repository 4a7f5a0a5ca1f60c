// Issue 14: the secretary serves routing rules from memory. A rule change made through one replica (or by hand in
// SQL) is seen by another replica on the same PostgreSQL by the next request: the documented bound is "a change
// committed before a request's first statement applies to that request" (rules/rule-cache.ts).
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from '../llm-services.js';
import { startWiredSecretary, type WiredSecretary } from '../request-path-harness.js';
import { keyed, openapi } from '../secretary-harness.js';

const PRINTER_REQUEST = 'Принтер на третьем этаже не печатает отчёты по кошелькам, помогите пожалуйста';

let database: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let replicaA: WiredSecretary;
let replicaB: WiredSecretary;

beforeAll(async () => {
  database = await createTestDatabase(inject('postgresUrl'), 'secretary_rule_cache');
  llm = await startLlmServices();
  const upstreams = { databaseUrl: database.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl };
  replicaA = await startWiredSecretary(upstreams);
  replicaB = await startWiredSecretary(upstreams);
});

afterAll(async () => {
  await replicaA?.close();
  await replicaB?.close();
  await llm?.close();
  await database?.drop();
});

let senders = 0;
/** The action replica B decides for the printer request (a new sender each time: no conversation continues). */
async function actionOnB(): Promise<string> {
  senders += 1;
  const res = await keyed(replicaB.url, 'client')
    .post('/analyze-request')
    .send({ channel: 'direct', username: `printer-user-${senders}`, request: PRINTER_REQUEST });
  expect(res.status).toBe(200);
  expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
  return (res.body as { action: string }).action;
}

it('a rule created, disabled or changed through replica A (or in SQL) applies to the next request on replica B', async () => {
  // B has read (and cached) the rules: none yet.
  expect(await actionOnB()).toBe('ответить сообщением');
  expect(await actionOnB()).toBe('ответить сообщением');

  const created = await keyed(replicaA.url)
    .post('/rules')
    .send({ name: 'Printers ask back', conditions: { request_pattern: 'принтер' }, effects: { action: 'уточнить' } });
  expect(created.status).toBe(201);
  const id = (created.body as { id: number }).id;
  expect(await actionOnB()).toBe('уточнить');

  const toggled = await keyed(replicaA.url).post(`/rules/${id}/toggle`);
  expect(toggled.body).toMatchObject({ enabled: false });
  expect(await actionOnB()).toBe('ответить сообщением');

  // By hand, as an operator might: the trigger on routing_rules bumps the version all the same.
  await replicaA.db.knex('routing_rules').where({ id }).update({ enabled: true });
  expect(await actionOnB()).toBe('уточнить');

  expect((await keyed(replicaA.url).delete(`/rules/${id}`)).status).toBe(204);
  expect(await actionOnB()).toBe('ответить сообщением');
});
