// Security review s31, finding 2: POST /test took client keys but asked the secretary with the communicator's
// service key, so a client key saw the admin's plan, learnt whether a Message-ID had been answered ("duplicate")
// and had its own forged Authentication-Results believed. A client key now gets the client's view; an admin key
// keeps the whole pass. Real Dovecot and SMTP listener (the email channel on), the fake secretary recording what
// it is asked (the secretary's own redaction of `dry_run_view: "client"`: services/secretary/test/dry-run-client-view.test.ts).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { bearer } from '@workemon/testkit/api-keys';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink } from '@workemon/testkit/smtp-sink';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { buildEmail, openapi, startCommunicator, type Running } from './harness.js';

const USERS = [{ user: 'desk-view@example.test', password: 'pw-view' }];
const TRUSTED = 'mx.corp.test';
/** What the receiving server would add for a DMARC-aligned mail from client.test; here the caller wrote it. */
const FORGED_RESULTS = `Authentication-Results: ${TRUSTED}; dmarc=pass header.from=client.test; dkim=pass header.d=client.test`;

let dovecot: DovecotServer;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];

beforeAll(async () => {
  dovecot = await startDovecot(USERS);
});
afterAll(async () => {
  await dovecot?.destroy();
});
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

async function setup(): Promise<{ secretary: FakeSecretary; communicator: Running }> {
  const secretary = await startFakeSecretary();
  open.push(secretary);
  const sink = await startSmtpSink();
  open.push(sink);
  const communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    dovecot,
    user: USERS[0]!.user,
    sink,
    env: { TRUSTED_AUTHSERV_ID: TRUSTED },
  });
  open.push(communicator);
  return { secretary, communicator };
}

const postRaw = (communicator: Running, keyClass: 'client' | 'admin', raw: Buffer) =>
  request(communicator.app).post('/test').set(bearer(keyClass)).set('Content-Type', 'message/rfc822').send(raw);

describe('POST /test with a client key', () => {
  it('never reports duplicate: an answered Message-ID is treated as unseen (an admin key still sees duplicate)', async () => {
    const { secretary, communicator } = await setup();
    secretary.handled.set('mail:<answered-1@client.test>', { outcome: 'sent' });
    const raw = buildEmail({ messageId: '<answered-1@client.test>' });

    const client = await postRaw(communicator, 'client', raw);
    expect(client.status).toBe(200);
    expect(openapi.responseProblems('testMail', 200, client.body)).toEqual([]);
    expect(client.body).toMatchObject({ dry_run: true, outcome: 'decided', message_id: '<answered-1@client.test>' });
    expect(client.body.reason).toBeUndefined();
    // Nor does the answer take longer or shorter for an answered one: the delivery record is not even read.
    const lookups = secretary.deliveryCalls;
    await postRaw(communicator, 'client', buildEmail({ messageId: '<never-seen@client.test>' }));
    expect(secretary.deliveryCalls).toBe(lookups);

    const admin = await postRaw(communicator, 'admin', raw);
    expect(admin.status).toBe(200);
    expect(admin.body).toMatchObject({ dry_run: true, outcome: 'skipped', reason: 'duplicate' });
  });

  it("does not believe the mail's own Authentication-Results and asks the secretary for the client's view", async () => {
    const { secretary, communicator } = await setup();
    const raw = buildEmail({ messageId: '<forged-1@client.test>', headers: [FORGED_RESULTS] });

    const client = await postRaw(communicator, 'client', raw);
    expect(client.status).toBe(200);
    expect(secretary.dryRunCalls).toHaveLength(1);
    expect(secretary.dryRunCalls[0]).toMatchObject({
      username: 'ivan@client.test',
      sender_authentication: { verified: false, method: 'none' },
      dry_run_view: 'client',
    });

    // The same mail with an admin key: the whole pass, as the mailbox would run it (the header is believed).
    const admin = await postRaw(communicator, 'admin', raw);
    expect(admin.status).toBe(200);
    expect(secretary.dryRunCalls).toHaveLength(2);
    expect(secretary.dryRunCalls[1]).toMatchObject({ sender_authentication: { verified: true, method: 'dmarc' } });
    expect(secretary.dryRunCalls[1]).not.toHaveProperty('dry_run_view');
  });

  it('a JSON mail from a client key is asked in the client view too', async () => {
    const { secretary, communicator } = await setup();
    const res = await request(communicator.app)
      .post('/test')
      .set(bearer('client'))
      .send({ from: 'anna@client.test', subject: 'Пароль', text: 'Сбросьте пароль', message_id: '<j1@client.test>' });
    expect(res.status).toBe(200);
    expect(secretary.dryRunCalls[0]).toMatchObject({
      dry_run_view: 'client',
      sender_authentication: { verified: false },
    });
  });
});
