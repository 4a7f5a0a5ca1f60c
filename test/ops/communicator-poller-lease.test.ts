// One active poller per mailbox and bot token: communicator replicas competing for a lease held by the REAL
// secretary (its buildApp on a real Postgres database), over real HTTP.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createAuthenticator, createLogger, createMetrics } from '@workemon/service-kit';
import { listen, waitFor, type Listening } from '@workemon/testkit';
import { TEST_API_KEYS, TEST_KEYS } from '@workemon/testkit/api-keys';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import {
  buildApp as buildSecretary,
  createAnalystClient,
  createGuesserClient,
  migrateDatabase,
  openDatabase,
  type Database,
} from '@workemon/secretary';
import {
  createPollerLease,
  createSecretaryLeaseClient,
  pollerHolderId,
  type LeaseClient,
  type PollerLease,
} from '../../services/communicator/src/poller-lease.js';

const logger = createLogger({ service: 'communicator', level: 'error' });
logger.silent = true;
let db: { url: string; drop: () => Promise<void> };
let database: Database;
let secretary: Listening;

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'communicator_lease');
  const metrics = createMetrics('secretary');
  database = openDatabase({ url: db.url, poolMax: 5, logger });
  await migrateDatabase(database);
  const nowhere = 'http://127.0.0.1:9';
  secretary = await listen(
    buildSecretary({
      knex: database.knex,
      guesser: createGuesserClient({ baseURL: nowhere, timeoutMs: 1000, metrics, logger, maxRetries: 0 }),
      analyst: createAnalystClient({ baseURL: nowhere, timeoutMs: 1000, metrics, logger, maxRetries: 0 }),
      logger,
      metrics,
      auth: createAuthenticator(TEST_API_KEYS),
      unknownUserPolicy: 'allow',
      clarificationTtlMs: 3_600_000,
      maxClarifications: 3,
      attemptLeaseMs: 5000,
    }),
  );
});
afterAll(async () => {
  await secretary?.close();
  await database?.close();
  await db?.drop();
});

/** A replica's view of one lease: whether it is polling now, and how often it started and stopped. */
function replica(name: string, ttlMs: number, baseURL = secretary.url) {
  const state = { polling: false, starts: 0, stops: 0, dead: false };
  const real = createSecretaryLeaseClient({
    baseURL,
    apiKey: TEST_KEYS.service,
    timeoutMs: 1000,
    metrics: createMetrics('c'),
    logger,
  });
  // After die(), every call hangs: the replica neither renews nor stands down nor releases, as a killed
  // process would.
  const never = new Promise<never>(() => undefined);
  const client: LeaseClient = {
    acquire: (...args) => (state.dead ? never : real.acquire(...args)),
    release: (...args) => (state.dead ? never : real.release(...args)),
  };
  const lease: PollerLease = createPollerLease({
    name,
    holder: pollerHolderId(),
    client,
    ttlMs,
    logger,
    onActive: () => {
      state.polling = true;
      state.starts++;
    },
    onStandby: async () => {
      state.polling = false;
      state.stops++;
    },
  });
  const die = () => {
    state.dead = true;
  };
  return { state, lease, die };
}

describe('poller lease', () => {
  it('makes exactly one of three replicas active, and a standby active within the TTL after the active one dies', async () => {
    const ttlMs = 2000;
    const replicas = [1, 2, 3].map(() => replica('telegram:100', ttlMs));
    replicas.forEach((r) => r.lease.start());
    await waitFor(() => replicas.some((r) => r.state.polling), { timeoutMs: 5000 });
    // Give the standbys several tries: none may become active while the lease is held.
    await new Promise((r) => setTimeout(r, ttlMs));
    expect(replicas.filter((r) => r.state.polling)).toHaveLength(1);
    expect(replicas.filter((r) => r.lease.role() === 'active')).toHaveLength(1);
    expect(replicas.filter((r) => r.lease.role() === 'standby')).toHaveLength(2);

    // The active replica dies: its loop stops without releasing (as with SIGKILL).
    const active = replicas.find((r) => r.state.polling)!;
    const diedAt = Date.now();
    active.die();
    const rest = replicas.filter((r) => r !== active);
    await waitFor(() => rest.some((r) => r.state.polling), { timeoutMs: 3 * ttlMs });
    const takeoverMs = Date.now() - diedAt;
    expect(takeoverMs).toBeLessThan(2 * ttlMs);
    expect(rest.filter((r) => r.state.polling)).toHaveLength(1);

    // A clean stop hands over at once, well within one TTL.
    const second = rest.find((r) => r.state.polling)!;
    const stoppedAt = Date.now();
    await second.lease.stop();
    expect(second.state.polling).toBe(false);
    const last = rest.find((r) => r !== second)!;
    await waitFor(() => last.state.polling, { timeoutMs: 2 * ttlMs });
    expect(Date.now() - stoppedAt).toBeLessThan(ttlMs);
    await last.lease.stop();
  });

  it('keeps different mailboxes and bots independent', async () => {
    const a = replica('imap:a@mail:993/INBOX', 2000);
    const b = replica('imap:b@mail:993/INBOX', 2000);
    a.lease.start();
    b.lease.start();
    await waitFor(() => a.state.polling && b.state.polling, { timeoutMs: 5000 });
    await Promise.all([a.lease.stop(), b.lease.stop()]);
  });

  it('stops polling before its lease can lapse when the secretary is unreachable, and resumes when it is back', async () => {
    // A proxy in front of the secretary that can be switched off.
    const { createServer, request: httpRequest } = await import('node:http');
    let up = true;
    const proxy = createServer((req, res) => {
      if (!up) {
        req.socket.destroy();
        return;
      }
      const target = new URL(req.url ?? '/', secretary.url);
      const upstream = httpRequest(target, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const address = proxy.address() as { port: number };
    const ttlMs = 2000;
    const r = replica('telegram:200', ttlMs, `http://127.0.0.1:${address.port}`);
    const other = replica('telegram:200', ttlMs);
    r.lease.start();
    await waitFor(() => r.state.polling, { timeoutMs: 5000 });
    other.lease.start();

    up = false;
    const cutAt = Date.now();
    await waitFor(() => !r.state.polling, { timeoutMs: 2 * ttlMs });
    // It stood down before the lease lapsed, so the two never polled at once.
    expect(Date.now() - cutAt).toBeLessThan(ttlMs);
    await waitFor(() => other.state.polling, { timeoutMs: 3 * ttlMs });
    expect(r.state.polling).toBe(false);

    up = true;
    await other.lease.stop();
    await waitFor(() => r.state.polling, { timeoutMs: 3 * ttlMs });
    await r.lease.stop();
    proxy.closeAllConnections();
    await new Promise((res) => proxy.close(res));
  });
});
