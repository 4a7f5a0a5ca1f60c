// The mail pipeline's steps one at a time (mail-pipeline.ts, imap-mailbox.ts, smtp-mailer.ts): a failure here
// names the step, where the end-to-end tests (email.test.ts, email-field-cases.test.ts) only see the outcome.
import { describe, expect, it } from 'vitest';
import { AppError, createLogger, createMetrics } from '@workemon/service-kit';
import { createChannelMetrics } from '../src/channel-metrics.js';
import { createCoalescer, IMAP_BATCH_MAX } from '../src/email/imap-mailbox.js';
import {
  holdingMessageId,
  parseStep,
  secretaryErrorStep,
  startPass,
  type MailPipelineDeps,
  type MailOutcome,
  type ParsedMailPass,
} from '../src/email/mail-pipeline.js';
import { USER_MESSAGES } from '../src/email/mail-request.js';
import { smtpPoolSize } from '../src/email/smtp-mailer.js';
import { buildEmail } from './harness.js';

/** Deps of a pass that no step under test may reach: each part throws if called. */
function depsForSteps(): MailPipelineDeps {
  const unreachable = () => {
    throw new Error('not reachable from the step under test');
  };
  return {
    settings: { companyDomains: [], maxRequestChars: 10_000, trustedAuthservIds: [] },
    ownAddresses: ['bot@example.test'],
    mailer: { send: unreachable, verify: unreachable, close: unreachable },
    secretary: { analyze: unreachable } as unknown as MailPipelineDeps['secretary'],
    rateLimit: { consume: unreachable } as unknown as MailPipelineDeps['rateLimit'],
    metrics: createChannelMetrics(createMetrics('communicator')),
    logger: createLogger({ service: 'communicator', level: 'error' }),
  };
}

async function parsedPass(raw: Buffer, dryRun = false): Promise<ParsedMailPass> {
  const pass = startPass(
    depsForSteps(),
    { source: 'email', raw, fallbackKey: '1:1', dryRun },
    { isAnswered: () => Promise.resolve(false), confirm: () => Promise.resolve() },
  );
  const parsed = await parseStep(pass);
  if ('kind' in parsed && !('deps' in parsed)) throw new Error(`parse step ended the pass: ${parsed.kind}`);
  return parsed as ParsedMailPass;
}

describe('parse step', () => {
  it('reads sender, Message-ID and text, and ends poison mail as unparseable without throwing', async () => {
    const pass = await parsedPass(
      buildEmail({ from: 'Ivan <ivan@corp.test>', messageId: '<m1@corp.test>', body: 'Нужен отчёт' }),
    );
    expect(pass.mail.from).toBe('ivan@corp.test');
    expect(pass.mail.messageId).toBe('<m1@corp.test>');
    expect(pass.mail.text).toContain('Нужен отчёт');
    expect(pass.ref).toMatchObject({ messageId: '<m1@corp.test>', fallbackId: '1:1' });

    // 1,100 MIME parts: over mailparser's limit (EMAXLEN).
    const parts = Array.from({ length: 1100 }, (_, i) => `--b\r\nContent-Type: text/plain\r\n\r\npart ${i}\r\n`);
    const poison = Buffer.from(
      `From: a@corp.test\r\nMessage-ID: <p@corp.test>\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n${parts.join('')}--b--\r\n`,
    );
    const outcome = await parseStep(
      startPass(
        depsForSteps(),
        { source: 'email', raw: poison, fallbackKey: '1:2' },
        { isAnswered: () => Promise.resolve(false), confirm: () => Promise.resolve() },
      ),
    );
    expect(outcome).toMatchObject({ kind: 'unparseable', code: 'EMAXLEN' });
  });
});

