// `npm run bench`: what Workemon's request path costs, measured against a bare-Node reference of the same
// architecture (bench/reference.mjs) and against the fake LLM alone, in one run on this machine:
//   1. /analyze-request through secretary → guesser → system-analyst (real services, real PostgreSQL, an instant
//      fake LLM), the reference chain, and the fake alone, at 4 and 32 connections: req/s, p50/p99, CPU ms per
//      request of each process (from /proc), and the ratios chain/reference;
//   2. RSS of each process idle (started, before any load) and after the load, and the live heap of the chain's
//      three services (after a full collection) before and after 20,000 more requests;
//   3. the chain with a fake model answering in 500 ms at 128 connections, against the theoretical
//      connections / (2 calls × 0.5 s);
//   4. a mailbox of queued mails drained through the real communicator (Dovecot, SMTP sink): mails per second,
//      and that every mail got exactly one reply.
// The goals it prints are the performance issue's; they are figures, not a test (CONVENTIONS: no timed tests).
//
// Environment: BENCH_DURATION_S (seconds per run, default 8), BENCH_MAILS (default 1000; 0 skips the drain),
// BENCH_SLOW_MS (the slow model's latency, default 500), BENCH_FROM_DIST=1 (run the built services,
// `node dist/main.js`, as the images do; default: sources through tsx), BENCH_PROFILE=<service> (a V8 CPU
// profile of that process into ./bench-profiles), BENCH_DATABASE_URL (default: a private PostgreSQL server),
// BENCH_LOG_LEVEL (the services' LOG_LEVEL, default error; `info` is what production runs), BENCH_MAX_OLD_SPACE_MB
// (V8 old space of the Workemon services, default 128 as the images and `npm start`; 0: V8's default),
// BENCH_MAX_SEMI_SPACE_MB (their young generation's semi-space cap, default 8 as the images; 0: V8's default).
// BENCH_EMAIL_CONCURRENCY (the communicator's EMAIL_CONCURRENCY in the drain; default: its own, 16),
// BENCH_IDLE_WAIT_S (how long the started services sit unloaded before their idle RSS is read, default 15),
// BENCH_LIVE_HEAP_REQUESTS (requests between the two live-heap readings of the chain's services, default 20,000;
// 0 skips them),
// BENCH_WARMUP_S (seconds of load at 8 connections on the chain and on the reference before the measured runs, so
// V8 has optimised the hot code, default 30), BENCH_PERF=<service> (that process runs with `--perf-basic-prof`, so
// `perf record -g -p <pid>` names its JavaScript frames).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { getFreePort, waitFor } from '@workemon/testkit';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startPostgresServer, type PostgresServer } from '@workemon/testkit/postgres';
import { startFakeLlm } from '@workemon/testkit/fake-llm';
import { startSmtpSink, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { benchLocalModel } from './bench-local.js';
import { liveHeapBytes, liveHeapProbe, type LiveHeap } from './bench-live-heap.js';
import { drainEnv, imapCountingProxy, postgresCpuSeconds, queueBenchMails } from './mail-drain-probes.js';

const fromDist = process.env['BENCH_FROM_DIST'] === '1';
const duration = Number(process.env['BENCH_DURATION_S'] ?? 8);
const mailCount = Number(process.env['BENCH_MAILS'] ?? 1000);
const slowMs = Number(process.env['BENCH_SLOW_MS'] ?? 500);
// V8 is still compiling the chain's code with TurboFan a few seconds in: after a 2 s warm-up a CPU profile of the
// secretary under load (perf, BENCH_PERF) showed 16 % of its time in the optimising compiler, after 30 s 4 %
// (docs/operations.md). The chain and the reference each get the same warm-up.
const warmupS = Number(process.env['BENCH_WARMUP_S'] ?? 30);
const logLevel = process.env['BENCH_LOG_LEVEL'] ?? 'error';
const maxOldSpaceMb = Number(process.env['BENCH_MAX_OLD_SPACE_MB'] ?? 128);
const maxSemiSpaceMb = Number(process.env['BENCH_MAX_SEMI_SPACE_MB'] ?? 8);
const idleWaitS = Number(process.env['BENCH_IDLE_WAIT_S'] ?? 15);
const liveHeapRequests = Number(process.env['BENCH_LIVE_HEAP_REQUESTS'] ?? 20_000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const self = new URL(import.meta.url).pathname;
const root = new URL('..', import.meta.url).pathname;
const REQUEST_TEXT = 'Хочу получать аналитику по операциям авторизации наших кошельков за прошлый месяц';
let stopping = false;

type Proc = { name: string; child: ChildProcess; url: string };

// Each Workemon service can be asked for its live heap (bench-live-heap.ts); the snapshots' directories.
const heapProbes = new Map<string, ReturnType<typeof liveHeapProbe>>();

function profileFlags(name: string): string[] {
  if (process.env['BENCH_PERF'] === name) return ['--perf-basic-prof'];
  return process.env['BENCH_PROFILE'] === name ? ['--cpu-prof', '--cpu-prof-dir=bench-profiles'] : [];
}

function spawnNode(name: string, args: string[], env: Record<string, string>, tsx: boolean): ChildProcess {
  const child = spawn(
    process.execPath,
    [...profileFlags(name), ...(tsx ? ['--import', 'tsx', '--conditions=@workemon/source'] : []), ...args],
    {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: logLevel, ...env },
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`[bench] ${name} exited early (${signal ?? code})`);
  });
  return child;
}

