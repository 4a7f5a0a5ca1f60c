// Probes of the benches (`npm run bench`, scripts/bench-mail-drain.ts, scripts/bench-draw.ts): IMAP commands counted
// on a loopback proxy in front of Dovecot, and CPU time from /proc of a process and of PostgreSQL.
import { readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { getFreePort } from '@workemon/testkit';
import type { DovecotServer } from '@workemon/testkit/dovecot';

/** utime + stime of a process in seconds (/proc/<pid>/stat fields 14, 15; 100 Hz clock ticks). */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * CPU seconds of every PostgreSQL process on this machine: the postmaster's own and its reaped children's
 * (/proc/<pid>/stat fields 14–17), plus each live backend's (fields 14, 15).
 */
export function postgresCpuSeconds(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) continue;
      const fields = stat.split(') ')[1]!.split(' ');
      const parentIsPostgres = readFileSync(`/proc/${fields[1]}/stat`, 'utf8').includes('(postgres)');
      total += Number(fields[11]) + Number(fields[12]);
      if (!parentIsPostgres) total += Number(fields[13]) + Number(fields[14]);
    } catch {
      // the process exited while we read it
    }
  }
  return total / 100;
}

/** A TCP proxy to `port` that counts IMAP commands (tagged lines) sent by clients; `close` cuts its connections. */
export async function imapCountingProxy(port: number) {
  const counts = { commands: 0, connections: 0, byVerb: new Map<string, number>() };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    counts.connections += 1;
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let buffer = '';
    client.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        const m = /^[A-Za-z0-9.]+ (UID )?([A-Z]+)/i.exec(line);
        if (!m) continue;
        counts.commands += 1;
        const verb = `${m[1] ? 'UID ' : ''}${m[2]!.toUpperCase()}`;
        counts.byVerb.set(verb, (counts.byVerb.get(verb) ?? 0) + 1);
      }
    });
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  const proxyPort = await getFreePort();
  await new Promise<void>((resolve) => server.listen(proxyPort, '127.0.0.1', resolve));
  return {
    port: proxyPort,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        // Open connections are cut: the communicator may still be running.
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Appends `count` plain-text mails from distinct senders (`employee<i>@bench.example`) to the first user's INBOX. */
export async function queueBenchMails(dovecot: DovecotServer, count: number, text: string): Promise<void> {
  const user = dovecot.users[0]!;
  for (let i = 0; i < count; i++) {
    await dovecot.append(
      [
        `From: Сотрудник ${i} <employee${i}@bench.example>`,
        `To: ${user.user}`,
        `Subject: Запрос ${i}`,
        `Message-ID: <bench-${i}@bench.example>`,
        `Date: ${new Date().toUTCString()}`,
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        '',
        `${text} (${i})`,
        '',
      ].join('\r\n'),
    );
  }
}

/** The communicator's environment for a drain: the secretary, IMAP (through `imapPort`) and SMTP on loopback. */
export function drainEnv(o: {
  secretaryUrl: string;
  imapPort: number;
  user: { user: string; password: string };
  smtpPort: number;
}): Record<string, string> {
  return {
    SECRETARY_URL: o.secretaryUrl,
    IMAP_HOST: '127.0.0.1',
    IMAP_PORT: String(o.imapPort),
    IMAP_SECURE: 'false',
    IMAP_USER: o.user.user,
    IMAP_PASSWORD: o.user.password,
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(o.smtpPort),
    SMTP_SECURE: 'false',
    RATE_LIMIT_PER_HOUR: '1000',
    ...(process.env['BENCH_EMAIL_CONCURRENCY'] ? { EMAIL_CONCURRENCY: process.env['BENCH_EMAIL_CONCURRENCY'] } : {}),
  };
}
