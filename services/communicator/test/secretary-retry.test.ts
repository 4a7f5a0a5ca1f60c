// A secretary that is restarting (unreachable, or 503 while its database comes back) is called again within
// seconds by both channels, however long RETRY_BASE_DELAY is, and such failures do not use up MAX_ATTEMPTS.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startFakeTelegram } from '@workemon/testkit/fake-telegram';
import { startSmtpSink } from '@workemon/testkit/smtp-sink';
import { secretaryRetry } from '../src/secretary-retry.js';
import { startFakeSecretary } from './fake-secretary.js';
import { buildEmail, startCommunicator, waitUntil } from './harness.js';
import { AppError } from '@workemon/service-kit';

const mailbox = { user: 'retry-bot@example.test', password: 'pw-retry' };
let dovecot: DovecotServer;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];

beforeAll(async () => {
  dovecot = await startDovecot([mailbox]);
});
afterAll(async () => {
  await dovecot?.destroy();
});
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

describe('secretary retry schedule', () => {
  it('503 and unreachable: seconds, not counted; 429: Retry-After; 504: RETRY_BASE_DELAY doubling, counted', () => {
    const unavailable = new AppError('upstream_unavailable', 503, 'down');
    for (let n = 1; n <= 8; n += 1) {
      const r = secretaryRetry(unavailable, n, 60_000);
      expect(r.counts).toBe(false);
      expect(r.delayMs).toBeLessThanOrEqual(5000);
    }
    expect(secretaryRetry(unavailable, 1, 60_000).delayMs).toBeLessThanOrEqual(500);
    expect(secretaryRetry(new Error('ECONNRESET'), 1, 60_000).counts).toBe(false);
    const limited = new AppError('rate_limited', 429, 'slow down', { headers: { 'Retry-After': '7' } });
    expect(secretaryRetry(limited, 1, 60_000)).toEqual({ delayMs: 7000, counts: false });
    const timeout = secretaryRetry(new AppError('upstream_timeout', 504, 'slow LLM'), 2, 1000);
    expect(timeout.counts).toBe(true);
    expect(timeout.delayMs).toBeGreaterThanOrEqual(1000);
  });
});

describe('both channels after a secretary outage', () => {
  it(
    'answer within seconds of the secretary coming back, with RETRY_BASE_DELAY at 60 s',
    { timeout: 60_000 },
    async () => {
      const sink = await startSmtpSink();
      const tg = await startFakeTelegram();
      const secretary = await startFakeSecretary();
      open.push(sink, tg, secretary);
      secretary.down('analysis');
      const communicator = await startCommunicator({
        secretaryUrl: secretary.url,
        dovecot,
        user: mailbox.user,
        sink,
        telegram: tg,
        env: { RETRY_BASE_DELAY: '60s', MAX_ATTEMPTS: '2' },
      });
      open.push(communicator);
      await dovecot.append(buildEmail({ messageId: '<outage-1@client.test>', subject: 'VPN' }), { user: mailbox.user });
      tg.pushMessage({ from: { id: 71, username: 'u71' }, text: 'Не работает VPN' });
      // Several tries each while down (more than MAX_ATTEMPTS: they are not counted).
      await waitUntil(
        () =>
          secretary.calls.filter((c) => c.channel === 'email').length >= 3 &&
          secretary.calls.filter((c) => c.channel === 'tg').length >= 3,
        'repeated tries from both channels',
        20_000,
      );
      secretary.up();
      const backAt = Date.now();
      await sink.waitForMails(1, 15_000);
      await tg.waitForSent(1, 15_000);
      // Generous: the retry delay is at most 5 s while the secretary is away.
      expect(Date.now() - backAt).toBeLessThan(12_000);
      expect(tg.sent[0]!.text).toBe('Ответ на: Не работает VPN');
      expect(await communicator.metric('workemon_email_failed_total')).toBe(0);
    },
  );
});
