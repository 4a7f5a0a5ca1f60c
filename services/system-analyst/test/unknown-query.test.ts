// Unknown query parameters are a 400 on every operation of the system analyst (both spellings of its path), before
// any LLM call; the parameters of its contract (the seed's GET /prepare-analititcs) still pass.
import request from 'supertest';
import winston from 'winston';
import { describe, expect, it } from 'vitest';
import { loadOpenApiDocument } from '@workemon/contracts';
import { createLogger } from '@workemon/service-kit';
import { TEST_KEYS, TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import { operationsOf } from '@workemon/testkit/route-probe';
import { buildApp, loadConfig } from '../src/index.js';

// The provider is unreachable: a request that got past validation would answer 503, not 400.
const app = buildApp({
  config: loadConfig({
    ...TEST_KEY_ENV,
    LLM_PROVIDER: 'openai',
    LLM_BASE_URL: 'http://127.0.0.1:9',
    LLM_API_KEY: 'k',
    LLM_MODEL: 'm',
    LLM_MAX_RETRIES: '0',
  }),
  logger: createLogger({ service: 'system-analyst', stdout: new winston.transports.Console({ silent: true }) }),
});
const SERVICE = `Bearer ${TEST_KEYS.service}`;

describe('system analyst: unknown query parameters', () => {
  it('are a 400 on every keyed operation of the contract', async () => {
    const problems: string[] = [];
    const probed = operationsOf(loadOpenApiDocument('system-analyst')).filter((o) => o.allowed.length > 0);
    for (const op of probed) {
      let req = request(app)[op.method as 'get'](`${op.path}?zz_not_declared=1`).set('Authorization', SERVICE);
      if (op.method === 'post') req = req.send({ context: 'c', request: 'r' });
      const res = await req;
      if (res.status !== 400 || !String(res.body?.message).startsWith("Parameter 'zz_not_declared' is not a parameter"))
        problems.push(`${op.method.toUpperCase()} ${op.path}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    expect(problems).toEqual([]);
    expect(probed.map((o) => `${o.method} ${o.path}`)).toEqual(
      expect.arrayContaining(['get /prepare-analititcs', 'get /prepare-analytics', 'post /prepare-analititcs']),
    );
  });

  it('the declared ones (context, preparedcontext, request) reach the provider on both paths (503 here)', async () => {
    for (const path of ['/prepare-analititcs', '/prepare-analytics']) {
      for (const query of [
        { context: 'finance', request: 'Нужен отчёт' },
        { preparedcontext: 'finance', request: 'Нужен отчёт' },
      ]) {
        const res = await request(app).get(path).set('Authorization', SERVICE).query(query);
        expect(res.status, `${path} ${JSON.stringify(query)}`).toBe(503);
      }
      const misspelt = await request(app)
        .get(path)
        .set('Authorization', SERVICE)
        .query({ context: 'finance', request: 'r', prepared_context: 'x' });
      expect(misspelt.status).toBe(400);
      expect(misspelt.body.message).toBe(
        "Parameter 'prepared_context' is not a parameter of this operation (known: context, preparedcontext, request)",
      );
    }
  });
});
