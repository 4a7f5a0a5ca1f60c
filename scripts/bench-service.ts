// `npm run bench:service -- <guesser|system-analyst> [connections]`: one LLM service alone against the instant
// fake LLM, side by side with its bare-Node reference (bench/reference.mjs), for quick A/B work on the per-request
// path: CPU ms per request of the service process (utime + stime from /proc/<pid>/stat), req/s, and RSS right after
// start and after the load. Several short runs, interleaved service / reference, so a busy machine hurts both
// alike; the median of the runs is printed. Figures, not a test (CONVENTIONS: no timed tests).
//
// Environment: BENCH_RUNS (runs per side, default 3), BENCH_DURATION_S (seconds per run, default 4),
// BENCH_RATE (fixed total req/s instead of as fast as possible), BENCH_NODE_FLAGS (the service's node flags,
// default `--max-old-space-size=128 --max-semi-space-size=8` as the images), BENCH_LOG_LEVEL (default error), BENCH_PROFILE=1 (a V8 CPU
// profile of the service into ./bench-profiles). Runs the built service (`npm run build` first).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { getFreePort, waitFor } from '@workemon/testkit';
import { startFakeLlm } from '@workemon/testkit/fake-llm';

const root = new URL('..', import.meta.url).pathname;
const service = process.argv[2] ?? 'guesser';
const connections = Number(process.argv[3] ?? 32);
const runs = Number(process.env['BENCH_RUNS'] ?? 3);
const duration = Number(process.env['BENCH_DURATION_S'] ?? 4);
const rate = process.env['BENCH_RATE'] ? Number(process.env['BENCH_RATE']) : undefined;
const nodeFlags = (process.env['BENCH_NODE_FLAGS'] ?? '--max-old-space-size=128 --max-semi-space-size=8')
  .split(' ')
  .filter(Boolean);
const REQUEST_TEXT = 'Хочу получать аналитику по операциям авторизации наших кошельков за прошлый месяц';

if (service !== 'guesser' && service !== 'system-analyst') {
  process.stderr.write('usage: npm run bench:service -- guesser|system-analyst [connections]\n');
  process.exit(2);
}

/** utime + stime of a process in seconds (/proc/<pid>/stat fields 14 and 15, 100 Hz clock ticks). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident set size in MB (/proc/<pid>/status VmRSS). */
function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

type Side = { name: string; child: ChildProcess; url: string; headers: Record<string, string>; idleRss: number };

async function startSide(name: string, args: string[], env: Record<string, string>, key?: string): Promise<Side> {
  const port = await getFreePort();
  const profile = name === 'service' && process.env['BENCH_PROFILE'] === '1';
  const child = spawn(
    process.execPath,
    [...(profile ? ['--cpu-prof', '--cpu-prof-dir=bench-profiles'] : []), ...args],
    {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: process.env['BENCH_LOG_LEVEL'] ?? 'error' },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/health`).catch(() => undefined)) !== undefined, {
    timeoutMs: 60_000,
    what: `${name} up`,
  });
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (key) headers['authorization'] = `Bearer ${key}`;
  return { name, child, url, headers, idleRss: rssMb(child.pid!) };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const fake = await startFakeLlm({ wire: 'openai' });
  fake.reply(() => ({
    is_enough: true,
    response: 'Доработать куб авторизаций кошельков.',
    action: 'ответить сообщением',
  }));
  // The fake keeps every request for tests; a benchmark would only grow it.
  setInterval(() => fake.requests.splice(0), 500).unref();
  const key = 'bench-service-key-'.padEnd(40, 'k');
  const llmEnv = {
    HOST: '127.0.0.1',
    SERVICE_API_KEYS: `bench:${key}`,
    LLM_PROVIDER: 'openai',
    LLM_BASE_URL: fake.url,
    LLM_API_KEY: fake.apiKey ?? '',
    LLM_MODEL: fake.model,
    LLM_MAX_RETRIES: '0',
    // The reference's name for the provider's URL (LLM_API_KEY and LLM_MODEL are shared).
    LLM_URL: fake.url,
  };
  const sides = [
    await startSide('service', [...nodeFlags, `services/${service}/dist/main.js`], llmEnv, key),
    await startSide('reference', ['bench/reference.mjs', service === 'guesser' ? 'guesser' : 'analyst'], llmEnv),
  ];
  const path = service === 'guesser' ? '/get-context' : '/prepare-analytics';
  const body =
    service === 'guesser'
      ? { username: 'bench', department: 'Аналитика', position: 'аналитик', request: REQUEST_TEXT }
      : { context: 'Доработать куб авторизаций кошельков.', request: REQUEST_TEXT };
  const target = (side: Side) => ({
    url: `${side.url}${path}`,
    method: 'POST' as const,
    headers: side.headers,
    body: JSON.stringify(body),
  });
  const results = new Map<string, { cpu: number[]; rps: number[]; failed: number }>();
  for (const side of sides) {
    // Warm-up: the JIT settles before anything is counted.
    await autocannon({ ...target(side), connections, duration: Math.max(4, duration) });
    results.set(side.name, { cpu: [], rps: [], failed: 0 });
  }
  for (let i = 0; i < runs; i++) {
    for (const side of sides) {
      const before = cpuSeconds(side.child.pid!);
      const run = await autocannon({ ...target(side), connections, duration, ...(rate ? { overallRate: rate } : {}) });
      const served = run.requests.total - run.non2xx;
      const r = results.get(side.name)!;
      r.cpu.push((1000 * (cpuSeconds(side.child.pid!) - before)) / Math.max(1, served));
      r.rps.push(served / duration);
      r.failed += run.non2xx + run.errors;
    }
  }
  console.log(`${service}, ${connections} connections${rate ? ` at ${rate} req/s` : ''}, ${runs} × ${duration} s`);
  for (const side of sides) {
    const r = results.get(side.name)!;
    console.log(
      `  ${side.name.padEnd(10)} CPU ${median(r.cpu).toFixed(3)} ms/req (runs ${r.cpu.map((c) => c.toFixed(3)).join(' ')})` +
        `  ${Math.round(median(r.rps))} req/s  RSS ${side.idleRss.toFixed(1)} → ${rssMb(side.child.pid!).toFixed(1)} MB` +
        (r.failed ? `  ${r.failed} failed` : ''),
    );
  }
  const [own, ref] = sides.map((s) => median(results.get(s.name)!.cpu));
  console.log(`  service / reference: ${(own! / ref!).toFixed(2)} × the CPU per request`);
  for (const side of sides) {
    side.child.kill('SIGTERM');
    await new Promise((resolve) => side.child.once('exit', resolve));
  }
  await fake.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
