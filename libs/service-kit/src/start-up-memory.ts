import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * How long the heap must have been quiet (no garbage collection) before the start-up collection runs, in ms.
 * V8 shrinks its young generation in a full collection only when the allocation rate it measured over the last
 * 5 s is low (`Heap::ReduceNewSpaceSize`, V8's `kThroughputTimeFrameMs` of 5,000 ms), so the collection has to
 * come more than 5 s after the last collection of start-up; 5.5 s leaves a margin.
 */
export const START_UP_QUIET_MS = 5500;

/**
 * When to stop waiting for a quiet heap, in ms after the call: a service busy from its first seconds never gets
 * the collection, and V8's own memory reducer does the same work once it is idle.
 */
export const START_UP_GIVE_UP_MS = 30_000;

/**
 * Committed but unused heap (`total_heap_size - used_heap_size` of `v8.getHeapStatistics()`, bytes) above which the
 * collection is tried again after the next quiet period: a young generation V8 did not shrink (the allocation
 * rate it measured was not yet low) is 16 MB at `--max-semi-space-size=8`, a shrunk one 2 MB.
 */
export const START_UP_SLACK_BYTES = 8 * 1024 * 1024;

/** At most this many start-up collections per process. */
const START_UP_ATTEMPTS = 3;

type FullCollection = () => void;

/**
 * V8's full garbage collection as a function: `globalThis.gc` when node runs with `--expose-gc`, otherwise the
 * same function taken from a fresh context after enabling the flag (`v8.setFlagsFromString('--expose-gc')`
 * applies to contexts created afterwards; Node's documentation of `v8.setFlagsFromString`).
 */
function fullCollection(): FullCollection {
  const exposed = (globalThis as { gc?: FullCollection }).gc;
  if (typeof exposed === 'function') return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as FullCollection;
}

/**
 * Returns the memory start-up used to the operating system soon after a service starts, instead of ~17 s later.
 *
 * Start-up (loading the module graph, compiling validators, migrating a database) grows V8's young generation to
 * its `--max-semi-space-size` and leaves garbage in the old one; an idle service keeps that memory resident until
 * V8's memory reducer runs, about 16–17 s after start on Node 20 (measured: a secretary at 98–101 MB right after
 * start drops to 82–85 MB then; docs/operations.md, "Memory at start-up"). One full collection once the heap has
 * been quiet for `quietMs` (no collection: any collection restarts the wait) does the same about 6 s after start:
 * a pause of 10–60 ms on a 25 MB heap. When V8 still keeps more than `slackBytes` committed but unused (it had
 * measured some allocation in the quiet period), the collection is repeated after the next quiet period, at most
 * three times per process.
 *
 * @param options.quietMs the quiet time before collecting, ms (default {@link START_UP_QUIET_MS}).
 * @param options.giveUpAfterMs stop waiting after this long, ms (default {@link START_UP_GIVE_UP_MS}).
 * @param options.slackBytes committed-but-unused heap that is left alone, bytes (default
 *   {@link START_UP_SLACK_BYTES}).
 * @returns a function that cancels the collection if it has not run yet (shutdown before it). The timers are
 *   unref'd: they never keep the process alive.
 */
export function scheduleStartUpCollection(
  options: { quietMs?: number; giveUpAfterMs?: number; slackBytes?: number } = {},
): () => void {
  let attempts = 0;
  const quiet = setTimeout(collect, options.quietMs ?? START_UP_QUIET_MS).unref();
  const giveUp = setTimeout(stop, options.giveUpAfterMs ?? START_UP_GIVE_UP_MS).unref();
  // Every collection (a 'gc' performance entry) restarts the quiet period, ours included.
  const collections = new PerformanceObserver(() => quiet.refresh());
  collections.observe({ entryTypes: ['gc'] });
  function stop(): void {
    clearTimeout(quiet);
    clearTimeout(giveUp);
    collections.disconnect();
  }
  function collect(): void {
    attempts += 1;
    fullCollection()();
    const heap = getHeapStatistics();
    const slack = heap.total_heap_size - heap.used_heap_size;
    if (attempts >= START_UP_ATTEMPTS || slack <= (options.slackBytes ?? START_UP_SLACK_BYTES)) stop();
    else quiet.refresh();
  }
  return stop;
}
