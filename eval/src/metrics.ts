import { ACTION_CLARIFY } from '@workemon/contracts';
import { EVAL_ACTIONS, NO_REPLY } from './labelled-set.js';
import type { CaseResult } from './runner.js';

/** What a decision is scored as: NO_REPLY when the secretary would send nothing, else its action. */
export const scoredAction = (d: { action: string; no_reply?: boolean }): string => (d.no_reply ? NO_REPLY : d.action);

/** Price of one model: per million tokens, in `currency` (eval/prices.json). */
export type ModelPrice = { input_per_million: number; output_per_million: number; currency: string };
/** `provider/model` → price. */
export type PriceTable = Record<string, ModelPrice>;

/** A fraction with what it was computed from (so reports can show 37/40 and tests can assert exactly). */
export type Rate = { value: number | null; numerator: number; denominator: number };

export type Metrics = {
  cases: number;
  /** Cases whose calls failed (counted wrong in every accuracy). */
  errors: number;
  isEnoughAccuracy: Rate;
  actionAccuracy: Rate;
  /** Rows: expected action; columns: decided action (`error` for failed cases); in EVAL_ACTIONS order. */
  confusion: { labels: string[]; matrix: number[][] };
  /** Over cases labelled with a category; null (n/a) when no answer carried a category. */
  categoryAccuracy: Rate;
  /** Decisions that asked a question (`уточнить`), over all cases. */
  clarificationRate: Rate;
  /** Decisions that leave the request unanswered (NO_REPLY: a sure `(no_reply)` category), over all cases. */
  noReplyRate: Rate;
  /** Questions asked although the case is labelled clear (expected is_enough true), over the clear cases. */
  needlessClarificationRate: Rate;
  /** Nearest-rank percentiles of the time both calls took per case, in milliseconds (failed cases left out). */
  latencyMs: { p50: number | null; p95: number | null };
  tokens: { input: number; output: number; inputPer1000: number; outputPer1000: number };
  /** Estimated cost of 1,000 requests at this set's mix; null when a model that answered has no price. */
  costPer1000: { amount: number; currency: string } | null;
  /** `provider/model` pairs that answered but have no price in the table. */
  unpriced: string[];
};

const rate = (numerator: number, denominator: number): Rate => ({
  value: denominator ? numerator / denominator : null,
  numerator,
  denominator,
});

/** Nearest-rank percentile (the smallest value with at least p% of the values at or below it). */
export function percentile(values: number[], p: number): number | null {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The figures of one configuration over its case results (pure: the same results always give the same figures). */
export function computeMetrics(results: CaseResult[], prices: PriceTable = {}): Metrics {
  const labels: string[] = [...EVAL_ACTIONS, 'error'];
  const matrix = EVAL_ACTIONS.map(() => labels.map(() => 0));
  let noReplies = 0;
  let isEnoughRight = 0;
  let actionRight = 0;
  let categoryRight = 0;
  let categoryLabelled = 0;
  let categoryAnswered = 0;
  let clarifications = 0;
  let clear = 0;
  let needless = 0;
  let errors = 0;
  const latencies: number[] = [];
  let inputTokens = 0;
  let outputTokens = 0;
  let cost = 0;
  const currencies = new Set<string>();
  const unpriced = new Set<string>();
  for (const r of results) {
    const expectedRow = (EVAL_ACTIONS as readonly string[]).indexOf(r.expected.action);
    const d = r.decision;
    if (r.expected.is_enough) clear += 1;
    if (r.expected.category !== undefined) categoryLabelled += 1;
    if (!d) {
      errors += 1;
      matrix[expectedRow]![labels.length - 1]! += 1;
      continue;
    }
    const decided = scoredAction(d);
    matrix[expectedRow]![labels.indexOf(decided)]! += 1;
    if (d.is_enough === r.expected.is_enough) isEnoughRight += 1;
    if (decided === r.expected.action) actionRight += 1;
    if (decided === NO_REPLY) noReplies += 1;
    if (r.category !== undefined) categoryAnswered += 1;
    if (r.expected.category !== undefined && r.category === r.expected.category) categoryRight += 1;
    if (d.action === ACTION_CLARIFY) {
      clarifications += 1;
      if (r.expected.is_enough) needless += 1;
    }
    latencies.push(r.latencyMs);
    for (const call of r.calls) {
      const input = call.inputTokens ?? 0;
      const output = call.outputTokens ?? 0;
      inputTokens += input;
      outputTokens += output;
      const key = `${call.provider ?? '?'}/${call.model ?? '?'}`;
      const price = prices[key];
      if (!price) {
        unpriced.add(key);
        continue;
      }
      currencies.add(price.currency);
      cost += (input * price.input_per_million + output * price.output_per_million) / 1_000_000;
    }
  }
  const n = results.length;
  const per1000 = (x: number) => (n ? (x / n) * 1000 : 0);
  return {
    cases: n,
    errors,
    isEnoughAccuracy: rate(isEnoughRight, n),
    actionAccuracy: rate(actionRight, n),
    confusion: { labels, matrix },
    categoryAccuracy: categoryAnswered ? rate(categoryRight, categoryLabelled) : rate(0, 0),
    clarificationRate: rate(clarifications, n),
    noReplyRate: rate(noReplies, n),
    needlessClarificationRate: rate(needless, clear),
    latencyMs: { p50: percentile(latencies, 50), p95: percentile(latencies, 95) },
    tokens: {
      input: inputTokens,
      output: outputTokens,
      inputPer1000: per1000(inputTokens),
      outputPer1000: per1000(outputTokens),
    },
    costPer1000:
      unpriced.size === 0 && currencies.size === 1 ? { amount: per1000(cost), currency: [...currencies][0]! } : null,
    unpriced: [...unpriced].sort(),
  };
}
