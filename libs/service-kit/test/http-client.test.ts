import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import express from 'express';
import { z } from 'zod';
import {
  createHttpClient,
  createMetrics,
  runWithRequestId,
  isAppError,
  parseEnv,
  env,
  ConfigError,
  type AppError,
} from '@workemon/service-kit';
import { listen, getFreePort, type Listening } from '@workemon/testkit/ports';

let upstream: Listening;
const hits: Record<string, number> = {};
const seenRequestIds: string[] = [];

beforeAll(async () => {
  const app = express();
  app.use(express.json());
  app.use((req, _res, next) => {
    hits[req.path] = (hits[req.path] ?? 0) + 1;
    seenRequestIds.push(String(req.get('x-request-id')));
    next();
  });
  app.get('/ok', (_req, res) => res.json({ value: 1 }));
  app.get('/slow', (_req, res) => setTimeout(() => res.json({ value: 1 }), 500));
  app.get('/flaky', (req, res) =>
    hits['/flaky']! < 3 ? res.status(503).json({ message: 'busy' }) : res.json({ value: 3 }),
  );
  app.post('/flaky-post', (_req, res) => res.status(503).json({ message: 'busy' }));
  app.get('/html', (_req, res) => res.type('html').send('<html>oops</html>'));
  app.get('/reject', (_req, res) =>
    res.status(403).json({ error: 'Forbidden', message: 'Unknown sender', statusCode: 403 }),
  );
  app.get('/limited', (_req, res) => res.status(429).set('Retry-After', '7').json({ message: 'slow down' }));
  app.get('/boom', (_req, res) => res.status(500).json({ message: 'internal details' }));
  app.get('/off', (_req, res) =>
    res.status(501).json({ error: 'Not Implemented', message: "Channel 'tg' is not configured", statusCode: 501 }),
  );
  app.get('/no-llm', (_req, res) =>
    res
      .status(503)
      .json({ error: 'Service Unavailable', message: 'LLM provider is unreachable: fix', statusCode: 503 }),
  );
  upstream = await listen(app);
});
afterAll(async () => upstream.close());

async function failure(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    if (isAppError(err)) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

const isValue = (d: unknown): d is { value: number } => typeof (d as { value?: unknown })?.value === 'number';

describe('http client', () => {
  it('returns validated data and forwards the current request id', async () => {
    const metrics = createMetrics('t');
    const client = createHttpClient({ target: 'up', baseURL: upstream.url, timeoutMs: 1000, metrics });
    const data = await runWithRequestId('rid-42', () => client.get('/ok', { validate: isValue }));
    expect(data).toEqual({ value: 1 });
    expect(seenRequestIds).toContain('rid-42');
    const text = await metrics.registry.metrics();
    expect(text).toMatch(
      /workemon_upstream_request_duration_seconds_count\{[^}]*target="up"[^}]*outcome="ok"[^}]*\} 1/,
    );
  });

  it('maps a timeout to 504, an unreachable upstream to 503 and nonsense to 502', async () => {
    const client = createHttpClient({ target: 'up', baseURL: upstream.url, timeoutMs: 100, maxRetries: 0 });
    expect((await failure(client.get('/slow'))).status).toBe(504);
    expect((await failure(client.get('/html', { validate: isValue }))).status).toBe(502);
    expect((await failure(client.get('/boom'))).status).toBe(502);
    const port = await getFreePort();
    const dead = createHttpClient({
      target: 'dead',
      baseURL: `http://127.0.0.1:${port}`,
      timeoutMs: 500,
      maxRetries: 1,
      retryBaseDelayMs: 1,
    });
    const err = await failure(dead.get('/x'));
    expect(err.status).toBe(503);
    expect(err.message).toBe("Upstream 'dead' is unavailable");
  });

  it('retries idempotent calls on 503 but never a POST', async () => {
    const client = createHttpClient({
      target: 'up',
      baseURL: upstream.url,
      timeoutMs: 1000,
      maxRetries: 2,
      retryBaseDelayMs: 1,
    });
    expect(await client.get('/flaky')).toEqual({ value: 3 });
    expect(hits['/flaky']).toBe(3);
    expect((await failure(client.post('/flaky-post', {}))).status).toBe(503);
    expect(hits['/flaky-post']).toBe(1);
  });

  it('keeps an upstream 4xx status and its message, and Retry-After on 429', async () => {
    const client = createHttpClient({ target: 'up', baseURL: upstream.url, timeoutMs: 1000 });
    const rejected = await failure(client.get('/reject'));
    expect(rejected.status).toBe(403);
    expect(rejected.code).toBe('upstream_rejected');
    expect(rejected.message).toBe('Unknown sender');
    const limited = await failure(client.get('/limited'));
    expect(limited.status).toBe(429);
    expect(limited.headers).toEqual({ 'Retry-After': '7' });
  });
});

describe('config', () => {
  const schema = z.object({
    PORT: env.port(8000),
    LLM_PROVIDER: env.oneOf(['ollama', 'deepseek'] as const, 'ollama', 'provider'),
    CLARIFICATION_TTL: env.durationMs('24h', 'ttl'),
    DEBUG: env.bool(false, 'debug'),
    API_KEYS: env.list('keys'),
    SECRET_TOKEN: env.optionalString('a secret'),
  });

  it('applies defaults and parses values, treating empty strings as unset', () => {
    const cfg = parseEnv(schema, { PORT: '', CLARIFICATION_TTL: '15m', DEBUG: 'yes', API_KEYS: 'a, b,,c' });
    expect(cfg).toEqual({
      PORT: 8000,
      LLM_PROVIDER: 'ollama',
      CLARIFICATION_TTL: 900_000,
      DEBUG: true,
      API_KEYS: ['a', 'b', 'c'],
    });
  });

  it('names every bad key at once and never echoes a value', () => {
    let error: unknown;
    try {
      parseEnv(schema, {
        PORT: 'eighty',
        LLM_PROVIDER: 'gpt5-secret-value',
        CLARIFICATION_TTL: 'soon',
        DEBUG: 'maybe',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const key of ['PORT', 'LLM_PROVIDER', 'CLARIFICATION_TTL', 'DEBUG']) expect(problems).toContain(key);
    expect(problems).toContain('must be one of: ollama, deepseek');
    expect((error as Error).message).not.toContain('gpt5-secret-value');
  });

  it('501 (not configured upstream) is stable: one attempt, not retryable, the upstream message kept', async () => {
    hits['/off'] = 0;
    const client = createHttpClient({ target: 'up', baseURL: upstream.url, timeoutMs: 1000, maxRetries: 3 });
    const err = await failure(client.get('/off'));
    expect(err).toMatchObject({ code: 'upstream_not_configured', status: 501, retryable: false });
    expect(err.message).toBe("Channel 'tg' is not configured");
    expect(hits['/off']).toBe(1);
  });

  it("passes an own service's 5xx explanation on only when asked, keeping the code and retryability", async () => {
    const plain = createHttpClient({ target: 'up', baseURL: upstream.url, timeoutMs: 1000, maxRetries: 0 });
    expect((await failure(plain.get('/no-llm'))).message).toBe("Upstream 'up' is unavailable");
    const ours = createHttpClient({
      target: 'up',
      baseURL: upstream.url,
      timeoutMs: 1000,
      maxRetries: 0,
      forwardUpstreamMessage: true,
    });
    const err = await failure(ours.get('/no-llm'));
    expect(err).toMatchObject({ code: 'upstream_unavailable', status: 503, retryable: true });
    expect(err.message).toBe("Upstream 'up' is unavailable: LLM provider is unreachable: fix");
  });
});
