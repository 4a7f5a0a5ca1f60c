import { describe, expect, it } from 'vitest';
import { getHeapStatistics } from 'node:v8';
import { LLM_SERVICE_SEMI_SPACE_MB, capYoungGeneration } from '../src/index.js';

describe('capYoungGeneration', () => {
  it('leaves a process started with its own --max-semi-space-size alone (command line or NODE_OPTIONS)', () => {
    expect(capYoungGeneration({ execArgv: ['--max-semi-space-size=16'], nodeOptions: '' })).toBe(false);
    expect(capYoungGeneration({ execArgv: [], nodeOptions: '--max-old-space-size=128 --max-semi-space-size=2' })).toBe(
      false,
    );
  });

  it('caps the semi-space otherwise, and the heap keeps working', () => {
    expect(LLM_SERVICE_SEMI_SPACE_MB).toBe(8);
    expect(capYoungGeneration({ execArgv: ['--max-old-space-size=128'], nodeOptions: '' })).toBe(true);
    // Garbage well beyond the young generation is collected as before.
    let kept = 0;
    for (let i = 0; i < 2000; i++) kept += JSON.stringify({ i, pad: 'x'.repeat(10_000) }).length;
    expect(kept).toBeGreaterThan(2000 * 10_000);
    expect(getHeapStatistics().used_heap_size).toBeGreaterThan(0);
  });
});
