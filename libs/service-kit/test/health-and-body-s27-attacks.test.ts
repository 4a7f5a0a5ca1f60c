// An attacker on the same network as a service (issue s27): what the open GET /health tells a caller without a
// key, and what a JSON body that is not UTF-8 does. Real HTTP through the kit's app, a real logger sink.
import { connect } from 'node:net';
import Transport from 'winston-transport';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import {
  AppError,
  createAuthenticator,
  createLogger,
  createMetrics,
  createServiceApp,
  runService,
  type ApiKeys,
  type Authenticator,
  type HealthCheck,
} from '@workemon/service-kit';

class Sink extends Transport {
  lines: Record<string, unknown>[] = [];
  override log(info: Record<string, unknown>, next: () => void) {
    this.lines.push(info);
    next();
  }
}

const CLIENT = 'client-key-0123456789abcdefghijklmnop';
const ADMIN = 'admin-key-0123456789abcdefghijklmnopq';
const SERVICE = 'service-key-0123456789abcdefghijklmno';
const keys: ApiKeys = {
  client: [{ name: 'web', key: CLIENT }],
  admin: [{ name: 'alice', key: ADMIN }],
  service: [{ name: 'stack', key: SERVICE }],
};

// What a real dependency's failure says: pg's and undici's connection errors name the host, the port, the user.
const POSTGRES_ERROR = 'getaddrinfo ENOTFOUND pg-primary.internal.corp.example (postgres://workemon@pg-primary:5432)';
const LLM_DETAIL = "LLM provider 'openai' at http://10.20.30.40:8080/v1 is unreachable: check LLM_BASE_URL";

function build(auth: Authenticator | undefined, checks?: HealthCheck[]) {
  const sink = new Sink();
  const logger = createLogger({ service: 'attacked', stdout: sink });
  const healthChecks: HealthCheck[] = checks ?? [
    {
      name: 'postgres',
      critical: true,
      run: async () => {
        throw new Error(POSTGRES_ERROR);
      },
    },
    { name: 'llm', critical: false, run: async () => ({ status: 'degraded', detail: LLM_DETAIL }) },
    {
      name: 'telegram',
      critical: false,
      run: async () => ({ status: 'disabled', detail: 'TELEGRAM_BOT_TOKEN unset' }),
    },
  ];
  const app = createServiceApp(
    { service: 'attacked', version: '1.2.3', logger, metrics: createMetrics('attacked'), healthChecks, auth },
    (a) => {
      a.post('/echo', (req, res) => res.json(req.body));
    },
  );
  return { app, sink };
}

type Report = { status: string; service: string; checks: Record<string, { status: string; detail?: string }> };

describe('GET /health without a key (s27)', () => {
  it('says only the status of each dependency: no error text, host, URL or connection string', async () => {
    const { app } = build(createAuthenticator(keys));
    for (const authorization of [undefined, 'Bearer wrong-key-0123456789abcdef', `Bearer ${CLIENT}`]) {
      const req = request(app).get('/health');
      const res = await (authorization ? req.set('Authorization', authorization) : req);
      expect(res.status, String(authorization)).toBe(503);
      const body = res.body as Report;
      expect(body).toMatchObject({ status: 'down', service: 'attacked', version: '1.2.3' });
      expect(body.checks['postgres']).toMatchObject({ status: 'down' });
      expect(body.checks['llm']).toMatchObject({ status: 'degraded' });
      expect(body.checks['telegram']).toMatchObject({ status: 'disabled' });
      for (const check of Object.values(body.checks)) expect(check).not.toHaveProperty('detail');
      expect(res.text).not.toMatch(/internal\.corp|pg-primary|10\.20\.30\.40|postgres:\/\/|LLM_BASE_URL|TELEGRAM/);
      // The answer depends on the Authorization field: no shared cache may hand one caller's view to another.
      expect(res.headers['vary']).toMatch(/authorization/i);
    }
  });

  it('gives the details to an admin or a service key', async () => {
    const { app } = build(createAuthenticator(keys));
    for (const key of [ADMIN, SERVICE]) {
      const res = await request(app).get('/health').set('Authorization', `Bearer ${key}`);
      expect(res.status).toBe(503);
      const body = res.body as Report;
      expect(body.checks['postgres']!.detail).toBe(POSTGRES_ERROR);
      expect(body.checks['llm']!.detail).toBe(LLM_DETAIL);
    }
  });

  it('gives them to a keyless call from this machine while the admin or service class is open (npm start)', async () => {
    const { app } = build(createAuthenticator({ client: [], admin: [], service: [] }, { open: ['admin'] }));
    const local = await request(app).get('/health').set('Host', '127.0.0.1:8000');
    expect((local.body as Report).checks['postgres']!.detail).toBe(POSTGRES_ERROR);
    // A web page that rebinds its name to 127.0.0.1 is not this machine's client.
    const page = await request(app).get('/health').set('Host', 'attacker.example:8000');
    expect((page.body as Report).checks['postgres']).not.toHaveProperty('detail');
  });

  it('hides them from everyone over HTTP when the app has no authenticator', async () => {
    const { app } = build(undefined);
    const res = await request(app).get('/health').set('Authorization', `Bearer ${ADMIN}`);
    expect((res.body as Report).checks['postgres']).not.toHaveProperty('detail');
  });

  it('puts the details in the log, once per change of a check', async () => {
    let up = false;
    const { app, sink } = build(createAuthenticator(keys), [
      {
        name: 'postgres',
        critical: true,
        run: async () => {
          if (up) return { status: 'ok' };
          throw new Error(POSTGRES_ERROR);
        },
      },
    ]);
    await request(app).get('/health');
    await request(app).get('/health');
    const down = sink.lines.filter((l) => String(l['message']).includes(POSTGRES_ERROR));
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ level: 'warn' });
    up = true;
    await request(app).get('/health');
    const recovered = sink.lines.filter((l) => /health check postgres is ok/.test(String(l['message'])));
    expect(recovered).toHaveLength(1);
  });
});

