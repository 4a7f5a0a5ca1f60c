// The secretary passes on only a well-formed classification from the guesser: the decision stays valid when the
// optional fields are odd, and rules never see a malformed category or confidence.
import { describe, expect, it } from 'vitest';
import { readClassification } from '../src/guesser-client.js';

describe('readClassification', () => {
  it('keeps a category name, a confidence in 0–1 and no_reply', () => {
    expect(readClassification({ category: 'payments', confidence: 0.7, no_reply: false })).toEqual({
      category: 'payments',
      confidence: 0.7,
    });
    expect(readClassification({ category: 'marketing', confidence: 1, no_reply: true })).toEqual({
      category: 'marketing',
      confidence: 1,
      no_reply: true,
    });
    expect(readClassification({ confidence: 0 })).toEqual({ confidence: 0 });
  });

  it('drops what is malformed', () => {
    expect(readClassification({ category: 'Платежи', confidence: 1.5 })).toEqual({});
    expect(readClassification({ category: 42, confidence: '0.9', no_reply: 'yes' })).toEqual({});
    expect(readClassification({ confidence: Number.NaN, no_reply: true })).toEqual({});
    expect(readClassification({ category: 'x'.repeat(65) })).toEqual({});
  });
});
