import type { Knex } from 'knex';
import type { SecretaryApi } from '@workemon/contracts';

/**
 * A poller lease as stored (the contract's `PollerLease`): who holds it, its fencing epoch (bumped at every
 * change of holder, never at a renewal) and when it lapses (database clock, ISO 8601).
 */
export type PollerLease = SecretaryApi.components['schemas']['PollerLease'];

/** The outcome of an attempt to take or renew a lease. */
export type LeaseAttempt = { granted: true; lease: PollerLease } | { granted: false; lease: PollerLease };

type LeaseRow = {
  name: string;
  holder: string;
  epoch: string | number;
  acquired_at: Date | string;
  expires_at: Date | string;
};

const toLease = (row: LeaseRow): PollerLease => ({
  name: row.name,
  holder: row.holder,
  epoch: Number(row.epoch),
  acquired_at: new Date(row.acquired_at).toISOString(),
  expires_at: new Date(row.expires_at).toISOString(),
});

/**
 * Poller leases over the secretary's database: one holder per name at a time, decided by one statement on the
 * database clock, so replicas whose clocks disagree still agree on who holds a lease.
 */
export type LeaseRepository = {
  /**
   * Takes the lease when it is free or lapsed, or renews it when `holder` already has it, for `ttlMs`
   * milliseconds from now (database time). Otherwise returns the current lease, not granted.
   */
  acquire(name: string, holder: string, ttlMs: number): Promise<LeaseAttempt>;
  /** Gives the lease up when `holder` has it (a clean shutdown hands over at once); true when it did. */
  release(name: string, holder: string): Promise<boolean>;
};

export function createLeaseRepository(db: Knex): LeaseRepository {
  return {
    async acquire(name, holder, ttlMs) {
      const interval = `${Math.max(1, Math.round(ttlMs))} milliseconds`;
      // INSERT … ON CONFLICT … WHERE: the update happens only for the same holder (a renewal) or a lapsed lease
      // (a takeover, which bumps the epoch); RETURNING is empty when another live holder keeps it.
      const { rows } = await db.raw<{ rows: LeaseRow[] }>(
        `insert into poller_leases as l (name, holder, epoch, acquired_at, renewed_at, expires_at)
         values (?, ?, 1, now(), now(), now() + ?::interval)
         on conflict (name) do update set
           holder = excluded.holder,
           epoch = case when l.holder = excluded.holder and l.expires_at > now() then l.epoch else l.epoch + 1 end,
           acquired_at = case when l.holder = excluded.holder and l.expires_at > now() then l.acquired_at else now() end,
           renewed_at = now(),
           expires_at = excluded.expires_at
         where l.holder = excluded.holder or l.expires_at <= now()
         returning name, holder, epoch, acquired_at, expires_at`,
        [name, holder, interval],
      );
      if (rows[0]) return { granted: true, lease: toLease(rows[0]) };
      const current = await db<LeaseRow>('poller_leases')
        .where({ name })
        .first('name', 'holder', 'epoch', 'acquired_at', 'expires_at');
      // Released between the two statements: try once more rather than report a holder that is gone.
      if (!current) return this.acquire(name, holder, ttlMs);
      return { granted: false, lease: toLease(current) };
    },
    async release(name, holder) {
      // Lapse it now rather than delete it, so the epoch keeps counting up across holders.
      const updated = await db('poller_leases')
        .where({ name, holder })
        .andWhere('expires_at', '>', db.fn.now())
        .update({ expires_at: db.fn.now() });
      return Number(updated) > 0;
    },
  };
}
