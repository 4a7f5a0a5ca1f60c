import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import winston from 'winston';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, createMetrics, createOpenApi } from '@workemon/service-kit';
import { loadOpenApiDocument } from '@workemon/contracts';
import { createLlmClient, type LlmClient } from '@workemon/llm';
import { getFreePort, waitFor } from '@workemon/testkit';
import { writeTinyGguf } from '@workemon/testkit/tiny-gguf';
import { buildApp, loadConfig } from '../src/index.js';
import { TEST_KEY_ENV, bearer } from '@workemon/testkit/api-keys';
import { asService, validQuery } from './start-guesser.js';

// The guesser with LLM_PROVIDER=local on a tiny GGUF model the repository writes itself (no download).
const openapi = createOpenApi(loadOpenApiDocument('guesser'));
let dir: string;
let modelFile: string;
const clients: LlmClient[] = [];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'workemon-guesser-local-'));
  modelFile = writeTinyGguf(join(dir, 'tiny.gguf'));
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close?.() ?? Promise.resolve()));
  rmSync(dir, { recursive: true, force: true });
});

function guesserWith(env: Record<string, string>) {
  const config = loadConfig({
    LLM_PROVIDER: 'local',
    LLM_MAX_RETRIES: '0',
    LLM_THREADS: '1',
    SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS,
    ...env,
  });
  const logger = createLogger({ service: 'guesser', stdout: new winston.transports.Console({ silent: true }) });
  const metrics = createMetrics('guesser');
  const llm = createLlmClient(config.llm, { metrics, logger });
  clients.push(llm);
  return buildApp({ config, logger, metrics, llm });
}

describe('guesser with the local provider', () => {
  it('answers /get-context from the in-process model with a contract-valid answer, and /health names the model', async () => {
    const app = guesserWith({ LLM_MODEL: modelFile });
    const res = await asService(app).get('/get-context').query(validQuery());
    expect(res.status).toBe(200);
    expect(openapi.responseProblems('getContext', 200, res.body)).toEqual([]);
    expect(typeof res.body.is_enough).toBe('boolean');
    expect(res.body.response.trim()).not.toBe('');
    expect(res.body.llm).toMatchObject({ provider: 'local', model: modelFile });
    expect(res.body.llm.input_tokens).toBeGreaterThan(100);

    const post = await asService(app)
      .post('/get-context')
      .send(validQuery({ request: 'Нужен доступ к отчёту' }));
    expect(post.status).toBe(200);
    expect(openapi.responseProblems('getContextPost', 200, post.body)).toEqual([]);

    const health = await asService(app).get('/health');
    expect(health.status).toBe(200);
    expect(health.body.checks['llm:local']).toMatchObject({
      status: 'ok',
      detail: `primary local ${modelFile}: loaded`,
    });
  });

  it('a missing model file: /get-context 503 naming the file, /health 503 naming it', async () => {
    const missing = join(dir, 'absent', 'Qwen3-0.6B-Q8_0.gguf');
    const app = guesserWith({ LLM_MODEL: missing });
    const res = await asService(app).get('/get-context').query(validQuery());
    expect(res.status).toBe(503);
    expect(openapi.responseProblems('getContext', 503, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ error: 'Service Unavailable', statusCode: 503 });
    expect(res.body.message).toContain(missing);
    const health = await asService(app).get('/health');
    expect(health.status).toBe(503);
    expect(health.body.status).toBe('down');
    expect(health.body.checks['llm:local'].status).toBe('down');
    expect(health.body.checks['llm:local'].detail).toContain(missing);
  });
});

describe('guesser process with the local provider', () => {
  it('loads the model, answers, and on SIGTERM shuts down gracefully (exit 0) with the model loaded', async () => {
    const port = await getFreePort();
    const root = fileURLToPath(new URL('../../..', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--conditions=@workemon/source', 'services/guesser/src/main.ts'],
      {
        cwd: root,
        env: {
          PATH: process.env['PATH'],
          PORT: String(port),
          LOG_LEVEL: 'info',
          LLM_PROVIDER: 'local',
          LLM_MODEL: modelFile,
          LLM_THREADS: '1',
          HOST: '127.0.0.1',
          SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })),
    );
    try {
      const url = `http://127.0.0.1:${port}`;
      await waitFor(
        async () => {
          const health = (await (await fetch(`${url}/health`)).json()) as { status: string };
          return health.status === 'ok';
        },
        { timeoutMs: 60_000, what: 'guesser with its model loaded' },
      );
      const res = await request(url).get('/get-context').set(bearer('service')).query(validQuery());
      expect(res.status).toBe(200);
      expect(res.body.llm.provider).toBe('local');
    } finally {
      child.kill('SIGTERM');
    }
    // node-llama-cpp loads signal-exit, which re-raised SIGTERM mid-shutdown while the handler was `once`.
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(output).toContain('shutdown complete');
  }, 120_000);
});
