// The start-up collection: one forced full (major) garbage collection, once the heap has been quiet; none when
// cancelled (shutdown) or while collections keep happening.
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { scheduleStartUpCollection } from '../src/start-up-memory.js';

/** Start times (performance.now() ms) of forced major collections: the ones `gc()` runs. */
const forcedMajor: number[] = [];
const observer = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const detail = (entry as unknown as { detail?: unknown }).detail as { kind?: number; flags?: number } | undefined;
    const forced = ((detail?.flags ?? 0) & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED) !== 0;
    if (detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR && forced) forcedMajor.push(entry.startTime);
  }
});
observer.observe({ entryTypes: ['gc'] });
afterEach(() => {
  forcedMajor.length = 0;
});

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('scheduleStartUpCollection', () => {
  it('runs one forced full collection once the heap is quiet, without --expose-gc on the command line', async () => {
    expect(process.execArgv.join(' ')).not.toContain('--expose-gc');
    const scheduledAt = performance.now();
    scheduleStartUpCollection({ quietMs: 30, slackBytes: Number.MAX_SAFE_INTEGER });
    await wait(400);
    expect(forcedMajor).toHaveLength(1);
    expect(forcedMajor[0]!).toBeGreaterThanOrEqual(scheduledAt + 25);
  });

  it('waits while collections keep happening, then collects', async () => {
    const scheduledAt = performance.now();
    scheduleStartUpCollection({ quietMs: 150, slackBytes: Number.MAX_SAFE_INTEGER });
    // 400 ms of allocation: young-generation collections every few ms keep restarting the quiet period.
    let keep: number[][] = [];
    const allocating = setInterval(() => {
      keep = Array.from({ length: 20_000 }, (_, i) => [i, i + 1]);
    }, 5);
    await wait(400);
    clearInterval(allocating);
    const stoppedAt = performance.now();
    expect(keep.length).toBe(20_000);
    expect(forcedMajor.filter((t) => t < stoppedAt)).toEqual([]);
    await wait(500);
    expect(forcedMajor).toHaveLength(1);
    expect(forcedMajor[0]!).toBeGreaterThan(scheduledAt + 400);
  });

  it('does nothing when cancelled, or after giving up', async () => {
    scheduleStartUpCollection({ quietMs: 100 })();
    scheduleStartUpCollection({ quietMs: 100, giveUpAfterMs: 50 });
    await wait(400);
    expect(forcedMajor).toEqual([]);
  });

  it('collects again after the next quiet period while more than slackBytes stays committed, at most three times', async () => {
    // Any heap has some committed-but-unused bytes: a slack of 0 is never reached, so all three attempts run.
    scheduleStartUpCollection({ quietMs: 40, slackBytes: 0 });
    await wait(800);
    expect(forcedMajor).toHaveLength(3);
    expect(forcedMajor[1]! - forcedMajor[0]!).toBeGreaterThanOrEqual(35);
  });
});
