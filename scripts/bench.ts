// `npm run bench`: load on the secretary's /analyze-request with the real guesser and system analyst behind it,
// both backed by an instant fake LLM (testkit's fake-llm, OpenAI wire), everything on this machine.
// Prints requests/s and p50/p99 for the whole chain and for a direct call of the fake (the ratio shows what the
// three services add), then each process's RSS. Goals (not a test): >= 500 req/s, p99 < 50 ms at 32 connections
// on 2 cores, < 120 MB RSS per service. Every process runs from TypeScript sources through tsx, whose loader
// adds some RSS that a built image (`node dist/main.js`) does not have.
//
// Environment: BENCH_DURATION_S (default 10), BENCH_CONNECTIONS (32), BENCH_DATABASE_URL (default: a private
// PostgreSQL server started for the run; PGlite when PostgreSQL is not installed), BENCH_FROM_DIST=1 (run the
// built services instead of the sources), BENCH_PROFILE=<service> (CPU profile into ./bench-profiles).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { getFreePort, waitFor } from '@workemon/testkit';
import { startPostgresServer, type PostgresServer } from '@workemon/testkit/postgres';
import { startFakeLlm } from '@workemon/testkit/fake-llm';
import { benchLocalModel } from './bench-local.js';

let stopping = false;
// BENCH_FROM_DIST=1 runs the services as the images do (`node dist/main.js`, after `npm run build`).
const fromDist = process.env['BENCH_FROM_DIST'] === '1';
const self = new URL(import.meta.url).pathname;
const root = new URL('..', import.meta.url).pathname;

// Child mode: the fake LLM in its own process, so it does not share an event loop with autocannon.
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
  process.stdout.write(`${JSON.stringify({ url: fake.url, apiKey: fake.apiKey, model: fake.model })}\n`);
  process.on('SIGTERM', () => void fake.close().then(() => process.exit(0)));
} else {
  await main();
}

type Proc = { name: string; child: ChildProcess; url: string };

// BENCH_PROFILE=<service> writes a V8 CPU profile of that process to ./bench-profiles on exit.
function profileFlags(name: string): string[] {
  return process.env['BENCH_PROFILE'] === name ? ['--cpu-prof', '--cpu-prof-dir=bench-profiles'] : [];
}

