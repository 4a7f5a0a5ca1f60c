// The one retry of a rate-limit draw (retryDraw, on service-kit's retry()): what it tries again and how often.
import { describe, expect, it } from 'vitest';
import { MAX_DRAW_RETRIES, isDrawRace, retryDraw } from '../src/rate-limits/rate-limit-store.js';

/** A PostgreSQL error as node-postgres gives it: SQLSTATE in `code`, the table in `table` when known. */
function pgError(code: string, table?: string): Error {
  return Object.assign(new Error(`SQLSTATE ${code}`), { code, ...(table ? { table } : {}) });
}

/** A draw that fails with `errors` in turn, then resolves with `value`; counts its tries. */
function drawFailing(errors: Error[], value = 'drawn') {
  const state = { tries: 0 };
  const draw = async () => {
    state.tries += 1;
    const err = errors[state.tries - 1];
    if (err) throw err;
    return value;
  };
  return { draw, state };
}

describe('retryDraw', () => {
  it('tries a draw again after a deadlock or a serialization failure', async () => {
    const { draw, state } = drawFailing([pgError('40P01'), pgError('40001'), pgError('40P01')]);
    await expect(retryDraw(draw)).resolves.toBe('drawn');
    expect(state.tries).toBe(4);
  });

  it('gives up after MAX_DRAW_RETRIES retries (5 tries) and throws the last error', async () => {
    const last = pgError('40001');
    const { draw, state } = drawFailing([...Array.from({ length: MAX_DRAW_RETRIES }, () => pgError('40P01')), last]);
    await expect(retryDraw(draw)).rejects.toBe(last);
    expect(state.tries).toBe(MAX_DRAW_RETRIES + 1);
    expect(MAX_DRAW_RETRIES + 1).toBe(5);
  });

  it('throws any other error at once', async () => {
    const other = pgError('23502', 'rate_limit_buckets');
    const { draw, state } = drawFailing([other]);
    await expect(retryDraw(draw)).rejects.toBe(other);
    expect(state.tries).toBe(1);
    expect(isDrawRace(other)).toBe(false);
    expect(isDrawRace(new Error('no code'))).toBe(false);
  });
});
