// Every route of the guesser, probed from its OpenAPI document: without a key, with an unknown key, with a key of
// every class it refuses (403) and of every class it takes (only the secretary's service key). A route the
// document lacks fails the test.
import { describe, expect, it } from 'vitest';
import { loadOpenApiDocument } from '@workemon/contracts';
import { TEST_KEYS, TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import { createOpenApi } from '@workemon/service-kit';
import { probeEveryRoute, undocumentedRoutes } from '@workemon/testkit/route-probe';
import { startGuesser } from './start-guesser.js';

describe('guesser authentication, route by route', () => {
  it('takes only a service key on its LLM routes; /health stays open; every route is documented', async () => {
    // The provider is unreachable: a probe that gets through ends at validation (400), before any LLM call.
    const app = startGuesser({
      ...TEST_KEY_ENV,
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: 'http://127.0.0.1:9',
      LLM_API_KEY: 'k',
      LLM_MODEL: 'm',
    }).app;
    const document = loadOpenApiDocument('guesser');
    expect(undocumentedRoutes(app, document)).toEqual([]);
    const { problems, probed } = await probeEveryRoute({
      target: app,
      document,
      keys: TEST_KEYS,
      contract: createOpenApi(document),
    });
    expect(problems).toEqual([]);
    expect(probed.find((p) => p.operationId === 'getContext')?.allowed).toEqual(['service']);
    expect(probed.filter((p) => p.allowed.length === 0).map((p) => p.operationId)).toEqual(['getHealth']);
  });
});
