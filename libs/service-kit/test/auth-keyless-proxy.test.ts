// A keyless call on an open class (`npm start` without keys, on loopback) must come from a client on this machine:
// a loopback TCP peer, a loopback Host, and none of a proxy's forwarding fields. A reverse proxy on the same host
// (nginx `proxy_pass http://127.0.0.1:8000` sends `Host: 127.0.0.1:8000` and, as usually configured,
// X-Forwarded-For / X-Real-IP) would otherwise open every admin route to the network. Real HTTP; a call from
// another machine is a real node:http server fed through a stand-in socket whose peer is not loopback (no test
// machine is guaranteed a second interface).
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Duplex } from 'node:stream';
import winston from 'winston';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAuthenticator,
  createLogger,
  createMetrics,
  createServiceApp,
  isLoopbackAddress,
  isLoopbackHost,
} from '@workemon/service-kit';

type Answer = { status: number; body: Record<string, unknown> };

// As on `npm start` with no keys: every class open; the admin and service keys alike.
const auth = createAuthenticator({}, { open: ['client', 'admin', 'service'] });
const app = createServiceApp(
  {
    service: 't',
    version: '1',
    logger: createLogger({ service: 't', stdout: new winston.transports.Console({ silent: true }) }),
    metrics: createMetrics('t'),
    auth,
    bodyNeedsKey: true,
    healthChecks: [
      { name: 'db', critical: false, run: async () => ({ status: 'ok', detail: 'postgres://db.internal:5432' }) },
    ],
  },
  (a) => {
    a.get('/admin', auth.require(['admin']), (_req, res) => res.json(res.locals['principal']));
    a.post('/admin', auth.require(['admin']), (req, res) => res.json({ got: req.body as unknown }));
  },
);

let server: Server;
let port: number;
beforeAll(async () => {
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** `method path` over real TCP to 127.0.0.1 with exactly `headers` (Host among them). */
function call(method: string, path: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * One HTTP/1.1 request to the app's real node:http server over a stand-in socket whose peer is `remoteAddress`:
 * what a connection from another machine (a service listening beyond loopback) looks like to the app.
 */
function callFrom(remoteAddress: string, head: string): Promise<Answer> {
  return new Promise((resolve) => {
    let raw = '';
    const socket = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, done) {
        raw += chunk.toString('utf8');
        done();
      },
      final(done) {
        done();
        const [statusLine, ...rest] = raw.split('\r\n');
        const text = rest.join('\r\n').split('\r\n\r\n').slice(1).join('\r\n\r\n');
        resolve({ status: Number(statusLine!.split(' ')[1]), body: JSON.parse(text) as Record<string, unknown> });
      },
    });
    Object.defineProperty(socket, 'remoteAddress', { value: remoteAddress });
    Object.assign(socket, { setTimeout: () => socket, setNoDelay: () => socket, setKeepAlive: () => socket });
    server.emit('connection', socket);
    // `Connection: close`: the server ends the socket after its answer (the readable side stays open until then, as
    // a client's does: ending it first would look like a client that went away).
    socket.push(`${head}Connection: close\r\n\r\n`);
  });
}

