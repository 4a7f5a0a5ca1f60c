import { connect } from 'node:net';
import { describe, it, expect, afterEach } from 'vitest';
import request from 'supertest';
import type { Express } from 'express';
import Transport from 'winston-transport';
import { loadOpenApiDocument } from '@workemon/contracts';
import { waitFor } from '@workemon/testkit';
import {
  createServiceApp,
  createLogger,
  createMetrics,
  createOpenApi,
  validated,
  errors,
  createAuthenticator,
  getRequestId,
  runService,
  AppError,
  type HealthCheck,
} from '@workemon/service-kit';

class MemoryTransport extends Transport {
  lines: Record<string, unknown>[] = [];
  override log(info: Record<string, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(JSON.stringify(info)));
    next();
  }
}

function buildTestApp(
  opts: { checks?: HealthCheck[]; keys?: string[]; secrets?: string[]; routes?: (app: Express) => void } = {},
) {
  const sink = new MemoryTransport();
  const logger = createLogger({
    service: 'kit-test',
    version: '1.2.3',
    stdout: sink,
    level: 'debug',
    secrets: opts.secrets,
  });
  const metrics = createMetrics('kit-test');
  const doc = loadOpenApiDocument('guesser');
  const openapi = createOpenApi(doc);
  const app = createServiceApp(
    {
      service: 'kit-test',
      version: '1.2.3',
      logger,
      metrics,
      openapi: doc,
      healthChecks: opts.checks ?? [],
      bodyLimit: '1kb',
    },
    (a) => {
      const keys = (opts.keys ?? []).map((key, i) => ({ name: `test-${i}`, key }));
      // No keys: the class is open, as on loopback.
      a.use('/get-context', createAuthenticator({ service: keys }, { open: ['service'] }).require(['service']));
      a.get('/get-context', openapi.validate('getContext'), (_req, res) => {
        const { query } = validated(res);
        logger.info('handled', { password: 'hunter2-secret' });
        res.json({ is_enough: true, response: `ok ${String(query['username'])} ${getRequestId()}` });
      });
      a.post('/echo', (req, res) => res.json(req.body));
      a.get('/items/:name', (req, res) => res.json({ name: req.params['name'] }));
      a.get('/boom', () => {
        throw new Error('database password=s3cr3t-value leaked');
      });
      a.get('/slow-upstream', () => {
        throw errors.upstreamTimeout('guesser');
      });
      opts.routes?.(a);
    },
  );
  return { app, sink, metrics, openapi };
}

const q = { username: 'anton', department: 'IT', position: 'analyst', request: 'help me' };

