import type { Update } from 'telegraf/types';
import { isAppError, sleep, type Logger } from '@workemon/service-kit';
import type { ChannelMetrics } from '../channel-metrics.js';
import type { ListedParkedUpdate, ParkedUpdate, SecretaryClient } from '../secretary-client.js';

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
 *
 * A row must never outlive the handled record that keeps it from a second answer (`/deliveries`, kept 7 days): the
 * secretary expires rows after 2 days (`PARKED_UPDATE_MAX_AGE_DAYS`), a loaded row older than PARKED_MAX_AGE_MS is
 * dropped here too, a failed removal is retried in the background until it succeeds, and the ids of a park call
 * whose outcome is unknown (a timeout: the secretary may have committed) are removed once handled like parked ones.
 * A loaded row that is no Update this channel can handle (`invalidParkedReason`) is logged and removed, never routed.
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
/** First wait (ms) before a failed removal is tried again; doubled per failure up to REMOVE_RETRY_MAX_MS. */
const REMOVE_RETRY_BASE_MS = 500;
/** Longest wait (ms) between tries of a removal: it is retried until it succeeds or the process stops. */
const REMOVE_RETRY_MAX_MS = 60_000;
/**
 * Most ids waiting for their removal; past it the newest are given up (logged): the secretary's expiry
 * (PARKED_MAX_AGE_MS) ends them before their handled records go. As many as the secretary's rows per bot.
 */
const REMOVE_BACKLOG_MAX = 10_000;
/**
 * Oldest parked row (ms since `parked_at`) loaded and handled: the secretary's PARKED_UPDATE_MAX_AGE_DAYS (2 days).
 * Older rows are expired there; one listed anyway (clock skew, an older secretary) is dropped, never answered, since
 * the handled record that would stop a second answer lives only 7 days (secretary DELIVERY_RETENTION_DAYS).
 */
export const PARKED_MAX_AGE_MS = 2 * 24 * 3600_000;
/**
 * Oldest approval press (`callback_query`, ms since it was parked) loaded and passed on. Telegram answers a callback
 * query only for a short while ("the answer will be displayed … the user has to press again" once the query is
 * old: Bot API answerCallbackQuery), and an approval must be a person's current decision: a press left parked for
 * longer approves nothing; the approver presses again (the buttons stay).
 */