/** A process that prints one JSON line ({url, …}) when it is ready. */
async function firstLine<T>(child: ChildProcess, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve(JSON.parse(buffer.slice(0, newline)) as T);
    };
    child.stdout!.on('data', onData);
    child.once('exit', () => reject(new Error(`${what} did not start`)));
  });
}

async function startService(name: string, env: Record<string, string>): Promise<Proc> {
  const port = await getFreePort();
  const heap = [
    ...(maxOldSpaceMb > 0 ? [`--max-old-space-size=${maxOldSpaceMb}`] : []),
    ...(maxSemiSpaceMb > 0 ? [`--max-semi-space-size=${maxSemiSpaceMb}`] : []),
  ];
  const probe = heapProbes.get(name) ?? liveHeapProbe(name);
  heapProbes.set(name, probe);
  const flags = [...heap, ...probe.flags];
  const child = fromDist
    ? spawnNode(name, [...flags, `services/${name}/dist/main.js`], { ...env, PORT: String(port) }, false)
    : spawnNode(name, [...flags, `services/${name}/src/main.ts`], { ...env, PORT: String(port) }, true);
  child.stdout?.resume();
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/health`)).status < 600, { timeoutMs: 90_000, what: `${name} up` });
  return { name, child, url };
}

async function startReference(role: string, env: Record<string, string>): Promise<Proc> {
  const child = spawnNode(`ref-${role}`, ['bench/reference.mjs', role], env, false);
  const { url } = await firstLine<{ url: string }>(child, `reference ${role}`);
  return { name: `ref-${role}`, child, url };
}

/** utime + stime of a process, in seconds (clock ticks are 100 Hz on Linux; /proc/<pid>/stat fields 14, 15). */
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine (/proc/stat: all but idle and iowait), and the number of CPUs. */
function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (cpu.reduce((a, b) => a + b, 0) - cpu[3]! - cpu[4]!) / 100;
}

/** Resident set size of a process, in MB (/proc/<pid>/status VmRSS). */
function rssMb(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

type Run = {
  /** Completed requests per second, averaged over the whole run (autocannon's per-second counts). */
  rps: number;
  /** The median of the run's per-second completion counts: the steady rate, without the run's first fill. */
  steadyRps: number;
  p50: number;
  p99: number;
  requests: number;
  failed: number;
  cpuMs: Map<string, number>;
  /** CPU ms per request of PostgreSQL (all its processes), of this process (the load generator), and of the
   *  whole machine (every process and the kernel), beside the watched processes' own. */
  postgresMs: number;
  loaderMs: number;
  machineMs: number;
};

/** One load run; CPU ms per request of each watched process over the run. */
async function load(
  target: autocannon.Options,
  connections: number,
  watched: Proc[],
  seconds = duration,
): Promise<Run> {
  const before = watched.map((p) => cpuSeconds(p.child.pid));
  const [pgBefore, machineBefore, loaderBefore] = [postgresCpuSeconds(), machineBusySeconds(), process.cpuUsage()];
  const result = await autocannon({ ...target, connections, duration: seconds });
  const requests = Math.max(1, result.requests.total);
  const loader = process.cpuUsage(loaderBefore);
  const postgresMs = ((postgresCpuSeconds() - pgBefore) * 1000) / requests;
  const machineMs = ((machineBusySeconds() - machineBefore) * 1000) / requests;
  const cpuMs = new Map(
    watched.map((p, i) => [p.name, ((cpuSeconds(p.child.pid) - before[i]!) * 1000) / requests] as const),
  );
  return {
    rps: result.requests.average,
    steadyRps: result.requests.p50,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    failed: result.errors + result.timeouts + result.non2xx,
    cpuMs,
    postgresMs,
    loaderMs: (loader.user + loader.system) / 1000 / requests,
    machineMs,
  };
}

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '?');
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

function printRun(title: string, run: Run): void {
  const cpu = [...run.cpuMs].map(([name, ms]) => `${name} ${fmt(ms, 2)}`).join(', ');
  console.log(
    `  ${title.padEnd(30)} ${fmt(run.rps).padStart(6)} req/s  p50 ${String(run.p50).padStart(4)} ms  ` +
      `p99 ${String(run.p99).padStart(4)} ms  ${run.failed ? `${run.failed} failed  ` : ''}` +
      `CPU ${fmt(sum(run.cpuMs), 2)} ms/req (${cpu})`,
  );
  console.log(
    `  ${''.padEnd(30)} beside it: PostgreSQL ${fmt(run.postgresMs, 2)}, load generator ${fmt(run.loaderMs, 2)}, ` +
      `whole machine ${fmt(run.machineMs, 2)} ms/req`,
  );
}

const goal = (ok: boolean) => (ok ? 'met' : 'MISSED');

async function main(): Promise<void> {
  const procs: Proc[] = [];
  let pg: PostgresServer | undefined;
  let dovecot: DovecotServer | undefined;
  let sink: SmtpSink | undefined;
  const fakeChild = spawnNode('fake-llm', [self, '--fake-llm'], {}, true);
  const fakeProc: Proc = { name: 'fake-llm', child: fakeChild, url: '' };
  try {
    const fake = await firstLine<{ url: string; apiKey: string; model: string }>(fakeChild, 'fake LLM');
    fakeProc.url = fake.url;
    const setDelay = (ms: number) => fakeChild.stdin!.write(`delay ${ms}\n`);
    // As npm start: loopback and a service key shared by the services; a client key for the load.
    const clientKey = randomBytes(24).toString('base64url');
    const authEnv = {
      HOST: '127.0.0.1',
      SERVICE_API_KEYS: `bench:${randomBytes(24).toString('base64url')}`,
      API_KEYS: `bench:${clientKey}`,
    };
    const llmEnv = {
      ...authEnv,
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: fake.url,
      LLM_API_KEY: fake.apiKey,
      LLM_MODEL: fake.model,
      LLM_MAX_RETRIES: '0',
    };
    let databaseUrl = process.env['BENCH_DATABASE_URL'];
    if (!databaseUrl) {
      pg = await startPostgresServer();
      databaseUrl = pg.url;
    }

    const guesser = await startService('guesser', llmEnv);
    const analyst = await startService('system-analyst', llmEnv);
    const secretary = await startService('secretary', {
      ...authEnv,
      DATABASE_URL: databaseUrl,
      GUESSER_URL: guesser.url,
      SYSTEM_ANALYST_URL: analyst.url,
      // One username and one client key send every request: the limits stay on (their cost is part of the
      // request path) but at their maximum, so no request is refused with 429 and counted as served.
      ANALYZE_RATE_LIMIT_PER_USERNAME_PER_HOUR: '1000000',
      ANALYZE_RATE_LIMIT_PER_KEY_PER_MINUTE: '1000000',
    });
    const chain = [secretary, guesser, analyst];
    const refLlmEnv = { LLM_URL: fake.url, LLM_API_KEY: fake.apiKey, LLM_MODEL: fake.model };
    const refGuesser = await startReference('guesser', refLlmEnv);
    const refAnalyst = await startReference('analyst', refLlmEnv);
    const refSecretary = await startReference('secretary', {
      DATABASE_URL: databaseUrl,
      GUESSER_URL: refGuesser.url,
      ANALYST_URL: refAnalyst.url,
    });
    const reference = [refSecretary, refGuesser, refAnalyst];
    procs.push(...chain, ...reference);
    const startRss = new Map([...procs, fakeProc].map((p) => [p.name, rssMb(p.child.pid)]));
    // Idle: the services have been up and unloaded long enough for their start-up collection (service-kit's
    // start-up-memory.ts: once the heap has been quiet 5.5 s, repeated once if V8 kept its young generation).
    await sleep(idleWaitS * 1000);
    const idleRss = new Map([...procs, fakeProc].map((p) => [p.name, rssMb(p.child.pid)]));

    const query = `channel=direct&username=bench&request=${encodeURIComponent(REQUEST_TEXT)}`;
    const chainTarget = {
      url: `${secretary.url}/analyze-request?${query}`,
      headers: { authorization: `Bearer ${clientKey}` },
    };
    const refTarget = { url: `${refSecretary.url}/analyze-request?${query}` };
    const llmTarget = {
      url: `${fake.url}/v1/chat/completions`,
      method: 'POST' as const,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${fake.apiKey}` },
      body: JSON.stringify({
        model: fake.model,
        response_format: { type: 'json_object' },
        messages: [
          { role: 'system', content: 'Answer in JSON.' },
          { role: 'user', content: REQUEST_TEXT },
        ],
      }),
    };

    console.log(
      `[bench] services from ${fromDist ? 'dist/ (node)' : 'sources (tsx)'}, LOG_LEVEL=${logLevel}, ` +
        `${maxOldSpaceMb > 0 ? `--max-old-space-size=${maxOldSpaceMb}` : "V8's default old space"}, ` +
        `${maxSemiSpaceMb > 0 ? `--max-semi-space-size=${maxSemiSpaceMb}` : "V8's default semi-space"}; PostgreSQL ` +
        `${pg ? 'private server' : 'BENCH_DATABASE_URL'}; ${duration} s per run; warming up…`,
    );
    // Requests the chain has served when its RSS after load is read (the goal: ≤ 150 MB after 20,000).
    let chainRequests = 0;
    for (const target of [chainTarget, refTarget, llmTarget]) {
      const warm = await autocannon({ ...target, connections: 8, duration: target === llmTarget ? 2 : warmupS });
      if (target === chainTarget) chainRequests += warm.requests.total;
    }

    const results = new Map<number, { chain: Run; reference: Run; llm: Run }>();
    for (const connections of [4, 32]) {
      console.log(`\n${connections} connections`);
      const chainRun = await load(chainTarget, connections, [...chain, fakeProc]);
      chainRequests += chainRun.requests;
      printRun('Workemon chain', chainRun);
      const refRun = await load(refTarget, connections, [...reference, fakeProc]);
      printRun('bare-Node reference', refRun);
      const llmRun = await load(llmTarget, connections, [fakeProc]);
      printRun('fake LLM alone', llmRun);
      results.set(connections, { chain: chainRun, reference: refRun, llm: llmRun });
      console.log(
        `  chain / reference: ${fmt(chainRun.rps / refRun.rps, 2)} × the throughput, ` +
          `${fmt(chainRun.p50 / Math.max(1, refRun.p50), 2)} × the p50, ` +
          `${fmt(sum(chainRun.cpuMs) / Math.max(1e-9, sum(refRun.cpuMs)), 2)} × the CPU per request`,
      );
    }

    console.log(
      `\nRSS (MB): right after start → idle (${idleWaitS} s after start) → after load (the chain's ` +
        `${chainRequests} requests)`,
    );
    const afterRss = new Map([...procs, fakeProc].map((p) => [p.name, rssMb(p.child.pid)]));
    for (const [name, idle] of idleRss) {
      console.log(
        `  ${name.padEnd(16)} ${fmt(startRss.get(name)!, 1).padStart(7)} → ${fmt(idle, 1).padStart(7)} → ` +
          fmt(afterRss.get(name)!, 1).padStart(7),
      );
    }

    setDelay(slowMs);
    const slowConnections = 128;
    const theoretical = slowConnections / ((2 * slowMs) / 1000);
    console.log(`\nfake LLM answering in ${slowMs} ms, ${slowConnections} connections`);
    const slow = await load(chainTarget, slowConnections, [...chain], Math.max(duration, 10));
    printRun('Workemon chain', slow);
    // No request can complete in the run's first 2 × slowMs, so the average over a 10 s run is at most
    // (10 − 1) / 10 of any steady rate; the median of the per-second counts is the steady rate itself.
    console.log(
      `  ${fmt(slow.steadyRps, 1)} req/s steady (median of the per-second counts; ${fmt(slow.rps, 1)} averaged over ` +
        `the run, its first ${fmt((2 * slowMs) / 1000, 1)} s filling the pipeline) of a theoretical ` +
        `${fmt(theoretical, 1)} (connections / (2 calls × ${slowMs / 1000} s)): ${fmt(slow.steadyRps / theoretical, 2)} × ` +
        `steady, ${fmt(slow.rps / theoretical, 2)} × averaged`,
    );
    setDelay(0);

    // A snapshot that cannot be taken (no room in the temporary directory, a service gone) costs this figure,
    // not the rest of the run.
    const liveHeap =
      liveHeapRequests > 0
        ? await liveHeapGrowth(chain, chainTarget).catch((err: unknown) => {
            console.log(`  live heap: not measured (${err instanceof Error ? err.message : String(err)})`);
            return undefined;
          })
        : undefined;

    let drain: Awaited<ReturnType<typeof drainMailbox>> | undefined;
    if (mailCount > 0) {
      drain = await drainMailbox(secretary.url, procs, authEnv);
      dovecot = drain.dovecot;
      sink = drain.sink;
    }

    await benchLocalModel({
      startService,
      authEnv,
      clientKey,
      databaseEnv: { DATABASE_URL: databaseUrl },
      track: (p) => procs.push(p as Proc),
      rssMb: (pid) => `${fmt(rssMb(pid), 1)} MB`,
    });

    const at32 = results.get(32)!;
    const at4 = results.get(4)!;
    const worstAfter = Math.max(...chain.map((p) => afterRss.get(p.name)!));
    const worstIdle = Math.max(...chain.map((p) => idleRss.get(p.name)!));
    const worstStart = Math.max(...chain.map((p) => startRss.get(p.name)!));
    console.log('\ngoals (the performance issue):');
    console.log(
      `  chain ≥ 0.75 × reference req/s at 32 connections: ${fmt(at32.chain.rps / at32.reference.rps, 2)} ${goal(at32.chain.rps >= 0.75 * at32.reference.rps)}`,
    );
    console.log(
      `  p50 at 4 connections ≤ 1.5 × reference: ${fmt(at4.chain.p50 / Math.max(1, at4.reference.p50), 2)} ${goal(at4.chain.p50 <= 1.5 * Math.max(1, at4.reference.p50))}`,
    );
    console.log(
      `  500 ms model at 128 connections ≥ 0.85 × theoretical: ${fmt(slow.steadyRps / theoretical, 2)} steady ` +
        `(${fmt(slow.rps / theoretical, 2)} averaged over the run) ${goal(slow.steadyRps >= 0.85 * theoretical)}`,
    );
    console.log(
      `  RSS per service ≤ 100 MB idle: ${fmt(worstIdle, 1)} MB ${goal(worstIdle <= 100)} (right after start: ` +
        `${fmt(worstStart, 1)} MB); ≤ 150 MB after load: ${fmt(worstAfter, 1)} MB ${goal(worstAfter <= 150)}`,
    );
    if (!liveHeap && liveHeapRequests > 0) console.log('  no growth of the live heap: not measured (see above)');
    if (liveHeap) {
      const { worst, failed } = liveHeap;
      console.log(
        `  no growth of the live heap over ${liveHeapRequests} requests: at most ${fmt(worst.growthMb, 2)} MB ` +
          `(${worst.name}, ${fmt(worst.growthPercent, 1)} % of its heap)${failed ? `, ${failed} requests failed` : ''} ` +
          goal(worst.growthMb <= LIVE_HEAP_TOLERANCE_MB && failed === 0),
      );
    }
    if (drain) {
      console.log(
        `  communicator RSS ≤ 100 MB idle: ${fmt(drain.rss.idle, 1)} MB ${goal(drain.rss.idle <= 100)} (right after start: ${fmt(drain.rss.start, 1)} MB); ≤ 150 MB after the drain: ${fmt(drain.rss.after, 1)} MB ${goal(drain.rss.after <= 150)}`,
      );
      console.log(
        `  ${mailCount} queued mails at ≥ 50 mails/s, one reply each: ${fmt(drain.perSecond, 1)} mails/s ${goal(drain.perSecond >= 50 && drain.exactlyOnce)}`,
      );
    }
  } finally {
    stopping = true;
    for (const p of [...procs].reverse()) {
      p.child.kill('SIGTERM');
      await new Promise((resolve) => (p.child.exitCode === null ? p.child.once('exit', resolve) : resolve(null)));
    }
    fakeChild.kill('SIGTERM');
    await sink?.close();
    await dovecot?.destroy();
    await pg?.destroy();
    for (const probe of heapProbes.values()) probe.remove();
  }
}

