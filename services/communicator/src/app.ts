import type { Express, Router } from 'express';
import { loadOpenApiDocument } from '@workemon/contracts';
import {
  createOpenApi,
  createServiceApp,
  type Authenticator,
  type CheckResult,
  type HealthCheck,
  type Logger,
  type Metrics,
} from '@workemon/service-kit';
import type { SecretaryClient } from './secretary-client.js';
import type { OutboundSender } from './outbound-sender.js';
import type { MailDryRun } from './email/mail-dry-run.js';
import { createSendRoutes } from './send-routes.js';
import { createTestMailRoutes } from './test-mail-routes.js';

/**
 * Current state of the channels. `standby` (a detail for /health) when another communicator replica holds the
 * channel's poller lease: this one serves POST /send only and takes over if the active one dies. `leaseError`
 * when it cannot even ask the secretary for the lease: nobody may be polling (degraded).
 */
export type ChannelHealth = {
  email?: {
    standby?: string;
    leaseError?: boolean;
    connected: boolean;
    lastSweepAt?: number;
    startedAt?: number;
    sweepIntervalMs: number;
    lastError?: string;
  };
  /**
   * Outbound SMTP, on whenever replies or POST /send can go by mail (SMTP_USER + SMTP_PASSWORD, or the IMAP
   * login): a webhook-only install (no IMAP_USER) sends mail too. `verify` logs in to the server.
   */
  smtp?: { verify: () => Promise<boolean> };
  telegram?: {
    standby?: string;
    leaseError?: boolean;
    bot?: string;
    lastPollAt?: number;
    pollTimeoutS: number;
    lastError?: string;
  };
};

export type AppDeps = {
  version: string;
  logger: Logger;
  metrics: Metrics;
  /** Checks keys: POST /send takes service keys (the secretary's). */
  auth: Authenticator;
  secretary: SecretaryClient;
  outbound: OutboundSender;
  /** Current state of the channels; undefined entries are channels that are not configured. */
  channelHealth: () => ChannelHealth;
  /**
   * POST /test (email/mail-dry-run.ts), given the caller's view (an admin key's, or a client key's: no more than the
   * secretary shows a client key); undefined when the email channel is not configured (then 501).
   */
  dryRun?: MailDryRun;
  /** Largest raw mail POST /test takes, in bytes (MAX_MAIL_BYTES). */
  maxMailBytes?: number;
  now?: () => number;
  /** The inbound mail webhooks (POST /webhook/*, `createWebhookRoutes` of webhooks/webhook-routes.ts). */
  webhookRoutes?: Router;
};

const disabled = (what: string): CheckResult => ({ status: 'disabled', detail: `${what} is not configured` });

/** The communicator's HTTP surface: POST /send, /test, /webhook/*, /health, /metrics, /openapi.json. Never listens. */
export function buildApp(deps: AppDeps): Express {
  const document = loadOpenApiDocument('communicator');
  const openapi = createOpenApi(document);
  return createServiceApp(
    {
      service: 'communicator',
      version: deps.version,
      logger: deps.logger,
      metrics: deps.metrics,
      openapi: document,
      healthChecks: () => healthChecks(deps),
      bodyLimit: '1mb',
      // /health's details (IMAP and Telegram errors naming hosts) only for admin and service keys.
      auth: deps.auth,
    },
    (app) => {
      app.use(createSendRoutes({ openapi, auth: deps.auth, outbound: deps.outbound }));
      app.use(
        createTestMailRoutes({
          openapi,
          auth: deps.auth,
          dryRun: deps.dryRun,
          maxMailBytes: deps.maxMailBytes ?? 5_000_000,
        }),
      );
      if (deps.webhookRoutes) app.use(deps.webhookRoutes);
    },
  );
}

