// The figures' definitions on hand-made results: category scoring when answers carry one, nearest-rank
// percentiles, failed cases, and cost only when every model that answered has a price.
import { describe, expect, it } from 'vitest';
import { computeMetrics, percentile } from '../../eval/src/metrics.js';
import type { CaseResult } from '../../eval/src/runner.js';

const decided = (action: string, is_enough = action !== 'уточнить') => ({
  is_enough,
  request: 'r',
  action: action as 'уточнить',
  question: '',
  response: '',
});
const call = (model: string, input: number, output: number) => ({
  service: 'guesser' as const,
  provider: 'deepseek',
  model,
  inputTokens: input,
  outputTokens: output,
  durationMs: 1,
});

describe('computeMetrics', () => {
  it('scores category where the guesser gave one, and counts a failed case wrong everywhere', () => {
    const results: CaseResult[] = [
      {
        id: 'a',
        expected: { is_enough: true, action: 'создать jira-task', category: 'payments' },
        decision: decided('создать jira-task'),
        category: 'payments',
        latencyMs: 10,
        calls: [call('m', 100, 10)],
      },
      {
        id: 'b',
        expected: { is_enough: true, action: 'ответить сообщением', category: 'cards' },
        decision: decided('уточнить'),
        category: 'wallets',
        latencyMs: 30,
        calls: [call('m', 300, 30)],
      },
      {
        id: 'c',
        expected: { is_enough: false, action: 'уточнить', category: 'access' },
        latencyMs: 0,
        calls: [],
        error: 'upstream_timeout',
      },
    ];
    const m = computeMetrics(results, {
      'deepseek/m': { input_per_million: 1, output_per_million: 10, currency: 'USD' },
    });
    expect(m.categoryAccuracy).toEqual({ value: 1 / 3, numerator: 1, denominator: 3 });
    expect(m.isEnoughAccuracy).toEqual({ value: 1 / 3, numerator: 1, denominator: 3 });
    expect(m.actionAccuracy).toEqual({ value: 1 / 3, numerator: 1, denominator: 3 });
    expect(m.needlessClarificationRate).toEqual({ value: 1 / 2, numerator: 1, denominator: 2 });
    expect(m.clarificationRate).toEqual({ value: 1 / 3, numerator: 1, denominator: 3 });
    expect(m.errors).toBe(1);
    expect(m.confusion.matrix[0]![m.confusion.labels.indexOf('error')]).toBe(1); // expected уточнить, failed
    expect(m.latencyMs).toEqual({ p50: 10, p95: 30 });
    expect(m.tokens).toEqual({
      input: 400,
      output: 40,
      inputPer1000: (400 / 3) * 1000,
      outputPer1000: (40 / 3) * 1000,
    });
    expect(m.costPer1000!.amount).toBeCloseTo((((400 * 1 + 40 * 10) / 1e6) * 1000) / 3, 12);

    const unpriced = computeMetrics(results, {});
    expect(unpriced.costPer1000).toBeNull();
    expect(unpriced.unpriced).toEqual(['deepseek/m']);
    // No answer carried a category (the guesser does not classify): not scored at all.
    expect(computeMetrics(results.map((r) => ({ ...r, category: undefined }))).categoryAccuracy.value).toBeNull();
  });

  it('uses nearest-rank percentiles', () => {
    const values = Array.from({ length: 20 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(10);
    expect(percentile(values, 95)).toBe(19);
    expect(percentile([7], 95)).toBe(7);
    expect(percentile([], 50)).toBeNull();
  });
});

describe('computeMetrics: a request left unanswered', () => {
  it('scores a no_reply decision as `без ответа`, its own column, and counts the rate', () => {
    const results: CaseResult[] = [
      {
        id: 'mkt',
        expected: { is_enough: true, action: 'без ответа', category: 'marketing' },
        decision: { ...decided('ответить на письмо'), no_reply: true },
        category: 'marketing',
        latencyMs: 5,
        calls: [],
      },
      {
        id: 'real',
        expected: { is_enough: true, action: 'ответить на письмо', category: 'access' },
        decision: { ...decided('ответить на письмо'), no_reply: true },
        category: 'marketing',
        latencyMs: 5,
        calls: [],
      },
    ];
    const m = computeMetrics(results);
    expect(m.actionAccuracy).toEqual({ value: 1 / 2, numerator: 1, denominator: 2 });
    expect(m.noReplyRate).toEqual({ value: 1, numerator: 2, denominator: 2 });
    const column = m.confusion.labels.indexOf('без ответа');
    const row = (action: string) => m.confusion.matrix[m.confusion.labels.indexOf(action)]!;
    expect(row('без ответа')[column]).toBe(1);
    // A real request the model dropped shows as a reply expected, nothing sent.
    expect(row('ответить на письмо')[column]).toBe(1);
  });
});