function startNode(name: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(
    process.execPath,
    [...profileFlags(name), '--import', 'tsx', '--conditions=@workemon/source', ...args],
    {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'error', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  child.on('exit', (code, signal) => {
    if (!stopping) console.error(`[bench] ${name} exited early (${signal ?? code})`);
  });
  return child;
}

async function startService(name: string, env: Record<string, string>): Promise<Proc> {
  const port = await getFreePort();
  const child = fromDist
    ? spawn(process.execPath, [...profileFlags(name), `services/${name}/dist/main.js`], {
        cwd: root,
        env: { ...process.env, LOG_LEVEL: 'error', ...env, PORT: String(port) },
        stdio: ['ignore', 'pipe', 'inherit'],
      })
    : startNode(name, [`services/${name}/src/main.ts`], { ...env, PORT: String(port) });
  child.stdout?.resume();
  const url = `http://127.0.0.1:${port}`;
  await waitFor(async () => (await fetch(`${url}/health`)).status < 600, { timeoutMs: 60_000, what: `${name} up` });
  return { name, child, url };
}

// utime + stime of a process, in seconds (clock ticks are 100 Hz on Linux).
function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function rssMb(pid: number | undefined): string {
  if (!pid) return '?';
  try {
    const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return `${(kb / 1024).toFixed(1)} MB`;
  } catch {
    return '?';
  }
}

async function load(title: string, opts: autocannon.Options): Promise<autocannon.Result> {
  const result = await autocannon({ ...opts, connections: Number(process.env['BENCH_CONNECTIONS'] ?? 32) });
  const errors = result.errors + result.timeouts + result.non2xx;
  console.log(
    `${title.padEnd(34)} ${result.requests.average.toFixed(0).padStart(6)} req/s   ` +
      `p50 ${String(result.latency.p50).padStart(4)} ms   p99 ${String(result.latency.p99).padStart(4)} ms   ` +
      `${result.requests.total} requests, ${errors} failed`,
  );
  return result;
}

async function main(): Promise<void> {
  const duration = Number(process.env['BENCH_DURATION_S'] ?? 10);
  const procs: Proc[] = [];
  let pg: PostgresServer | undefined;
  let pgliteDir: string | undefined;
  let localPgliteDir: string | undefined;
  const fakeChild = startNode('fake-llm', [self, '--fake-llm'], {});
  try {
    const fake = await new Promise<{ url: string; apiKey: string; model: string }>((resolve, reject) => {
      fakeChild.stdout!.once('data', (chunk: Buffer) => resolve(JSON.parse(chunk.toString()) as never));
      fakeChild.once('exit', () => reject(new Error('fake LLM did not start')));
    });
    const llmEnv = {
      LLM_PROVIDER: 'openai',
      LLM_BASE_URL: fake.url,
      LLM_API_KEY: fake.apiKey,
      LLM_MODEL: fake.model,
      LLM_MAX_RETRIES: '0',
      // The default (4 calls in flight per provider) protects a real provider's quota; the fake has none.
      LLM_CONCURRENCY: '64',
    };
    let databaseUrl = process.env['BENCH_DATABASE_URL'];
    if (!databaseUrl && existsSync('/usr/lib/postgresql')) {
      pg = await startPostgresServer();
      databaseUrl = pg.url;
    }
    if (!databaseUrl) pgliteDir = mkdtempSync(join(tmpdir(), 'bench-pglite-'));

    const guesser = await startService('guesser', llmEnv);
    const analyst = await startService('system-analyst', llmEnv);
    procs.push(guesser, analyst);
    const secretary = await startService('secretary', {
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { PGLITE_DIR: pgliteDir! }),
      GUESSER_URL: guesser.url,
      SYSTEM_ANALYST_URL: analyst.url,
      DATABASE_POOL_MAX: '20',
    });
    procs.push(secretary);

    const analyze = {
      url: `${secretary.url}/analyze-request?channel=direct&username=bench&request=${encodeURIComponent(
        'Хочу получать аналитику по операциям авторизации наших кошельков за прошлый месяц',
      )}`,
    };
    const direct = {
      url: `${fake.url}/v1/chat/completions`,
      method: 'POST' as const,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${fake.apiKey}` },
      body: JSON.stringify({
        model: fake.model,
        response_format: { type: 'json_object' },
        messages: [
          { role: 'system', content: 'Answer in JSON.' },
          { role: 'user', content: 'Хочу получать аналитику по операциям авторизации' },
        ],
      }),
    };

    console.log(`[bench] database: ${pg ? 'private PostgreSQL' : databaseUrl ? 'BENCH_DATABASE_URL' : 'PGlite'}`);
    console.log(`[bench] warming up…`);
    await autocannon({ ...analyze, connections: 8, duration: 2 });
    await autocannon({ ...direct, connections: 8, duration: 1 });
    console.log(`[bench] ${duration} s per run, ${process.env['BENCH_CONNECTIONS'] ?? 32} connections`);
    const cpuBefore = [...procs.map((p) => cpuSeconds(p.child.pid)), cpuSeconds(fakeChild.pid)];
    const chain = await load('GET /analyze-request (secretary)', { ...analyze, duration });
    const cpuUsed = [...procs.map((p) => cpuSeconds(p.child.pid)), cpuSeconds(fakeChild.pid)].map(
      (v, i) => v - cpuBefore[i]!,
    );
    await load('GET /get-context (guesser alone)', {
      url: `${guesser.url}/get-context?username=bench&department=IT&position=analyst&request=${encodeURIComponent('Аналитика авторизаций')}`,
      duration: Math.max(2, Math.round(duration / 2)),
    });
    const llm = await load('fake LLM directly', { ...direct, duration });
    console.log(
      `ratio: the chain serves ${((chain.requests.average / llm.requests.average) * 100).toFixed(1)}% of the fake's ` +
        `rate (each analysis = 2 LLM calls + guesser + analyst + 4 SQL statements)`,
    );
    console.log('RSS after the run, and CPU seconds spent during the /analyze-request run:');
    [...procs, { name: 'fake-llm', child: fakeChild }].forEach((p, i) =>
      console.log(`  ${p.name.padEnd(16)} ${rssMb(p.child.pid).padStart(9)}   ${cpuUsed[i]!.toFixed(1)} s CPU`),
    );
    const goals = [chain.requests.average >= 500 ? 'ok' : 'MISSED', chain.latency.p99 < 50 ? 'ok' : 'MISSED'];
    console.log(`goals: >= 500 req/s ${goals[0]}; p99 < 50 ms ${goals[1]}`);
    await benchLocalModel({
      startService,
      // PGlite serves one process: the second secretary gets its own directory.
      databaseEnv: databaseUrl
        ? { DATABASE_URL: databaseUrl }
        : { PGLITE_DIR: (localPgliteDir = mkdtempSync(join(tmpdir(), 'bench-pglite-'))) },
      track: (p) => procs.push(p as Proc),
      rssMb,
    });
  } finally {
    stopping = true;
    for (const p of [...procs].reverse()) {
      p.child.kill('SIGTERM');
      await new Promise((resolve) => (p.child.exitCode === null ? p.child.once('exit', resolve) : resolve(null)));
    }
    fakeChild.kill('SIGTERM');
    await pg?.destroy();
    if (pgliteDir) rmSync(pgliteDir, { recursive: true, force: true });
    if (localPgliteDir) rmSync(localPgliteDir, { recursive: true, force: true });
  }
}
