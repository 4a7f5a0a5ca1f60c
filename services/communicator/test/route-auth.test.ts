// Every route of the communicator, probed from its OpenAPI document: without a key, with an unknown key, with a
// key of every class it refuses (403) and of every class it takes. A route the document lacks fails the test.
import { afterEach, describe, expect, it } from 'vitest';
import { loadOpenApiDocument } from '@workemon/contracts';
import { TEST_KEYS } from '@workemon/testkit/api-keys';
import { createOpenApi } from '@workemon/service-kit';
import { probeEveryRoute, undocumentedRoutes } from '@workemon/testkit/route-probe';
import { startFakeSecretary } from './fake-secretary.js';
import { startCommunicator } from './harness.js';

const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

describe('communicator authentication, route by route', () => {
  it('POST /send takes only a service key, POST /test a client or admin key; /health stays open; every route is documented', async () => {
    const secretary = await startFakeSecretary();
    open.push(secretary);
    // No channel configured: a probe that gets through is refused with 503 or 400, and nothing is sent.
    const communicator = await startCommunicator({ secretaryUrl: secretary.url });
    open.push(communicator);
    const document = loadOpenApiDocument('communicator');
    expect(undocumentedRoutes(communicator.app, document)).toEqual([]);
    const { problems, probed } = await probeEveryRoute({
      target: communicator.app,
      document,
      keys: TEST_KEYS,
      contract: createOpenApi(document),
      bodies: { send: { channel: 'tg', to: '1', text: 'probe' }, testMail: { from: 'a@b.test', text: 'probe' } },
    });
    expect(problems).toEqual([]);
    expect(probed.find((p) => p.operationId === 'send')?.allowed).toEqual(['service']);
    expect(probed.find((p) => p.operationId === 'getHealth')?.allowed).toEqual([]);
    expect(probed.find((p) => p.operationId === 'testMail')?.allowed).toEqual(['client', 'admin']);
  });
});
