/**
 * `npm run bench:http`: client CPU per call of each HTTP transport the project could use for its upstream calls,
 * against one keep-alive node:http server in a child process (so only the client's CPU is counted here).
 *
 * For each transport: warm-up, then CALLS calls at CONCURRENCY in flight; prints CPU µs per call
 * (process.cpuUsage user+system / calls) and calls per second. The last rows are the service-kit client itself
 * and the LLM providers' `requestProvider`, i.e. the transport plus our own work (deadline, request id, metric,
 * status mapping). docs/DEVELOPING.md ("Upstream HTTP and retries") records the figures and the choice they led to.
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import axios from 'axios';
import { Agent, request } from 'undici';
import { createHttpClient, createMetrics } from '@workemon/service-kit';
import { requestProvider } from '../libs/llm/src/provider-http.js';

const CALLS = Number(process.env['BENCH_HTTP_CALLS'] ?? 20_000);
const CONCURRENCY = Number(process.env['BENCH_HTTP_CONCURRENCY'] ?? 16);
const ROUNDS = Number(process.env['BENCH_HTTP_ROUNDS'] ?? 3);

const SERVER = `
  const http = require('node:http');
  const body = JSON.stringify({ value: 1, text: 'x'.repeat(200) });
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
  server.keepAliveTimeout = 60000;
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
`;

type Call = (url: string) => Promise<unknown>;

async function run(call: Call, url: string, calls: number): Promise<{ cpuUs: number; perSecond: number }> {
  let next = 0;
  const worker = async () => {
    while (next < calls) {
      next += 1;
      await call(url);
    }
  };
  const cpu = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  const elapsedS = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  return { cpuUs: (used.user + used.system) / calls, perSecond: calls / elapsedS };
}

async function main(): Promise<void> {
  const child = fork('-e', [SERVER], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(Number(m))));
  const base = `http://127.0.0.1:${port}`;
  const payload = JSON.stringify({ message: 'hello', n: 1 });

  const nodeAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const undiciAgent = new Agent({ keepAliveTimeout: 30_000, connections: 64 });
  const axiosKeepAlive = axios.create({ httpAgent: nodeAgent, validateStatus: () => true });
  const kit = createHttpClient({ target: 'bench', baseURL: base, timeoutMs: 5000, metrics: createMetrics('bench') });

  const transports: Record<string, Call> = {
    'fetch (Node global)': async (u) =>
      (await fetch(u, { method: 'POST', body: payload, headers: { 'content-type': 'application/json' } })).json(),
    'axios (keep-alive agent)': async (u) => (await axiosKeepAlive.post(u, JSON.parse(payload) as unknown)).data,
    'undici.request (Agent)': async (u) =>
      (
        await request(u, {
          method: 'POST',
          body: payload,
          headers: { 'content-type': 'application/json' },
          dispatcher: undiciAgent,
        })
      ).body.json(),
    'node:http (keep-alive Agent)': (u) =>
      new Promise((resolve, reject) => {
        const req = http.request(
          u,
          { method: 'POST', agent: nodeAgent, headers: { 'content-type': 'application/json' } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
        req.end(payload);
      }),
    'service-kit createHttpClient': () => kit.post('/x', { message: 'hello', n: 1 }),
    'llm requestProvider': (u) =>
      requestProvider({
        provider: 'bench',
        method: 'POST',
        url: u,
        body: { message: 'hello', n: 1 },
        timeoutMs: 5000,
        apiKeyEnv: 'X',
      }),
  };

  const results = new Map<string, { cpuUs: number[]; perSecond: number[] }>();
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const [name, call] of Object.entries(transports)) {
      await run(call, `${base}/x`, Math.min(2000, CALLS));
      const r = await run(call, `${base}/x`, CALLS);
      const entry = results.get(name) ?? { cpuUs: [], perSecond: [] };
      entry.cpuUs.push(r.cpuUs);
      entry.perSecond.push(r.perSecond);
      results.set(name, entry);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`HTTP client cost: ${CALLS} POSTs × ${ROUNDS} rounds, ${CONCURRENCY} in flight, median of rounds`);
  console.log('transport'.padEnd(32), 'CPU µs/call'.padStart(12), 'calls/s'.padStart(10));
  for (const [name, r] of results) {
    console.log(name.padEnd(32), median(r.cpuUs).toFixed(0).padStart(12), median(r.perSecond).toFixed(0).padStart(10));
  }
  child.kill('SIGKILL');
  await undiciAgent.close();
  nodeAgent.destroy();
}

await main();
