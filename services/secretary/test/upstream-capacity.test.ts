// The secretary never limits below what its LLM services accept (LLM_CONCURRENCY + LLM_QUEUE_LIMIT calls each),
// and their 503 beyond that is backpressure: answered as 503 in the contract's shape, nothing recorded as
// answered, and the same message analysed normally once there is room.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { bearer } from '@workemon/testkit/api-keys';
import { waitFor } from '@workemon/testkit';
import { defaultGuesserReply, type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { openapi, startSecretary, type Secretary } from './secretary-harness.js';

const N = 4;
const Q = 12;

let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let secretary: Secretary;
const gate = { running: 0, started: 0, open: undefined as undefined | (() => void), closed: Promise.resolve() };

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_upstream_capacity');
  llm = await startLlmServices({
    env: { LLM_CONCURRENCY: String(N), LLM_QUEUE_LIMIT: String(Q) },
    guesser: async (req) => {
      gate.running += 1;
      gate.started += 1;
      await gate.closed;
      gate.running -= 1;
      return defaultGuesserReply(req);
    },
  });
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl });
});

afterAll(async () => {
  gate.open?.();
  await secretary?.close();
  await llm?.close();
  await db?.drop();
});

const REQUEST = 'Хочу получать аналитику по операциям авторизации наших кошельков за прошлый месяц';

async function analyze(messageId: string) {
  const res = await fetch(`${secretary.url}/analyze-request`, {
    method: 'POST',
    headers: { ...bearer('client'), 'content-type': 'application/json' },
    body: JSON.stringify({
      channel: 'email',
      username: 'capacity@example.com',
      message_id: messageId,
      request: REQUEST,
    }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  expect(openapi.responseProblems('analyzeRequestPost', res.status, body)).toEqual([]);
  return { status: res.status, body };
}

describe('secretary under its upstreams’ capacity', () => {
  it('passes on all N + Q calls an LLM service admits; the next one is a 503 the caller may retry', async () => {
    gate.closed = new Promise<void>((resolve) => (gate.open = resolve));
    const run = randomBytes(4).toString('hex');
    const admitted = Array.from({ length: N + Q }, (_, i) => analyze(`<cap-${run}-${i}@example.com>`));
    await waitFor(() => gate.running === N, { what: `${N} calls at the guesser's model` });
    // The other Q are in the guesser's queue, not held back by the secretary (its DB pool is 10 < N + Q).
    await waitFor(async () => {
      const text = await (await fetch(`${llm.guesserUrl}/metrics`)).text();
      return new RegExp(`^workemon_llm_calls_waiting\\{[^}]*\\} ${Q}$`, 'm').test(text);
    });

    const overflowId = `<cap-${run}-overflow@example.com>`;
    const refused = await analyze(overflowId);
    expect(refused.status).toBe(503);
    expect(refused.body).toMatchObject({ error: 'Service Unavailable', statusCode: 503 });
    expect(String(refused.body['message'])).toMatch(/guesser/);
    expect(gate.started).toBe(N);

    gate.open!();
    const answers = await Promise.all(admitted);
    expect(answers.map((a) => a.status)).toEqual(Array(N + Q).fill(200));
    expect(gate.started).toBe(N + Q);

    // Backpressure, not a verdict: the same message is analysed once there is room.
    const retried = await analyze(overflowId);
    expect(retried.status).toBe(200);
    expect(retried.body['response']).toEqual(expect.any(String));
  });
});
