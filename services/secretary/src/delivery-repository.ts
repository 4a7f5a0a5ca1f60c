import type { Knex } from 'knex';
import type { SecretaryApi } from '@workemon/contracts';

/** How long a handled key is kept: Telegram keeps an unconfirmed update about 24 h; a week is ample. */
export const DELIVERY_RETENTION_DAYS = 7;

/** Expired keys are removed on the first record call and then on every 100th, not on every write. */
const PRUNE_EVERY_WRITES = 100;

/**
 * The contract's `DeliveryRecord`: `{channel, keys (1–100 strings), outcome: sent|skipped|failed, reason?}`, the
 * communicator's report that these inbound messages were handled.
 */
export type DeliveryRecord = SecretaryApi.components['schemas']['DeliveryRecord'];

/** The contract's `Delivery`: one handled key with its first outcome, reason (null: none) and ISO 8601 time. */
export type Delivery = SecretaryApi.components['schemas']['Delivery'];

type DeliveryRow = {
  key: string;
  outcome: Delivery['outcome'];
  reason: string | null;
  recorded_at: Date | string;
};

const toDelivery = (row: DeliveryRow): Delivery => ({ ...row, recorded_at: new Date(row.recorded_at).toISOString() });

/**
 * The communicator's durable record of handled inbound messages, over the `deliveries` table (key unique).
 */
export type DeliveryRepository = {
  /**
   * Records each distinct key of `record` once: a key already known keeps its first outcome (INSERT … ON CONFLICT
   * DO NOTHING). Returns how many keys were new. Now and then (the first call, then every 100th) also deletes keys
   * older than DELIVERY_RETENTION_DAYS by the database clock.
   */
  record(record: DeliveryRecord): Promise<number>;
  /** The known keys among `keys`, with their outcome; unknown keys are left out (order not guaranteed). */
  lookup(keys: string[]): Promise<Delivery[]>;
  /** Deletes keys recorded more than DELIVERY_RETENTION_DAYS ago (database clock); returns how many went. */
  removeExpired(): Promise<number>;
};

/** A DeliveryRepository over `db` (the secretary's database, with the `deliveries` table migrated). */
export function createDeliveryRepository(db: Knex): DeliveryRepository {
  let writes = 0;

  async function removeExpired(): Promise<number> {
    return db('deliveries')
      .where('recorded_at', '<', db.raw(`now() - interval '${DELIVERY_RETENTION_DAYS} days'`))
      .delete();
  }

  return {
    async record(record) {
      const rows = [...new Set(record.keys)].map((key) => ({
        key,
        channel: record.channel,
        outcome: record.outcome,
        reason: record.reason ?? null,
      }));
      const inserted = (await db('deliveries').insert(rows).onConflict('key').ignore().returning('key')) as unknown[];
      writes += 1;
      if (writes % PRUNE_EVERY_WRITES === 1) await removeExpired();
      return inserted.length;
    },
    async lookup(keys) {
      const rows = await db('deliveries')
        .whereIn('key', keys)
        .select<DeliveryRow[]>('key', 'outcome', 'reason', 'recorded_at');
      return rows.map(toDelivery);
    },
    removeExpired,
  };
}
