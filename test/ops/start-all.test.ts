// Stopping `npm start` (scripts/start-all.mjs) as an operator, systemd or a container runtime does: SIGTERM to npm,
// Ctrl-C to the terminal's process group, SIGTERM to the script alone, npm or the script killed outright, and a
// service dying on its own. Real processes throughout: npm, the script, four services under tsx (with tsx's esbuild
// helpers) and, for the fast cases, small stand-in services that listen on their port and start a helper process
// that ignores SIGTERM, as a leftover child would. "Gone" means no such process in /proc (zombies count as gone).
import { spawn, type ChildProcess } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { getFreePort, isListening, waitFor } from '@workemon/testkit';
import { repoPath } from './observability-files.js';

const SERVICES = ['guesser', 'system-analyst', 'secretary', 'communicator'] as const;
const portKey = (service: string) => `${service.toUpperCase().replace('-', '_')}_PORT`;

/** `pid`'s state letter and parent from /proc/<pid>/stat; undefined once it is gone. */
function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/** Whether `pid` still runs (a zombie has ended: it only waits for its parent to read its status). */
const alive = (pid: number) => {
  const stat = procStat(pid);
  return stat !== undefined && stat.state !== 'Z';
};

/** Every process below `root`, from /proc (parent links as they are now). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat) children.set(stat.ppid, [...(children.get(stat.ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      queue.push(child);
      found.push(child);
    }
  }
  return found;
}

type Run = {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: string | null }>;
};

const started: number[] = [];
/** Spawns `command` in a process group of its own (as a terminal's job), collecting its output. */
function startRun(command: string, args: string[], cwd: string, env: Record<string, string>): Run {
  const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  started.push(child.pid!);
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, exited };
}

const tracked: number[] = [];
afterEach(() => {
  // Whatever a failed check left behind: the process groups started here and every process seen below them.
  for (const pid of [...started.splice(0), ...tracked.splice(0)]) {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
});

/** Waits until none of `pids` runs; returns those still running after `timeoutMs`. */
async function gone(pids: number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 100));
  return pids.filter(alive);
}

describe('npm start with the real services', () => {
  it(
    'SIGTERM to npm stops every service gracefully: no process left within 10 s, the ports free, npm exits 0',
    { timeout: 180_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'workemon-npm-start-'));
      try {
        const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await getFreePort()])));
        const npm = startRun('npm', ['start'], repoPath('.'), {
          PATH: process.env['PATH']!,
          HOME: dir,
          ...Object.fromEntries(SERVICES.map((s) => [portKey(s), String(ports[s])])),
          LOG_LEVEL: 'info',
          npm_config_update_notifier: 'false',
          // Nothing outside: the LLM services start without a model (their /health says degraded).
          LLM_PROVIDER: 'ollama',
          LLM_BASE_URL: 'http://127.0.0.1:9',
          PGLITE_DIR: join(dir, 'db'),
        });
        for (const s of SERVICES)
          await waitFor(
            async () => (await fetch(`http://127.0.0.1:${ports[s]}/health`).catch(() => undefined))?.status,
            {
              what: `${s} up: ${npm.output().slice(-500)}`,
              timeoutMs: 150_000,
              intervalMs: 250,
            },
          );
        const everything = descendants(npm.child.pid!);
        tracked.push(...everything);
        // npm, the script (exec'd by npm's shell), four services, and tsx's esbuild helpers below them.
        expect(everything.length, npm.output()).toBeGreaterThanOrEqual(5);

        process.kill(npm.child.pid!, 'SIGTERM');
        expect(await gone([npm.child.pid!, ...everything], 10_000), npm.output()).toEqual([]);
        expect(await npm.exited, npm.output()).toEqual({ code: 0, signal: null });
        for (const s of SERVICES) expect(await isListening(ports[s]!), `${s}'s port`).toBe(false);
        // Each service shut down on its own terms (drained, closed, flushed), not killed.
        const completed = npm
          .output()
          .split('\n')
          .filter((l) => l.includes('"message":"shutdown complete"'))
          .map((l) => (JSON.parse(l) as Record<string, string>)['service.name'])
          .sort();
        expect(completed).toEqual([...SERVICES].sort());
        expect(npm.output()).not.toContain('on its own');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

/**
 * A copy of the script in a tree of stand-in services: each listens on its port, starts a helper process that
 * ignores SIGTERM (a leftover child), prints `{service, pid, helper}` once listening and, on SIGTERM or SIGINT,
 * prints `{service, stopped}` and exits 0 — or, with IGNORE_TERM set, ignores both.
 */
