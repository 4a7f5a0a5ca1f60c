import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { createHttpClient, isAppError, sleep, type Logger, type Metrics } from '@workemon/service-kit';

/**
 * Where a replica stands for one polled resource: `active` polls it, `standby` waits to take over, `stopped`
 * after shutdown.
 */
export type PollerRole = 'active' | 'standby' | 'stopped';

/** The secretary's poller-lease API as the communicator uses it (PUT/DELETE /poller-leases/{name}). */
export type LeaseClient = {
  /** Takes or renews the lease for `ttlMs` ms; false when another live holder has it (the secretary's 409). */
  acquire(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives it up; never throws (a failed release lapses by itself after the TTL). */
  release(name: string, holder: string): Promise<void>;
};

/** The secretary's lease routes over the service-kit HTTP client (service key; no retries: the loop retries). */
export function createSecretaryLeaseClient(options: {
  baseURL: string;
  apiKey?: string;
  timeoutMs: number;
  metrics: Metrics;
  logger: Logger;
}): LeaseClient {
  const http = createHttpClient({ target: 'secretary', maxRetries: 0, ...options });
  const path = (name: string) => `/poller-leases/${encodeURIComponent(name)}`;
  return {
    async acquire(name, holder, ttlMs) {
      try {
        await http.put(path(name), { holder, ttl_ms: ttlMs });
        return true;
      } catch (err) {
        if (isAppError(err) && err.details?.['status'] === 409) return false;
        throw err;
      }
    },
    async release(name, holder) {
      await http.delete(`${path(name)}?holder=${encodeURIComponent(holder)}`).catch(() => undefined);
    },
  };
}

/** What a failed lease call says: the secretary's status and message, or the network error. */
function leaseFailure(err: unknown): string {
  const status = isAppError(err) ? err.details?.['status'] : undefined;
  const message = err instanceof Error ? err.message : String(err);
  return typeof status === 'number' ? `secretary answered ${status}: ${message}` : message;
}

/** A replica's identity among the communicators: host (the pod's name on Kubernetes), pid and a random part. */
export function pollerHolderId(): string {
  return `${hostname()}/${process.pid}/${randomBytes(4).toString('hex')}`;
}

export type PollerLeaseOptions = {
  /** The polled resource, without secrets: `imap:<user>@<host>:<port>/<mailbox>`, `telegram:<bot id>`. */
  name: string;
  holder: string;
  client: LeaseClient;
  /** How long a granted lease lasts, in ms; a dead active replica is replaced within about this long. */
  ttlMs: number;
  /** Starts polling; called when this replica becomes active. */
  onActive: () => void;
  /** Stops polling and waits for what is in flight; called when this replica must stop being active. */
  onStandby: () => Promise<void>;
  logger: Logger;
};

export type PollerLease = {
  start(): void;
  /** Stops polling (if active), gives the lease up so a standby takes over at once, stops the loop. */
  stop(): Promise<void>;
  role(): PollerRole;
  /**
   * `error`: why the last try to take or renew the lease failed (the secretary unreachable, or refusing this
   * communicator's key: "secretary answered 401: Invalid API key"); unset once a try got an answer, granted or not.
   */
  health(): { lease: string; role: PollerRole; holder: string; error?: string };
};

/**
 * One active poller per mailbox and bot token among communicator replicas. The active replica renews its lease
 * every third of the TTL; a standby tries every quarter of it, so it takes over within about 1.25 × TTL of the
 * active replica's death. The active replica steps down on its own when it could not renew for longer than the
 * TTL minus one renewal period (counted from when the last successful renewal was sent), before anyone else can
 * have the lease: two replicas never poll at once, even when the secretary is unreachable.
 */
export function createPollerLease(options: PollerLeaseOptions): PollerLease {
  const { name, holder, client, ttlMs, logger } = options;
  const renewEveryMs = Math.max(250, Math.floor(ttlMs / 3));
  const tryEveryMs = Math.max(250, Math.floor(ttlMs / 4));
  let role: PollerRole = 'standby';
  /** Aborts the wait between two ticks when the lease is stopped. */
  let pause: AbortController | undefined;
  let validUntil = 0;
  let transition: Promise<void> = Promise.resolve();
  let running = false;
  let lastError: string | undefined;

  const stepDown = (why: string) => {
    if (role !== 'active') return;
    role = 'standby';
    logger.warn(`poller lease ${name}: standing down (${why})`, { workemon: { lease: name, holder } });
    transition = transition.then(() => options.onStandby()).catch(() => undefined);
  };

  const tick = async () => {
    const sentAt = Date.now();
    try {
      const granted = await client.acquire(name, holder, ttlMs);
      lastError = undefined;
      if (!running) return;
      if (granted) {
        validUntil = sentAt + ttlMs;
        if (role !== 'active') {
          await transition;
          role = 'active';
          logger.info(`poller lease ${name}: active`, { workemon: { lease: name, holder } });
          options.onActive();
        }
      } else {
        stepDown('another replica holds the lease');
      }
    } catch (err) {
      if (!running) return;
      const why = leaseFailure(err);
      // A standby that cannot ask never polls: said once per cause at warn (a wrong SERVICE_API_KEYS would
      // otherwise leave the mailbox or bot unread with /health saying another replica polls it).
      if (why !== lastError && role !== 'active') {
        logger.warn(`poller lease ${name}: cannot take the lease, not polling: ${why}`, { workemon: { lease: name } });
      }
      lastError = why;
      // Keep polling while the lease is certainly still ours; stop before it could have lapsed.
      if (role === 'active' && Date.now() + renewEveryMs >= validUntil) {
        stepDown(`could not renew: ${err instanceof Error ? err.message : String(err)}`);
      } else {
        logger.debug(`poller lease ${name}: secretary unreachable`, { workemon: { lease: name } });
      }
    }
  };

  /** Ticks until stopped: every `renewEveryMs` while active, every `tryEveryMs` on standby (resilience `sleep`). */
  const run = async (signal: AbortSignal) => {
    while (running) {
      await tick();
      if (!running || !(await sleep(role === 'active' ? renewEveryMs : tryEveryMs, { signal }))) return;
    }
  };

  return {
    start() {
      if (running) return;
      running = true;
      pause = new AbortController();
      void run(pause.signal);
    },
    async stop() {
      running = false;
      pause?.abort();
      pause = undefined;
      const wasActive = role === 'active';
      role = 'stopped';
      if (wasActive) {
        await transition;
        await options.onStandby();
        await client.release(name, holder);
      }
    },
    role: () => role,
    health: () => ({ lease: name, role, holder, ...(lastError ? { error: lastError } : {}) }),
  };
}