describe('service app', () => {
  it('validates query parameters and names the parameter in the error shape', async () => {
    const { app, openapi } = buildTestApp();
    for (const [query, message] of [
      [{ ...q, username: undefined }, "Parameter 'username' is required"],
      [{ ...q, request: '' }, "Parameter 'request' is required"],
      [{ ...q, department: 'x'.repeat(301) }, "Parameter 'department' must be at most 300 characters"],
    ] as const) {
      const res = await request(app).get('/get-context').query(query);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'Bad Request', message, statusCode: 400 });
      expect(openapi.responseProblems('getContext', 400, res.body)).toEqual([]);
    }
    const dup = await request(app).get('/get-context?username=a&username=b&department=d&position=p&request=r');
    expect(dup.status).toBe(400);
    expect(dup.body.message).toBe("Parameter 'username' must be given once");
  });

  it('answers with the request id it was given, keeps it in async context and logs it as trace.id', async () => {
    const { app, sink } = buildTestApp();
    const res = await request(app).get('/get-context').query(q).set('X-Request-Id', 'req-123');
    expect(res.status).toBe(200);
    expect(res.headers['x-request-id']).toBe('req-123');
    expect(res.body.response).toBe('ok anton req-123');
    const handled = sink.lines.find((l) => l['message'] === 'handled')!;
    expect(handled['trace']).toEqual({ id: 'req-123' });
    expect(handled['service.name']).toBe('kit-test');
    expect(handled['log.level']).toBe('info');
    expect(handled['@timestamp']).toBeTypeOf('string');
    expect(JSON.stringify(sink.lines)).not.toContain('hunter2-secret');
    const generated = await request(app).get('/get-context').query(q);
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('on a route of another service (a wrong port) or with a wrong method, the 404 says where the route is', async () => {
    const { app } = buildTestApp();
    const wrongPort = await request(app).get('/analyze-request').query({ channel: 'direct' });
    expect(wrongPort.status).toBe(404);
    expect(wrongPort.body).toEqual({
      error: 'Not Found',
      message:
        'No route for GET /analyze-request on the kit-test: /analyze-request is a route of the secretary ' +
        '(http://localhost:8000 by default; its port is set by SECRETARY_PORT)',
      statusCode: 404,
    });
    const templated = await request(app).put('/employees/ivan.petrov').send({});
    expect(templated.body.message).toBe(
      'No route for PUT /employees/ivan.petrov on the kit-test: /employees/ivan.petrov is a route of the secretary ' +
        '(http://localhost:8000 by default; its port is set by SECRETARY_PORT)',
    );
    const send = await request(app).post('/send').send({});
    expect(send.body.message).toContain('/send is a route of the communicator (http://localhost:8003 by default');
  });

  it('with a method the service does not take on its own path, the 404 names the methods it takes', async () => {
    const sink = new MemoryTransport();
    const logger = createLogger({ service: 'guesser', version: '1', stdout: sink, level: 'debug' });
    const app = createServiceApp(
      { service: 'guesser', version: '1', logger, metrics: createMetrics('guesser') },
      () => {},
    );
    const res = await request(app).delete('/get-context');
    expect(res.status).toBe(404);
    expect(res.body.message).toBe('No route for DELETE /get-context on the guesser; /get-context takes GET, POST');
  });

  it('answers unknown routes with 404 and unknown errors with a generic 500 whose details stay in the log', async () => {
    const { app, sink } = buildTestApp({ secrets: ['s3cr3t-value'] });
    const notFound = await request(app).get('/nope');
    expect(notFound.status).toBe(404);
    expect(notFound.body).toEqual({ error: 'Not Found', message: 'No route for GET /nope', statusCode: 404 });
    const boom = await request(app).get('/boom');
    expect(boom.status).toBe(500);
    expect(boom.body).toEqual({ error: 'Internal Server Error', message: 'Internal server error', statusCode: 500 });
    const logged = JSON.stringify(sink.lines);
    expect(logged).toContain('unhandled error');
    expect(logged).not.toContain('s3cr3t-value');
    const timeout = await request(app).get('/slow-upstream');
    expect(timeout.status).toBe(504);
    expect(timeout.body.message).toBe("Upstream 'guesser' did not answer in time");
  });

  it('logs a 501 (a feature not configured here) as one warning without a stack trace, a 5xx fault as an error', async () => {
    const { app, sink } = buildTestApp({
      routes: (a) =>
        a.post('/webhook/x', () => {
          throw new AppError('not_configured', 501, 'The x webhook is not configured (X_SIGNING_KEY)');
        }),
    });
    for (let i = 0; i < 3; i += 1) {
      const res = await request(app).post('/webhook/x').send({ any: 'thing' });
      expect(res.status).toBe(501);
      expect(res.body).toEqual({
        error: 'Not Implemented',
        message: 'The x webhook is not configured (X_SIGNING_KEY)',
        statusCode: 501,
      });
    }
    const lines = sink.lines.filter((l) => l['message'] === 'The x webhook is not configured (X_SIGNING_KEY)');
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line['log.level']).toBe('warn');
      expect(JSON.stringify(line)).not.toMatch(/stack|at .*\.ts:\d+/);
    }
    await request(app).get('/boom');
    const fault = sink.lines.find((l) => l['message'] === 'unhandled error')!;
    expect(fault['log.level']).toBe('error');
    expect(JSON.stringify(fault)).toContain('stack_trace');
  });

  it('answers a path parameter with a malformed percent-encoding with 400 in the contract shape, not 500', async () => {
    const { app, sink } = buildTestApp();
    for (const path of ['/items/%FF', '/items/%ED%A0%80', '/items/%E0%A4%A']) {
      const res = await request(app).get(path);
      expect(res.status, path).toBe(400);
      expect(res.body).toEqual({
        error: 'Bad Request',
        message: 'The request path holds an invalid percent-encoding',
        statusCode: 400,
      });
    }
    expect((await request(app).get('/items/%D0%90')).body).toEqual({ name: 'А' });
    expect(sink.lines.filter((l) => l['log.level'] === 'error')).toEqual([]);
  });

  it('rejects bodies over the limit with 413 and broken JSON with 400', async () => {
    const { app } = buildTestApp();
    const big = await request(app)
      .post('/echo')
      .send({ text: 'x'.repeat(5000) });
    expect(big.status).toBe(413);
    expect(big.body.statusCode).toBe(413);
    const broken = await request(app).post('/echo').set('Content-Type', 'application/json').send('{"a":');
    expect(broken.status).toBe(400);
    expect(broken.body.message).toBe('Request body is not valid JSON');
  });

  it('requires a bearer key when keys are configured', async () => {
    const { app } = buildTestApp({ keys: ['k-one', 'k-two'] });
    expect((await request(app).get('/get-context').query(q)).status).toBe(401);
    expect((await request(app).get('/get-context').query(q).set('Authorization', 'Bearer wrong')).status).toBe(401);
    expect((await request(app).get('/get-context').query(q).set('Authorization', 'Bearer k-two')).status).toBe(200);
  });

  it('exposes metrics labelled by route template and the OpenAPI document', async () => {
    const { app } = buildTestApp();
    await request(app).get('/get-context').query(q);
    const metrics = await request(app).get('/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.text).toMatch(
      /http_request_duration_seconds_count\{[^}]*route="\/get-context"[^}]*status_code="200"[^}]*\} 1/,
    );
    expect(metrics.text).toContain('process_cpu_user_seconds_total');
    const doc = await request(app).get('/openapi.json');
    expect(doc.body.paths['/get-context']).toBeDefined();
  });

  it('reports health from named checks with deadlines: critical down is 503, other trouble is degraded', async () => {
    const ok = buildTestApp({ checks: [{ name: 'llm', critical: false, run: async () => ({ status: 'ok' }) }] });
    const okRes = await request(ok.app).get('/health');
    expect(okRes.status).toBe(200);
    expect(okRes.body).toMatchObject({
      status: 'ok',
      service: 'kit-test',
      version: '1.2.3',
      checks: { llm: { status: 'ok' } },
    });
    expect(ok.openapi.responseProblems('getHealth', 200, okRes.body)).toEqual([]);

    const degraded = buildTestApp({
      checks: [
        { name: 'llm', critical: false, run: async () => ({ status: 'degraded', detail: 'LLM_API_KEY is not set' }) },
        { name: 'telegram', critical: false, run: async () => ({ status: 'disabled' }) },
      ],
    });
    const degradedRes = await request(degraded.app).get('/health');
    expect(degradedRes.status).toBe(200);
    expect(degradedRes.body.status).toBe('degraded');
    expect(degradedRes.body.checks.telegram.status).toBe('disabled');

    const down = buildTestApp({
      checks: [{ name: 'postgres', critical: true, timeoutMs: 50, run: () => new Promise(() => undefined) }],
    });
    const downRes = await request(down.app).get('/health');
    expect(downRes.status).toBe(503);
    expect(downRes.body.status).toBe('down');
    // The detail is not for a caller without a key (s27): it is in the log (and for admin and service keys:
    // health-and-body-s27-attacks.test.ts).
    expect(downRes.body.checks.postgres).not.toHaveProperty('detail');
    expect(down.sink.lines.some((l) => String(l['message']).includes('postgres is down: no answer within 50 ms'))).toBe(
      true,
    );
    const m = await request(down.app).get('/metrics');
    expect(m.text).toMatch(/workemon_dependency_up\{[^}]*dependency="postgres"[^}]*\} 0/);
  });
});