describe('a keyless call on an open class', () => {
  it('passes from a local client: loopback peer and Host, no proxy fields', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const res = await call('GET', '/admin', { Host: host });
      expect(res.status, host).toBe(200);
      expect(res.body).toMatchObject({ keyClass: 'admin', name: 'anonymous', anonymous: true });
    }
  });

  it('is 401 when a proxy forwarded it, whatever its Host says (nginx proxy_pass http://127.0.0.1:…)', async () => {
    const proxied: Record<string, string>[] = [
      { 'X-Forwarded-For': '198.51.100.7' },
      { 'X-Real-IP': '198.51.100.7' },
      { 'X-Forwarded-Host': 'workemon.example' },
      { Forwarded: 'for=198.51.100.7;proto=https' },
      // A proxy that claims its client was local is still a proxy.
      { 'X-Forwarded-For': '127.0.0.1' },
      { 'X-Forwarded-Proto': 'https' },
      { Via: '1.1 proxy.example' },
      { 'True-Client-IP': '198.51.100.7' },
      { 'CF-Connecting-IP': '198.51.100.7' },
      { 'X-Client-IP': '198.51.100.7' },
    ];
    for (const fields of proxied) {
      const res = await call('GET', '/admin', { Host: `127.0.0.1:${port}`, ...fields });
      expect(res.status, JSON.stringify(fields)).toBe(401);
      expect(res.body).toMatchObject({ error: 'Unauthorized', statusCode: 401 });
      expect(res.body['message']).toMatch(/not through a proxy/);
      expect(res.body['message']).toMatch(/Authorization: Bearer <key>/);
    }
  });

  it('does not have its body read when proxied: 401, not the body parser’s 400', async () => {
    const headers = { Host: `127.0.0.1:${port}`, 'Content-Type': 'application/json' };
    expect((await call('POST', '/admin', headers, '{"a":1}')).body).toEqual({ got: { a: 1 } });
    const res = await call('POST', '/admin', { ...headers, 'X-Forwarded-For': '198.51.100.7' }, '{"broken":');
    expect(res.status).toBe(401);
  });

  it('is 401 over HTTP/1.0, as nginx forwards by default (proxy_http_version 1.0, no forwarding field)', async () => {
    // nginx's default proxy_pass request, byte for byte: HTTP/1.0, its upstream's Host, Connection: close.
    const res = await callFrom('127.0.0.1', 'GET /admin HTTP/1.0\r\nHost: 127.0.0.1:8000\r\n');
    expect(res.status).toBe(401);
    expect(res.body['message']).toMatch(/not through a proxy/);
    expect((await callFrom('127.0.0.1', 'GET /admin HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n')).status).toBe(200);
  });

  it('is 401 from a peer that is not loopback, even with Host 127.0.0.1 and no proxy fields', async () => {
    for (const peer of ['192.0.2.10', '::ffff:192.0.2.10', '2001:db8::1', '128.0.0.1']) {
      const res = await callFrom(peer, 'GET /admin HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n');
      expect(res.status, peer).toBe(401);
      expect(res.body).toMatchObject({ error: 'Unauthorized', statusCode: 401 });
    }
    // The same request from a loopback peer (IPv4, IPv6, IPv4-mapped, anywhere in 127/8) passes.
    for (const peer of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.3.4.5']) {
      const res = await callFrom(peer, 'GET /admin HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n');
      expect(res.status, peer).toBe(200);
    }
  });
});

describe('GET /health details for a keyless caller', () => {
  it('are shown to a local client only, not through a proxy nor to another machine', async () => {
    const local = await call('GET', '/health', { Host: `localhost:${port}` });
    expect(local.body['checks']).toMatchObject({ db: { status: 'ok', detail: 'postgres://db.internal:5432' } });
    const proxied = await call('GET', '/health', { Host: `127.0.0.1:${port}`, 'X-Real-IP': '198.51.100.7' });
    const remote = await callFrom('192.0.2.10', 'GET /health HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n');
    for (const res of [proxied, remote]) {
      expect(res.status).toBe(200);
      expect(res.body['checks']).toEqual({ db: { status: 'ok', latency_ms: expect.any(Number) } });
    }
  });
});

describe('loopback addresses', () => {
  it('are 127.0.0.0/8, ::1 and their IPv4-mapped form; names are not addresses', () => {
    for (const a of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1', '::FFFF:127.8.8.8'])
      expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['localhost', '192.0.2.1', '::ffff:192.0.2.1', '::', '0.0.0.0', '128.0.0.1', '::2'])
      expect(isLoopbackAddress(a), a).toBe(false);
    expect(isLoopbackHost('[::ffff:127.0.0.2]')).toBe(true);
  });
});
