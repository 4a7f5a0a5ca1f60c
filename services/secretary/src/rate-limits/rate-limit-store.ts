import { retry } from '@workemon/service-kit';
import type { Knex } from 'knex';
import type { RateLimitVerdict } from '@workemon/contracts';
import { runPrepared, type PreparedStatement } from '../database.js';
import { DRAW_BUDGET_FUNCTION } from '../migrations/390_rate_limit_draw.js';

/** One budget to draw from: `limit` units per `windowSeconds`, under `key`. */
export type RateLimitEntry = {
  /** The bucket's name, ≤ 300 characters (`email:<address>`, `analyze:username:<name>`, …). */
  key: string;
  /** Units allowed per window (≥ 1). */
  limit: number;
  /** The window, in seconds (1..86,400). */
  windowSeconds: number;
};

/** One definition for every service (libs/contracts): the camelCase form of the contract's RateLimitVerdict. */
export type { RateLimitVerdict };

/** How often (at most) one process deletes rows that hold no budget any more. */
export const RATE_LIMIT_CLEANUP_INTERVAL_MS = 60_000;

// PostgreSQL's deadlock and serialization failures: the transaction is simply tried again.
const RETRYABLE_CODES = new Set(['40P01', '40001']);

/** Retries of a draw that deadlocked or failed to serialize (`isDrawRace`): 5 tries in all, each at once. */
export const MAX_DRAW_RETRIES = 4;

type BucketRow = { key: string; tat_ms: number | string | null; now_ms: number | string };

// A microsecond of slack: T = window / limit is rarely exact in binary floating point.
const GCRA_SLACK_MS = 1e-3;

/**
 * The GCRA decision for one entry (Generic Cell Rate Algorithm, ITU-T I.371; the "leaky bucket as a meter").
 * Emission interval T = window / limit; a key may run at most `limit` units ahead of the clock, i.e. the new
 * theoretical arrival time max(tat, now) + T may lie at most `window` after now. Pure; times in milliseconds.
 * Returns the new tat when allowed, else how long until one unit is free again.
 */
export function gcra(
  entry: Pick<RateLimitEntry, 'limit' | 'windowSeconds'>,
  tatMs: number,
  nowMs: number,
): { allowed: true; tatMs: number } | { allowed: false; retryAfterMs: number } {
  const windowMs = entry.windowSeconds * 1000;
  const interval = windowMs / entry.limit;
  const next = Math.max(tatMs, nowMs) + interval;
  const overBy = next - nowMs - windowMs;
  if (overBy <= GCRA_SLACK_MS) return { allowed: true, tatMs: next };
  return { allowed: false, retryAfterMs: overBy };
}

/**
 * A PostgreSQL array literal (`{"a","b"}`; PostgreSQL documentation, "Arrays", "Array Value Input") of strings or
 * numbers, every element double-quoted with `\\` and `"` escaped, as node-postgres writes a JS array parameter
 * (utils.js `arrayString`), minus its per-element regular expressions for the usual element that needs none.
 */
