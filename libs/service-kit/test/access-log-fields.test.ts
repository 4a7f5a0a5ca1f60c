// A handler's fields join its request's one access-log line (addAccessLogFields), instead of a second line.
import Transport from 'winston-transport';
import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { addAccessLogFields, createLogger, createMetrics, createServiceApp } from '@workemon/service-kit';
import { ecsStringify } from '../src/ecs-format.js';

class LineTransport extends Transport {
  lines: Record<string, unknown>[] = [];
  override log(info: Record<symbol, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(info[Symbol.for('message')] as string) as Record<string, unknown>);
    next();
  }
}

/** A service app with `mount`'s routes whose log lines (ECS JSON) land in the returned sink. */
function appWithAccessLog(mount: (app: Express) => void): { sink: LineTransport; app: Express } {
  const sink = new LineTransport({ format: ecsStringify() });
  const logger = createLogger({ service: 'access-test', stdout: sink });
  const metrics = createMetrics('access-test');
  return { sink, app: createServiceApp({ service: 'access-test', version: '0.0.0', logger, metrics }, mount) };
}

describe('access-log fields', () => {
  it("puts a handler's fields on the request's one access-log line, ECS in place and the rest under workemon.*", async () => {
    const { sink, app } = appWithAccessLog((a) => {
      a.get('/decide', (_req, res) => {
        addAccessLogFields(res, { llm: { provider: 'openai', latency_ms: 12 } });
        addAccessLogFields(res, { decision: { is_enough: true } });
        res.json({ ok: true });
      });
    });
    const res = await request(app).get('/decide');
    expect(res.status).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    const lines = sink.lines.filter((l) => (l['url'] as { path?: string } | undefined)?.path === '/decide');
    expect(lines).toHaveLength(1);
    expect(lines[0]!['message']).toBe('GET /decide 200');
    expect(lines[0]!['workemon']).toMatchObject({
      route: '/decide',
      llm: { provider: 'openai', latency_ms: 12 },
      decision: { is_enough: true },
    });
    expect(lines[0]!['http']).toEqual({ request: { method: 'GET' }, response: { status_code: 200 } });
  });

  it("keeps the request's id on its access-log line, also when the handler answered after awaiting", async () => {
    const { sink, app } = appWithAccessLog((a) => {
      a.post('/later', async (_req, res) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        res.json({ ok: true });
      });
    });
    const res = await request(app).post('/later').set('X-Request-Id', 'req-access-1').send({ a: 1 });
    expect(res.status).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    const line = sink.lines.find((l) => l['message'] === 'POST /later 200');
    expect(line?.['trace']).toEqual({ id: 'req-access-1' });
  });
});
