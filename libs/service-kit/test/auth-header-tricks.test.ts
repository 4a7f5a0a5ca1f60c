// Header tricks an attacker on the network tries against `auth.require`: two Authorization fields (a proxy and
// the service may each read a different one), scheme casing and whitespace, keys in places other than the
// Authorization field. Real HTTP: supertest cannot send one field twice, node:http can.
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import winston from 'winston';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConfigError,
  readApiKeys,
  createAuthenticator,
  createLogger,
  createMetrics,
  createServiceApp,
  type ApiKeys,
} from '@workemon/service-kit';

const keys: ApiKeys = {
  client: [{ name: 'web', key: 'client-key-1234567890' }],
  admin: [{ name: 'alice', key: 'admin-key-1234567890' }],
  service: [],
};
const ADMIN = 'Bearer admin-key-1234567890';

let server: Server;
let port: number;

beforeAll(async () => {
  const logger = createLogger({ service: 't', stdout: new winston.transports.Console({ silent: true }) });
  // The service class has no keys and is open, as on loopback without SERVICE_API_KEYS.
  const auth = createAuthenticator(keys, { open: ['service'] });
  const app = createServiceApp({ service: 't', version: '1', logger, metrics: createMetrics('t') }, (a) => {
    a.get('/admin', auth.require(['admin']), (_req, res) => res.json(res.locals['principal']));
    a.get('/open', auth.require(['service']), (_req, res) => res.json(res.locals['principal']));
    a.post('/admin-write', auth.require(['admin']), (req, res) => res.json(req.body));
    a.post('/open-write', auth.require(['service']), (req, res) => res.json(req.body));
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

/** GET `path` with `authorization` sent as it is: an array sends the field once per value. */
function get(path: string, authorization?: string | string[]): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as unknown }));
    });
    req.on('error', reject);
    if (authorization !== undefined) req.setHeader('Authorization', authorization);
    req.end();
  });
}

describe('Authorization header tricks', () => {
  it('refuses two Authorization fields with 401, whichever of them holds the valid key', async () => {
    for (const pair of [
      [ADMIN, 'Bearer garbage'],
      ['Bearer garbage', ADMIN],
      [ADMIN, ADMIN],
      [ADMIN, ''],
    ]) {
      const res = await get('/admin', pair);
      expect(res.status, pair.join(' | ')).toBe(401);
      expect(res.body).toMatchObject({ error: 'Unauthorized', statusCode: 401 });
      expect((res.body as { message: string }).message).toMatch(/one Authorization/);
    }
    // An open class does not make two fields acceptable either: the caller meant to send a key.
    expect((await get('/open', ['Bearer a', 'Bearer b'])).status).toBe(401);
  });

  it('takes the scheme in any case and spaces or tabs around the key (RFC 9110 §11.1), one field', async () => {
    for (const header of [ADMIN, 'bearer admin-key-1234567890', 'BEARER \t admin-key-1234567890 \t']) {
      const res = await get('/admin', header);
      expect(res.status, header).toBe(200);
      expect(res.body).toMatchObject({ keyClass: 'admin', name: 'alice' });
    }
  });

  it('never takes a key from the query string, another field or a second token', async () => {
    for (const path of ['/admin?api_key=admin-key-1234567890', '/admin?access_token=admin-key-1234567890'])
      expect((await get(path)).status).toBe(401);
    for (const header of [
      'Bearer admin-key-1234567890 admin-key-1234567890',
      'Bearer admin-key-1234567890, Bearer x',
      'Basic YWxpY2U6YWRtaW4ta2V5LTEyMzQ1Njc4OTA=',
      'admin-key-1234567890',
      'Bearer admin-key-1234567890\u0000',
    ])
      expect((await get('/admin', header).catch(() => ({ status: 401 }))).status, header).toBe(401);
  });
});

