// Every route of the communicator, probed from its OpenAPI document: without a key, with an unknown key, with a
// key of every class it refuses (403) and of every class it takes. A route the document lacks fails the test.
import { afterEach, describe, expect, it } from 'vitest';
import request from 'supertest';
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

  it('the inbound webhooks take no Workemon key: a key changes nothing, the provider proof is what counts', async () => {
    const secretary = await startFakeSecretary();
    open.push(secretary);
    const communicator = await startCommunicator({
      secretaryUrl: secretary.url,
      env: {
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: '9',
        SMTP_SECURE: 'false',
        SMTP_USER: 'bot@example.test',
        SMTP_PASSWORD: 'smtp-password',
        MAILGUN_WEBHOOK_SIGNING_KEY: 'mailgun-signing-key-for-the-probe',
        SENDGRID_WEBHOOK_SECRET: 'sendgrid-secret-for-the-probe',
        SES_SNS_TOPIC_ARNS: 'arn:aws:sns:eu-west-1:123456789012:probe',
      },
    });
    open.push(communicator);
    const { problems, probed } = await probeEveryRoute({
      target: communicator.app,
      document: loadOpenApiDocument('communicator'),
      keys: TEST_KEYS,
      contract: createOpenApi(loadOpenApiDocument('communicator')),
      bodies: { send: { channel: 'tg', to: '1', text: 'probe' }, testMail: { from: 'a@b.test', text: 'probe' } },
    });
    expect(problems).toEqual([]);
    const webhooks = probed.filter((p) => p.path.startsWith('/webhook/'));
    expect(webhooks.map((p) => [p.operationId, p.providerAuthenticated])).toEqual([
      ['mailgunInbound', true],
      ['sendgridInbound', true],
      ['sesInbound', true],
    ]);
    // With every Workemon key, the SendGrid webhook still wants its own secret; nothing reached the secretary.
    // (The probe's dry runs of POST /test may have looked a Message-ID up: only what this request does counts.)
    const before = { calls: secretary.calls.length, deliveryCalls: secretary.deliveryCalls };
    const res = await request(communicator.app)
      .post('/webhook/sendgrid')
      .set('Authorization', `Bearer ${TEST_KEYS.service}`)
      .send({});
    expect(res.status).toBe(401);
    expect(secretary.calls).toHaveLength(before.calls);
    expect(secretary.deliveryCalls).toBe(before.deliveryCalls);
  });
});