function standInTree(): string {
  const root = mkdtempSync(join(tmpdir(), 'workemon-start-stop-'));
  mkdirSync(join(root, 'scripts'));
  copyFileSync(repoPath('scripts/start-all.mjs'), join(root, 'scripts/start-all.mjs'));
  symlinkSync(repoPath('node_modules'), join(root, 'node_modules'));
  for (const service of SERVICES) {
    mkdirSync(join(root, `services/${service}/src`), { recursive: true });
    writeFileSync(
      join(root, `services/${service}/src/main.ts`),
      `import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
const service = ${JSON.stringify(service)};
const helper = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' });
const server = createServer((_req, res) => res.end('ok'));
server.listen(Number(process.env.PORT), '127.0.0.1', () =>
  console.log(JSON.stringify({ service, pid: process.pid, helper: helper.pid })),
);
for (const signal of ['SIGTERM', 'SIGINT'] as const)
  process.on(signal, () => {
    if (process.env.IGNORE_TERM) return;
    console.log(JSON.stringify({ service, stopped: signal }));
    server.close();
    process.exit(0);
  });
`,
    );
  }
  return root;
}

type StandIns = Run & {
  root: string;
  ports: Record<string, number>;
  /** Each service's pid and its helper's, once all four listen. */
  pids: Record<string, { pid: number; helper: number }>;
  /** Every process of the run: the parent given, the script, the services, their helpers and tsx's. */
  all: number[];
  /** The `stopped` lines: which service got which signal. */
  stopped: () => Record<string, string>;
};

/** Starts the script (or `command` running it) over the stand-ins and waits until all four listen. */
async function startStandIns(
  env: Record<string, string> = {},
  command: (root: string) => [string, string[]] = () => [process.execPath, ['scripts/start-all.mjs']],
): Promise<StandIns> {
  const root = standInTree();
  const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await getFreePort()])));
  const [cmd, args] = command(root);
  const started = startRun(cmd, args, root, {
    PATH: process.env['PATH']!,
    ...Object.fromEntries(SERVICES.map((s) => [portKey(s), String(ports[s])])),
    ...env,
  });
  const lines = () =>
    started
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, string | number>);
  const pids = await waitFor(
    () => {
      const up = lines().filter((l) => l['pid']);
      return up.length === SERVICES.length
        ? Object.fromEntries(up.map((l) => [l['service'], { pid: Number(l['pid']), helper: Number(l['helper']) }]))
        : undefined;
    },
    { what: `the stand-ins up: ${started.output()}`, timeoutMs: 60_000, intervalMs: 100 },
  );
  const all = [started.child.pid!, ...descendants(started.child.pid!)];
  tracked.push(...all);
  const stopped = () =>
    Object.fromEntries(
      lines()
        .filter((l) => l['stopped'])
        .map((l) => [l['service'], l['stopped']]),
    );
  return { ...started, root, ports, pids, all, stopped: stopped as () => Record<string, string> };
}

async function expectAllGone(run: StandIns, withinMs: number) {
  expect(await gone(run.all, withinMs), run.output()).toEqual([]);
  for (const s of SERVICES) {
    expect(alive(run.pids[s]!.helper), `${s}'s helper`).toBe(false);
    expect(await isListening(run.ports[s]!), `${s}'s port`).toBe(false);
  }
}