/** The checks of GET /health: the secretary and IMAP are critical, SMTP and Telegram are not. */
function healthChecks(deps: AppDeps): HealthCheck[] {
  const now = deps.now ?? Date.now;
  /** Seconds since `at` (Unix ms); undefined when it never happened. */
  const ageS = (at: number | undefined) => (at === undefined ? undefined : Math.round((now() - at) / 1000));
  return [
    { name: 'secretary', critical: true, run: () => secretaryHealth(deps.secretary) },
    // Critical once sweeps have stopped for long: the mailbox is the communicator's main job.
    { name: 'imap', critical: true, run: async () => imapHealth(deps.channelHealth().email, ageS) },
    { name: 'smtp', critical: false, timeoutMs: 5000, run: () => smtpHealth(deps.channelHealth().smtp) },
    { name: 'telegram', critical: false, run: async () => telegramHealth(deps.channelHealth().telegram, ageS) },
  ];
}

/** ok while the secretary's own /health says ok; degraded with its status otherwise (a failed call: down). */
async function secretaryHealth(secretary: SecretaryClient): Promise<CheckResult> {
  const { status } = await secretary.health();
  return status === 'ok' ? { status: 'ok' } : { status: 'degraded', detail: `secretary reports ${status}` };
}

/**
 * The mailbox by the age of its last sweep, in sweep intervals: two missed sweeps are degraded (the connection is
 * being replaced), five are down; a standby replica is ok (another polls).
 */
function imapHealth(email: ChannelHealth['email'], ageS: (at: number | undefined) => number | undefined): CheckResult {
  if (!email) return disabled('IMAP_USER');
  if (email.standby) return { status: email.leaseError ? 'degraded' : 'ok', detail: email.standby };
  const age = ageS(email.lastSweepAt ?? email.startedAt);
  const interval = email.sweepIntervalMs / 1000;
  const swept = email.lastSweepAt === undefined ? `no sweep yet (${age ?? 0} s)` : `last sweep ${age} s ago`;
  // While the mailbox cannot be reached, the reason (host not found, login refused) instead of only a silence.
  const detail = email.lastError ? `${swept}; last connection error: ${email.lastError}` : swept;
  if (age !== undefined && age > interval * 5) return { status: 'down', detail };
  if (!email.connected) return { status: 'degraded', detail: `not connected; reconnecting; ${detail}` };
  if (age === undefined || age > interval * 2 + 1) return { status: 'degraded', detail };
  return { status: 'ok', detail };
}

/**
 * A login to the SMTP server (down when it fails), whenever mail can be sent: with the IMAP channel, or for the
 * webhooks and POST /send alone (before, a webhook-only install reported SMTP `disabled` while it sent every reply,
 * so an SMTP outage showed nowhere, s35).
 */
async function smtpHealth(smtp: ChannelHealth['smtp']): Promise<CheckResult> {
  if (!smtp) return disabled('SMTP_USER');
  return (await smtp.verify()) ? { status: 'ok' } : { status: 'down', detail: 'login to the SMTP server failed' };
}

/** The bot by its last poll: a poll returns within pollTimeoutS, 10 s more without one means polling fails. */
function telegramHealth(
  tg: ChannelHealth['telegram'],
  ageS: (at: number | undefined) => number | undefined,
): CheckResult {
  if (!tg) return disabled('TELEGRAM_BOT_TOKEN');
  if (tg.standby) return { status: tg.leaseError ? 'degraded' : 'ok', detail: tg.standby };
  const failing = tg.lastError ? `; last error: ${tg.lastError}` : '';
  if (!tg.bot) return { status: 'down', detail: `getMe has not succeeded yet${failing}` };
  const age = ageS(tg.lastPollAt);
  if (age === undefined || age > tg.pollTimeoutS + 10)
    return { status: 'degraded', detail: `${age === undefined ? 'no poll yet' : `last poll ${age} s ago`}${failing}` };
  return { status: 'ok', detail: `@${tg.bot}, last poll ${age} s ago` };
}
