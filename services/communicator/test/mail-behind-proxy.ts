// The IMAP fault tests' set-up (email.test.ts, email-s35-faults.test.ts): a communicator reading `user`'s mailbox on
// a real Dovecot through a fault proxy listening at `proxyPort`, replying into a fresh SMTP sink and asking a fresh
// fake secretary, returned once its first sweep is done.
import type { DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { startCommunicator, waitUntil, type Running } from './harness.js';

type Closable = { close?: () => Promise<void>; stop?: () => Promise<void> };

/**
 * Starts the sink, the fake secretary and the communicator (IMAP_SWEEP_INTERVAL_S `sweepS`, plus `env`), each
 * pushed onto `open` for the test's clean-up, and waits for the first sweep.
 */
export async function startMailBehindProxy(options: {
  dovecot: DovecotServer;
  proxyPort: number;
  user: string;
  sweepS: number;
  env?: Record<string, string>;
  open: Closable[];
}): Promise<{ sink: SmtpSink; secretary: FakeSecretary; c: Running }> {
  const sink = await startSmtpSink();
  const secretary = await startFakeSecretary();
  options.open.push(sink, secretary);
  const c = await startCommunicator({
    secretaryUrl: secretary.url,
    dovecot: { ...options.dovecot, port: options.proxyPort },
    user: options.user,
    sink,
    env: { IMAP_SWEEP_INTERVAL_S: String(options.sweepS), ...options.env },
  });
  options.open.push(c);
  await waitUntil(() => c.email!.health().lastSweepAt !== undefined, 'first sweep');
  return { sink, secretary, c };
}
