import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  openSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImapFlow } from 'imapflow';
import { getFreePort, isListening, waitFor } from './ports.js';

export type DovecotUser = { user: string; password: string };

export type DovecotServer = {
  host: string;
  port: number;
  dir: string;
  users: DovecotUser[];
  /** Stops the server (mail stays on disk); connected clients see their connection close. */
  stop: () => Promise<void>;
  /** Starts it again on the same port and mail. */
  start: () => Promise<void>;
  restart: () => Promise<void>;
  /** Stops it and removes its files. */
  destroy: () => Promise<void>;
  /** A logged-in imapflow client for `user` (the first user by default); the caller logs it out. */
  connect: (user?: string) => Promise<ImapFlow>;
  /** Puts a raw RFC 5322 message into a mailbox with IMAP APPEND; returns its UID. */
  append: (raw: string | Buffer, options?: { user?: string; mailbox?: string; flags?: string[] }) => Promise<number>;
  /** Flags of every message in the mailbox, by UID, plus its Message-ID. */
  messages: (options?: {
    user?: string;
    mailbox?: string;
  }) => Promise<Array<{ uid: number; flags: string[]; messageId?: string; subject?: string }>>;
};

function dovecotBinary(): string {
  for (const candidate of ['/usr/sbin/dovecot', '/usr/bin/dovecot']) if (existsSync(candidate)) return candidate;
  throw new Error('Dovecot is not installed: apt-get install -y dovecot-imapd (see .ci/run)');
}

function config(dir: string, port: number): string {
  // A private instance: plaintext login on loopback, Maildir, everything under its own temporary directory.
  return `protocols = imap
listen = 127.0.0.1
base_dir = ${dir}/run
state_dir = ${dir}/state
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:${dir}/mail/%u
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u ${dir}/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=${dir}/mail/%u
}
service imap-login {
  inet_listener imap {
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
log_path = ${dir}/dovecot.log
first_valid_uid = 8
mail_max_userip_connections = 100
`;
}

/** Direct children of a process (from /proc), e.g. Dovecot's imap session processes. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** Starts a private Dovecot IMAP server (plaintext on loopback, Maildir) on a free port with the given users. */
export async function startDovecot(
  users: DovecotUser[] = [{ user: 'bot@example.test', password: 'secret' }],
): Promise<DovecotServer> {
  const binary = dovecotBinary();
  const dir = mkdtempSync(join(tmpdir(), 'workemon-dovecot-'));
  chmodSync(dir, 0o755);
  for (const sub of ['run', 'state', 'mail']) mkdirSync(join(dir, sub));
  const port = await getFreePort();
  writeFileSync(join(dir, 'users'), users.map((u) => `${u.user}:{PLAIN}${u.password}`).join('\n') + '\n');
  writeFileSync(join(dir, 'dovecot.conf'), config(dir, port));
  // The mail user must own the mail tree (the recipe: never root).
  spawnSync('chown', ['-R', 'mail:mail', join(dir, 'mail')]);

  const start = async () => {
    // The daemon inherits our stdio: pipes would keep spawnSync waiting forever, so its output goes to a file.
    const out = openSync(join(dir, 'start.out'), 'w');
    const r = spawnSync(binary, ['-c', join(dir, 'dovecot.conf')], { stdio: ['ignore', out, out] });
    closeSync(out);
    if (r.status !== 0) throw new Error(`dovecot failed to start: ${readFileSync(join(dir, 'start.out'), 'utf8')}`);
    await waitFor(() => isListening(port), { timeoutMs: 15_000, what: `dovecot on port ${port}` });
  };
  const stop = async () => {
    const pidFile = join(dir, 'run', 'master.pid');
    if (!existsSync(pidFile)) return;
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    // Session processes can outlive the master; a real server restart drops its clients, so they go too.
    const children = childrenOf(pid);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return;
    }
    for (const child of children) {
      try {
        process.kill(child, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitFor(
      () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      },
      { timeoutMs: 15_000, what: 'dovecot to stop' },
    );
    await waitFor(async () => !(await isListening(port)), { timeoutMs: 5000, what: 'dovecot port to close' });
  };
  await start();

  const passwordOf = (user: string) => {
    const found = users.find((u) => u.user === user);
    if (!found) throw new Error(`no dovecot user ${user}`);
    return found.password;
  };
  const connectAs = async (user = users[0]!.user) => {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port,
      secure: false,
      auth: { user, pass: passwordOf(user) },
      logger: false,
      disableAutoIdle: true,
    });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  };

  return {
    host: '127.0.0.1',
    port,
    dir,
    users,
    start,
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    destroy: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
    connect: connectAs,
    append: async (raw, options = {}) => {
      const client = await connectAs(options.user);
      try {
        const result = await client.append(options.mailbox ?? 'INBOX', raw, options.flags ?? []);
        if (!result || result.uid === undefined) throw new Error('APPEND returned no UID');
        return result.uid;
      } finally {
        await client.logout();
      }
    },
    messages: async (options = {}) => {
      const client = await connectAs(options.user);
      try {
        const lock = await client.getMailboxLock(options.mailbox ?? 'INBOX');
        try {
          const out: Array<{ uid: number; flags: string[]; messageId?: string; subject?: string }> = [];
          if (!client.mailbox || client.mailbox.exists === 0) return out;
          for await (const m of client.fetch('1:*', { uid: true, flags: true, envelope: true })) {
            out.push({
              uid: m.uid,
              flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent'),
              messageId: m.envelope?.messageId,
              subject: m.envelope?.subject,
            });
          }
          return out;
        } finally {
          lock.release();
        }
      } finally {
        await client.logout();
      }
    },
  };
}
