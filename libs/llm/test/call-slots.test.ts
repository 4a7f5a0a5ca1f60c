// The LLM client's concurrency slots: a free slot is taken at once, callers beyond wait first come first served,
// a freed slot goes straight to the next in line, and the waiting count follows every change.
import { describe, expect, it } from 'vitest';
import { createCallSlots } from '../src/call-slots.js';

describe('call slots', () => {
  it('takes free slots at once, queues beyond, and hands a freed slot to the first waiter', async () => {
    const changes: number[] = [];
    const slots = createCallSlots(2, (n) => changes.push(n));
    expect(slots.acquire()).toBeUndefined();
    expect(slots.acquire()).toBeUndefined();
    expect([slots.active, slots.waiting]).toEqual([2, 0]);
    expect(changes).toEqual([]);

    const order: string[] = [];
    const first = slots.acquire()!.then(() => order.push('first'));
    const second = slots.acquire()!.then(() => order.push('second'));
    expect([slots.active, slots.waiting]).toEqual([2, 2]);

    slots.release();
    // Handed over, not freed: a newcomer finds no free slot in between.
    expect([slots.active, slots.waiting]).toEqual([2, 1]);
    expect(slots.acquire()).toBeInstanceOf(Promise);
    await first;
    slots.release();
    await second;
    expect(order).toEqual(['first', 'second']);
    expect(changes).toEqual([1, 2, 1, 2, 1]);

    // The newcomer's turn, then every slot is freed.
    slots.release();
    await Promise.resolve();
    slots.release();
    slots.release();
    expect([slots.active, slots.waiting]).toEqual([0, 0]);
    expect(slots.acquire()).toBeUndefined();
  });

  it('serves a long line in order (the line is compacted as it goes)', async () => {
    const slots = createCallSlots(1);
    expect(slots.acquire()).toBeUndefined();
    const served: number[] = [];
    const waiters = Array.from({ length: 3000 }, (_, i) => slots.acquire()!.then(() => served.push(i)));
    expect(slots.waiting).toBe(3000);
    for (let i = 0; i < 3000; i += 1) {
      slots.release();
      // Keep adding while the line drains, so it never empties in between.
      if (i % 2 === 0) waiters.push(slots.acquire()!.then(() => served.push(3000 + i / 2)));
    }
    await Promise.all(waiters.slice(0, 3000));
    expect(served.slice(0, 3000)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(slots.waiting).toBe(1500);
    expect(slots.active).toBe(1);
  });

  it('refuses a concurrency below 1 or not an integer', () => {
    expect(() => createCallSlots(0)).toThrow(RangeError);
    expect(() => createCallSlots(1.5)).toThrow(/integer of at least 1/);
  });
});
