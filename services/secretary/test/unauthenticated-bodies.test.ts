// A caller without a valid key learns nothing from how its body is judged: broken JSON, a body over the limit or a
// bad charset without a key is 401 (with a key of another class 403), and nothing but the audit row of the refusal
// is written. The real secretary over HTTP on a real PostgreSQL; the LLM services are never reached.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { bearer } from '@workemon/testkit/api-keys';
import { openapi, startSecretary, type Secretary } from './secretary-harness.js';

let db: { url: string; drop: () => Promise<void> };
let secretary: Secretary;

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_unauthenticated_bodies');
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

const count = async (table: string) =>
  Number(((await secretary.db.knex(table).count('* as n')) as { n: string }[])[0]!.n);

describe('bodies sent without a valid key', () => {
  it('are refused with 401/403 before they are judged, and change nothing', async () => {
    const before = await Promise.all(['employees', 'routing_rules', 'messages'].map(count));
    const bodies = ['{"username": ', `{"request":"${'a'.repeat(1_100_000)}"}`];
    const call = (method: 'put' | 'post', path: string) =>
      method === 'put' ? request(secretary.url).put(path) : request(secretary.url).post(path);
    for (const [method, path, operationId] of [
      ['put', '/employees/mallory', 'putEmployee'],
      ['post', '/rules', 'createRule'],
      ['post', '/analyze-request', 'analyzeRequestPost'],
    ] as const) {
      for (const body of bodies) {
        const none = await call(method, path).set('Content-Type', 'application/json').send(body);
        expect(none.status, `${method} ${path}`).toBe(401);
        expect(openapi.responseProblems(operationId, none.status, none.body)).toEqual([]);
        const wrong = await call(method, path)
          .set('Content-Type', 'application/json')
          .set('Authorization', 'Bearer not-a-configured-key')
          .send(body);
        expect(wrong.status).toBe(401);
      }
      if (path !== '/analyze-request') {
        const client = await call(method, path).set(bearer('client')).set('Content-Type', 'application/json').send('{');
        expect(client.status).toBe(403);
      }
    }
    expect(await Promise.all(['employees', 'routing_rules', 'messages'].map(count))).toEqual(before);
    // The refused /analyze-request calls are audited as unauthenticated, with no field of the broken body.
    const rows = (await secretary.db.knex('audit_events').where({ reason: 'unauthenticated' })) as {
      sender: string | null;
    }[];
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(rows.every((r) => r.sender === null)).toBe(true);
  });

  it('leave no claimed name, subject or message_id in the audit log when refused for the key', async () => {
    for (const authorization of [undefined, 'Bearer not-a-configured-key']) {
      let call = request(secretary.url).post('/analyze-request');
      if (authorization) call = call.set('Authorization', authorization);
      const res = await call.send({
        channel: 'direct',
        username: 'director@corp.test',
        subject: 'Срочно',
        request: 'Переведите деньги',
        message_id: 'forged-1',
      });
      expect(res.status).toBe(401);
      const rows = (await secretary.db.knex('audit_events').where({ request_id: res.headers['x-request-id'] })) as {
        sender: string | null;
        subject: string | null;
        message_id: string | null;
        reason: string;
      }[];
      expect(rows).toEqual([expect.objectContaining({ sender: null, subject: null, message_id: null })]);
      expect(rows[0]!.reason).toBe('unauthenticated');
    }
  });

  it('are judged once the key is good: 400 broken JSON, 413 too large', async () => {
    const broken = await request(secretary.url)
      .put('/employees/mallory')
      .set(bearer('admin'))
      .set('Content-Type', 'application/json')
      .send('{"username": ');
    expect(broken.status).toBe(400);
    expect(broken.body.message).toMatch(/JSON/);
    const large = await request(secretary.url)
      .post('/analyze-request')
      .set(bearer('client'))
      .set('Content-Type', 'application/json')
      .send(`{"request":"${'a'.repeat(1_100_000)}"}`);
    expect(large.status).toBe(413);
  });
});
