import type { Update } from 'telegraf/types';
import { isAppError, sleep, type Logger } from '@workemon/service-kit';
import type { ChannelMetrics } from '../channel-metrics.js';
import type { ParkedUpdate, SecretaryClient } from '../secretary-client.js';

/**
 * Parking: a chat that waits long (a 429 with a large `retry_after`, a slow analysis, the secretary failing for its
 * job) must not hold the getUpdates offset back for every other chat. Telegram returns at most 100 updates from the
 * offset (Bot API getUpdates `limit`, "Values between 1-100 are accepted") and forgets every update below it ("An
 * update is considered confirmed as soon as getUpdates is called with an offset higher than its update_id"): with
 * 100 updates queued behind one pending update, every poll returned the same 100 and no other chat was answered.
 *
 * An update pending for PARK_AFTER_MS (or PARK_SOON_MS while PARK_PENDING_HIGH updates are pending) with a later
 * update behind it is stored in the secretary (`POST /telegram-parked-updates`, the raw Update) and only then let
 * past by the offset (telegram-offset.ts `park`); it keeps its place in its chat's queue in memory. Once handled
 * (its `/deliveries` record written) its row is removed. At start, and when a replica takes the poller lease over,
 * the channel first loads the parked updates and queues them before it polls; the handled records (`lookupHandled`
 * in every job) keep one handled before a crash from being answered again. A store that cannot take an update
 * (over PARKED_UPDATE_MAX_BYTES, the secretary's bound reached, the secretary away) leaves it in Telegram's queue:
 * the offset waits for it, as before parking existed, and nothing is lost.
 */

/** How long (ms) an update may hold the offset back before it is parked. */
export const PARK_AFTER_MS = 5000;
/** How many pending updates (half the getUpdates limit of 100) make parking start after PARK_SOON_MS already. */
export const PARK_PENDING_HIGH = 50;
/** How long (ms) an update waits before it is parked while PARK_PENDING_HIGH updates are pending. */
export const PARK_SOON_MS = 1000;
/** Largest Update (bytes of JSON) parked; the secretary's bound (OpenAPI `parkTelegramUpdates`) is the same. */
export const PARKED_UPDATE_MAX_BYTES = 65_536;
/** Most updates per park call (the contract's maxItems). */
const PARK_BATCH_MAX = 100;
/** Most bytes of JSON per park call: well under the secretary's 1 MB request body limit. */
const PARK_BATCH_MAX_BYTES = 512 * 1024;
/** Wait (ms) before parking is tried again after a park call failed or the store was full. */
const PARK_RETRY_MS = 5000;
/** Delays (ms) between the tries of a removal; after the last, the row waits for the next start (it is deduped). */
const REMOVE_RETRY_DELAYS_MS = [500, 2000];
/** Parked updates asked for per list call at start (the contract's maximum). */
const LOAD_PAGE = 100;

/** The secretary calls parking needs (secretary-client.ts). */
export type ParkingClient = Pick<SecretaryClient, 'parkUpdates' | 'listParkedUpdates' | 'removeParkedUpdates'>;

/**
 * The update_ids to park now, lowest first: every pending update older than PARK_AFTER_MS (PARK_SOON_MS while at
 * least PARK_PENDING_HIGH are pending) below the highest update_id seen — parking the newest update would let the
 * offset past nothing. Skips `excluded` (parked already, being parked, or unparkable).
 *
 * @param pending `[update_id, first seen (ms)]` of every pending update.
 */
export function parkingCandidates(
  pending: ReadonlyArray<[number, number]>,
  highestSeen: number,
  now: number,
  excluded: (updateId: number) => boolean,
): number[] {
  const afterMs = pending.length >= PARK_PENDING_HIGH ? PARK_SOON_MS : PARK_AFTER_MS;
  return pending
    .filter(([id, seenAt]) => now - seenAt >= afterMs && id < highestSeen && !excluded(id))
    .map(([id]) => id)
    .sort((a, b) => a - b);
}

