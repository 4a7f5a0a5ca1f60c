// Unknown query parameters are a 400 on every operation of the secretary, before anything runs: a misspelt
// `dry_run` (`dry-run`, `dryRun`) must never run the real request and its action, a mistyped filter
// (`username[]`, `departmnet`) must never answer every row. The clients' legitimate parameters still pass.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadOpenApiDocument } from '@workemon/contracts';
import { waitFor } from '@workemon/testkit';
import { TEST_KEYS } from '@workemon/testkit/api-keys';
import { createTestDatabase } from '@workemon/testkit/postgres';
import { operationsOf } from '@workemon/testkit/route-probe';
import type {} from '@workemon/testkit/global-setup';
import request from 'supertest';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

let db: { url: string; drop: () => Promise<void> };
let secretary: Secretary;

const TABLES = ['conversations', 'messages', 'analyses', 'action_executions'];
async function rowCounts(): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES) counts[table] = Number((await secretary.db.knex(table).count({ n: '*' }))[0]!['n']);
  return counts;
}

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_unknown_query');
  // Upstreams that do not answer: a request that ran would be stored, then answered 503.
  secretary = await startSecretary({
    databaseUrl: db.url,
    guesserUrl: 'http://127.0.0.1:9',
    analystUrl: 'http://127.0.0.1:9',
  });
});
afterAll(async () => {
  await secretary?.close();
  await db?.drop();
});

const ASK = { channel: 'direct', username: 'ivan.petrov', request: 'Нужен отчёт по продажам за прошлый месяц' };

describe('a misspelt dry run', () => {
  it('is a 400 naming it, and nothing runs: no conversation, message, analysis or action; audited as refused', async () => {
    const before = await rowCounts();
    const audited = await secretary.db.knex('audit_events').max({ id: 'id' });
    const lastAudit = Number(audited[0]?.['id'] ?? 0);
    for (const misspelt of ['dry-run', 'dryRun', 'dry_run[]', 'dryrun']) {
      const res = await keyed(secretary.url, 'client')
        .get('/analyze-request')
        .query({ ...ASK, [misspelt]: 'true' });
      expect(res.status, misspelt).toBe(400);
      expect(res.body.message).toBe(
        `Parameter '${misspelt}' is not a parameter of this operation ` +
          '(known: channel, username, request, message_id, thread_key, subject, dry_run)',
      );
      expect(openapi.responseProblems('analyzeRequestGet', 400, res.body)).toEqual([]);
    }
    const post = await keyed(secretary.url, 'client')
      .post('/analyze-request?dry_run=true')
      .send({ ...ASK, dry_run: true });
    expect(post.status).toBe(400);
    expect(post.body.message).toBe(
      "Parameter 'dry_run' is not a parameter of this operation (it takes no query parameters)",
    );
    expect(await rowCounts()).toEqual(before);
    // The audit log keeps each refusal (docs/audit.md), as it does any 400: skipped, invalid-request.
    const refusals = await waitFor(
      async () => {
        const rows = await secretary.db.knex('audit_events').where('id', '>', lastAudit).select('outcome', 'reason');
        return rows.length >= 5 && rows;
      },
      { what: 'the five refusals in the audit log' },
    );
    for (const row of refusals) expect(row).toEqual({ outcome: 'skipped', reason: 'invalid-request' });
  });

  it('spelt right is taken: the request runs as a dry run (503 here: no model), nothing stored', async () => {
    const before = await rowCounts();
    const res = await keyed(secretary.url, 'client')
      .get('/analyze-request')
      .query({ ...ASK, dry_run: 'true' });
    expect(res.status).toBe(503);
    expect(await rowCounts()).toEqual(before);
  });
});

describe('a mistyped filter', () => {
  it('is a 400 instead of every row', async () => {
    for (const [path, query] of [
      ['/conversations', { 'username[]': 'x' }],
      ['/conversations', { user: 'x' }],
      ['/employees', { department: 'finance' }],
      ['/departments', { name: 'finance' }],
      ['/rules', { enable: 'true' }],
      ['/stats', { perod: 'week' }],
      ['/prompts', { version: '2' }],
    ] as const) {
      const res = await keyed(secretary.url).get(path).query(query);
      expect(res.status, `${path} ${JSON.stringify(query)}`).toBe(400);
      expect(res.body).toMatchObject({ error: 'Bad Request', statusCode: 400 });
      expect(res.body.message).toMatch(
        new RegExp(`^Parameter '${Object.keys(query)[0]!.replace(/[[\]]/g, '\\$&')}' is not a parameter`),
      );
    }
    // The declared filters work as before.
    expect((await keyed(secretary.url).get('/conversations').query({ username: 'x', limit: '1' })).status).toBe(200);
    expect((await keyed(secretary.url).get('/rules').query({ enabled: 'true' })).status).toBe(200);
  });
});

describe('every operation of the contract', () => {
  it('answers an undeclared query parameter with 400 invalid_parameter, for a caller it takes', async () => {
    const problems: string[] = [];
    const probed = operationsOf(loadOpenApiDocument('secretary')).filter((op) => op.allowed.length > 0);
    for (const op of probed) {
      const path = `${op.path}?zz_not_declared=1`;
      const agent = request(secretary.url);
      let req = agent[op.method as 'get'](path).set('Authorization', `Bearer ${TEST_KEYS[op.allowed[0]!]}`);
      if (op.method !== 'get' && op.method !== 'delete') req = req.send({});
      const res = await req;
      if (
        res.status !== 400 ||
        res.headers['x-workemon-error-code'] !== 'invalid_parameter' ||
        !/^Parameter 'zz_not_declared' is not a parameter of this operation/.test(String(res.body?.message))
      )
        problems.push(
          `${op.method.toUpperCase()} ${op.path} (${op.operationId}): ${res.status} ${JSON.stringify(res.body)}`,
        );
    }
    expect(problems).toEqual([]);
    expect(probed.length).toBeGreaterThanOrEqual(25);
  });
});