describe('decide step: a secretary error', () => {
  it('turns a refusal (4xx, not retryable) into the standard message and keeps its status and code', async () => {
    const pass = await parsedPass(buildEmail({ body: 'Запрос' }));
    const plan = secretaryErrorStep(pass, new AppError('forbidden', 403, "Parameter 'username' is not an employee"));
    expect(plan).toEqual({ text: USER_MESSAGES.forbidden, refusal: { status: 403, code: 'forbidden' } });
  });

  it('ends the pass as secretary-failed for an outage, a non-AppError and an unconfirmed dry run', async () => {
    const pass = await parsedPass(buildEmail({ body: 'Запрос' }));
    const outage = new AppError('upstream_unavailable', 503, 'down');
    expect(secretaryErrorStep(pass, outage)).toMatchObject({ kind: 'secretary-failed', error: outage });
    expect(secretaryErrorStep(pass, new Error('bug'))).toMatchObject({ kind: 'secretary-failed' });
    const tooMany = new AppError('too_many_requests', 429, 'slow down');
    expect(secretaryErrorStep(pass, tooMany)).toMatchObject({ kind: 'secretary-failed' });
    const unconfirmed = new AppError('dry_run_unsupported', 502, 'no dry run', { retryable: false });
    expect(secretaryErrorStep(pass, unconfirmed)).toMatchObject({ kind: 'secretary-failed', error: unconfirmed });
  });
});

describe('in-flight Message-IDs', () => {
  it('defers a second copy while the first is answered, releases the id after, and never holds a dry run', async () => {
    const inFlight = new Set<string>();
    const pass = await parsedPass(buildEmail({ messageId: '<same@corp.test>', body: 'x' }));
    let release!: () => void;
    const first = holdingMessageId(
      inFlight,
      pass,
      () => new Promise<MailOutcome>((resolve) => (release = () => resolve({ kind: 'duplicate', mail: pass.mail }))),
    );
    expect(inFlight.has('<same@corp.test>')).toBe(true);
    const second = await holdingMessageId(inFlight, pass, () => Promise.reject(new Error('must not run')));
    expect(second).toEqual({ kind: 'deferred', mail: pass.mail });
    const dry = await parsedPass(buildEmail({ messageId: '<same@corp.test>', body: 'x' }), true);
    await expect(
      holdingMessageId(inFlight, dry, () => Promise.resolve({ kind: 'duplicate', mail: dry.mail } as MailOutcome)),
    ).resolves.toMatchObject({ kind: 'duplicate' });
    release();
    await expect(first).resolves.toMatchObject({ kind: 'duplicate' });
    expect(inFlight.size).toBe(0);
  });
});

describe('IMAP coalescing', () => {
  it('sends calls made together as one batch, answers each in order, and rejects only the batch that failed', async () => {
    const batches: number[][] = [];
    const double = createCoalescer(async (items: number[]) => {
      batches.push(items);
      if (items.includes(-1)) throw new Error('STORE failed');
      return items.map((n) => n * 2);
    });
    const answers = await Promise.all([1, 2, 3].map(double));
    expect(answers).toEqual([2, 4, 6]);
    expect(batches).toEqual([[1, 2, 3]]);

    const settled = await Promise.allSettled([double(-1), double(5)]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    await expect(double(7)).resolves.toBe(14);
    expect(batches).toEqual([[1, 2, 3], [-1, 5], [7]]);
  });

  it('keeps a batch to IMAP_BATCH_MAX items', async () => {
    const sizes: number[] = [];
    const echo = createCoalescer(async (items: number[]) => {
      sizes.push(items.length);
      return items;
    });
    const all = await Promise.all(Array.from({ length: IMAP_BATCH_MAX + 5 }, (_, i) => echo(i)));
    expect(all).toEqual(Array.from({ length: IMAP_BATCH_MAX + 5 }, (_, i) => i));
    expect(sizes).toEqual([IMAP_BATCH_MAX, 5]);
  });
});

describe('SMTP pool', () => {
  it('keeps one connection per two mails in flight, between 2 and 8', () => {
    expect(smtpPoolSize(undefined)).toBe(2);
    expect(smtpPoolSize(1)).toBe(2);
    expect(smtpPoolSize(16)).toBe(8);
    expect(smtpPoolSize(10)).toBe(5);
    expect(smtpPoolSize(64)).toBe(8);
  });
});
