import type { Knex } from 'knex';
import { AppError, errors } from '@workemon/service-kit';
import { DELIVERY_RETENTION_DAYS } from '../delivery-repository.js';

/**
 * Most parked updates kept per resource (bot). A full store refuses more (409 `parking_full`): the communicator then
 * keeps those updates in Telegram's queue, as before parking existed (the offset waits), so nothing is lost.
 */
export const PARKED_UPDATES_MAX_PER_RESOURCE = 10_000;

/**
 * Largest parked Update, in bytes of its JSON (UTF-8). A Bot API message carries at most 4,096 characters of text
 * (or 1,024 of caption) plus what it replies to or quotes: a few tens of KiB at the very most.
 */
export const PARKED_UPDATE_MAX_BYTES = 65_536;

/**
 * How long a parked update is kept (days, by `parked_at`, database clock). A row is safe to reload only while the
 * handled record (`deliveries`, kept DELIVERY_RETENTION_DAYS) that stops a second answer exists; a row nobody removed
 * (its removal failed, a park call's answer was lost, a takeover raced a park call) must therefore go well before
 * that record does. Telegram itself drops an unconfirmed update after 24 h (Bot API getUpdates notes), so 2 days
 * leaves room for a long outage. Expired rows are listed no more and pruned on every park call and first list page.
 */
export const PARKED_UPDATE_MAX_AGE_DAYS = 2;
if (PARKED_UPDATE_MAX_AGE_DAYS >= DELIVERY_RETENTION_DAYS)
  throw new Error('parked updates must expire before the handled records that guard them');

/** One update to park: its Bot API `update_id` and the Update object as the Bot API sent it. */
export type UpdateToPark = { update_id: number; update: Record<string, unknown> };

/** A parked update as listed: the Update object, its id, and when it was parked (ISO 8601, database clock). */
export type ParkedUpdate = { update_id: number; update: Record<string, unknown>; parked_at: string };

type ParkedRow = { update_id: string | number; body: string; parked_at: Date | string };

/** Telegram updates parked by the communicator, over the `telegram_parked_updates` table (resource + update_id). */
export type ParkedUpdateRepository = {
  /**
   * Stores each update once per (resource, update_id); a row already there is kept as it is. Returns the ids now
   * stored with exactly this content (`parked`: new or stored before) and those stored with other content
   * (`conflicts`: an update_id sequence Telegram restarted, Bot API Update.update_id), which the caller must not
   * take as parked. Throws 413 `payload_too_large` for an update over PARKED_UPDATE_MAX_BYTES and 409
   * `parking_full` when the new rows would take the resource over PARKED_UPDATES_MAX_PER_RESOURCE; nothing is
   * stored then.
   */
  park(resource: string, updates: UpdateToPark[]): Promise<{ parked: number[]; conflicts: number[] }>;
  /** Up to `limit` parked updates of `resource` with update_id above `afterUpdateId`, lowest first. */
  list(resource: string, afterUpdateId: number, limit: number): Promise<ParkedUpdate[]>;
  /** Removes these updates of `resource` (unknown ids are ignored); returns how many rows went. */
  remove(resource: string, updateIds: number[]): Promise<number>;
  /** Deletes rows of `resource` parked more than PARKED_UPDATE_MAX_AGE_DAYS ago (database clock); how many went. */
  removeExpired(resource: string): Promise<number>;
};

/** `parked_at` before this (SQL, database clock) is expired. */
const EXPIRED_BEFORE = `now() - interval '${PARKED_UPDATE_MAX_AGE_DAYS} days'`;

/**
 * 400 `bad_request` unless each Update's own `update_id` is the id it is parked under: a row whose ids differ could
 * never be removed by the id the communicator handled (Bot API Update.update_id is the update's identity).
 */
function checkIds(updates: UpdateToPark[]): void {
  for (const [i, u] of updates.entries())
    if (u.update['update_id'] !== u.update_id)
      throw errors.badRequest(`updates[${i}].update.update_id must equal updates[${i}].update_id (${u.update_id})`, {
        parameter: `updates[${i}].update.update_id`,
      });
}

/** A ParkedUpdateRepository over `db` (the secretary's database, with `telegram_parked_updates` migrated). */
export function createParkedUpdateRepository(db: Knex): ParkedUpdateRepository {
  const removeExpired = (resource: string): Promise<number> =>
    db('telegram_parked_updates').where({ resource }).andWhere('parked_at', '<', db.raw(EXPIRED_BEFORE)).delete();
  return {
    async park(resource, updates) {
      checkIds(updates);
      const bodies = new Map<number, string>();
      for (const u of updates) bodies.set(u.update_id, JSON.stringify(u.update));
      for (const [id, body] of bodies)
        if (Buffer.byteLength(body, 'utf8') > PARKED_UPDATE_MAX_BYTES)
          throw new AppError(
            'payload_too_large',
            413,
            `Update ${id} is over ${PARKED_UPDATE_MAX_BYTES} bytes of JSON; it cannot be parked`,
          );
      return db.transaction(async (trx) => {
        // One writer per resource at a time, so the bound holds (a single poller holds the lease anyway).
        await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`telegram_parked_updates:${resource}`]);
        // Expired rows count towards nothing and must not be answered as "parked before".
        await trx('telegram_parked_updates')
          .where({ resource })
          .andWhere('parked_at', '<', trx.raw(EXPIRED_BEFORE))
          .delete();
        const ids = [...bodies.keys()];
        const known = await trx('telegram_parked_updates')
          .where({ resource })
          .whereIn('update_id', ids)
          .select<Array<{ update_id: string | number; body: string }>>('update_id', 'body');
        const stored = new Map(known.map((r) => [Number(r.update_id), r.body]));
        const fresh = ids.filter((id) => !stored.has(id));
        const [row] = await trx('telegram_parked_updates').where({ resource }).count<Array<{ count: string }>>('*');
        const count = Number(row?.count ?? 0);
        if (count + fresh.length > PARKED_UPDATES_MAX_PER_RESOURCE)
          throw new AppError(
            'parking_full',
            409,
            `At most ${PARKED_UPDATES_MAX_PER_RESOURCE} updates are parked per bot; ${count} are`,
          );
        if (fresh.length)
          await trx('telegram_parked_updates').insert(
            fresh.map((id) => ({ resource, update_id: id, body: bodies.get(id)! })),
          );
        return {
          parked: ids.filter((id) => !stored.has(id) || stored.get(id) === bodies.get(id)),
          conflicts: ids.filter((id) => stored.has(id) && stored.get(id) !== bodies.get(id)),
        };
      });
    },
    async list(resource, afterUpdateId, limit) {
      if (afterUpdateId < 0) await removeExpired(resource);
      const rows = await db('telegram_parked_updates')
        .where({ resource })
        .andWhere('update_id', '>', afterUpdateId)
        .andWhere('parked_at', '>=', db.raw(EXPIRED_BEFORE))
        .orderBy('update_id')
        .limit(limit)
        .select<ParkedRow[]>('update_id', 'body', 'parked_at');
      return rows.map((r) => ({
        update_id: Number(r.update_id),
        update: JSON.parse(r.body) as Record<string, unknown>,
        parked_at: new Date(r.parked_at).toISOString(),
      }));
    },
    async remove(resource, updateIds) {
      return db('telegram_parked_updates').where({ resource }).whereIn('update_id', updateIds).delete();
    },
    removeExpired,
  };
}
