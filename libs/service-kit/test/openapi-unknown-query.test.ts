// Unknown query parameters are a 400 naming the parameter on every operation, in the contract's error shape: a
// misspelt `dry-run=true` silently ignored would run the real request, a misspelt filter would answer every row.
import { describe, expect, it } from 'vitest';
import type { Response } from 'express';
import request from 'supertest';
import winston from 'winston';
import type { OpenApiDocument } from '@workemon/contracts';
import { createLogger, createMetrics, createOpenApi, createServiceApp, validated } from '../src/index.js';

const document: OpenApiDocument = {
  openapi: '3.0.3',
  info: { title: 'test', version: '1' },
  paths: {
    '/filtered': {
      get: {
        operationId: 'filtered',
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string' } },
          { name: 'dry_run', in: 'query', schema: { type: 'boolean' } },
        ],
      },
    },
    '/bare': { get: { operationId: 'bare' }, post: { operationId: 'barePost' } },
    '/items/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer' } }],
      get: { operationId: 'item' },
    },
  },
};

const openapi = createOpenApi(document);
const app = createServiceApp(
  {
    service: 't',
    version: '1',
    logger: createLogger({ service: 't', stdout: new winston.transports.Console({ silent: true }) }),
    metrics: createMetrics('t'),
  },
  (a) => {
    const echo = (_req: unknown, res: Response) => res.json(validated(res));
    a.get('/filtered', openapi.validate('filtered'), echo);
    a.get('/bare', openapi.validate('bare'), echo);
    a.post('/bare', openapi.validate('barePost'), echo);
    a.get('/items/:id', openapi.validate('item'), echo);
  },
);

describe('unknown query parameters', () => {
  it('are a 400 naming the parameter and the known ones, in the contract shape', async () => {
    for (const misspelt of ['dry-run', 'dryRun', 'status[]', 'Status']) {
      const res = await request(app)
        .get('/filtered')
        .query({ status: 'ok', [misspelt]: 'true' });
      expect(res.status, misspelt).toBe(400);
      expect(res.body).toEqual({
        error: 'Bad Request',
        statusCode: 400,
        message: `Parameter '${misspelt}' is not a parameter of this operation (known: status, dry_run)`,
      });
      expect(res.headers['x-workemon-error-code']).toBe('invalid_parameter');
    }
  });

  it('are a 400 on operations that declare no query parameters, GET and POST alike', async () => {
    const get = await request(app).get('/bare?username=x');
    expect(get.status).toBe(400);
    expect(get.body.message).toBe(
      "Parameter 'username' is not a parameter of this operation (it takes no query parameters)",
    );
    const post = await request(app).post('/bare?dry_run=true').send({});
    expect(post.status).toBe(400);
    expect(post.body.message).toMatch(/^Parameter 'dry_run' is not a parameter/);
    // Path parameters are not query parameters: `?id=` is unknown here.
    expect((await request(app).get('/items/3?id=4')).status).toBe(400);
  });

  it('name a hostile parameter cleaned and cut short', async () => {
    const res = await request(app).get(`/bare?${'x'.repeat(500)}%0D%0Ay=1`);
    expect(res.status).toBe(400);
    expect(res.body.message).toBe(
      `Parameter '${'x'.repeat(64)}…' is not a parameter of this operation (it takes no query parameters)`,
    );
  });

  it('leave declared ones alone', async () => {
    const res = await request(app).get('/filtered').query({ status: 'ok', dry_run: 'true' });
    expect(res.status).toBe(200);
    expect(res.body.query).toEqual({ status: 'ok', dry_run: true });
    expect((await request(app).get('/bare')).status).toBe(200);
    expect((await request(app).get('/items/3')).body.params).toEqual({ id: 3 });
  });

  it('take a boolean flag given with no value as neither true nor false: 400, never a silent false', async () => {
    for (const path of ['/filtered?dry_run', '/filtered?dry_run=']) {
      const res = await request(app).get(path);
      expect(res.status, path).toBe(400);
      expect(res.body).toMatchObject({ error: 'Bad Request', statusCode: 400 });
      expect(res.body.message).toMatch(/dry_run/);
    }
    // An empty string parameter still counts as absent.
    expect((await request(app).get('/filtered?status=')).body.query).toEqual({});
  });
});
