// End to end: the communicator against the REAL secretary (its buildApp on a real Postgres database) and the
// real guesser and system-analyst apps with a fake LLM behind them (startLlmServices), over real Dovecot,
// a real SMTP listener and the fake Bot API.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '@workemon/testkit';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
// Brings in the typing of inject('postgresUrl').
import type {} from '@workemon/testkit/global-setup';
import { startRealSecretary, type RealSecretary } from './real-secretary.js';
import { buildEmail, startCommunicator, type Running } from '../../services/communicator/test/harness.js';

let secretary: RealSecretary;
let dovecot: DovecotServer;
let sink: SmtpSink;
let tg: FakeTelegram;
let communicator: Running;

beforeAll(async () => {
  secretary = await startRealSecretary(inject('postgresUrl'), 'communicator_e2e');
  dovecot = await startDovecot();
  sink = await startSmtpSink();
  tg = await startFakeTelegram();
  communicator = await startCommunicator({ secretaryUrl: secretary.listening.url, dovecot, sink, telegram: tg });
});

afterAll(async () => {
  await communicator?.stop();
  await tg?.close();
  await sink?.close();
  await dovecot?.destroy();
  await secretary?.close();
});

describe('with the real secretary', () => {
  it('answers an email, and asks and then answers in one email thread', async () => {
    await dovecot.append(
      buildEmail({
        messageId: '<e2e-1@client.test>',
        body: 'Я хочу получать аналитику о операциях наших кошельков за каждый месяц\r\n',
      }),
    );
    const [first] = await sink.waitForMails(1);
    expect(first!.header('in-reply-to')).toBe('<e2e-1@client.test>');
    expect(first!.parsed.text?.trim().length).toBeGreaterThan(0);

    await dovecot.append(buildEmail({ messageId: '<e2e-2@client.test>', subject: 'Отчёт', body: 'Нужен отчёт\r\n' }));
    const [, question] = await sink.waitForMails(2);
    expect(question!.parsed.text).toContain('Уточните');
    await dovecot.append(
      buildEmail({
        messageId: '<e2e-3@client.test>',
        subject: question!.parsed.subject,
        inReplyTo: question!.parsed.messageId,
        references: `<e2e-2@client.test> ${question!.parsed.messageId}`,
        body: 'Отчёт о продажах по регионам за прошлый квартал, пожалуйста\r\n\r\n> Уточните\r\n',
      }),
    );
    const mails = await sink.waitForMails(3);
    expect(mails[2]!.header('in-reply-to')).toBe('<e2e-3@client.test>');
    // The secretary joined the thread: its answer is built on the first request, the question and the reply.
    expect(mails[2]!.parsed.text).toMatch(/^(?!Уточните)/);
    expect(mails[2]!.parsed.text).toContain('Нужен отчёт');
    expect(mails[2]!.parsed.text).toContain('Отчёт о продажах по регионам');
    expect(mails).toHaveLength(3);
  });

  it('asks and then answers in one Telegram chat', async () => {
    tg.pushMessage({ text: 'Нужен отчёт', from: { id: 9001, username: 'sidorov' } });
    const [question] = await tg.waitForSent(1);
    expect(question!.text).toContain('Уточните');
    tg.pushMessage({
      text: 'Отчёт о продажах по регионам за прошлый квартал',
      from: { id: 9001, username: 'sidorov' },
    });
    const sent = await tg.waitForSent(2);
    expect(sent[1]!.text).toMatch(/^(?!Уточните)/);
    expect(sent[1]!.text).toContain('Нужен отчёт');
    expect(sent[1]!.text).toContain('Отчёт о продажах по регионам');
  });

  it('a communicator whose service key the secretary refuses polls nothing and says why on /health', async () => {
    // Its own bot (its own lease), and a service key the secretary does not know.
    const otherBot = await startFakeTelegram({ token: '777001:OTHER-bot-token' });
    const stray = await startCommunicator({
      secretaryUrl: secretary.listening.url,
      telegram: otherBot,
      env: { SERVICE_API_KEYS: 'stray:not-a-key-of-the-secretary-0123456789' },
      awaitLeases: false,
    });
    try {
      type Health = { status: string; checks: Record<string, { status: string; detail?: string }> };
      // The details are for admin and service keys (s27): the stray's own service key.
      const readHealth = async () =>
        (await (
          await fetch(`${stray.http.url}/health`, {
            headers: { Authorization: 'Bearer not-a-key-of-the-secretary-0123456789' },
          })
        ).json()) as Health;
      await waitFor(async () => (await readHealth()).checks['telegram']?.detail?.startsWith('not polling'), {
        what: 'the lease refused',
      });
      const health = await readHealth();
      expect(health.status).toBe('degraded');
      expect(health.checks.telegram).toMatchObject({
        status: 'degraded',
        detail:
          'not polling: cannot take the lease telegram:777001 from the secretary (secretary answered 401: Invalid API ' +
          "key): give the communicator a key of the secretary's SERVICE_API_KEYS",
      });
      otherBot.pushMessage({ text: 'Нужен отчёт', from: { id: 9002, username: 'petrov' } });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(otherBot.callsOf('getUpdates')).toHaveLength(0);
    } finally {
      await stray.stop();
      await otherBot.close();
    }
  });
});