/**
 * Growth the live-heap goal tolerates, in MB, of V8's heap and of the native memory a snapshot accounts for each: a
 * service's first requests of a new kind fill caches of a fixed size (compiled validators' closures, prepared
 * statements' descriptions, keep-alive sockets), a leak grows with the number of requests — 20,000 requests
 * leaking even 100 bytes each would add 2 MB.
 */
const LIVE_HEAP_TOLERANCE_MB = 1;

/** Requests at 32 connections before the first live-heap reading, so it is taken in the state the second one is. */
const LIVE_HEAP_SETTLE_REQUESTS = 5_000;

type LiveHeapGrowth = {
  /** The service whose heap or native memory grew most, and by how much (MB, and % of its heap before). */
  worst: { name: string; growthMb: number; growthPercent: number };
  failed: number;
};

/**
 * The chain's live heap (after a full collection, bench-live-heap.ts) before and after `liveHeapRequests` more
 * requests at 32 connections, printed per service; the first reading follows LIVE_HEAP_SETTLE_REQUESTS requests at
 * the same concurrency, so connections and buffers the earlier, different runs left are not counted as freed.
 */
async function liveHeapGrowth(chain: Proc[], target: autocannon.Options): Promise<LiveHeapGrowth> {
  const mb = (bytes: number) => bytes / 1024 / 1024;
  const signed = (n: number) => `${n >= 0 ? '+' : ''}${fmt(n, 2)}`;
  const snapshotAll = async () => {
    const live = new Map<string, LiveHeap>();
    for (const p of chain) live.set(p.name, await liveHeapBytes(p.child.pid!, heapProbes.get(p.name)!.dir));
    return live;
  };
  console.log(
    `\nlive heap (MB, after a full collection: a heap snapshot): V8 heap + native, before → after ` +
      `${liveHeapRequests} more requests at 32 connections (${LIVE_HEAP_SETTLE_REQUESTS} first, not measured)`,
  );
  await autocannon({ ...target, connections: 32, amount: LIVE_HEAP_SETTLE_REQUESTS });
  const before = await snapshotAll();
  const run = await autocannon({ ...target, connections: 32, amount: liveHeapRequests });
  const after = await snapshotAll();
  let worst: LiveHeapGrowth['worst'] = { name: '', growthMb: Number.NEGATIVE_INFINITY, growthPercent: 0 };
  for (const p of chain) {
    const [a, b] = [before.get(p.name)!, after.get(p.name)!];
    const heapGrowth = mb(b.heapBytes - a.heapBytes);
    const nativeGrowth = mb(b.nativeBytes - a.nativeBytes);
    const growthMb = Math.max(heapGrowth, nativeGrowth);
    if (growthMb > worst.growthMb)
      worst = { name: p.name, growthMb, growthPercent: ((growthMb * 1024 * 1024) / a.heapBytes) * 100 };
    console.log(
      `  ${p.name.padEnd(16)} ${fmt(mb(a.heapBytes), 2).padStart(7)} + ${fmt(mb(a.nativeBytes), 2)} → ` +
        `${fmt(mb(b.heapBytes), 2).padStart(7)} + ${fmt(mb(b.nativeBytes), 2)} ` +
        `(${signed(heapGrowth)}, ${signed(nativeGrowth)})`,
    );
  }
  const failed = run.errors + run.timeouts + run.non2xx;
  console.log(`  ${run.requests.total} requests, ${failed} failed`);
  return { worst, failed };
}