describe('a JSON body that is not valid UTF-8 (s27)', () => {
  it('is refused with 400 in the contract shape instead of read with replacement characters', async () => {
    const { app } = build(undefined);
    const invalid = Buffer.concat([Buffer.from('{"request":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
    for (const type of ['application/json', 'application/json; charset=utf-8', 'application/merge-patch+json']) {
      // superagent would serialise a Buffer as JSON ({type:'Buffer'}): the bytes go out as they are.
      const res = await request(app)
        .post('/echo')
        .set('Content-Type', type)
        .serialize(() => invalid as unknown as string)
        .send(invalid);
      expect(res.status, type).toBe(400);
      expect(res.body).toEqual({
        error: 'Bad Request',
        message: 'Request body is not valid UTF-8 (JSON is UTF-8 only, RFC 8259 §8.1)',
        statusCode: 400,
      });
    }
    const valid = await request(app)
      .post('/echo')
      .set('Content-Type', 'application/json')
      .send('{"request":"Привет 👋"}');
    expect(valid.status).toBe(200);
    expect(valid.body).toEqual({ request: 'Привет 👋' });
  });
});

describe("an error whose message is an operator's explanation (s27)", () => {
  const failing = (auth: Authenticator) => {
    const logger = createLogger({ service: 'attacked', stdout: new Sink() });
    return createServiceApp({ service: 'attacked', version: '1', logger, metrics: createMetrics('attacked') }, (a) => {
      a.get('/ask', auth.require(['client', 'admin', 'service']), () => {
        throw new AppError(
          'upstream_unavailable',
          503,
          "Upstream 'guesser' is unavailable: at http://10.0.0.5 (GUESSER_URL)",
          {
            publicMessage: "Upstream 'guesser' is unavailable",
          },
        );
      });
    });
  };

  it('reaches a client key as its public message only; admin and service keys get the explanation', async () => {
    const app = failing(createAuthenticator(keys));
    const client = await request(app).get('/ask').set('Authorization', `Bearer ${CLIENT}`);
    expect(client.status).toBe(503);
    expect(client.body).toEqual({
      error: 'Service Unavailable',
      message: "Upstream 'guesser' is unavailable",
      statusCode: 503,
    });
    for (const key of [ADMIN, SERVICE]) {
      const res = await request(app).get('/ask').set('Authorization', `Bearer ${key}`);
      expect(res.body.message).toBe("Upstream 'guesser' is unavailable: at http://10.0.0.5 (GUESSER_URL)");
    }
  });

  it('reaches a keyless caller on this machine whole while the client class is open (npm start)', async () => {
    const app = failing(createAuthenticator({ client: [], admin: [], service: [] }, { open: ['client'] }));
    const res = await request(app).get('/ask').set('Host', 'localhost:8000');
    expect(res.status).toBe(503);
    expect(res.body.message).toContain('http://10.0.0.5');
  });
});

describe("requests Node's HTTP parser refuses (s27)", () => {
  /** Sends `raw` on a fresh connection and reads the whole answer. */
  const exchange = (port: number, raw: string) =>
    new Promise<{ head: string; body: unknown }>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.from(raw, 'utf8')));
      let data = '';
      socket.on('data', (c: Buffer) => (data += c.toString('utf8')));
      socket.on('end', () => {
        const [head, body] = data.split('\r\n\r\n');
        resolve({ head: head!, body: JSON.parse(body!) as unknown });
      });
      socket.on('error', reject);
    });

  it('answer 400 in the contract shape saying what is wrong: framing (smuggling), a header, the method', async () => {
    const { app, sink } = build(undefined);
    const running = await runService({
      app,
      port: 0,
      host: '127.0.0.1',
      logger: createLogger({ service: 'x', stdout: sink }),
    });
    try {
      const framing = /Content-Length and Transfer-Encoding/;
      for (const [raw, message] of [
        // Request smuggling: a proxy and the service could read different bodies (RFC 9112 §6.1).
        ['POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', framing],
        ['POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd', framing],
        ['GET /health HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n', /header field/],
        ['BREW /health HTTP/1.1\r\nHost: x\r\n\r\n', /method/],
        ['GET /health?q=привет HTTP/1.1\r\nHost: x\r\n\r\n', /percent-encode the URL/],
      ] as const) {
        const res = await exchange(running.port, raw);
        expect(res.head, raw).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
        expect(res.body).toEqual({ error: 'Bad Request', message: expect.stringMatching(message), statusCode: 400 });
      }
    } finally {
      await running.shutdown('test');
    }
  });
});
