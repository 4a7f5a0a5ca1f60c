// Mailgun replay tokens across communicator replicas (docs/webhooks.md, "Mailgun tokens across replicas"): two
// communicators share the REAL secretary (its buildApp on a real Postgres database, the real guesser and
// system-analyst apps with a fake LLM behind them) over real HTTP; replies go to a real SMTP listener.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadOpenApiDocument } from '@workemon/contracts';
import { createOpenApi } from '@workemon/service-kit';
import { smtpSinkEnv, startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { listen } from '@workemon/testkit';
import { mailgunPayload, mailgunSignature, type WebhookBody } from '@workemon/testkit/webhook-payloads';
// Brings in the typing of inject('postgresUrl').
import type {} from '@workemon/testkit/global-setup';
import { startRealSecretary, type RealSecretary } from './real-secretary.js';
import { buildEmail, startCommunicator, type Running } from '../../services/communicator/test/harness.js';

const MAILGUN_KEY = 'key-mailgun-replicas-signing-0123456789';
const communicatorApi = createOpenApi(loadOpenApiDocument('communicator'));

let secretary: RealSecretary;
let sink: SmtpSink;
let replicaA: Running;
let replicaB: Running;

const replicaEnv = () => ({
  ...smtpSinkEnv(sink),
  MAILGUN_WEBHOOK_SIGNING_KEY: MAILGUN_KEY,
  MAILGUN_WEBHOOK_MAX_AGE: '5m',
});

beforeAll(async () => {
  secretary = await startRealSecretary(inject('postgresUrl'), 'communicator_webhook_tokens');
  sink = await startSmtpSink();
  replicaA = await startCommunicator({ secretaryUrl: secretary.listening.url, env: replicaEnv() });
  replicaB = await startCommunicator({ secretaryUrl: secretary.listening.url, env: replicaEnv() });
});

afterAll(async () => {
  await replicaA?.stop();
  await replicaB?.stop();
  await sink?.close();
  await secretary?.close();
});

async function post(replica: Running, payload: WebhookBody) {
  const res = await fetch(`${replica.http.url}/webhook/mailgun`, {
    method: 'POST',
    headers: { 'Content-Type': payload.contentType },
    body: payload.body,
  });
  const body = (await res.json()) as Record<string, unknown>;
  expect(communicatorApi.responseProblems('mailgunInbound', res.status, body)).toEqual([]);
  return { status: res.status, body, retryAfter: res.headers.get('retry-after') };
}

const tokenRows = () =>
  secretary.database
    .knex('webhook_tokens')
    .select<Array<{ provider: string; token: string; reserved_at: Date; expires_at: Date }>>();

describe('Mailgun tokens shared by two communicator replicas', () => {
  it('take a captured signature once: the same token with another mail is refused on either replica', async () => {
    const signature = mailgunSignature(MAILGUN_KEY);
    const genuine = mailgunPayload({
      signingKey: MAILGUN_KEY,
      signature,
      mime: buildEmail({
        messageId: '<tok-genuine@client.test>',
        body: 'Нужен доступ к VPN для нового сотрудника\r\n',
      }),
    });
    const forged = mailgunPayload({
      signingKey: MAILGUN_KEY,
      signature,
      mime: buildEmail({ messageId: '<tok-forged@client.test>', body: 'Выдайте доступ к бухгалтерии\r\n' }),
    });
    const sent = sink.mails.length;
    // Both at once, one to each replica: the secretary's reservation decides, whichever comes first.
    const answers = await Promise.all([post(replicaA, genuine), post(replicaB, forged)]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 401]);
    const winner = answers.find((a) => a.status === 200)!;
    expect(winner.body['outcome']).toBe('replied');
    const [reply] = (await sink.waitForMails(sent + 1)).slice(sent);
    expect(reply!.header('in-reply-to')).toBe(winner.body['message_id']);

    // Afterwards the other mail is refused with that token on either replica; the answered one, posted again (Mailgun
    // retrying after a lost 200), is a duplicate there: nothing is answered twice.
    const loser = winner === answers[0] ? forged : genuine;
    const won = winner === answers[0] ? genuine : forged;
    for (const replica of [replicaA, replicaB]) {
      expect((await post(replica, loser)).status).toBe(401);
      const again = await post(replica, won);
      expect([again.status, again.body['outcome']]).toEqual([200, 'duplicate']);
    }
    expect(sink.mails).toHaveLength(sent + 1);

    const rows = (await tokenRows()).filter((r) => r.token === signature.token);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.provider).toBe('mailgun');
    // Kept for twice MAILGUN_WEBHOOK_MAX_AGE: the token is useless once its signed timestamp is stale.
    expect(rows[0]!.expires_at.getTime() - rows[0]!.reserved_at.getTime()).toBe(600_000);
  });

  it('purge expired reservations when the next token is reserved', async () => {
    const old = mailgunPayload({ signingKey: MAILGUN_KEY, mime: buildEmail({ messageId: '<tok-old@client.test>' }) });
    expect((await post(replicaA, old)).body['outcome']).toBe('replied');
    expect((await tokenRows()).map((r) => r.token)).toContain(old.token);
    await secretary.database
      .knex('webhook_tokens')
      .where({ token: old.token })
      .update({ expires_at: secretary.database.knex.raw(`now() - interval '1 second'`) });

    const next = mailgunPayload({ signingKey: MAILGUN_KEY, mime: buildEmail({ messageId: '<tok-next@client.test>' }) });
    expect((await post(replicaB, next)).body['outcome']).toBe('replied');
    const tokens = (await tokenRows()).map((r) => r.token);
    expect(tokens).toContain(next.token);
    expect(tokens).not.toContain(old.token);
  });

  it('fail closed while the secretary is down (503, nothing reserved or sent) and take the retry once it is back', async () => {
    const payload = mailgunPayload({
      signingKey: MAILGUN_KEY,
      mime: buildEmail({ messageId: '<tok-down@client.test>', body: 'Не работает принтер на третьем этаже\r\n' }),
    });
    const sent = sink.mails.length;
    const port = secretary.listening.port;
    await secretary.listening.close();
    try {
      const down = await post(replicaA, payload);
      expect(down.status).toBe(503);
      expect(Number(down.retryAfter)).toBeGreaterThan(0);
      expect(sink.mails).toHaveLength(sent);
    } finally {
      secretary.listening = await listen(secretary.app, port);
    }
    expect((await tokenRows()).map((r) => r.token)).not.toContain(payload.token);

    // Mailgun's retry: the same post, same token; on the other replica too.
    const retried = await post(replicaB, payload);
    expect(retried.body['outcome']).toBe('replied');
    await sink.waitForMails(sent + 1);
    expect(sink.mails).toHaveLength(sent + 1);
  });
});
