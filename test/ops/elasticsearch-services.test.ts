// The services' logs in Elasticsearch (a fake that answers like Elasticsearch 8): ECS documents from every
// service, one request's documents sharing its trace.id; and with Elasticsearch unreachable, a service keeps
// serving with a bounded buffer and flat memory.
import { bearer } from '@workemon/testkit/api-keys';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { elasticsearchTransportOf, LOG_DATA_STREAM } from '@workemon/service-kit';
import { startFakeElasticsearch, type FakeBulkDocument } from '@workemon/testkit/fake-elasticsearch';
import { SERVICES, startStack, type Stack } from './stack.js';

const opened: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  while (opened.length) await opened.pop()!.close();
});

/** An ECS field whether the document spells it dotted (`"service.name"`) or nested (`trace: { id }`). */
function field(doc: Record<string, unknown>, name: string): unknown {
  if (name in doc) return doc[name];
  return name.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], doc);
}

// A real collection before each heap reading, so the comparison is of live objects, not of garbage.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

const serviceOf = (d: FakeBulkDocument) => field(d.source, 'service.name');

/** An "Elasticsearch" that is down: it accepts TCP connections and drops them at once, counting them. */
async function startDeadElasticsearch(): Promise<{
  url: string;
  connections: () => number;
  close: () => Promise<void>;
}> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    connections: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function startServices(elasticsearchUrl: string, bufferLimit?: number): Promise<Stack> {
  const stack = await startStack({
    postgresUrl: inject('postgresUrl'),
    elasticsearchUrl,
    elasticsearch: bufferLimit ? { bufferLimit } : {},
  });
  opened.push(stack);
  return stack;
}

describe('service logs in Elasticsearch', () => {
  it('every service ships ECS documents; one request shares its trace.id across services', async () => {
    const es = await startFakeElasticsearch();
    opened.push(es);
    const stack = await startServices(es.url);
    const traceId = `ops-trace-${Date.now()}`;
    const params = new URLSearchParams({
      channel: 'direct',
      username: 'ivan.petrov',
      request: 'Как выгрузить отчёт по продажам за прошлый месяц в Excel?',
    });
    const res = await fetch(`${stack.services.secretary.url}/analyze-request?${params}`, {
      headers: { 'X-Request-Id': traceId, ...bearer('client') },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(traceId);
    for (const s of Object.values(stack.services)) await fetch(`${s.url}/no-such-route`);

    await es.waitForDocuments(SERVICES.length, undefined, 20_000);
    // One structured line per request (the access log, with the decision's fields on it): one per LLM service.
    const bySecretaryPath = await es.waitForDocuments(
      2,
      (d) => field(d.source, 'trace.id') === traceId && ['guesser', 'system-analyst'].includes(String(serviceOf(d))),
      20_000,
    );
    expect(new Set(bySecretaryPath.map(serviceOf))).toEqual(new Set(['guesser', 'system-analyst']));
    const traced = await es.waitForDocuments(
      1,
      (d) => field(d.source, 'trace.id') === traceId && serviceOf(d) === 'secretary',
    );
    expect(traced.length).toBeGreaterThan(0);

    for (const service of SERVICES) {
      await es.waitForDocuments(1, (d) => serviceOf(d) === service, 20_000);
    }
    for (const doc of es.documents) {
      expect(doc.index).toBe(LOG_DATA_STREAM);
      expect(doc.op).toBe('create');
      expect(typeof doc.source['@timestamp']).toBe('string');
      expect(typeof doc.source['message']).toBe('string');
      expect(['debug', 'info', 'warn', 'error']).toContain(field(doc.source, 'log.level'));
      expect(SERVICES as readonly string[]).toContain(serviceOf(doc));
    }
    expect(es.templates.has('logs-workemon')).toBe(true);
  });

  it('with Elasticsearch down a service handles 1000 requests: responsive, bounded buffer, flat memory', async () => {
    const dead = await startDeadElasticsearch();
    opened.push(dead);
    const bufferLimit = 200;
    const stack = await startServices(dead.url, bufferLimit);
    const guesser = stack.services.guesser;
    const transport = await elasticsearchTransportOf(guesser.logger);
    expect(transport).toBeDefined();

    let counter = 0;
    const call = async () => {
      const i = counter++;
      const params = new URLSearchParams({
        username: `user${i}`,
        department: 'Продажи',
        position: 'менеджер',
        request: `Как выгрузить отчёт номер ${i} по продажам за прошлый месяц?`,
      });
      const res = await fetch(`${guesser.url}/get-context?${params}`, { headers: bearer('service') });
      await res.arrayBuffer();
      return res.status;
    };
    const batch = async (total: number, concurrency: number) => {
      const statuses: number[] = [];
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (statuses.length < total) {
            statuses.push(0);
            statuses[statuses.length - 1] = await call();
          }
        }),
      );
      return statuses;
    };

    await batch(100, 10); // warm-up: JIT, pools, the buffer filling to its limit
    collectGarbage();
    const before = process.memoryUsage();
    const started = performance.now();
    const statuses = await batch(1000, 20);
    const elapsedMs = performance.now() - started;
    const healthStarted = performance.now();
    const health = await fetch(`${guesser.url}/health`);
    const healthMs = performance.now() - healthStarted;
    collectGarbage();
    const after = process.memoryUsage();

    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    expect(statuses).toHaveLength(1000);
    expect(health.status).toBe(200);
    expect(healthMs).toBeLessThan(5000); // generous: CI machines are busy; a stalled event loop takes far longer
    // The buffer holds at most bufferLimit documents; everything beyond is dropped, not kept in memory.
    expect(transport!.buffered).toBeLessThanOrEqual(bufferLimit);
    expect(transport!.buffered).toBeGreaterThan(0);
    // No connection attempt per log line: one health-check loop with backoff (all services together).
    expect(dead.connections()).toBeLessThan(40);
    // Generous bounds after a full collection: they catch a leak per request (retained requests, sockets,
    // retry loops and their timers); the buffer's own bound is checked above.
    const heapGrowthMb = (after.heapUsed - before.heapUsed) / 2 ** 20;
    const rssGrowthMb = (after.rss - before.rss) / 2 ** 20;
    expect(heapGrowthMb).toBeLessThan(24);
    expect(rssGrowthMb).toBeLessThan(128);
    expect(elapsedMs).toBeGreaterThan(0);
  });
});