describe('an open class (loopback, no keys) and web pages', () => {
  /** GET `path` with the given headers (Host among them, as a browser after DNS rebinding sends it). */
  function getWith(path: string, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, method: 'GET', headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as unknown }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('lets a keyless call through only from this machine’s own clients', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, 'localhost', `[::1]:${port}`]) {
      const res = await getWith('/open', { Host: host });
      expect(res.status, host).toBe(200);
      expect(res.body).toMatchObject({ keyClass: 'service', name: 'anonymous' });
    }
    // curl and the services' own clients send no Origin; a same-origin page of the local UI is fine too.
    expect((await getWith('/open', { Host: 'localhost', Origin: `http://localhost:${port}` })).status).toBe(200);
    expect((await getWith('/open', { Host: 'localhost', 'Sec-Fetch-Site': 'same-origin' })).status).toBe(200);
    expect((await getWith('/open', { Host: 'localhost', Referer: `http://127.0.0.1:${port}/ui` })).status).toBe(200);
  });

  it('refuses a keyless call from a web page of another site or through DNS rebinding, with 401', async () => {
    const refused: Record<string, string>[] = [
      // DNS rebinding: the attacker's name resolves to 127.0.0.1, the browser sends it as Host.
      { Host: `rebind.attacker.example:${port}` },
      { Host: '127.0.0.1.nip.io' },
      { Host: 'localhost', Origin: 'https://attacker.example' },
      { Host: 'localhost', Origin: 'null' },
      { Host: 'localhost', 'Sec-Fetch-Site': 'cross-site' },
      { Host: 'localhost', 'Sec-Fetch-Site': 'same-site' },
      // A browser that sends neither Origin nor Fetch Metadata still names the page it came from.
      { Host: 'localhost', Referer: 'https://attacker.example/page.html' },
      // ingress-nginx behind another proxy: the client's address, in a field of its own.
      { Host: 'localhost', 'X-Original-Forwarded-For': '203.0.113.7' },
    ];
    for (const headers of refused) {
      const res = await getWith('/open', headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.body).toMatchObject({ error: 'Unauthorized', statusCode: 401 });
      expect((res.body as { message: string }).message).toMatch(/Authorization: Bearer/);
    }
    // A key still works from anywhere: the check is about calls that carry none.
    const keyed = await getWith('/admin', { Host: 'workemon.example', Authorization: ADMIN });
    expect(keyed.status).toBe(200);
  });
});

describe('a body sent without a key', () => {
  /** `method path` with a raw body and headers; answers status and JSON body. */
  function send(
    method: string,
    path: string,
    body: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: { statusCode?: number; message?: string } }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, method, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) as { statusCode?: number } }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('is refused with 401 before it is judged: broken JSON, an unknown charset, too large', async () => {
    const json = { 'Content-Type': 'application/json' };
    for (const [what, body, headers] of [
      ['broken JSON', '{"name": ', json],
      ['a JSON string', '"x"', json],
      ['an unknown charset', '{}', { 'Content-Type': 'application/json; charset=koi8-r' }],
      ['over the 1 MB limit', `{"x":"${'a'.repeat(1_100_000)}"}`, json],
      ['broken JSON, wrong key', '{', { ...json, Authorization: 'Bearer not-a-key' }],
    ] as const) {
      const res = await send('POST', '/admin-write', body, headers);
      expect(res.status, what).toBe(401);
      expect(res.body.statusCode, what).toBe(401);
    }
    // With a valid key of another class: 403, still before the body is judged.
    const other = await send('POST', '/admin-write', '{', { ...json, Authorization: 'Bearer client-key-1234567890' });
    expect(other.status).toBe(403);
  });

  it('is judged as before once the key is good: 400 broken JSON, 413 too large, 415 charset', async () => {
    const json = { 'Content-Type': 'application/json', Authorization: ADMIN };
    expect((await send('POST', '/admin-write', '{"name": ', json)).status).toBe(400);
    expect((await send('POST', '/admin-write', `{"x":"${'a'.repeat(1_100_000)}"}`, json)).status).toBe(413);
    const charset = { ...json, 'Content-Type': 'application/json; charset=koi8-r' };
    expect((await send('POST', '/admin-write', '{}', charset)).status).toBe(415);
    const good = await send('POST', '/admin-write', '{"name":"x"}', json);
    expect(good.status).toBe(200);
    expect(good.body).toEqual({ name: 'x' });
    // An open class (loopback, no keys) judges the body as soon as the keyless call is let through.
    expect((await send('POST', '/open-write', '{', { 'Content-Type': 'application/json' })).status).toBe(400);
  });
});

describe('keys copied from the documentation', () => {
  it('are refused at start, naming the variable and the entry, never echoing the value', () => {
    for (const [variable, value] of [
      ['SERVICE_API_KEYS', 'stack:long-random-key'],
      ['API_KEYS', 'web:<generated-key>'],
      ['ADMIN_API_KEYS', 'ops:…'],
      ['API_KEYS', 'good-key-0123456789abcdef,LONG-RANDOM-KEY'],
    ] as const) {
      let problems: string[] = [];
      try {
        readApiKeys({ [variable]: value });
      } catch (err) {
        problems = (err as ConfigError).problems;
      }
      expect(problems, value).toHaveLength(1);
      expect(problems[0]).toMatch(new RegExp(`^${variable}: entry \\d is a placeholder`));
      expect(problems[0]).not.toMatch(/random-key|generated-key/i);
    }
    expect(readApiKeys({ SERVICE_API_KEYS: 'stack:Zr8m1kP0y4Qb7x2V9nT6cW3eH5jL8sA1' }).service).toHaveLength(1);
    // A generated key may hold < or > (password generators with symbols): only a whole <…> is a placeholder.
    expect(readApiKeys({ API_KEYS: 'ops:Xk9<p2!vQz>7mL#4tR8wB' }).client).toHaveLength(1);
  });
});
