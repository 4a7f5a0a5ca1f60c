// Unknown query parameters are a 400 on every keyed operation of the communicator, before anything is read or
// sent: POST /send, and POST /test whether its body is JSON or a raw mail (read before the JSON validation).
// The inbound webhooks are the providers' own callbacks (SendGrid's `?key=`): not judged against the contract.
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOpenApiDocument } from '@workemon/contracts';
import { TEST_KEYS } from '@workemon/testkit/api-keys';
import { operationsOf } from '@workemon/testkit/route-probe';
import { startFakeSecretary } from './fake-secretary.js';
import { startCommunicator } from './harness.js';

let secretary: Awaited<ReturnType<typeof startFakeSecretary>>;
let communicator: Awaited<ReturnType<typeof startCommunicator>>;

beforeAll(async () => {
  secretary = await startFakeSecretary();
  // No channel configured: a request that got past validation would answer 501 or 503, never 400.
  communicator = await startCommunicator({ secretaryUrl: secretary.url });
});
afterAll(async () => {
  await communicator?.stop();
  await secretary?.close();
});

const UNKNOWN = /^Parameter 'zz_not_declared' is not a parameter of this operation \(it takes no query parameters\)$/;

describe('communicator: unknown query parameters', () => {
  it('are a 400 on every keyed operation of the contract', async () => {
    const problems: string[] = [];
    const keyed = operationsOf(loadOpenApiDocument('communicator')).filter(
      (o) => o.allowed.length > 0 && !o.providerAuthenticated,
    );
    for (const op of keyed) {
      const agent = request(communicator.app);
      const res = await agent[op.method as 'post'](`${op.path}?zz_not_declared=1`)
        .set('Authorization', `Bearer ${TEST_KEYS[op.allowed[0]!]}`)
        .send({ channel: 'tg', to: '1', text: 'probe', from: 'a@b.test' });
      if (res.status !== 400 || !UNKNOWN.test(String(res.body?.message)))
        problems.push(`${op.method.toUpperCase()} ${op.path}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    expect(problems).toEqual([]);
    expect(keyed.map((o) => o.operationId).sort()).toEqual(['send', 'testMail']);
  });

  it('POST /test with a raw mail is a 400 too, and is not run', async () => {
    const mail = 'From: a@b.test\r\nSubject: x\r\n\r\nhello\r\n';
    const res = await request(communicator.app)
      .post('/test?zz_not_declared=1')
      .set('Authorization', `Bearer ${TEST_KEYS.client}`)
      .set('Content-Type', 'message/rfc822')
      .send(mail);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'Bad Request', statusCode: 400 });
    expect(res.body.message).toMatch(UNKNOWN);
    // Without it, the same mail reaches the dry run (501 here: the email channel is off).
    const plain = await request(communicator.app)
      .post('/test')
      .set('Authorization', `Bearer ${TEST_KEYS.client}`)
      .set('Content-Type', 'message/rfc822')
      .send(mail);
    expect(plain.status).toBe(501);
  });
});