export function pgArrayLiteral(values: readonly (string | number)[]): string {
  let literal = '{';
  for (let i = 0; i < values.length; i++) {
    const text = String(values[i]);
    const plain = !text.includes('\\') && !text.includes('"');
    literal += `${i > 0 ? ',' : ''}"${plain ? text : text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  }
  return `${literal}}`;
}

/**
 * The budgets a draw takes from (`createBudgetDrawer`), as its three array parameters: the distinct keys (the
 * first entry of a key named twice counts), their limits and their windows in milliseconds, in the caller's order;
 * each an array literal (pgArrayLiteral), the text form of `text[]` and `float8[]` parameters.
 */
export function budgetParams(entries: readonly RateLimitEntry[]): [string, string, string] {
  const seen = new Map<string, RateLimitEntry>();
  for (const entry of entries) if (!seen.has(entry.key)) seen.set(entry.key, entry);
  const distinct = [...seen.values()];
  return [
    pgArrayLiteral(distinct.map((e) => e.key)),
    pgArrayLiteral(distinct.map((e) => e.limit)),
    pgArrayLiteral(distinct.map((e) => e.windowSeconds * 1000)),
  ];
}

/** The call of one coalesced draw (migration 390_rate_limit_draw): $1–$3 budgetParams, $4 the units. */
const DRAW_BUDGET: PreparedStatement = {
  name: 'workemon_draw_budget',
  text: `select drawn, refused_key, over_ms
  from ${DRAW_BUDGET_FUNCTION}(cast($1 as text[]), cast($2 as float8[]), cast($3 as float8[]), cast($4 as integer))`,
};

/** The most units one call of the draw function takes; more waiting draws go in the next call. */
export const MAX_DRAW_BATCH = 256;

type DrawRow = { drawn: number; refused_key: string | null; over_ms: number | null };

type DrawWaiter = { resolve: (verdict: RateLimitVerdict) => void; reject: (err: unknown) => void };

/** The draws of one set of budgets (the same keys, limits and windows): at most one call running at a time. */
type DrawLine = { params: [string, string, string]; waiting: DrawWaiter[] };

/**
 * Draws of one unit from sets of budgets, each all or nothing, as `consume` answers them, gathered per process:
 * a draw on budgets that no call is drawing from runs at once, alone; draws that arrive while one runs wait for it
 * and then go together in the next call, as many units (at most MAX_DRAW_BATCH), in the order they came
 * (`workemon_draw_budget`, migration 390_rate_limit_draw: GCRA for n units, the first k that fit are allowed, the
 * rest refused with the Retry-After of the next unit). So every request of one client key and one username
 * (/analyze-request's budgets) no longer waits on the same rows' locks one by one: under load one call takes the
 * units of all the requests that came while the last one ran. Each draw of a set of budgets is exactly what a
 * single draw in that order would have answered. A call that fails (the database lost, a statement timeout) rejects
 * every draw it held with its error; nothing was drawn by it. Deadlocks and serialization failures are retried at
 * once (`retryDraw`).
 */
export function createBudgetDrawer(knex: Knex) {
  const lines = new Map<string, DrawLine>();

  async function drain(id: string, line: DrawLine): Promise<void> {
    try {
      while (line.waiting.length > 0) {
        const batch = line.waiting.splice(0, MAX_DRAW_BATCH);
        try {
          const [row] = await retryDraw(() => runPrepared<DrawRow>(knex, DRAW_BUDGET, [...line.params, batch.length]));
          const drawn = Number(row!.drawn);
          const refused: RateLimitVerdict =
            row!.refused_key === null
              ? { allowed: true }
              : { allowed: false, key: row!.refused_key, retryAfterSeconds: retryAfterSecondsOf(Number(row!.over_ms)) };
          batch.forEach((waiter, i) => waiter.resolve(i < drawn ? { allowed: true } : refused));
        } catch (err) {
          for (const waiter of batch) waiter.reject(err);
        }
      }
    } finally {
      lines.delete(id);
    }
  }

  return {
    /**
     * Takes one unit from every entry's budget (the first entry of a key named twice counts), all or nothing;
     * refused: nothing is taken, and the verdict names the first exhausted key in the order given with the whole
     * seconds (≥ 1) until it has a unit again. Rejects with the database's error when the draw could not be made.
     */
    draw(entries: readonly RateLimitEntry[]): Promise<RateLimitVerdict> {
      if (entries.length === 0) return Promise.resolve({ allowed: true });
      const params = budgetParams(entries);
      const id = params.join('\n');
      return new Promise((resolve, reject) => {
        const running = lines.get(id);
        if (running) {
          running.waiting.push({ resolve, reject });
          return;
        }
        const line: DrawLine = { params, waiting: [{ resolve, reject }] };
        lines.set(id, line);
        void drain(id, line);
      });
    },
  };
}

export type BudgetDrawer = ReturnType<typeof createBudgetDrawer>;

/**
 * Whether a draw failed in a way that running it again settles: a deadlock or a serialization failure
 * (SQLSTATE 40P01, 40001; PostgreSQL documentation, Appendix A). Nothing was drawn.
 */
export function isDrawRace(err: unknown): boolean {
  const e = err as { code?: unknown } | undefined;
  return typeof e?.code === 'string' && RETRYABLE_CODES.has(e.code);
}

/**
 * Runs a draw (a `consume` transaction, a call of the draw function) through service-kit's `retry()` until
 * it resolves: a failure `isDrawRace` calls settled by running again is retried at once, up to
 * MAX_DRAW_RETRIES times; any other error, or the last one, is thrown. Nothing was drawn by a failed try.
 */
export function retryDraw<T>(draw: () => Promise<T>): Promise<T> {
  return retry(draw, { maxRetries: MAX_DRAW_RETRIES, shouldRetry: isDrawRace, delayMs: () => 0 });
}

/** Whole seconds (≥ 1) until a unit is free again, from how many milliseconds a draw was over its window. */
function retryAfterSecondsOf(overMs: number): number {
  return Math.max(1, Math.ceil(overMs / 1000));
}

/**
 * Durable, shared rate limits in the secretary's database (table `rate_limit_buckets`, migration 310): one row
 * per key holding its GCRA tat, so every replica draws from the same budget and a restart forgets nothing.
 * Works on a PostgreSQL server and on PGlite alike (plain SQL, no advisory locks or extensions).
 */
export function createRateLimitStore(knex: Knex, options: { now?: () => number } = {}) {
  let lastCleanup = 0;
  const wallClock = options.now ?? Date.now;
  const drawer = createBudgetDrawer(knex);

  /** Locks (creating when missing) the keys' rows, in key order so concurrent calls never deadlock, and reads them. */
  async function lockBuckets(trx: Knex.Transaction, keys: string[]): Promise<BucketRow[]> {
    const result = (await trx.raw(
      `insert into rate_limit_buckets (key, tat_ms)
       select k, 0 from unnest(cast(? as text[])) as k order by k
       on conflict (key) do update set tat_ms = rate_limit_buckets.tat_ms
       returning key, tat_ms, extract(epoch from clock_timestamp()) * 1000 as now_ms`,
      [keys],
    )) as { rows: BucketRow[] };
    return result.rows;
  }

  async function readBuckets(keys: string[]): Promise<{ rows: BucketRow[]; nowMs: number }> {
    const now = (await knex.raw('select extract(epoch from clock_timestamp()) * 1000 as now_ms')) as {
      rows: { now_ms: number | string }[];
    };
    const rows = (await knex('rate_limit_buckets').whereIn('key', keys).select('key', 'tat_ms')) as BucketRow[];
    return { rows, nowMs: Number(now.rows[0]!.now_ms) };
  }

  /** Applies GCRA to every entry against the rows read; the first refusal in the caller's order wins. */
  function judge(
    entries: readonly RateLimitEntry[],
    tats: Map<string, number>,
    nowMs: number,
  ): { verdict: RateLimitVerdict; next: Map<string, number> } {
    const next = new Map<string, number>();
    for (const entry of entries) {
      const decided = gcra(entry, next.get(entry.key) ?? tats.get(entry.key) ?? 0, nowMs);
      if (!decided.allowed) {
        return {
          verdict: {
            allowed: false,
            key: entry.key,
            retryAfterSeconds: retryAfterSecondsOf(decided.retryAfterMs),
          },
          next,
        };
      }
      next.set(entry.key, decided.tatMs);
    }
    return { verdict: { allowed: true }, next };
  }

  async function consumeOnce(entries: readonly RateLimitEntry[]): Promise<RateLimitVerdict> {
    const keys = [...new Set(entries.map((e) => e.key))].sort();
    return knex.transaction(async (trx) => {
      const rows = await lockBuckets(trx, keys);
      const nowMs = Number(rows[0]!.now_ms);
      const tats = new Map(rows.map((r) => [r.key, Number(r.tat_ms)]));
      const { verdict, next } = judge(entries, tats, nowMs);
      // Refused: nothing is written (rows created just now hold tat 0, i.e. no budget taken; cleanup drops them).
      if (!verdict.allowed) return verdict;
      const updates = [...next.entries()];
      await trx.raw(
        `update rate_limit_buckets as b set tat_ms = v.tat_ms
           from (select unnest(cast(? as text[])) as key, unnest(cast(? as float8[])) as tat_ms) as v
          where b.key = v.key`,
        [updates.map(([k]) => k), updates.map(([, t]) => t)],
      );
      return verdict;
    });
  }

  const store = {
    /**
     * Takes one unit from every entry's budget, all or nothing, in one transaction: allowed only when every key
     * has budget; otherwise nothing is taken and the answer names the first exhausted key (in the order given)
     * and the whole seconds until it has a unit again (≥ 1). Distinct keys are drawn by one call of the draw
     * function (createBudgetDrawer); the same key twice draws twice, in a transaction of its own. Deadlocks and
     * serialization failures are retried at once (`retryDraw`: 5 tries); other database errors are thrown.
     */
    async consume(entries: readonly RateLimitEntry[]): Promise<RateLimitVerdict> {
      if (entries.length === 0) return { allowed: true };
      // Distinct keys (every caller but a test): one call of the draw function, shared with concurrent draws of
      // the same budgets (createBudgetDrawer), in place of a transaction of four round trips holding the locks.
      const distinct = new Set(entries.map((e) => e.key)).size === entries.length;
      const verdict = distinct ? await drawer.draw(entries) : await retryDraw(() => consumeOnce(entries));
      store.cleanupSoon();
      return verdict;
    },

    /** What `consume` would answer now, without taking anything or locking (dry runs). */
    async check(entries: readonly RateLimitEntry[]): Promise<RateLimitVerdict> {
      if (entries.length === 0) return { allowed: true };
      const { rows, nowMs } = await readBuckets([...new Set(entries.map((e) => e.key))]);
      return judge(entries, new Map(rows.map((r) => [r.key, Number(r.tat_ms)])), nowMs).verdict;
    },

    /**
     * Deletes the rows that hold no budget any more (tat in the past); returns how many. It never waits for a
     * draw: rows a draw has locked are skipped (kept until the next clean-up), and the others are locked in key
     * order, as draws lock theirs (`workemon_draw_budget`), so a clean-up and a draw cannot deadlock (PostgreSQL
     * documentation, SELECT, "The Locking Clause": SKIP LOCKED). `for update` re-checks `tat_ms` on a row's
     * latest version: a row just drawn from is kept.
     */
    async cleanup(): Promise<number> {
      lastCleanup = wallClock();
      return knex('rate_limit_buckets')
        .whereIn(
          'key',
          knex('rate_limit_buckets')
            .select('key')
            .where('tat_ms', '<', knex.raw('extract(epoch from clock_timestamp()) * 1000'))
            .orderBy('key')
            .forUpdate()
            .skipLocked(),
        )
        .delete();
    },

    /** Runs `cleanup` in the background when the last one is older than RATE_LIMIT_CLEANUP_INTERVAL_MS. */
    cleanupSoon(): void {
      if (wallClock() - lastCleanup < RATE_LIMIT_CLEANUP_INTERVAL_MS) return;
      lastCleanup = wallClock();
      store.cleanup().catch(() => {
        // The next call tries again after the interval; stale rows hold no budget meanwhile.
      });
    },
  };
  return store;
}

export type RateLimitStore = ReturnType<typeof createRateLimitStore>;
