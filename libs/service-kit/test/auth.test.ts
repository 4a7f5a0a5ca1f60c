import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import express from 'express';
import request from 'supertest';
import winston from 'winston';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  authForStart,
  createAuthenticator,
  createLogger,
  createMetrics,
  createServiceApp,
  isLoopbackHost,
  keyFingerprint,
  keyId,
  readApiKeys,
  type ApiKeys,
} from '@workemon/service-kit';

const dir = mkdtempSync(join(tmpdir(), 'auth-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const keys: ApiKeys = {
  client: [{ name: 'web', key: 'client-key-1234567890' }],
  admin: [{ name: 'alice', key: 'admin-key-1234567890' }],
  service: [{ name: 'svc', key: 'service-key-1234567890' }],
};

function appWith(auth: ReturnType<typeof createAuthenticator>) {
  const logger = createLogger({ service: 't', stdout: new winston.transports.Console({ silent: true }) });
  return createServiceApp({ service: 't', version: '1', logger, metrics: createMetrics('t') }, (app) => {
    app.get('/clients', auth.require(['client', 'admin']), (_req, res) => res.json(res.locals['principal']));
    app.get('/admin', auth.require(['admin']), (_req, res) => res.json(res.locals['principal']));
  });
}

describe('createAuthenticator', () => {
  it('401 without a key, with a malformed header or an unknown key; 403 for a valid key of another class', async () => {
    const app = appWith(createAuthenticator(keys));
    const none = await request(app).get('/admin');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.body).toEqual({
      error: 'Unauthorized',
      message: 'Missing API key: send Authorization: Bearer <key> with an admin key',
      statusCode: 401,
    });
    expect((await request(app).get('/admin').set('Authorization', 'Basic YTpi')).status).toBe(401);
    const unknown = await request(app).get('/admin').set('Authorization', 'Bearer admin-key-123456789');
    expect(unknown.status).toBe(401);
    expect(unknown.body.message).toBe('Invalid API key');
    const wrongClass = await request(app).get('/admin').set('Authorization', 'Bearer client-key-1234567890');
    expect(wrongClass.status).toBe(403);
    expect(wrongClass.body).toEqual({
      error: 'Forbidden',
      message: 'This route needs an admin key; the key given is a client key',
      statusCode: 403,
    });
    expect((await request(app).get('/clients').set('Authorization', 'Bearer service-key-1234567890')).status).toBe(403);
  });

  it('sets res.locals.principal to the class and name of the key', async () => {
    const app = appWith(createAuthenticator(keys));
    const admin = await request(app).get('/clients').set('Authorization', 'bearer admin-key-1234567890');
    expect(admin.body).toEqual({ keyClass: 'admin', name: 'alice', keyId: keyId('admin-key-1234567890') });
    const client = await request(app).get('/clients').set('Authorization', 'Bearer client-key-1234567890');
    expect(client.body).toEqual({ keyClass: 'client', name: 'web', keyId: keyId('client-key-1234567890') });
    // The key's identifier: 64 bits of its SHA-256, never the key.
    expect(client.body.keyId).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(keyId('client-key-1234567890')).not.toBe(keyId('admin-key-1234567890'));
  });

  it('a class without keys refuses everything, unless it is open (loopback), then a call without a key is anonymous', async () => {
    const closed = appWith(createAuthenticator({ admin: keys.admin }));
    expect((await request(closed).get('/clients')).status).toBe(401);
    const open = appWith(createAuthenticator({ admin: keys.admin }, { open: ['client'] }));
    expect((await request(open).get('/clients')).body).toEqual({
      keyClass: 'client',
      name: 'anonymous',
      anonymous: true,
    });
    // An empty bearer token (an unset shell variable in `-H "Authorization: Bearer $KEY"`) is no key.
    expect((await request(open).get('/clients').set('Authorization', 'Bearer ')).body).toEqual({
      keyClass: 'client',
      name: 'anonymous',
      anonymous: true,
    });
    expect((await request(closed).get('/clients').set('Authorization', 'Bearer ')).status).toBe(401);
    // An open class does not open the admin route, and a wrong key is still an error.
    expect((await request(open).get('/admin')).status).toBe(401);
    expect((await request(open).get('/clients').set('Authorization', 'Bearer nope')).status).toBe(401);
    // A class with keys is never open.
    const notOpen = appWith(createAuthenticator(keys, { open: ['client'] }));
    expect((await request(notOpen).get('/clients')).status).toBe(401);
  });

  it('names the caller in the access log (ECS user.name), never the key', async () => {
    const lines: string[] = [];
    const sink = new winston.transports.Stream({
      stream: new Writable({
        objectMode: true,
        write(info: unknown, _enc, done) {
          lines.push(JSON.stringify(info));
          done();
        },
      }),
    });
    const logger = createLogger({ service: 't', stdout: sink, secrets: ['admin-key-1234567890'] });
    const app = createServiceApp({ service: 't', version: '1', logger, metrics: createMetrics('t') }, (a) => {
      a.get('/admin', createAuthenticator(keys).require(['admin']), (_req, res) => res.json({}));
    });
    await request(app).get('/admin').set('Authorization', 'Bearer admin-key-1234567890');
    const access = lines.map((l) => JSON.parse(l) as { message: string; user?: { name: string } });
    expect(access.find((l) => l.message === 'GET /admin 200')?.user).toEqual({ name: 'alice' });
    expect(lines.join('\n')).not.toContain('admin-key-1234567890');
  });

  it('needs at least one class per route', () => {
    expect(() => createAuthenticator(keys).require([])).toThrow(/at least one/);
  });
});