/** Splits serialized updates into park calls of at most PARK_BATCH_MAX updates and PARK_BATCH_MAX_BYTES bytes. */
function batchesOf(items: Array<{ update: ParkedUpdate; bytes: number }>): ParkedUpdate[][] {
  const batches: ParkedUpdate[][] = [];
  let current: ParkedUpdate[] = [];
  let bytes = 0;
  for (const item of items) {
    if (current.length === PARK_BATCH_MAX || (current.length > 0 && bytes + item.bytes > PARK_BATCH_MAX_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item.update);
    bytes += item.bytes;
  }
  if (current.length) batches.push(current);
  return batches;
}

/** Why a park call failed, as the metric's `reason`: the store is full (409), an update too large (413), or else. */
function parkFailureReason(err: unknown): 'full' | 'too_large' | 'unavailable' {
  if (isAppError(err) && err.code === 'upstream_rejected' && err.status === 409) return 'full';
  if (isAppError(err) && err.code === 'upstream_rejected' && err.status === 413) return 'too_large';
  return 'unavailable';
}

export type UpdateParking = ReturnType<typeof createUpdateParking>;

/**
 * One channel's parking of the bot `resource` (`telegram:<bot id>`, as its poller lease). Keeps which updates are
 * parked (stored in the secretary and not handled yet by this process); never throws out of its calls but `load`.
 */
export function createUpdateParking(deps: {
  client: ParkingClient;
  resource: string;
  logger: Logger;
  metrics: ChannelMetrics;
  /** Ends waits between removal retries on stop. */
  signal: AbortSignal;
}) {
  const { client, resource, logger, metrics } = deps;
  /** Parked and not yet handled: stored by this process, or loaded at start. */
  const parked = new Set<number>();
  /** Being stored right now (one park call at a time). */
  const storing = new Set<number>();
  /** Too large to park, or stored with other content by an earlier sequence: they wait in Telegram's queue. */
  const unparkable = new Set<number>();
  let parking: Promise<void> = Promise.resolve();
  let busy = false;
  let retryAt = 0;
  const removals = new Set<Promise<void>>();
  const report = () => metrics.parkedUpdates(parked.size);

  /** Stores one batch; the ids the secretary holds with this content are parked from now on. */
  async function storeBatch(batch: ParkedUpdate[]): Promise<number[]> {
    for (const u of batch) storing.add(u.update_id);
    try {
      const { parked: stored, conflicts } = await client.parkUpdates(resource, batch);
      for (const id of stored) parked.add(id);
      for (const id of conflicts) unparkable.add(id);
      if (conflicts.length) {
        metrics.parkFailed('conflict', conflicts.length);
        logger.warn('the secretary holds other updates under these update_ids; they are not parked', {
          telegram: { update_ids: conflicts.slice(0, 10) },
        });
      }
      metrics.updatesParked(stored.length);
      return stored;
    } finally {
      for (const u of batch) storing.delete(u.update_id);
    }
  }

  /** Serializes the updates, setting those over PARKED_UPDATE_MAX_BYTES aside for good. */
  function serialize(updates: Update[]): Array<{ update: ParkedUpdate; bytes: number }> {
    const items: Array<{ update: ParkedUpdate; bytes: number }> = [];
    for (const update of updates) {
      const bytes = Buffer.byteLength(JSON.stringify(update), 'utf8');
      if (bytes <= PARKED_UPDATE_MAX_BYTES) {
        items.push({
          update: { update_id: update.update_id, update: update as unknown as ParkedUpdate['update'] },
          bytes,
        });
        continue;
      }
      unparkable.add(update.update_id);
      metrics.parkFailed('too_large');
      logger.warn(`a Telegram update of ${bytes} bytes is too large to park; it holds the offset until handled`, {
        telegram: { update_id: update.update_id },
      });
    }
    return items;
  }

  /**
   * Parks `updates` batch by batch, leaving out those no longer pending (`isPending`: handled meanwhile); calls
   * `onParked` with each batch's parked ids. Stops at the first failure.
   */
  async function park(
    updates: Update[],
    isPending: (updateId: number) => boolean,
    onParked: (ids: number[]) => void,
  ): Promise<void> {
    for (const all of batchesOf(serialize(updates))) {
      const batch = all.filter((u) => isPending(u.update_id));
      if (batch.length === 0) continue;
      try {
        onParked(await storeBatch(batch));
        report();
      } catch (err) {
        const reason = parkFailureReason(err);
        metrics.parkFailed(reason, batch.length);
        retryAt = Date.now() + PARK_RETRY_MS;
        logger.warn(`parking ${batch.length} Telegram updates failed (${reason}); they hold the offset for now`, {
          error: { message: err instanceof Error ? err.message : String(err) },
        });
        return;
      }
    }
  }

  /** Removes rows with a few tries; a row left over is found handled at the next start and removed then. */
  async function removeRows(ids: number[]): Promise<void> {
    for (let at = 0; at < ids.length; at += PARK_BATCH_MAX) {
      const chunk = ids.slice(at, at + PARK_BATCH_MAX);
      for (let attempt = 0; ; attempt += 1) {
        try {
          await client.removeParkedUpdates(resource, chunk);
          break;
        } catch (err) {
          if (
            attempt >= REMOVE_RETRY_DELAYS_MS.length ||
            !(await sleep(REMOVE_RETRY_DELAYS_MS[attempt]!, { signal: deps.signal }))
          ) {
            logger.warn('removing handled parked Telegram updates failed; they are removed at the next start', {
              telegram: { update_ids: chunk.slice(0, 10) },
              error: { message: err instanceof Error ? err.message : String(err) },
            });
            break;
          }
        }
      }
    }
  }

  return {
    /** Whether the update is parked (or being parked): its row must be removed once it is handled. */
    isParked: (updateId: number): boolean => parked.has(updateId) || storing.has(updateId),
    /** Whether the update is parked, being parked, or cannot be: it is no candidate. */
    excluded: (updateId: number): boolean => parked.has(updateId) || storing.has(updateId) || unparkable.has(updateId),
    /**
     * Starts parking `updates` in the background unless a park call is under way or one failed less than
     * PARK_RETRY_MS ago; `onParked` gets each batch's ids once the secretary stored them (only then may the offset
     * move past them). `isPending` tells an update still waiting from one handled meanwhile (not parked then).
     */
    parkInBackground(
      updates: Update[],
      isPending: (updateId: number) => boolean,
      onParked: (ids: number[]) => void,
      now = Date.now(),
    ): void {
      if (updates.length === 0 || busy || now < retryAt) return;
      busy = true;
      parking = park(updates, isPending, onParked)
        .catch((err: unknown) => {
          logger.error('parking Telegram updates failed', { err: err as Error });
        })
        .finally(() => (busy = false));
    },
    /**
     * The update was handled (its record written) or dropped: its row is removed in the background, once a park
     * call under way has ended. No-op for an update that was never parked.
     */
    release(updateIds: number[]): void {
      const relevant = updateIds.filter((id) => parked.has(id) || storing.has(id));
      if (relevant.length === 0) return;
      const removal = parking
        .then(async () => {
          const rows = relevant.filter((id) => parked.delete(id));
          report();
          if (rows.length) await removeRows(rows);
        })
        .finally(() => removals.delete(removal));
      removals.add(removal);
    },
    /**
     * Every parked update of the resource, lowest update_id first, page by page (`POST /telegram-parked-updates/list`);
     * they count as parked from now on. Throws the client's error (the caller retries).
     */
    async load(): Promise<Update[]> {
      const loaded: Update[] = [];
      for (let after = -1; ;) {
        const page = await client.listParkedUpdates(resource, after, LOAD_PAGE);
        for (const row of page) {
          loaded.push(row.update as unknown as Update);
          parked.add(row.update_id);
          after = row.update_id;
        }
        if (page.length < LOAD_PAGE) break;
      }
      metrics.parkedLoaded(loaded.length);
      report();
      return loaded;
    },
    /** Waits for the park call and the removals under way (on stop). */
    settle: async (): Promise<void> => {
      await parking;
      await Promise.all([...removals]);
    },
  };
}
