// Every route of the secretary, probed from its OpenAPI document: without a key, with an unknown key, with a key
// of every class it refuses (403) and of every class it takes. A route the document lacks fails the test, so
// no route can be added unprotected.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadOpenApiDocument } from '@workemon/contracts';
import { TEST_KEYS, TEST_KEY_NAMES, bearer } from '@workemon/testkit/api-keys';
import { createTestDatabase } from '@workemon/testkit/postgres';
import { createOpenApi } from '@workemon/service-kit';
import { probeEveryRoute, undocumentedRoutes } from '@workemon/testkit/route-probe';
import type {} from '@workemon/testkit/global-setup';
import { keyed, startSecretary, type Secretary } from './secretary-harness.js';

let db: { url: string; drop: () => Promise<void> };
let secretary: Secretary;
const document = loadOpenApiDocument('secretary');

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_route_auth');
  // Upstreams that do not answer: every probe is refused or rejected before the analyzer would call them.
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

describe('secretary authentication, route by route', () => {
  it('every route of the app is in the OpenAPI document', () => {
    expect(undocumentedRoutes(secretary.app, document)).toEqual([]);
  });

  it('answers 401 without or with an unknown key, 403 for another class, and serves the classes it names', async () => {
    const { problems, probed } = await probeEveryRoute({
      target: secretary.url,
      document,
      keys: TEST_KEYS,
      contract: createOpenApi(document),
      // The communicator decides for a listed Telegram approver (the harness lists 31337).
      bodies: {
        approveActionExecution: { by: 'telegram:31337' },
        rejectActionExecution: { by: 'telegram:31337' },
      },
    });
    expect(problems).toEqual([]);
    const byId = new Map(probed.map((p) => [p.operationId, p.allowed]));
    expect(byId.get('analyzeRequestGet')).toEqual(['client', 'admin', 'service']);
    expect(byId.get('analyzeRequestPost')).toEqual(['client', 'admin', 'service']);
    expect(byId.get('approveActionExecution')).toEqual(['admin', 'service']);
    for (const id of [
      'listEmployees',
      'putEmployee',
      'listConversations',
      'getStats',
      'createRule',
      'listActionExecutions',
    ])
      expect(byId.get(id), id).toEqual(['admin']);
    expect(byId.get('getHealth')).toEqual([]);
    expect(probed.length).toBeGreaterThanOrEqual(25);
    // A client key reads no one's history, directory, audit, prompts, rules or action log: every route but
    // /analyze-request refuses it with 403 (probed above: a refused class must get 403).
    const clientRoutes = probed.filter((p) => p.allowed.includes('client')).map((p) => p.operationId);
    expect(clientRoutes.sort()).toEqual(['analyzeRequestGet', 'analyzeRequestPost']);
    for (const id of [
      'listActions',
      'listAuditEvents',
      'getPrompts',
      'getConversation',
      'getRuleStats',
      'lookupDeliveries',
    ])
      expect(byId.get(id), id).not.toContain('client');
  });

  it('keeps /health, /metrics and /openapi.json open', async () => {
    for (const path of ['/health', '/metrics', '/openapi.json']) {
      const res = await request(secretary.url).get(path);
      expect([200, 503], path).toContain(res.status);
    }
  });

  it('records the admin key’s name as who approved, whatever the body says', async () => {
    const [row] = (await secretary.db
      .knex('action_executions')
      .insert({
        requester: 'someone',
        channel: 'direct',
        action: 'создать jira-task',
        status: 'awaiting_approval',
        payload: JSON.stringify({}),
      })
      .returning('id')) as { id: number }[];
    const res = await keyed(secretary.url, 'admin')
      .post(`/action-executions/${row!.id}/approve`)
      .send({ by: 'someone-else' });
    expect(res.status).toBe(200);
    expect(res.body.decided_by).toBe(TEST_KEY_NAMES.admin);
  });

  it('refuses a service key deciding for anyone but a listed Telegram approver', async () => {
    for (const by of [undefined, 'telegram:666', 'telegram:@boss', 'api:admin']) {
      const res = await request(secretary.url)
        .post('/action-executions/1/approve')
        .set(bearer('service'))
        .send(by ? { by } : {});
      expect(res.status, String(by)).toBe(403);
      expect(res.body.message).toMatch(/APPROVER_TELEGRAM_USER_IDS/);
    }
  });

  it('never logs a key it was sent', async () => {
    await request(secretary.url).get('/employees').set('Authorization', 'Bearer wrong-key-must-not-be-logged');
    await request(secretary.url).get('/employees').set(bearer('admin'));
    const logged = secretary.logs.lines.join('\n');
    expect(logged).not.toContain('wrong-key-must-not-be-logged');
    expect(logged).not.toContain(TEST_KEYS.admin);
  });
});
