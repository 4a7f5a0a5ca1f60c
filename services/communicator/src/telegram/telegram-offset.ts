/**
 * The getUpdates offset under per-update confirmation (step "confirm").
 *
 * Telegram forgets every update below the offset of the next getUpdates call (Bot API getUpdates: "An update is
 * considered confirmed as soon as getUpdates is called with an offset higher than its update_id"). Updates are
 * handled out of order (each chat has its own queue), so the offset may only move over the lowest contiguous
 * run of handled updates: it is the smallest update_id still pending, or one past the highest seen when none is.
 * Handled updates above a pending one are remembered here so the next poll, which returns them again, does not
 * queue them twice; after a crash the durable record (secretary `POST /deliveries`) plays that role.
 */
export function createOffsetTracker() {
  /** update_id → when it was first seen (ms). */
  const pending = new Map<number, number>();
  const handled = new Set<number>();
  // Everything below `floor` was handled and may already be confirmed.
  let floor = 0;
  let highest = -1;

  const offset = () => {
    let lowest = Infinity;
    for (const id of pending.keys()) if (id < lowest) lowest = id;
    return lowest === Infinity ? Math.max(floor, highest + 1) : lowest;
  };

  const done = (updateId: number): number => {
    pending.delete(updateId);
    handled.add(updateId);
    if (updateId > highest) highest = updateId;
    const next = offset();
    for (const id of handled) if (id < next) handled.delete(id);
    floor = Math.max(floor, next);
    return next;
  };

  return {
    /** Registers an update from a poll; false when it is already pending or handled (a repeat). */
    add(updateId: number, now = Date.now()): boolean {
      if (updateId < floor || pending.has(updateId) || handled.has(updateId)) return false;
      pending.set(updateId, now);
      if (updateId > highest) highest = updateId;
      return true;
    },
    /**
     * Follows a restarted update_id sequence (Bot API, Update.update_id: "If there are no new updates for at least a
     * week, then identifier of the next update will be chosen randomly instead of sequentially"): an update below
     * the offset this poll asked for, unknown here, is the first of the new sequence. Everything below it is
     * forgotten, so `add` takes it and the offset confirms it (`updateId + 1` once it is done). Updates still
     * pending keep their place; the durable record (keyed by chat and message, not by update_id) still stops a
     * message from being answered twice. False (nothing changed) for an update `add` takes anyway (not below the
     * floor) or one this tracker knows.
     */
    rebase(updateId: number): boolean {
      if (updateId >= floor || pending.has(updateId) || handled.has(updateId)) return false;
      handled.clear();
      floor = updateId;
      highest = updateId - 1;
      return true;
    },
    /** Marks an update handled (answered, skipped or given up); returns the offset now confirmable. */
    done,
    /**
     * Lets the offset move past a pending update that is stored elsewhere (parked in the secretary,
     * telegram-parking.ts) but not handled yet: from here on it counts as handled for the offset, and a repeat from
     * a poll is not taken again. Call only once the park is durable. False (nothing changed) when it is not pending.
     */
    park(updateId: number): boolean {
      if (!pending.has(updateId)) return false;
      done(updateId);
      return true;
    },
    /** The pending updates with when each was first seen (ms), in no particular order. */
    pendingEntries: (): Array<[updateId: number, seenAt: number]> => [...pending.entries()],
    /** The highest update_id seen so far (-1 before any). */
    highestSeen: () => highest,
    /** The offset to send with the next getUpdates: it confirms every update below it. */
    offset,
    pendingCount: () => pending.size,
    /** Age in ms of the oldest update not yet handled (0 when none): the head that holds the offset back. */
    oldestPendingAgeMs(now = Date.now()): number {
      let oldest = Infinity;
      for (const at of pending.values()) if (at < oldest) oldest = at;
      return oldest === Infinity ? 0 : now - oldest;
    },
  };
}

export type OffsetTracker = ReturnType<typeof createOffsetTracker>;
