// Workemon services as real processes for the ops checks: a service's main.ts under tsx on a free loopback port,
// with the test world's keys, and the ways to end one (SIGKILL, as a crash) or all of them (SIGTERM, then SIGKILL).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getFreePort, waitFor } from '@workemon/testkit';
import { TEST_KEY_ENV } from '@workemon/testkit/api-keys';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export type Proc = { name: string; child: ChildProcess; url: string; stderr: () => string };

const running = (p: Proc) => p.child.exitCode === null && p.child.signalCode === null;

/**
 * A service's main.ts as a child process on a free loopback port, added to `procs` (for `stopServices`); resolves
 * once its /health answers.
 */
export async function startService(
  procs: Proc[],
  service: string,
  name: string,
  env: Record<string, string>,
): Promise<Proc> {
  const port = await getFreePort();
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@workemon/source', `services/${service}/src/main.ts`],
    {
      cwd: repoRoot,
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        LOG_LEVEL: 'warn',
        HOST: '127.0.0.1',
        ...TEST_KEY_ENV,
        ...env,
        PORT: String(port),
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const proc = { name, child, url: `http://127.0.0.1:${port}`, stderr: () => stderr };
  procs.push(proc);
  await waitFor(async () => (await fetch(`${proc.url}/health`).catch(() => undefined))?.status, {
    what: `${name} up (${stderr.slice(-300)})`,
    timeoutMs: 90_000,
  });
  return proc;
}

/** Kills a process with SIGKILL (no shutdown, nothing released) and resolves once it has exited. */
export async function killService(p: Proc): Promise<void> {
  if (!running(p)) return;
  const exited = new Promise((resolve) => p.child.once('exit', resolve));
  p.child.kill('SIGKILL');
  await exited;
}

/** Stops every process of `procs`, last started first: SIGTERM, then SIGKILL after 10 s; empties `procs`. */
export async function stopServices(procs: Proc[]): Promise<void> {
  for (const p of procs.splice(0).reverse()) {
    if (running(p)) {
      const exited = new Promise((resolve) => p.child.once('exit', resolve));
      p.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (running(p)) p.child.kill('SIGKILL');
    }
  }
}

/** The Prometheus binary the ops tests run (Debian's `prometheus` package; PROMETHEUS_BIN overrides). */
export const PROMETHEUS = process.env['PROMETHEUS_BIN'] ?? '/usr/bin/prometheus';

/** A Prometheus server started by `startPrometheus`: its base URL, its process, and `stop` (SIGTERM, awaited). */
export type PrometheusServer = { url: string; process: ChildProcess; stop: () => Promise<void> };

/**
 * Starts Prometheus on a free port of 127.0.0.1 with `configFile`, its TSDB in `<dir>/data`, warnings only, plus
 * `flags` (e.g. the compose file's own); resolves once `/-/ready` answers 200 (30 s at most), rejects with its
 * stderr if it exits first.
 */
export async function startPrometheus(
  configFile: string,
  dir: string,
  flags: string[] = [],
): Promise<PrometheusServer> {
  const port = await getFreePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    PROMETHEUS,
    [
      ...flags,
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited: ${stderr}`);
        return (await fetch(`${url}/-/ready`)).ok;
      },
      { timeoutMs: 30_000, what: 'Prometheus ready', intervalMs: 200 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, process: child, stop };
}
