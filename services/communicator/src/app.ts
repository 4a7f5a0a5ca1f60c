import type { Express } from 'express';
import { loadOpenApiDocument, type SendRequest } from '@workemon/contracts';
import {
  createOpenApi,
  createServiceApp,
  validated,
  type Authenticator,
  type CheckResult,
  type HealthCheck,
  type Logger,
  type Metrics,
} from '@workemon/service-kit';
import type { SecretaryClient } from './secretary-client.js';
import type { OutboundSender } from './outbound-sender.js';

/**
 * Current state of the channels. `standby` (a detail for /health) when another communicator replica holds the
 * channel's poller lease: this one serves POST /send only and takes over if the active one dies.
 */
export type ChannelHealth = {
  email?: {
    standby?: string;
    connected: boolean;
    lastSweepAt?: number;
    startedAt?: number;
    sweepIntervalMs: number;
    verifySmtp: () => Promise<boolean>;
  };
  telegram?: { standby?: string; bot?: string; lastPollAt?: number; pollTimeoutS: number };
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
  now?: () => number;
  /** Mounts the inbound mail webhooks (POST /webhook/*, webhooks/webhook-routes.ts). */
  mountWebhooks?: (app: Express) => void;
};

const disabled = (what: string): CheckResult => ({ status: 'disabled', detail: `${what} is not configured` });

/** The communicator's HTTP surface: POST /send, /health, /metrics, /openapi.json. Never listens. */
export function buildApp(deps: AppDeps): Express {
  const now = deps.now ?? Date.now;
  const document = loadOpenApiDocument('communicator');
  const openapi = createOpenApi(document);
  const ageS = (at: number | undefined) => (at === undefined ? undefined : Math.round((now() - at) / 1000));

  const healthChecks = (): HealthCheck[] => [
    {
      name: 'secretary',
      critical: true,
      run: async () => {
        const { status } = await deps.secretary.health();
        return status === 'ok' ? { status: 'ok' } : { status: 'degraded', detail: `secretary reports ${status}` };
      },
    },
    {
      name: 'imap',
      // Critical once sweeps have stopped for long: the mailbox is the communicator's main job.
      critical: true,
      run: async () => {
        const email = deps.channelHealth().email;
        if (!email) return disabled('IMAP_USER');
        if (email.standby) return { status: 'ok', detail: email.standby };
        const since = email.lastSweepAt ?? email.startedAt;
        const age = ageS(since);
        const interval = email.sweepIntervalMs / 1000;
        const detail = email.lastSweepAt === undefined ? `no sweep yet (${age ?? 0} s)` : `last sweep ${age} s ago`;
        // Two missed sweeps: degraded (the connection is being replaced); five: down.
        if (age !== undefined && age > interval * 5) return { status: 'down', detail };
        if (!email.connected) return { status: 'degraded', detail: `not connected; reconnecting; ${detail}` };
        if (age === undefined || age > interval * 2 + 1) return { status: 'degraded', detail };
        return { status: 'ok', detail };
      },
    },
    {
      name: 'smtp',
      critical: false,
      timeoutMs: 5000,
      run: async () => {
        const email = deps.channelHealth().email;
        if (!email) return disabled('IMAP_USER');
        return (await email.verifySmtp())
          ? { status: 'ok' }
          : { status: 'down', detail: 'login to the SMTP server failed' };
      },
    },
    {
      name: 'telegram',
      critical: false,
      run: async () => {
        const tg = deps.channelHealth().telegram;
        if (!tg) return disabled('TELEGRAM_BOT_TOKEN');
        if (tg.standby) return { status: 'ok', detail: tg.standby };
        if (!tg.bot) return { status: 'down', detail: 'getMe has not succeeded yet' };
        const age = ageS(tg.lastPollAt);
        // A poll returns within pollTimeoutS; 10 s more without one means polling is failing (issue 13).
        if (age === undefined || age > tg.pollTimeoutS + 10)
          return { status: 'degraded', detail: age === undefined ? 'no poll yet' : `last poll ${age} s ago` };
        return { status: 'ok', detail: `@${tg.bot}, last poll ${age} s ago` };
      },
    },
  ];

  return createServiceApp(
    {
      service: 'communicator',
      version: deps.version,
      logger: deps.logger,
      metrics: deps.metrics,
      openapi: document,
      healthChecks,
      bodyLimit: '1mb',
    },
    (app) => {
      app.post('/send', deps.auth.require(['service']), openapi.validate('send'), async (req, res) => {
        const body = validated(res).body as SendRequest;
        res.json(await deps.outbound.send(body));
      });
      deps.mountWebhooks?.(app);
    },
  );
}
