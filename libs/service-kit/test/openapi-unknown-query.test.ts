// Unknown query parameters: ignored by default, a 400 naming the parameter on operations marked
// `x-reject-unknown-query: true`, or everywhere with `createOpenApi(doc, {rejectUnknownQuery: true})`.
import { describe, expect, it } from 'vitest';
import express, { type ErrorRequestHandler } from 'express';
import request from 'supertest';
import type { OpenApiDocument } from '@workemon/contracts';
import { createOpenApi, isAppError, validated, type OpenApiOptions } from '../src/index.js';

const document: OpenApiDocument = {
  openapi: '3.0.3',
  info: { title: 'test', version: '1' },
  paths: {
    '/lenient': {
      get: { operationId: 'lenient', parameters: [{ name: 'status', in: 'query', schema: { type: 'string' } }] },
    },
    '/strict': {
      get: {
        operationId: 'strict',
        'x-reject-unknown-query': true,
        parameters: [{ name: 'status', in: 'query', schema: { type: 'string' } }],
      },
    },
  },
};

function app(options?: OpenApiOptions) {
  const openapi = createOpenApi(document, options);
  const a = express();
  for (const op of ['lenient', 'strict']) {
    a.get(`/${op}`, openapi.validate(op), (_req, res) => {
      res.json(validated(res).query);
    });
  }
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    res.status(isAppError(err) ? err.status : 500).json({ message: (err as Error).message });
  };
  a.use(onError);
  return a;
}

describe('unknown query parameters', () => {
  it('are dropped by default and a 400 on an operation marked x-reject-unknown-query', async () => {
    const lenient = await request(app()).get('/lenient').query({ status: 'ok', rule: '1' });
    expect(lenient.status).toBe(200);
    expect(lenient.body).toEqual({ status: 'ok' });
    const strict = await request(app()).get('/strict').query({ status: 'ok', rule: '1' });
    expect(strict.status).toBe(400);
    expect(strict.body.message).toBe("Parameter 'rule' is not a parameter of this operation (known: status)");
    expect((await request(app()).get('/strict').query({ status: 'ok' })).status).toBe(200);
  });

  it('are a 400 everywhere with rejectUnknownQuery', async () => {
    const res = await request(app({ rejectUnknownQuery: true }))
      .get('/lenient')
      .query({ rule: '1' });
    expect(res.status).toBe(400);
    expect(res.body.message).toContain("'rule'");
  });
});