afterEach(() => undefined);

describe('runService', () => {
  it("builds each request and response on the app's own prototypes before Express sees them", async () => {
    const { app, sink } = buildTestApp();
    const logger = createLogger({ service: 'prototypes', stdout: sink });
    const running = await runService({ app, port: 0, host: '127.0.0.1', logger });
    const seen: boolean[] = [];
    // Runs before Express's own 'request' listener: what Node built, not what Express made of it.
    running.server.prependListener('request', (req, res) => {
      seen.push(Object.getPrototypeOf(req) === app.request, Object.getPrototypeOf(res) === app.response);
    });
    try {
      const res = await request(`http://127.0.0.1:${running.port}`).post('/echo').send({ request: 'Нужен отчёт' });
      // Express works on them as before: routing, the JSON body, the JSON answer.
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ request: 'Нужен отчёт' });
      expect(seen).toEqual([true, true]);
    } finally {
      await running.shutdown('test');
    }
  });

  it('serves HTTP/1.1 on those objects as Node does: HEAD, 100-continue, keep-alive, Upgrade, cut-off bodies', async () => {
    const { app, sink, metrics } = buildTestApp();
    const logger = createLogger({ service: 'http-semantics', stdout: sink });
    const running = await runService({ app, port: 0, host: '127.0.0.1', logger });
    /** Writes `parts` (waiting `gapMs` between them) on one connection; resolves with all it read once it closes. */
    const exchange = (parts: string[], opts: { gapMs?: number; cutAfterMs?: number } = {}) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect(running.port, '127.0.0.1');
        let data = '';
        socket.on('data', (c: Buffer) => (data += c.toString('utf8')));
        socket.on('close', () => resolve(data));
        socket.on('error', reject);
        void (async () => {
          for (const part of parts) {
            socket.write(part);
            await new Promise((r) => setTimeout(r, opts.gapMs ?? 0));
          }
          if (opts.cutAfterMs !== undefined) setTimeout(() => socket.destroy(), opts.cutAfterMs);
          else socket.end();
        })();
      });
    const echo = JSON.stringify({ request: 'Нужен отчёт' });
    const echoLength = Buffer.byteLength(echo);
    try {
      // HEAD: GET's headers (Content-Length of the JSON), no body.
      const head = await exchange(['HEAD /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
      const get = await exchange(['GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      const lengthOf = (raw: string) => /\r\ncontent-length: (\d+)\r\n/i.exec(raw)?.[1];
      expect(lengthOf(head)).toBe(lengthOf(get));
      expect(head.endsWith('\r\n\r\n')).toBe(true);

      // Expect: 100-continue: the interim answer first, then the body is read and answered.
      const continued = await exchange(
        [
          `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${echoLength}\r\n` +
            'Expect: 100-continue\r\nConnection: close\r\n\r\n',
          echo,
        ],
        { gapMs: 100 },
      );
      expect(continued).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
      expect(continued.endsWith(echo)).toBe(true);

      // Keep-alive: two pipelined requests on one connection, two answers in order, distinct request ids.
      const twice = await exchange([
        `POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${echoLength}\r\n\r\n${echo}` +
          'GET /items/second HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      ]);
      expect(twice.match(/HTTP\/1\.1 200 OK\r\n/g)).toHaveLength(2);
      expect(twice).toContain('Connection: keep-alive');
      expect(twice.indexOf(echo)).toBeLessThan(twice.indexOf('{"name":"second"}'));
      expect(new Set(twice.match(/x-request-id: [^\r]+/gi)).size).toBe(2);

      // An Upgrade nobody accepts is an ordinary request.
      const upgrade = await exchange([
        'GET /items/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      ]);
      expect(upgrade).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(upgrade).toContain('{"name":"ws"}');

      // A body the client cuts off: logged as request_aborted, nothing left in flight.
      await exchange(
        ['POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"a":"st'],
        { cutAfterMs: 100 },
      );
      const aborted = await waitFor(() => sink.lines.find((l) => l['message'] === 'rejected: Request aborted'), {
        what: 'the cut-off request logged',
      });
      expect(aborted['error']).toEqual({ code: 'request_aborted' });
      await waitFor(async () => (await metrics.httpRequestsInFlight.get()).values[0]?.value === 0, {
        what: 'in-flight back to 0',
      });
    } finally {
      await running.shutdown('test');
    }
  });

  it('shutting down, answers the request in flight, then closes its keep-alive connection and finishes', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { app, sink, metrics } = buildTestApp({
      routes: (a) =>
        a.get('/slow', async (_req, res) => {
          await held;
          res.json({ done: true });
        }),
    });
    const logger = createLogger({ service: 'drain', stdout: sink });
    // The drain's last resort (cutting every connection) comes only at 60 % of this, far beyond the test's time.
    const running = await runService({ app, port: 0, host: '127.0.0.1', logger, shutdownTimeoutMs: 120_000 });
    try {
      // A keep-alive client (as the services' own HTTP clients are) with a request in flight.
      const socket = connect(running.port, '127.0.0.1');
      let answer = '';
      socket.on('data', (c: Buffer) => (answer += c.toString('utf8')));
      const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
      socket.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(async () => (await metrics.httpRequestsInFlight.get()).values[0]?.value === 1, {
        what: 'the slow request in flight',
      });
      const stopping = running.shutdown('test');
      release();
      // Answered in full, then the server closes the connection: the client never ends it.
      await closed;
      expect(answer).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(answer.endsWith('{"done":true}')).toBe(true);
      // With nothing in flight and no connection left, the shutdown finishes (closers, 'shutdown complete').
      await stopping;
      expect(sink.lines.some((l) => l['message'] === 'shutdown complete')).toBe(true);
      await expect(fetch(`http://127.0.0.1:${running.port}/health`)).rejects.toThrow();
    } finally {
      release();
      await running.shutdown('test');
    }
  });

  it('answers a request line Node refuses (raw Cyrillic in the URL) with 400 in the contract shape', async () => {
    const { app, sink } = buildTestApp();
    const logger = createLogger({ service: 'raw-url', stdout: sink });
    const running = await runService({ app, port: 0, host: '127.0.0.1', logger });
    try {
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect(running.port, '127.0.0.1', () => {
          socket.write(Buffer.from('GET /get-context?request=Я хочу отчёт HTTP/1.1\r\nHost: x\r\n\r\n', 'utf8'));
        });
        let data = '';
        socket.on('data', (c: Buffer) => (data += c.toString('utf8')));
        socket.on('end', () => resolve(data));
        socket.on('error', reject);
      });
      const [head, body] = raw.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(JSON.parse(body!)).toEqual({
        error: 'Bad Request',
        message: expect.stringContaining('percent-encode the URL'),
        statusCode: 400,
      });
      // The same request, encoded, reaches the app (and its validation).
      const encoded = await request(`http://127.0.0.1:${running.port}`)
        .get('/get-context')
        .query({ username: 'u', department: 'd', position: 'p', request: 'Я хочу отчёт' });
      expect(encoded.status).toBe(200);
    } finally {
      await running.shutdown('test');
    }
  });

  it('answers a GET whose query is over 16 KB with 431 saying to POST a JSON body', async () => {
    const { app, sink } = buildTestApp();
    const logger = createLogger({ service: 'long-url', stdout: sink });
    const running = await runService({ app, port: 0, host: '127.0.0.1', logger });
    try {
      const res = await request(`http://127.0.0.1:${running.port}`)
        .get('/get-context')
        .query({ username: 'u', department: 'd', position: 'p', request: 'отчёт '.repeat(2000) });
      expect(res.status).toBe(431);
      expect(res.body).toEqual({
        error: 'Request Header Fields Too Large',
        message:
          'Request URL and headers are too large (over 16 KB): send long texts as a JSON body with POST to ' +
          'the same path (the same fields)',
        statusCode: 431,
      });
    } finally {
      await running.shutdown('test');
    }
  });
});
