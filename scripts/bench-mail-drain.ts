// `npx tsx --conditions=@workemon/source scripts/bench-mail-drain.ts`: the mail drain of `npm run bench` alone,
// cheap enough to iterate on. Queues BENCH_MAILS (default 300) mails in a private Dovecot, starts the real
// communicator as a child process (sources through tsx, or `dist/main.js` with BENCH_FROM_DIST=1) against the
// test fake of the secretary (services/communicator/test/fake-secretary.ts, in this process) and an SMTP sink,
// and prints: mails per second (communicator start included), the communicator's CPU ms per mail (from /proc),
// IMAP commands per mail (counted on a loopback proxy in front of Dovecot), secretary calls per mail, SMTP
// connections, and whether every mail got exactly one reply. Extra communicator env: BENCH_EMAIL_CONCURRENCY.
import { spawn } from 'node:child_process';
import { getFreePort, waitFor } from '@workemon/testkit';
import { TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import { startDovecot } from '@workemon/testkit/dovecot';
import { startSmtpSink } from '@workemon/testkit/smtp-sink';
import { startFakeSecretary } from '../services/communicator/test/fake-secretary.js';
import { cpuSeconds, drainEnv, imapCountingProxy, queueBenchMails } from './mail-drain-probes.js';

const mailCount = Number(process.env['BENCH_MAILS'] ?? 300);
const fromDist = process.env['BENCH_FROM_DIST'] === '1';
const root = new URL('..', import.meta.url).pathname;

const dovecot = await startDovecot();
const sink = await startSmtpSink();
const secretary = await startFakeSecretary();
const proxy = await imapCountingProxy(dovecot.port);
const user = dovecot.users[0]!;
try {
  await queueBenchMails(
    dovecot,
    mailCount,
    'Хочу получать аналитику по операциям авторизации наших кошельков за прошлый месяц',
  );
  const port = await getFreePort();
  const started = Date.now();
  const child = spawn(
    process.execPath,
    fromDist
      ? ['services/communicator/dist/main.js']
      : ['--import', 'tsx', '--conditions=@workemon/source', 'services/communicator/src/main.ts'],
    {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: {
        ...process.env,
        LOG_LEVEL: 'error',
        PORT: String(port),
        ...TEST_KEY_ENV,
        ...drainEnv({ secretaryUrl: secretary.url, imapPort: proxy.port, user, smtpPort: sink.port }),
      },
    },
  );
  try {
    // The first reply ends the start (tsx compiling, login, first sweep); the rest is the drain proper.
    await waitFor(() => sink.mails.length >= 1, { timeoutMs: 120_000, intervalMs: 10, what: 'first reply' });
    const firstAt = Date.now();
    const firstCpu = cpuSeconds(child.pid);
    const firstCount = sink.mails.length;
    await waitFor(() => sink.mails.length >= mailCount, { timeoutMs: 600_000, intervalMs: 20, what: 'drain' });
    const seconds = (Date.now() - started) / 1000;
    const cpu = cpuSeconds(child.pid);
    const steadyMails = Math.max(1, mailCount - firstCount);
    console.log(
      `after the first reply: ${(steadyMails / ((Date.now() - firstAt) / 1000)).toFixed(1)} mails/s, ` +
        `communicator CPU ${(((cpu - firstCpu) * 1000) / steadyMails).toFixed(2)} ms/mail`,
    );
    await new Promise((r) => setTimeout(r, 1000));
    const replies = sink.mails.map((m) => m.header('in-reply-to'));
    const exactlyOnce = sink.mails.length === mailCount && new Set(replies).size === mailCount;
    console.log(
      `${mailCount} mails in ${seconds.toFixed(1)} s: ${(mailCount / seconds).toFixed(1)} mails/s (start included); ` +
        `communicator CPU ${((cpu * 1000) / mailCount).toFixed(2)} ms/mail (start included); ` +
        `${exactlyOnce ? 'exactly one reply each' : `NOT exactly one reply each (${sink.mails.length} replies)`}`,
    );
    console.log(
      `IMAP: ${(proxy.counts.commands / mailCount).toFixed(2)} commands/mail over ${proxy.counts.connections} ` +
        `connection(s): ${[...proxy.counts.byVerb].map(([v, n]) => `${v} ${n}`).join(', ')}`,
    );
    console.log(
      `secretary: ${(secretary.calls.length / mailCount).toFixed(2)} analyses/mail, ` +
        `${(secretary.consumeCalls.length / mailCount).toFixed(2)} rate-limit calls/mail, ` +
        `${(secretary.auditCalls / mailCount).toFixed(2)} audit calls/mail`,
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)));
  }
} finally {
  await proxy.close();
  await secretary.close();
  await sink.close();
  await dovecot.destroy();
}
