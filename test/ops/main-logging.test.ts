// Each service's real entry point (src/main.ts, as the image runs it) ships its logs to Elasticsearch when
// ELASTICSEARCH_URL is set, and flushes them on SIGTERM before it exits.
import { TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit';
import { startFakeElasticsearch, type FakeElasticsearch } from '@workemon/testkit/fake-elasticsearch';
import { repoPath } from './observability-files.js';
import { SERVICES, type ServiceName } from './stack.js';

let es: FakeElasticsearch;
let dropDatabase: (() => Promise<void>) | undefined;
let databaseUrl: string;
const children: ChildProcess[] = [];

const field = (doc: Record<string, unknown>, name: string): unknown =>
  name in doc ? doc[name] : name.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown>)?.[k], doc);

beforeAll(async () => {
  es = await startFakeElasticsearch();
  const db = await createTestDatabase(inject('postgresUrl'), 'ops_main');
  databaseUrl = db.url;
  dropDatabase = db.drop;
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await es?.close();
  await dropDatabase?.();
});

function startMain(service: ServiceName): { child: ChildProcess; output: () => string } {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@workemon/source', repoPath(`services/${service}/src/main.ts`)],
    {
      cwd: repoPath('.'),
      env: {
        PATH: process.env['PATH'],
        PORT: '0',
        LOG_LEVEL: 'info',
        ELASTICSEARCH_URL: es.url,
        DATABASE_URL: databaseUrl,
        // Upstreams that do not answer: each service still starts (degraded) and logs.
        GUESSER_URL: 'http://127.0.0.1:9',
        SYSTEM_ANALYST_URL: 'http://127.0.0.1:9',
        COMMUNICATOR_URL: 'http://127.0.0.1:9',
        SECRETARY_URL: 'http://127.0.0.1:9',
        LLM_BASE_URL: 'http://127.0.0.1:9',
        // HOST defaults to 0.0.0.0, as in the image: every key class a service serves needs keys to start.
        ...TEST_KEY_ENV,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let output = '';
  const keep = (c: Buffer) => (output = (output + c.toString()).slice(-8000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return { child, output: () => output };
}

describe('each service main.ts', () => {
  it('ships its logs to ELASTICSEARCH_URL and flushes them on SIGTERM', { timeout: 150_000 }, async () => {
    const started = SERVICES.map((service) => ({ service, ...startMain(service) }));
    const problems: string[] = [];
    await Promise.all(
      started.map(async ({ service, child, output }) => {
        try {
          await es.waitForDocuments(
            1,
            (d) => field(d.source, 'service.name') === service && /listening on port/.test(String(d.source['message'])),
            // Four services compiled by tsx at once on a shared 2-core machine: starting can take most of a minute.
            60_000,
          );
        } catch {
          problems.push(
            `${service}: no "listening on port" document in Elasticsearch; output: ${output().slice(-600)}`,
          );
          return;
        }
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        child.kill('SIGTERM');
        const code = await exited;
        if (code !== 0) problems.push(`${service}: exit code ${code} after SIGTERM`);
        // Written during shutdown, after the last periodic flush: only the flush on exit delivers it.
        const flushed = es.documents.some(
          (d) => field(d.source, 'service.name') === service && /shutdown complete/.test(String(d.source['message'])),
        );
        if (!flushed) problems.push(`${service}: "shutdown complete" was not flushed to Elasticsearch before exit`);
      }),
    );
    expect(problems).toEqual([]);
  });
});