/**
 * Appends `mailCount` mails from distinct senders to a fresh Dovecot mailbox, then starts the real communicator
 * against it, the chain's secretary and an SMTP sink, and times the drain until every mail has its reply.
 */
async function drainMailbox(
  secretaryUrl: string,
  procs: Proc[],
  authEnv: Record<string, string>,
): Promise<{
  perSecond: number;
  exactlyOnce: boolean;
  rss: { start: number; idle: number; after: number };
  dovecot: DovecotServer;
  sink: SmtpSink;
}> {
  const dovecot = await startDovecot();
  const sink = await startSmtpSink();
  const user = dovecot.users[0]!;
  // Idle first, as the chain's idle RSS is read: a communicator on the still empty mailbox, right after /health and
  // again BENCH_IDLE_WAIT_S later (after the start-up collection), then stopped (it gives its poller lease back).
  const communicatorEnv = (imapPort: number) => ({
    ...authEnv,
    ...drainEnv({ secretaryUrl, imapPort, user, smtpPort: sink.port }),
  });
  const idler = await startService('communicator', communicatorEnv(dovecot.port));
  const startRss = rssMb(idler.child.pid);
  await sleep(idleWaitS * 1000);
  const idleRss = rssMb(idler.child.pid);
  idler.child.removeAllListeners('exit'); // its 'exited early' report: this stop is planned
  idler.child.kill('SIGTERM');
  await new Promise((resolve) => (idler.child.exitCode === null ? idler.child.once('exit', resolve) : resolve(null)));
  console.log(
    `\ncommunicator RSS on an empty mailbox (MB): ${fmt(startRss, 1)} right after /health → ${fmt(idleRss, 1)} ` +
      `${idleWaitS} s later`,
  );
  console.log(`\ndraining ${mailCount} queued mails through the communicator…`);
  await queueBenchMails(dovecot, mailCount, REQUEST_TEXT);
  // IMAP commands are counted on a loopback proxy in front of Dovecot.
  const proxy = await imapCountingProxy(dovecot.port);
  const started = Date.now();
  const communicator = await startService('communicator', communicatorEnv(proxy.port));
  procs.push(communicator);
  // Right after /health answers: the queued mail is being fetched by then.
  const drainStartRss = rssMb(communicator.child.pid);
  await sink.waitForMails(mailCount, 600_000);
  const seconds = (Date.now() - started) / 1000;
  const cpuMsPerMail = (cpuSeconds(communicator.child.pid) * 1000) / mailCount;
  // Give a duplicate the chance to show up before counting.
  await new Promise((r) => setTimeout(r, 2000));
  const repliesTo = sink.mails.map((m) => m.header('in-reply-to'));
  const exactlyOnce = sink.mails.length === mailCount && new Set(repliesTo).size === mailCount;
  const perSecond = mailCount / seconds;
  console.log(
    `  ${mailCount} mails answered in ${fmt(seconds, 1)} s (${fmt(perSecond, 1)} mails/s, communicator start ` +
      `included); ${sink.mails.length} replies, ${exactlyOnce ? 'exactly one per mail' : 'NOT exactly one per mail'}`,
  );
  console.log(
    `  per mail: ${fmt(cpuMsPerMail, 2)} ms CPU of the communicator (start included), ` +
      `${fmt(proxy.counts.commands / mailCount, 2)} IMAP commands (${[...proxy.counts.byVerb].map(([v, n]) => `${v} ${n}`).join(', ')})`,
  );
  const rss = { start: startRss, idle: idleRss, after: rssMb(communicator.child.pid) };
  console.log(
    `  communicator RSS (MB): ${fmt(drainStartRss, 1)} right after /health with the mail queued → ` +
      `${fmt(rss.after, 1)} after the drain`,
  );
  await proxy.close();
  return { perSecond, exactlyOnce, rss, dovecot, sink };
}

// Child mode: the fake LLM in its own process (it must not share an event loop with the load generator). It
// reads `delay <ms>` lines on stdin to change its latency between runs.
if (process.argv[2] === '--fake-llm') {
  const fake = await startFakeLlm({ wire: 'openai' });
  // One answer fits both: the guesser's schema ignores `action`, the analyst's accepts it.
  fake.reply(() => ({
    is_enough: true,
    response: 'Доработать куб авторизаций кошельков и выполнить запрос к нему.',
    action: 'ответить сообщением',
  }));
  // The fake keeps every request for tests; a benchmark would only grow it.
  setInterval(() => fake.requests.splice(0), 1000).unref();
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    for (const line of chunk.split('\n')) {
      const m = /^delay (\d+)$/.exec(line.trim());
      if (m) fake.delayMs = Number(m[1]);
    }
  });
  process.stdout.write(`${JSON.stringify({ url: fake.url, apiKey: fake.apiKey, model: fake.model })}\n`);
  process.on('SIGTERM', () => void fake.close().then(() => process.exit(0)));
} else {
  await main();
}
