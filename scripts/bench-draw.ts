// The secretary's first statement of a client-key /analyze-request alone: the lookup with the draw from the
// /analyze-request rate limits (one client key's and one username's budget, as every request of `npm run bench`
// draws), from BENCH_DRAW_CONNECTIONS concurrent callers (default 32) for BENCH_DURATION_S seconds (default 10)
// after BENCH_WARMUP_S (default 3), on a private PostgreSQL server. Prints lookups per second, p50/p99 in ms, and
// CPU ms per lookup of PostgreSQL (all its processes, from /proc) and of this process. With BENCH_DRAW_BUDGET=0
// the same lookups draw nothing: the difference is what the limits cost. Issue 14, docs/operations.md.
import { createTestDatabase, startPostgresServer } from '@workemon/testkit/postgres';
import { migrateDatabase, openDatabase } from '../services/secretary/src/database.js';
import { createHistoryWriteRepository } from '../services/secretary/src/history-write-repository.js';
import { postgresCpuSeconds } from './mail-drain-probes.js';

const connections = Number(process.env.BENCH_DRAW_CONNECTIONS ?? 32);
const durationS = Number(process.env.BENCH_DURATION_S ?? 10);
const warmupS = Number(process.env.BENCH_WARMUP_S ?? 3);
const withBudget = process.env.BENCH_DRAW_BUDGET !== '0';

const budget = [
  { key: 'analyze:key:bench', limit: 1_000_000, windowSeconds: 60 },
  { key: 'analyze:username:bench', limit: 1_000_000, windowSeconds: 3600 },
];

async function main(): Promise<void> {
  const server = await startPostgresServer();
  const database = await createTestDatabase(server.url, 'bench_draw');
  const db = openDatabase({ url: database.url, poolMax: connections + 4 });
  try {
    await migrateDatabase(db);
    const history = createHistoryWriteRepository(db.knex);
    const lookup = () =>
      history.lookupRequest({
        channel: 'direct',
        sender: 'bench',
        messageId: undefined,
        threadKey: undefined,
        clarificationTtlMs: 60_000,
        leaseMs: 60_000,
        ...(withBudget ? { budget } : {}),
      });
    const run = async (seconds: number) => {
      const latencies: number[] = [];
      const until = performance.now() + seconds * 1000;
      await Promise.all(
        Array.from({ length: connections }, async () => {
          while (performance.now() < until) {
            const started = performance.now();
            const found = await lookup();
            if (withBudget && !found.rateLimit?.allowed) throw new Error('a draw was refused');
            latencies.push(performance.now() - started);
          }
        }),
      );
      return latencies.sort((a, b) => a - b);
    };
    await run(warmupS);
    const [pgBefore, selfBefore] = [postgresCpuSeconds(), process.cpuUsage()];
    const latencies = await run(durationS);
    const pgMs = ((postgresCpuSeconds() - pgBefore) * 1000) / latencies.length;
    const self = process.cpuUsage(selfBefore);
    const selfMs = (self.user + self.system) / 1000 / latencies.length;
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!;
    console.log(
      `[bench-draw] ${withBudget ? 'lookup + draw' : 'lookup alone'}, ${connections} callers: ` +
        `${Math.round(latencies.length / durationS)} lookups/s, p50 ${at(0.5).toFixed(2)} ms, p99 ${at(0.99).toFixed(2)} ms; ` +
        `CPU ms/lookup: PostgreSQL ${pgMs.toFixed(3)}, this process ${selfMs.toFixed(3)}`,
    );
  } finally {
    await db.close();
    await database.drop();
    await server.destroy();
  }
}

await main();