describe('readApiKeys', () => {
  it('reads name:key and bare keys from the lists; a bare key is named by its fingerprint', () => {
    const read = readApiKeys({ API_KEYS: 'web:abc, plain-key', ADMIN_API_KEYS: ['alice:x:y'], SERVICE_API_KEYS: '' });
    expect(read.client).toEqual([
      { name: 'web', key: 'abc' },
      { name: keyFingerprint('plain-key'), key: 'plain-key' },
    ]);
    expect(keyFingerprint('plain-key')).toMatch(/^sha256:[0-9a-f]{8}$/);
    expect(keyFingerprint('plain-key')).not.toContain('plain');
    // Split at the first ':' only: the key may hold colons.
    expect(read.admin).toEqual([{ name: 'alice', key: 'x:y' }]);
    expect(read.service).toEqual([]);
  });

  it('adds the keys of *_API_KEYS_FILE (one per line, # comments) to the list', () => {
    const file = join(dir, 'admin.keys');
    writeFileSync(file, '# operators\nbob:file-key-1\n\ncarol:file-key-2\n');
    const read = readApiKeys({ ADMIN_API_KEYS: 'alice:env-key', ADMIN_API_KEYS_FILE: file });
    expect(read.admin.map((k) => k.name)).toEqual(['alice', 'bob', 'carol']);
    const serviceFile = join(dir, 'service.keys');
    writeFileSync(serviceFile, 'only-in-file');
    expect(readApiKeys({ SERVICE_API_KEYS_FILE: serviceFile }).service.map((k) => k.key)).toEqual(['only-in-file']);
  });

  it('names every problem without echoing key material', () => {
    let error: unknown;
    try {
      readApiKeys({
        API_KEYS: 'bad/name:secret-one,ok:',
        ADMIN_API_KEYS_FILE: join(dir, 'missing.keys'),
        SERVICE_API_KEYS: 'same-secret-two',
        ADMIN_API_KEYS: 'same-secret-two',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).problems.join('\n');
    expect(text).toMatch(/API_KEYS: entry 1 has an invalid name/);
    expect(text).toMatch(/API_KEYS: entry 2 \(ok\) has no key/);
    expect(text).toMatch(/ADMIN_API_KEYS_FILE: cannot read .*missing\.keys \(ENOENT\)/);
    expect(text).toMatch(/SERVICE_API_KEYS: a key is also listed in ADMIN_API_KEYS/);
    expect(text).not.toContain('secret-one');
    expect(text).not.toContain('same-secret-two');
  });
});

describe('authForStart', () => {
  it('beyond loopback refuses a served class without keys, naming the variables to set', () => {
    let error: unknown;
    try {
      authForStart({
        host: '0.0.0.0',
        keys: { ...keys, admin: [], service: [] },
        served: ['client', 'admin', 'service'],
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).problems.join('\n');
    expect(text).toContain('ADMIN_API_KEYS');
    expect(text).toContain('SERVICE_API_KEYS_FILE');
    expect(text).not.toMatch(/^API_KEYS/m);
  });

  it('beyond loopback starts when every served class has keys (unserved classes may be empty)', () => {
    const { auth, warning } = authForStart({
      host: '10.0.0.5',
      keys: { client: [], admin: [], service: [{ name: 'svc', key: 'Zr8m1kP0y4Qb7x2V9nT6cW3eH5jL8sA1' }] },
      served: ['service'],
    });
    expect(warning).toBeUndefined();
    expect(auth.open).toEqual([]);
  });

  it('on loopback opens a class without keys and says so once', () => {
    const { auth, warning } = authForStart({
      host: '127.0.0.1',
      keys: { client: [], admin: [], service: keys.service },
      served: ['client', 'admin', 'service'],
    });
    expect(auth.open).toEqual(['client', 'admin']);
    expect(warning).toMatch(/API_KEYS, ADMIN_API_KEYS not set: client, admin routes are open/);
  });

  it('starts with a key shorter than 16 characters wherever it listens, naming it weak by variable and position, never the key', () => {
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      const { auth, warning } = authForStart({
        host,
        keys: {
          client: [
            { name: 'web', key: 'Zr8m1kP0y4Qb7x2V9nT6cW3eH5jL8sA1' },
            { name: 'sha256:0d1c2b3a', key: 'short-key-12345' },
          ],
          admin: [{ name: 'alice', key: 'test-key' }],
          service: [{ name: 'svc', key: 'x'.repeat(32) }],
        },
        served: ['client', 'admin', 'service'],
      });
      expect(auth.open, host).toEqual([]);
      expect(warning, host).toBe(
        'API_KEYS: key 2 is weak: shorter than 16 characters; generate one with openssl rand -base64 32; ' +
          'ADMIN_API_KEYS: key 1 (alice) is weak: shorter than 16 characters; generate one with openssl rand -base64 32',
      );
      for (const secret of ['short-key-12345', 'test-key', 'sha256:0d1c2b3a']) expect(warning).not.toContain(secret);
    }
  });

  it('starts with a key of 16 to 31 characters, and the warning names it (not the key); 32 and more: no warning', () => {
    const strong = 'Zr8m1kP0y4Qb7x2V9nT6cW3eH5jL8sA1';
    const { warning } = authForStart({
      host: '0.0.0.0',
      keys: {
        client: [{ name: 'web', key: strong }],
        admin: [{ name: 'alice', key: 'sixteen-chars-ok' }],
        service: [{ name: 'svc', key: strong.slice(1) }],
      },
      served: ['client', 'admin', 'service'],
    });
    expect(warning).toBe(
      'ADMIN_API_KEYS: key 1 (alice) is shorter than 32 characters; generate one with openssl rand -base64 32; ' +
        'SERVICE_API_KEYS: key 1 (svc) is shorter than 32 characters; generate one with openssl rand -base64 32',
    );
    expect(warning).not.toContain('sixteen-chars-ok');
    const strongOnly = authForStart({
      host: '0.0.0.0',
      keys: { client: [{ name: 'web', key: strong }], admin: [], service: [] },
      served: ['client'],
    });
    expect(strongOnly.warning).toBeUndefined();
  });

  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]'])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '192.168.1.2', 'example.test', '128.0.0.1'])
      expect(isLoopbackHost(host), host).toBe(false);
  });
});

describe('the service kit app', () => {
  it('keeps express usable with an authenticator outside createServiceApp too', async () => {
    const app = express();
    app.get('/x', createAuthenticator(keys).require(['service']), (_req, res) => res.json(res.locals['principal']));
    const res = await request(app).get('/x').set('Authorization', 'Bearer service-key-1234567890');
    expect(res.body).toEqual({ keyClass: 'service', name: 'svc', keyId: keyId('service-key-1234567890') });
  });
});
