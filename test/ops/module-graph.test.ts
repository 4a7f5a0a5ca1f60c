// Without ELASTICSEARCH_URL a service loads neither the Elasticsearch transport nor what it drags in (the
// Elasticsearch client, apache-arrow), nor the Elastic APM agent or OpenTelemetry's SDK (which
// @elastic/ecs-winston-format used to require at load): each real main.ts runs with a preload that records
// every module it loads (fixtures/record-modules.mjs).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import { createTestDatabase } from '@workemon/testkit';
import { repoPath } from './observability-files.js';
import { SERVICES, type ServiceName } from './stack.js';

// Package directories no service may load without ELASTICSEARCH_URL. `@opentelemetry/api` alone is allowed:
// prom-client's default process metrics require that API facade (no SDK, no exporter).
const FORBIDDEN = [
  /\/node_modules\/winston-elasticsearch\//,
  /\/node_modules\/@elastic\/elasticsearch\//,
  /\/node_modules\/@elastic\/transport\//,
  /\/node_modules\/elastic-apm-node\//,
  /\/node_modules\/apache-arrow\//,
  /\/node_modules\/@opentelemetry\/(?!api\/)/,
];

let dir: string;
let dropDatabase: (() => Promise<void>) | undefined;
let databaseUrl: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'workemon-modules-'));
  const db = await createTestDatabase(inject('postgresUrl'), 'ops_modules');
  databaseUrl = db.url;
  dropDatabase = db.drop;
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await dropDatabase?.();
  rmSync(dir, { recursive: true, force: true });
});

/** Starts a main.ts, waits for "listening on port", stops it with SIGTERM; the modules it loaded. */
async function modulesOf(service: ServiceName): Promise<string[]> {
  const file = join(dir, `${service}.json`);
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      repoPath('test/ops/fixtures/record-modules.mjs'),
      '--conditions=@workemon/source',
      repoPath(`services/${service}/src/main.ts`),
    ],
    {
      cwd: repoPath('.'),
      env: {
        PATH: process.env['PATH'],
        PORT: '0',
        LOG_LEVEL: 'info',
        RECORD_MODULES_FILE: file,
        DATABASE_URL: databaseUrl,
        GUESSER_URL: 'http://127.0.0.1:9',
        SYSTEM_ANALYST_URL: 'http://127.0.0.1:9',
        COMMUNICATOR_URL: 'http://127.0.0.1:9',
        SECRETARY_URL: 'http://127.0.0.1:9',
        LLM_BASE_URL: 'http://127.0.0.1:9',
        ...TEST_KEY_ENV,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const keep = (c: Buffer) => {
      output = (output + c.toString()).slice(-8000);
      if (/listening on port/.test(output)) resolve();
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    void exited.then(() => reject(new Error(`${service} exited before listening: ${output.slice(-600)}`)));
  });
  // Its SIGTERM handler is installed right after the listen callback.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  child.kill('SIGTERM');
  expect({ service, exitCode: await exited }).toEqual({ service, exitCode: 0 });
  return JSON.parse(readFileSync(file, 'utf8')) as string[];
}

let everyServiceModules: Promise<{ service: ServiceName; modules: string[] }[]> | undefined;

/** The modules each service's main.ts loaded (every service started once per file, in parallel). */
function modulesOfEveryService(): Promise<{ service: ServiceName; modules: string[] }[]> {
  everyServiceModules ??= Promise.all(
    SERVICES.map(async (service) => ({ service, modules: await modulesOf(service) })),
  );
  return everyServiceModules;
}

describe('module graph without ELASTICSEARCH_URL', () => {
  it(
    'no service loads the Elasticsearch transport, its client, apache-arrow, the APM agent or OpenTelemetry',
    {
      timeout: 180_000,
    },
    async () => {
      const loaded = await modulesOfEveryService();
      for (const { service, modules } of loaded) {
        // The recorder works: the kit's logger and the service's own main were seen.
        expect(
          modules.some((m) => m.includes('libs/service-kit/src/logger.ts')),
          service,
        ).toBe(true);
        expect(
          modules.some((m) => m.includes(`services/${service}/src/main.ts`)),
          service,
        ).toBe(true);
        const forbidden = modules.filter((m) => FORBIDDEN.some((re) => re.test(m)));
        expect({ service, forbidden: forbidden.slice(0, 5) }).toEqual({ service, forbidden: [] });
      }
    },
  );
});

// What a feature that is not configured needs stays unloaded: every module loaded at start is memory held from
// the first request on (docs/operations.md, "Memory at start-up").
describe('module graph of features that are not configured', () => {
  it(
    'the secretary without EMPLOYEES_FILE loads no CSV parser; the communicator without a bot or mailbox no client',
    {
      timeout: 180_000,
    },
    async () => {
      const loaded = new Map((await modulesOfEveryService()).map(({ service, modules }) => [service, modules]));
      const matching = (service: ServiceName, re: RegExp) => (loaded.get(service) ?? []).filter((m) => re.test(m));
      expect(loaded.get('secretary')?.length, 'the secretary was recorded').toBeGreaterThan(0);
      expect(matching('secretary', /\/node_modules\/csv-parse\//)).toEqual([]);
      expect(loaded.get('communicator')?.length, 'the communicator was recorded').toBeGreaterThan(0);
      expect(matching('communicator', /\/node_modules\/telegraf\//)).toEqual([]);
      const mailStack = /\/node_modules\/(imapflow|mailparser|nodemailer|html-to-text|chardet)\//;
      expect(matching('communicator', mailStack).slice(0, 3)).toEqual([]);
    },
  );
});
