// The communicator as `npm start` runs it (src/main.ts through tsx), in a child process of its own, for the tests
// that kill it with SIGKILL mid-batch and start it again (email-crash, telegram-crash, telegram-s27).
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import type { FakeTelegram } from '@workemon/testkit/fake-telegram';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));

/** A communicator process and the last 4,000 characters of its stderr (for a failing test's message). */
export type CommunicatorProcess = { child: ChildProcess; stderr: () => string };

/**
 * Registers an afterEach that SIGKILLs every process `spawnCommunicator` started in the test and is still running.
 * Call once at a test file's top level; returns the spawner.
 */
export function communicatorProcesses(): {
  spawnCommunicator: (secretaryUrl: string, env: Record<string, string>) => CommunicatorProcess;
} {
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return {
    /**
     * Starts src/main.ts on a free port of 127.0.0.1 (loopback, as npm start), asking the secretary at
     * `secretaryUrl` with the test service key, with short retry, shutdown and poller-lease times (a killed
     * process's lease lapses after 2 s, so a restarted one takes over). `env` adds the channel's settings and may
     * override any of these.
     */
    spawnCommunicator(secretaryUrl, env) {
      const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@workemon/source', mainTs], {
        cwd: repoRoot,
        env: {
          PATH: process.env['PATH'],
          PORT: '0',
          HOST: '127.0.0.1',
          LOG_LEVEL: 'warn',
          SECRETARY_URL: secretaryUrl,
          SECRETARY_TIMEOUT: '5s',
          RETRY_BASE_DELAY: '200ms',
          SHUTDOWN_TIMEOUT: '2s',
          RATE_LIMIT_PER_HOUR: '1000',
          // The fake secretary takes any key on its older routes; the rate-limit and audit routes want the
          // service key, as the real secretary does.
          SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS,
          POLLER_LEASE_TTL: '2s',
          ...env,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
      children.push(child);
      return { child, stderr: () => stderr };
    },
  };
}

/** The Telegram settings of a communicator polling the fake Bot API `tg` (1 s long polls, 200 ms after a 409). */
export function telegramProcessEnv(tg: FakeTelegram): Record<string, string> {
  return {
    TELEGRAM_BOT_TOKEN: tg.token,
    TELEGRAM_API_ROOT: tg.url,
    TELEGRAM_POLL_TIMEOUT_S: '1',
    TELEGRAM_CONFLICT_WAIT: '200ms',
  };
}

/** SIGKILL, resolved once the process has exited. */
export async function sigkill(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
