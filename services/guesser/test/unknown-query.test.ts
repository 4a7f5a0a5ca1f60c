// Unknown query parameters are a 400 on every operation of the guesser, before any LLM call; the parameters of its
// contract (the seed's GET /get-context) still pass.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { loadOpenApiDocument } from '@workemon/contracts';
import { TEST_KEYS, TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import { operationsOf } from '@workemon/testkit/route-probe';
import { startGuesser } from './start-guesser.js';

// The provider is unreachable: a request that got past validation would answer 503, not 400.
const { app } = startGuesser({
  ...TEST_KEY_ENV,
  LLM_PROVIDER: 'openai',
  LLM_BASE_URL: 'http://127.0.0.1:9',
  LLM_API_KEY: 'k',
  LLM_MODEL: 'm',
});
const SERVICE = `Bearer ${TEST_KEYS.service}`;

describe('guesser: unknown query parameters', () => {
  it('are a 400 on every keyed operation of the contract', async () => {
    const problems: string[] = [];
    for (const op of operationsOf(loadOpenApiDocument('guesser')).filter((o) => o.allowed.length > 0)) {
      let req = request(app)[op.method as 'get'](`${op.path}?zz_not_declared=1`).set('Authorization', SERVICE);
      if (op.method === 'post') req = req.send({ username: 'u', department: 'd', position: 'p', request: 'r' });
      const res = await req;
      if (res.status !== 400 || !String(res.body?.message).startsWith("Parameter 'zz_not_declared' is not a parameter"))
        problems.push(`${op.method.toUpperCase()} ${op.path}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    expect(problems).toEqual([]);
  });

  it('a misspelt one on GET /get-context is named; the declared ones reach the provider (503 here)', async () => {
    const fields = { username: 'smirnovanton', department: 'finance', position: 'analyst', request: 'Нужен отчёт' };
    const misspelt = await request(app)
      .get('/get-context')
      .set('Authorization', SERVICE)
      .query({ ...fields, usrname: 'x' });
    expect(misspelt.status).toBe(400);
    expect(misspelt.body).toEqual({
      error: 'Bad Request',
      statusCode: 400,
      message:
        "Parameter 'usrname' is not a parameter of this operation (known: username, department, position, request)",
    });
    const declared = await request(app).get('/get-context').set('Authorization', SERVICE).query(fields);
    expect(declared.status).toBe(503);
  });
});
