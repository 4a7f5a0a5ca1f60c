import { describe, expect, it } from 'vitest';
import request from 'supertest';
import type { Response } from 'express';
import winston from 'winston';
import { loadOpenApiDocument } from '@workemon/contracts';
import {
  createLogger,
  createMetrics,
  createOpenApi,
  createServiceApp,
  principalOf,
  createAuthenticator,
  sanitizeDeep,
  sanitizeText,
  validated,
} from '@workemon/service-kit';

describe('sanitizeText / sanitizeDeep', () => {
  it('drops C0 controls but tab and newline, normalises CR, replaces lone surrogates, keeps the rest', () => {
    expect(sanitizeText('a\u0000b\u0001c\u001Fd\u007Fe')).toBe('abcd\u007Fe');
    expect(sanitizeText('x\ty\r\nz\rw\n')).toBe('x\ty\nz\nw\n');
    expect(sanitizeText('lone \uD800 and \uDC00, pair \uD83D\uDE00')).toBe('lone \uFFFD and \uFFFD, pair 😀');
    expect(sanitizeText('Привет\u200B')).toBe('Привет\u200B');
    const once = sanitizeText('a\u0000\r\n\uDBFF');
    expect(sanitizeText(once)).toBe(once);
  });

  it('cleans each C0 control and lone surrogate even alone in clean text (the quick scan lets none through)', () => {
    for (let code = 0; code < 0x20; code++) {
      const expected = code === 0x09 || code === 0x0a ? String.fromCharCode(code) : code === 0x0d ? '\n' : '';
      expect(sanitizeText(`ok${String.fromCharCode(code)}ok`), `U+${code.toString(16)}`).toBe(`ok${expected}ok`);
    }
    for (const lone of ['\uD800', '\uDBFF', '\uDC00', '\uDFFF'])
      expect(sanitizeText(`ok${lone}ok`), lone.charCodeAt(0).toString(16)).toBe('ok\uFFFDok');
    expect(sanitizeText('Привет, мир 😀 \u007F\u00A0')).toBe('Привет, мир 😀 \u007F\u00A0');
  });

  it('cleans every string of a JSON value, keys included, and leaves other values alone', () => {
    expect(sanitizeDeep({ 'k\u0000ey': ['v\u0000', 1, null, true, { n: 'x\u0007' }] })).toEqual({
      key: ['v', 1, null, true, { n: 'x' }],
    });
  });
});

describe('the edge: openapi.validate and the authenticator', () => {
  const openapi = createOpenApi(loadOpenApiDocument('guesser'));
  const logger = createLogger({ service: 'kit-test', stdout: new winston.transports.Console({ silent: true }) });
  const auth = createAuthenticator({ service: [{ name: 'svc', key: 'svc-key' }] }, { open: ['client'] });
  const app = createServiceApp(
    { service: 'kit-test', version: 't', logger, metrics: createMetrics('kit-test') },
    (a) => {
      const handler = (_req: unknown, res: Response) =>
        res.json({ ...validated(res), principal: principalOf(res) ?? null });
      a.get('/get-context', auth.require(['service']), openapi.validate('getContext'), handler);
      a.post('/get-context', auth.require(['client']), openapi.validate('getContextPost'), handler);
    },
  );

  it('cleans the query before validating it, and names the principal of a matched key', async () => {
    const res = await request(app)
      .get('/get-context')
      .set('Authorization', 'Bearer svc-key')
      .query({ username: 'an\u0000ton', department: 'IT', position: 'analyst', request: 'help\u0000 me' });
    expect(res.status).toBe(200);
    expect(res.body.query).toMatchObject({ username: 'anton', request: 'help me' });
    expect(res.body.principal).toMatchObject({ keyClass: 'service', name: 'svc' });
    const empty = await request(app)
      .get('/get-context')
      .set('Authorization', 'Bearer svc-key')
      .query({ username: 'anton', department: 'IT', position: 'analyst', request: '\u0000\u0000' });
    expect(empty.status).toBe(400);
    expect(empty.body.message).toBe("Parameter 'request' is required");
  });

  it('cleans a JSON body; an open class (no keys) lets an anonymous caller through', async () => {
    const res = await request(app)
      .post('/get-context')
      .send({ username: 'anton', department: 'I\u0000T', position: 'analyst', request: 'line1\r\nline2\uDFFF' });
    expect(res.status).toBe(200);
    expect(res.body.body).toMatchObject({ department: 'IT', request: 'line1\nline2\uFFFD' });
    expect(res.body.principal).toEqual({ keyClass: 'client', name: 'anonymous', anonymous: true });
  });
});
