// Issue 15, end to end: a sender's rate limit holds across two communicator processes and across a restart of
// every process. A real secretary process on PostgreSQL (the budgets live in its database), the real guesser and
// system-analyst apps over fake LLMs, a real SMTP listener and two communicator processes receiving mail through
// the Mailgun webhook (which addresses each process directly). RATE_LIMIT_PER_HOUR=2; the secretary's own limits
// on direct requests are off (the communicator's service key is exempt from them anyway).
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { waitFor } from '@workemon/testkit';
import { bearer } from '@workemon/testkit/api-keys';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import { createTestDatabase } from '@workemon/testkit/postgres';
import { smtpSinkEnv, startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { mailgunPayload } from '@workemon/testkit/webhook-payloads';
import type {} from '@workemon/testkit/global-setup';
import { startLlmServices } from '../../services/secretary/test/llm-services.js';
import { buildEmail } from '../../services/communicator/test/harness.js';
import { killService, startService, stopServices, type Proc } from './processes.js';

const MAILGUN_KEY = 'mailgun-signing-key-rate-limits';
const SENDER_A = 'anna@limits.example';
const SENDER_B = 'boris@limits.example';

const procs: Proc[] = [];
let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let sink: SmtpSink;

const startSecretary = () =>
  startService(procs, 'secretary', 'secretary', {
    DATABASE_URL: db.url,
    GUESSER_URL: llm.guesserUrl,
    SYSTEM_ANALYST_URL: llm.analystUrl,
    UNKNOWN_USER_POLICY: 'allow',
    ANALYZE_RATE_LIMIT_PER_USERNAME_PER_HOUR: '0',
    ANALYZE_RATE_LIMIT_PER_KEY_PER_MINUTE: '0',
  });

const startCommunicator = (name: string, secretary: Proc) =>
  startService(procs, 'communicator', name, {
    SECRETARY_URL: secretary.url,
    SECRETARY_TIMEOUT: '10s',
    ...smtpSinkEnv(sink),
    MAILGUN_WEBHOOK_SIGNING_KEY: MAILGUN_KEY,
    RATE_LIMIT_PER_HOUR: '2',
  });

/** Starts the secretary, then both communicators against it. */
async function startAll(): Promise<{ secretary: Proc; communicators: [Proc, Proc] }> {
  const secretary = await startSecretary();
  const [c1, c2] = await Promise.all([
    startCommunicator('communicator-1', secretary),
    startCommunicator('communicator-2', secretary),
  ]);
  return { secretary, communicators: [c1, c2] };
}

let counter = 0;
/** Posts one signed Mailgun mail from `sender` to a communicator; returns the webhook answer's `outcome`. */
async function mail(communicator: Proc, sender: string): Promise<string> {
  counter += 1;
  const mime = buildEmail({
    from: sender,
    messageId: `<limits-${counter}@limits.example>`,
    subject: `Запрос ${counter}`,
    body: `Подскажите, пожалуйста, где посмотреть отчёт по операциям кошельков за октябрь, запрос ${counter}\r\n`,
  });
  const payload = mailgunPayload({ signingKey: MAILGUN_KEY, mime });
  const res = await fetch(`${communicator.url}/webhook/mailgun`, {
    method: 'POST',
    headers: { 'Content-Type': payload.contentType },
    body: payload.body,
  });
  const body = (await res.json()) as { outcome?: string };
  expect(res.status, `${communicator.name}: ${JSON.stringify(body)}`).toBe(200);
  return body.outcome ?? '';
}

type AuditEvent = { sender: string | null; outcome: string; reason: string | null; channel: string };
/** The secretary's audit rows of rate-limited mail, once there are `count` (the communicator reports in batches). */
async function rateLimitedAudit(secretary: Proc, count: number): Promise<AuditEvent[]> {
  return waitFor(
    async () => {
      const res = await fetch(`${secretary.url}/audit?reason=rate-limited`, { headers: bearer('admin') });
      if (res.status !== 200) throw new Error(`GET /audit: ${res.status}`);
      const { items } = (await res.json()) as { items: AuditEvent[] };
      return items.length >= count && items;
    },
    { what: `${count} rate-limited audit rows`, timeoutMs: 15_000 },
  );
}

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'rate_limits_processes');
  llm = await startLlmServices();
  sink = await startSmtpSink();
}, 60_000);

afterAll(async () => {
  await stopServices(procs);
  await sink?.close();
  await llm?.close();
  await db?.drop();
}, 60_000);

describe('rate limits across two communicator processes and a restart', () => {
  it('one budget per sender, shared by both processes and kept in the database across a SIGKILL of every process', async () => {
    const first = await startAll();
    const [c1, c2] = first.communicators;

    expect(await mail(c1, SENDER_A)).toBe('replied');
    expect(await mail(c2, SENDER_A)).toBe('replied');
    expect(sink.mails).toHaveLength(2);
    // The third mail within the hour, to the other process: over the shared budget of 2.
    expect(await mail(c1, SENDER_A)).toBe('rate-limited');
    expect(sink.mails).toHaveLength(2);
    const before = await rateLimitedAudit(first.secretary, 1);
    expect(before).toHaveLength(1);
    expect(before[0]).toMatchObject({
      sender: SENDER_A,
      outcome: 'skipped',
      reason: 'rate-limited',
      channel: 'mailgun',
    });

    // Every process crashes (the audit row above is already stored); the same database, new processes.
    await Promise.all([c1, c2, first.secretary].map(killService));
    const second = await startAll();
    const [c3, c4] = second.communicators;

    expect(await mail(c4, SENDER_A)).toBe('rate-limited');
    // Another sender has a budget of its own.
    expect(await mail(c3, SENDER_B)).toBe('replied');
    expect(sink.mails).toHaveLength(3);
    expect(sink.mails.map((m) => m.envelope.to)).toEqual([[SENDER_A], [SENDER_A], [SENDER_B]]);

    const after = await rateLimitedAudit(second.secretary, 2);
    expect(after).toHaveLength(2);
    for (const event of after)
      expect(event).toMatchObject({ sender: SENDER_A, outcome: 'skipped', reason: 'rate-limited', channel: 'mailgun' });
  }, 240_000);
});