describe('npm start (scripts/start-all.mjs) stopping', () => {
  const roots: string[] = [];
  afterEach(() => {
    for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
  });

  it(
    'SIGTERM to the script alone: each service gets SIGTERM, leftovers are killed, exit 0',
    { timeout: 90_000 },
    async () => {
      const run = await startStandIns();
      roots.push(run.root);
      // Each service leads a process group of its own (so a terminal's Ctrl-C reaches only the script).
      for (const s of SERVICES)
        expect(readFileSync(`/proc/${run.pids[s]!.pid}/stat`, 'utf8')).toMatch(
          new RegExp(`^${run.pids[s]!.pid} \\(.*\\) \\S+ \\d+ ${run.pids[s]!.pid} `),
        );
      process.kill(run.child.pid!, 'SIGTERM');
      await expectAllGone(run, 8000);
      expect(await run.exited).toEqual({ code: 0, signal: null });
      expect(run.stopped()).toEqual(Object.fromEntries(SERVICES.map((s) => [s, 'SIGTERM'])));
    },
  );

  it(
    'Ctrl-C (SIGINT to the whole process group): the services get SIGINT once, exit 0',
    { timeout: 90_000 },
    async () => {
      const run = await startStandIns();
      roots.push(run.root);
      process.kill(-run.child.pid!, 'SIGINT');
      await expectAllGone(run, 8000);
      expect(await run.exited).toEqual({ code: 0, signal: null });
      expect(run.stopped()).toEqual(Object.fromEntries(SERVICES.map((s) => [s, 'SIGINT'])));
      expect(run.output().match(/"stopped"/g)).toHaveLength(SERVICES.length);
    },
  );

  it(
    'npm start (the package.json script) and Ctrl-C in its terminal: each service gets SIGINT once, npm exits 0',
    { timeout: 90_000 },
    async () => {
      const { scripts } = JSON.parse(readFileSync(repoPath('package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      };
      const run = await startStandIns({ npm_config_update_notifier: 'false' }, (root) => {
        writeFileSync(
          join(root, 'package.json'),
          JSON.stringify({ name: 'stand-in', private: true, type: 'module', scripts: { start: scripts['start'] } }),
        );
        return ['npm', ['start']];
      });
      roots.push(run.root);
      // npm, its shell's exec'd script and the terminal's SIGINT: the group is npm and the script only.
      process.kill(-run.child.pid!, 'SIGINT');
      await expectAllGone(run, 8000);
      expect(await run.exited).toEqual({ code: 0, signal: null });
      expect(run.stopped()).toEqual(Object.fromEntries(SERVICES.map((s) => [s, 'SIGINT'])));
      expect(run.output().match(/"stopped"/g)).toHaveLength(SERVICES.length);
    },
  );

  it(
    'a service SIGKILLed: the others are stopped, one line names it, the exit code is 1',
    { timeout: 90_000 },
    async () => {
      const run = await startStandIns();
      roots.push(run.root);
      process.kill(run.pids['secretary']!.pid, 'SIGKILL');
      await expectAllGone(run, 8000);
      expect(await run.exited).toEqual({ code: 1, signal: null });
      expect(
        run
          .output()
          .split('\n')
          .filter((l) => l.includes('on its own')),
      ).toEqual(['[start] secretary was killed by SIGKILL on its own; stopping the other services']);
      // The three others were asked to stop (the secretary had no chance to say anything).
      expect(run.stopped()).toEqual(
        Object.fromEntries(SERVICES.filter((s) => s !== 'secretary').map((s) => [s, 'SIGTERM'])),
      );
    },
  );

  it('a service that cannot start (its port in use) stops the others, exit 1', { timeout: 90_000 }, async () => {
    const root = standInTree();
    roots.push(root);
    const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await getFreePort()])));
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(ports['guesser'], '127.0.0.1', resolve));
    try {
      const run = startRun(process.execPath, ['scripts/start-all.mjs'], root, {
        PATH: process.env['PATH']!,
        ...Object.fromEntries(SERVICES.map((s) => [portKey(s), String(ports[s])])),
      });
      expect(await run.exited, run.output()).toEqual({ code: 1, signal: null });
      expect(run.output()).toContain('[start] guesser exited with code 1 on its own; stopping the other services');
      const pids = run
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{"service"') && l.includes('"pid"'))
        .flatMap((l) => {
          const { pid, helper } = JSON.parse(l) as { pid: number; helper: number };
          return [pid, helper];
        });
      tracked.push(...pids);
      expect(pids.filter(alive)).toEqual([]);
      for (const s of SERVICES.filter((s) => s !== 'guesser'))
        expect(await isListening(ports[s]!), `${s}'s port`).toBe(false);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it(
    'the script SIGKILLed: the services notice their parent is gone and stop themselves',
    { timeout: 90_000 },
    async () => {
      const run = await startStandIns();
      roots.push(run.root);
      process.kill(run.child.pid!, 'SIGKILL');
      // The services' own helpers ignore SIGTERM and nothing is left to kill them: only the services are checked.
      const services = SERVICES.map((s) => run.pids[s]!.pid);
      expect(await gone(services, 8000), run.output()).toEqual([]);
      await waitFor(() => Object.keys(run.stopped()).length === SERVICES.length || undefined, {
        what: `every stand-in stopped: ${run.output()}`,
      });
      expect(run.stopped()).toEqual(Object.fromEntries(SERVICES.map((s) => [s, 'SIGTERM'])));
      for (const s of SERVICES) expect(await isListening(run.ports[s]!), `${s}'s port`).toBe(false);
    },
  );

  it(
    "npm's shell killed without passing the signal on (no exec): the script notices and stops everything",
    { timeout: 90_000 },
    async () => {
      // As npm runs a script: `sh -c '<script>'`, with npm_lifecycle_event set; SIGTERM kills the shell only.
      const run = await startStandIns({ npm_lifecycle_event: 'start' }, () => [
        '/bin/sh',
        ['-c', `${process.execPath} scripts/start-all.mjs; echo shell-finished`],
      ]);
      roots.push(run.root);
      process.kill(run.child.pid!, 'SIGTERM');
      await expectAllGone(run, 10_000);
      expect(run.output()).toMatch(/\[start\] npm \(pid \d+\) is gone; stopping the services/);
      expect(run.stopped()).toEqual(Object.fromEntries(SERVICES.map((s) => [s, 'SIGTERM'])));
    },
  );

  it(
    'a service that ignores SIGTERM is killed with its group after the deadline (SHUTDOWN_TIMEOUT + 20 s), exit 1',
    { timeout: 90_000 },
    async () => {
      const run = await startStandIns({ IGNORE_TERM: '1', SHUTDOWN_TIMEOUT: '0s' });
      roots.push(run.root);
      process.kill(run.child.pid!, 'SIGTERM');
      // Still there during the deadline.
      await new Promise((r) => setTimeout(r, 3000));
      expect(SERVICES.every((s) => alive(run.pids[s]!.pid))).toBe(true);
      await expectAllGone(run, 30_000);
      expect(await run.exited).toEqual({ code: 1, signal: null });
      for (const s of SERVICES)
        expect(run.output()).toContain(`[start] ${s} did not stop within 20 s of SIGTERM; killing it (SIGKILL)`);
    },
  );
});
