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

async function setup(env: Record<string, string> = {}): Promise<{ secretary: FakeSecretary; communicator: Running }> {
  const secretary = await startFakeSecretary();
  open.push(secretary);
  const sink = await startSmtpSink();
  open.push(sink);
  const communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    dovecot,
    user: USERS[0]!.user,
    sink,
    env: { TRUSTED_AUTHSERV_ID: TRUSTED, ...env },
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

// Session 32: a /test mail the secretary decides calls the model twice (guesser, system analyst), and the secretary
// lets the communicator's service key through unlimited; so a client key drove the model without any limit
// through POST /test. A decided mail now takes one unit of its caller's key's TEST_RATE_LIMIT_PER_KEY_PER_MINUTE.
describe("POST /test and the caller key's budget", () => {
  const consumedKeys = (secretary: FakeSecretary) => secretary.consumeCalls.map((call) => call.keys.join(','));

  it('answers 429 with Retry-After past TEST_RATE_LIMIT_PER_KEY_PER_MINUTE, without asking the secretary', async () => {
    const { secretary, communicator } = await setup({ TEST_RATE_LIMIT_PER_KEY_PER_MINUTE: '2' });
    for (let i = 0; i < 2; i += 1) {
      const res = await postRaw(communicator, 'client', buildEmail({ messageId: `<b${i}@client.test>` }));
      expect(res.status, `mail ${i}`).toBe(200);
    }
    expect(secretary.dryRunCalls).toHaveLength(2);
    const refused = await postRaw(communicator, 'client', buildEmail({ messageId: '<b2@client.test>' }));
    expect(refused.status).toBe(429);
    expect(openapi.responseProblems('testMail', 429, refused.body)).toEqual([]);
    expect(refused.body.message).toMatch(
      /Too many POST \/test mails for this API key \(2 per minute\); retry in \d+ s/,
    );
    const retryAfter = Number(refused.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(secretary.dryRunCalls).toHaveLength(2);
    // The budget is the key's: another key has its own, and the draw is named by the key, not by the mail's sender.
    expect((await postRaw(communicator, 'admin', buildEmail({ messageId: '<b3@client.test>' }))).status).toBe(200);
    const keys = consumedKeys(secretary);
    expect(keys).toHaveLength(4);
    expect(new Set(keys.slice(0, 3)).size).toBe(1);
    expect(keys[0]).toMatch(/^test:key:client:/);
    expect(keys[3]).toMatch(/^test:key:admin:/);
    expect(keys[3]).not.toBe(keys[0]);
    expect(secretary.consumeCalls.every((call) => call.limit === 2 && call.window_seconds === 60)).toBe(true);
  });

  it('takes nothing for a mail the secretary is not asked about (skipped, unreadable)', async () => {
    const { secretary, communicator } = await setup({ TEST_RATE_LIMIT_PER_KEY_PER_MINUTE: '1' });
    const automatic = buildEmail({ messageId: '<auto@client.test>', headers: ['Auto-Submitted: auto-replied'] });
    for (let i = 0; i < 3; i += 1) {
      const res = await postRaw(communicator, 'client', automatic);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ outcome: 'skipped', reason: 'automatic' });
    }
    // Not a mail (no sender to answer), and a mail with no text: our request for text, without the secretary.
    const noSender = await postRaw(communicator, 'client', Buffer.from('not a mail at all'));
    expect(noSender.status).toBe(200);
    expect(noSender.body).toMatchObject({ outcome: 'skipped', reason: 'unreadable', detail: 'no_sender' });
    const empty = await request(communicator.app)
      .post('/test')
      .set(bearer('client'))
      .send({ from: 'anna@client.test', subject: '', text: ' ' });
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({ outcome: 'decided', reason: 'unreadable' });
    expect(secretary.consumeCalls).toHaveLength(0);
    expect((await postRaw(communicator, 'client', buildEmail({ messageId: '<d1@client.test>' }))).status).toBe(200);
    expect((await postRaw(communicator, 'client', buildEmail({ messageId: '<d2@client.test>' }))).status).toBe(429);
  });

  it('answers 503 while the budget cannot be asked, never an unchecked dry run; 0 switches the limit off', async () => {
    const { secretary, communicator } = await setup();
    secretary.rateLimitsDown = true;
    const down = await postRaw(communicator, 'client', buildEmail({ messageId: '<u1@client.test>' }));
    expect(down.status).toBe(503);
    expect(openapi.responseProblems('testMail', 503, down.body)).toEqual([]);
    expect(secretary.dryRunCalls).toHaveLength(0);

    // A secretary that cannot draw (404: older than the route; 400: refuses the request) is not the secretary refusing
    // the mail: 503, never `refused` with our standard message.
    secretary.rateLimitsDown = false;
    for (const status of [404, 400]) {
      secretary.rateLimitsFailure = status;
      const failed = await postRaw(communicator, 'client', buildEmail({ messageId: `<f${status}@client.test>` }));
      expect(failed.status, `consume answered ${status}`).toBe(503);
      expect(openapi.responseProblems('testMail', 503, failed.body)).toEqual([]);
    }
    expect(secretary.dryRunCalls).toHaveLength(0);

    const off = await setup({ TEST_RATE_LIMIT_PER_KEY_PER_MINUTE: '0' });
    for (let i = 0; i < 3; i += 1)
      expect((await postRaw(off.communicator, 'client', buildEmail({ messageId: `<o${i}@client.test>` }))).status).toBe(
        200,
      );
    expect(off.secretary.consumeCalls).toHaveLength(0);
    expect(off.secretary.dryRunCalls).toHaveLength(3);
  });
});
