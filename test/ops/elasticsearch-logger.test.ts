import { afterEach, describe, expect, it } from 'vitest';
import Transport from 'winston-transport';
import {
  createLogger,
  flushLogger,
  elasticsearchFromEnv,
  runWithRequestId,
  LOG_DATA_STREAM,
  LOG_INDEX_TEMPLATE,
  type Logger,
} from '@workemon/service-kit';
import { startFakeElasticsearch, type FakeElasticsearch } from '@workemon/testkit/fake-elasticsearch';
import { getFreePort, waitFor } from '@workemon/testkit';

class NullTransport extends Transport {
  override log(_info: unknown, next: () => void): void {
    next();
  }
}

/** An ECS field whether the document spells it dotted (`"log.level"`) or nested (`trace: { id }`). */
function field(doc: Record<string, unknown>, name: string): unknown {
  if (name in doc) return doc[name];
  return name.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], doc);
}

const opened: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  while (opened.length) await opened.pop()!.close();
});

async function fakeEs(port?: number): Promise<FakeElasticsearch> {
  const es = await startFakeElasticsearch(port ? { port } : {});
  opened.push(es);
  return es;
}

function esLogger(url: string, extra: { password?: string; warnings?: string[]; bufferLimit?: number } = {}): Logger {
  const logger = createLogger({
    service: 'ops-test',
    version: '9.9.9',
    stdout: new NullTransport(),
    elasticsearch: {
      ...elasticsearchFromEnv({
        elasticsearchUrl: url,
        elasticsearchUsername: extra.password ? 'elastic' : undefined,
        elasticsearchPassword: extra.password,
      })!,
      flushIntervalMs: 100,
      ...(extra.bufferLimit ? { bufferLimit: extra.bufferLimit } : {}),
    },
    onTransportWarning: (m) => extra.warnings?.push(m),
  });
  opened.push({ close: () => flushLogger(logger, 5000) });
  return logger;
}

describe('logs to Elasticsearch', () => {
  it('elasticsearchFromEnv is undefined without a URL (stdout only)', () => {
    expect(elasticsearchFromEnv({})).toBeUndefined();
    expect(elasticsearchFromEnv({ elasticsearchUrl: 'http://es:9200' })).toEqual({ url: 'http://es:9200' });
  });

  it('creates ECS documents in the data stream, with service.name and the request id as trace.id', async () => {
    const es = await fakeEs();
    const logger = esLogger(es.url, { password: 's3cret-es-pass' });
    runWithRequestId('req-abc-123', () => logger.info('handled a request', { url: { path: '/x' } }));
    logger.error('it broke', { err: new Error('boom with s3cret-es-pass inside') });
    const docs = await es.waitForDocuments(2);
    expect(es.templates.get(LOG_INDEX_TEMPLATE)).toMatchObject({
      index_patterns: ['logs-workemon-*'],
      data_stream: {},
    });
    // The template is in place before the first document arrives.
    const firstBulk = es.requests.findIndex((r) => r.path === '/_bulk');
    const templatePut = es.requests.findIndex((r) => r.path === `/_index_template/${LOG_INDEX_TEMPLATE}`);
    expect(templatePut).toBeGreaterThanOrEqual(0);
    expect(templatePut).toBeLessThan(firstBulk);
    for (const d of docs) {
      expect(d.index).toBe(LOG_DATA_STREAM);
      expect(d.op).toBe('create');
      expect(field(d.source, 'service.name')).toBe('ops-test');
      expect(field(d.source, 'service.version')).toBe('9.9.9');
      expect(field(d.source, 'ecs.version')).toEqual(expect.any(String));
      expect(typeof d.source['@timestamp']).toBe('string');
      expect(d.source).not.toHaveProperty('level');
    }
    const info = docs.find((d) => d.source['message'] === 'handled a request')!.source;
    const error = docs.find((d) => d.source['message'] === 'it broke')!.source;
    expect(field(info, 'log.level')).toBe('info');
    expect(field(info, 'trace.id')).toBe('req-abc-123');
    expect(field(error, 'log.level')).toBe('error');
    expect(field(error, 'error.type')).toBe('Error');
    expect(JSON.stringify(docs)).not.toContain('s3cret-es-pass');
    expect(es.requests.find((r) => r.path === '/_bulk')?.authorization).toBe(
      `Basic ${Buffer.from('elastic:s3cret-es-pass').toString('base64')}`,
    );
  });

  it('while Elasticsearch is down: buffers up to the limit, never throws, reports once, delivers when it is back', async () => {
    const port = await getFreePort();
    const warnings: string[] = [];
    const logger = esLogger(`http://127.0.0.1:${port}`, { warnings, bufferLimit: 50 });
    for (let i = 0; i < 500; i++) logger.info(`line ${i}`);
    await waitFor(() => warnings.length > 0, { what: 'a warning about Elasticsearch' });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/Elasticsearch/);
    const es = await fakeEs(port);
    // The health check backs off (1 s, 2 s, …); the buffered lines arrive once it succeeds.
    const docs = await es.waitForDocuments(50, undefined, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(es.documents).toHaveLength(50); // bounded: the other 450 were dropped, none duplicated
    expect(new Set(docs.map((d) => d.source['message'])).size).toBe(50);
  });

  it('flushes what it holds on shutdown, and shutdown finishes within the deadline when Elasticsearch is down', async () => {
    const es = await fakeEs();
    const logger = esLogger(es.url);
    logger.info('before');
    await es.waitForDocuments(1);
    logger.info('last words');
    await flushLogger(logger, 5000);
    expect(es.documents.map((d) => d.source['message'])).toContain('last words');

    const port = await getFreePort();
    const down = esLogger(`http://127.0.0.1:${port}`);
    down.info('nobody listens');
    const started = Date.now();
    await flushLogger(down, 2000);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it('a bulk the cluster refuses is retried with backoff and delivered once it accepts', async () => {
    const es = await fakeEs();
    const logger = esLogger(es.url);
    logger.info('first');
    await es.waitForDocuments(1);
    es.failBulk = true;
    logger.info('during outage');
    await waitFor(() => es.requests.filter((r) => r.path === '/_bulk').length >= 3, {
      what: 'bulk retries',
      timeoutMs: 20_000,
    });
    const bulkTimes = es.requests.filter((r) => r.path === '/_bulk').map((r) => r.at);
    // Backoff: the second and third attempts are at least ~1 s and ~2 s apart.
    expect(bulkTimes[2]! - bulkTimes[1]!).toBeGreaterThanOrEqual(900);
    es.failBulk = false;
    const [doc] = await es.waitForDocuments(1, (d) => d.source['message'] === 'during outage', 20_000);
    expect(field(doc!.source, 'service.name')).toBe('ops-test');
    expect(es.documents.filter((d) => d.source['message'] === 'during outage')).toHaveLength(1);
  });
});