export const PARKED_PRESS_MAX_AGE_MS = 10 * 60_000;
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

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInteger = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** Why a Bot API Message (`message`, or a callback query's `message`) cannot be handled, or undefined. */
function invalidMessageReason(message: unknown, where: string): string | undefined {
  if (!isObject(message)) return `${where} is no object`;
  if (!isObject(message['chat']) || !isInteger(message['chat']['id'])) return `${where}.chat.id is missing`;
  if (!isInteger(message['message_id'])) return `${where}.message_id is missing`;
  if (!isInteger(message['date'])) return `${where}.date is missing`;
  if (message['from'] !== undefined && !(isObject(message['from']) && isInteger(message['from']['id'])))
    return `${where}.from.id is missing`;
  return undefined;
}

/** Why a callback query (Bot API CallbackQuery: `id` and `from` are always there) cannot be handled, or undefined. */
function invalidCallbackReason(query: unknown): string | undefined {
  if (!isObject(query)) return 'callback_query is no object';
  if (typeof query['id'] !== 'string') return 'callback_query.id is missing';
  if (!isObject(query['from']) || !isInteger(query['from']['id'])) return 'callback_query.from.id is missing';
  if (query['message'] !== undefined) return invalidMessageReason(query['message'], 'callback_query.message');
  return undefined;
}

/**
 * Why a listed row is no Update the channel can handle, or undefined: its Update's own `update_id` must be the row's
 * (else its removal by the handled id never matches), and it must be one of the kinds polled (`allowed_updates`:
 * `message` with `chat`, `message_id` and `date`; `callback_query` with `id` and `from`), as the Bot API sends them.
 */
export function invalidParkedReason(row: { update_id: number; update: unknown }): string | undefined {
  const update = row.update;
  if (!isObject(update)) return 'the update is no object';
  if (update['update_id'] !== row.update_id) return `its update_id ${String(update['update_id'])} is not the row's`;
  if ('message' in update) return invalidMessageReason(update['message'], 'message');
  if ('callback_query' in update) return invalidCallbackReason(update['callback_query']);
  return 'it is neither a message nor a callback_query';
}

/**
 * Why a listed row is too old to be handled (PARKED_MAX_AGE_MS; a press PARKED_PRESS_MAX_AGE_MS), or undefined.
 * `parked_at` missing or unreadable counts as now: the secretary expires such rows by its own clock.
 */
export function expiredParkedReason(row: ListedParkedUpdate, now: number): string | undefined {
  const at = row.parked_at === undefined ? NaN : Date.parse(row.parked_at);
  if (Number.isNaN(at)) return undefined;
  const ageMs = now - at;
  if (ageMs > PARKED_MAX_AGE_MS) return `parked ${Math.round(ageMs / 3600_000)} h ago, over the bound`;
  if ('callback_query' in row.update && ageMs > PARKED_PRESS_MAX_AGE_MS)
    return `an approval press parked ${Math.round(ageMs / 1000)} s ago, too old to decide anything`;
  return undefined;
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
  /** Parked and not yet handled (stored by this process, or loaded at start) → when it was parked (ms). */
  const parked = new Map<number, number>();
  /** Sent in a park call whose outcome is unknown (a timeout, a reset): the secretary may hold them. */
  const uncertain = new Set<number>();
  /** Handled (or dropped) and parked: their rows wait for removal (removeInBackground). */
  const toRemove = new Set<number>();
  let sweeping: Promise<void> | undefined;
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
      const now = Date.now();
      for (const id of stored) if (!parked.has(id)) parked.set(id, now);
      for (const id of [...stored, ...conflicts]) uncertain.delete(id);
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
        // Refused (full, too large): nothing was stored. Otherwise the secretary may have committed the rows.
        if (reason === 'unavailable') for (const u of batch) uncertain.add(u.update_id);
        metrics.parkFailed(reason, batch.length);
        retryAt = Date.now() + PARK_RETRY_MS;
        logger.warn(`parking ${batch.length} Telegram updates failed (${reason}); they hold the offset for now`, {
          error: { message: err instanceof Error ? err.message : String(err) },
        });
        return;
      }
    }
  }

  /**
   * Removes the rows in `toRemove`, 100 per call, until none is left: a failed call is retried after
   * REMOVE_RETRY_BASE_MS, doubled per failure up to REMOVE_RETRY_MAX_MS, until it succeeds or the process stops.
   */
  async function sweep(): Promise<void> {
    // On stop (`signal`) the calls under way are still tried once; only the waits between retries end.
    for (let failures = 0; toRemove.size > 0;) {
      const chunk = [...toRemove].slice(0, PARK_BATCH_MAX);
      try {
        await client.removeParkedUpdates(resource, chunk);
        for (const id of chunk) toRemove.delete(id);
        failures = 0;
      } catch (err) {
        failures += 1;
        const waitMs = Math.min(REMOVE_RETRY_BASE_MS * 2 ** (failures - 1), REMOVE_RETRY_MAX_MS);
        logger.warn(`removing handled parked Telegram updates failed; retrying in ${waitMs} ms`, {
          telegram: { update_ids: chunk.slice(0, 10), waiting: toRemove.size },
          error: { message: err instanceof Error ? err.message : String(err) },
        });
        if (!(await sleep(waitMs, { signal: deps.signal }))) return;
      }
    }
  }

  /** Queues the rows of `ids` for removal and starts the sweep when none runs. */
  function removeInBackground(ids: number[]): void {
    for (const id of ids) {
      if (toRemove.size >= REMOVE_BACKLOG_MAX) {
        logger.warn('too many parked Telegram updates wait for their removal; the secretary expires the rest', {
          telegram: { update_id: id, waiting: toRemove.size },
        });
        break;
      }
      toRemove.add(id);
    }
    sweeping ??= sweep()
      .catch((err: unknown) => {
        logger.error('removing parked Telegram updates failed', { err: err as Error });
      })
      .finally(() => {
        sweeping = undefined;
        if (toRemove.size > 0 && !deps.signal.aborted) removeInBackground([]);
      });
  }

  /** Validates the listed rows: bad and expired ones are logged, counted and removed, never handled. */
  function keepValid(rows: ListedParkedUpdate[], now: number): Update[] {
    const kept: Update[] = [];
    const dropped: number[] = [];
    for (const row of rows) {
      const why = invalidParkedReason(row) ?? expiredParkedReason(row, now);
      if (why === undefined) {
        kept.push(row.update as unknown as Update);
        const at = row.parked_at === undefined ? NaN : Date.parse(row.parked_at);
        parked.set(row.update_id, Number.isNaN(at) ? now : Math.min(at, now));
        continue;
      }
      dropped.push(row.update_id);
      logger.warn(`a parked Telegram update is dropped, never answered: ${why}`, {
        telegram: { update_id: row.update_id },
      });
    }
    if (dropped.length) {
      metrics.parkedDropped(dropped.length);
      removeInBackground(dropped);
    }
    return kept;
  }

  return {
    /** Whether the update is parked (or being parked): its row must be removed once it is handled. */
    isParked: (updateId: number): boolean => parked.has(updateId) || storing.has(updateId) || uncertain.has(updateId),
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
     * call under way has ended, and retried until that succeeds. Also for an update sent in a park call whose outcome
     * is unknown (it may be stored). No-op for an update never sent to be parked.
     */
    release(updateIds: number[]): void {
      const relevant = updateIds.filter((id) => parked.has(id) || storing.has(id) || uncertain.has(id));
      if (relevant.length === 0) return;
      const removal = parking
        .then(() => {
          const rows = relevant.filter((id) => parked.delete(id) || uncertain.delete(id));
          report();
          if (rows.length) removeInBackground(rows);
        })
        .finally(() => removals.delete(removal));
      removals.add(removal);
    },
    /** Age (ms) of the oldest update parked and not handled yet, since it was parked; 0 when none. */
    oldestParkedAgeMs(now = Date.now()): number {
      let oldest = Infinity;
      for (const at of parked.values()) if (at < oldest) oldest = at;
      return oldest === Infinity ? 0 : Math.max(0, now - oldest);
    },
    /**
     * Every parked update of the resource, lowest update_id first, page by page (`POST /telegram-parked-updates/list`);
     * they count as parked from now on. A row that is no valid Update (invalidParkedReason) or is too old
     * (expiredParkedReason) is logged and removed instead. Throws the client's error (the caller retries).
     */
    async load(now = Date.now()): Promise<Update[]> {
      const loaded: Update[] = [];
      for (let after = -1; ;) {
        const page = await client.listParkedUpdates(resource, after, LOAD_PAGE);
        loaded.push(...keepValid(page, now));
        if (page.length > 0) after = page.at(-1)!.update_id;
        if (page.length < LOAD_PAGE) break;
      }
      metrics.parkedLoaded(loaded.length);
      report();
      return loaded;
    },
    /** Waits for the park call and the removals under way (on stop; the sweep ends its retries on `signal`). */
    settle: async (): Promise<void> => {
      await parking;
      await Promise.all([...removals]);
      await sweeping;
    },
    /** The update_ids whose rows still wait for their removal (a failing secretary), lowest first. */
    removalsWaiting: (): number[] => [...toRemove].sort((a, b) => a - b),
  };
}
