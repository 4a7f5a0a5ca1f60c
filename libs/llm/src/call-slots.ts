/**
 * The concurrency slots of one LLM provider (LLM_CONCURRENCY): at most `concurrency` calls hold a slot, the
 * others wait in arrival order. A counting semaphore rather than p-limit: p-limit wraps every call, free slot
 * or not, in four promises, a bound function and an extra microtask hop (each promise also paying the
 * async_hooks cost of the request-id context); here a free slot is taken synchronously and only a caller that
 * has to wait gets a promise. A freed slot is handed straight to the first waiter, so a newcomer cannot take it
 * in between and the line stays first come, first served. The bound on the line (LLM_QUEUE_LIMIT) is the
 * caller's: it reads `active` and `waiting` before acquiring.
 */
export type CallSlots = {
  /** Slots held now (0 … concurrency). */
  readonly active: number;
  /** Callers waiting for a slot now. */
  readonly waiting: number;
  /**
   * Takes a slot: `undefined` when one was free (it is held from now on), else a promise that resolves once a
   * slot has been handed over. Every acquire is paired with one `release()` after the work, however it ends.
   */
  acquire(): Promise<void> | undefined;
  /** Gives a slot back: to the first waiter when someone waits, else it becomes free. */
  release(): void;
};

/** Handed-over entries at the front of the line after which it is compacted (when they are half of it). */
const COMPACT_AFTER = 1024;

/**
 * `concurrency` slots (an integer ≥ 1). `onWaitingChange(waiting)` is called whenever the number of waiting
 * callers changes (for a gauge), never on the fast path of a free slot.
 */
export function createCallSlots(concurrency: number, onWaitingChange?: (waiting: number) => void): CallSlots {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be an integer of at least 1, got ${concurrency}`);
  }
  let active = 0;
  // Resolvers of the waiting callers, first in line at `head` (shift() would copy the line on every handover).
  let line: (() => void)[] = [];
  let head = 0;
  return {
    get active() {
      return active;
    },
    get waiting() {
      return line.length - head;
    },
    acquire() {
      if (active < concurrency) {
        active += 1;
        return undefined;
      }
      const turn = new Promise<void>((resolve) => line.push(resolve));
      onWaitingChange?.(line.length - head);
      return turn;
    },
    release() {
      if (head === line.length) {
        active -= 1;
        return;
      }
      // The slot passes to the first waiter as it is: `active` stays.
      const next = line[head]!;
      head += 1;
      if (head === line.length) {
        line = [];
        head = 0;
      } else if (head >= COMPACT_AFTER && head * 2 >= line.length) {
        // A line that never empties: drop the handed-over entries now and then.
        line = line.slice(head);
        head = 0;
      }
      onWaitingChange?.(line.length - head);
      next();
    },
  };
}
