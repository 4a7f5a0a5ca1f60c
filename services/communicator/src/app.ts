import express, { type Express } from 'express';
import { loadOpenApiDocument, type SendRequest } from '@workemon/contracts';
import {
  AppError,
  createOpenApi,
  errors,
  createServiceApp,
  validated,
  type Authenticator,
  type CheckResult,
  type HealthCheck,
  type Logger,
  type Metrics,
} from '@workemon/service-kit';
import type { SecretaryClient } from './secretary-client.js';
import { channelNotConfigured, type OutboundSender } from './outbound-sender.js';
import type { DryRunInput, DryRunVerdict } from './email/mail-dry-run.js';

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
  /** POST /test (email/mail-dry-run.ts); undefined when the email channel is not configured (then 501). */
  dryRun?: (input: DryRunInput) => Promise<DryRunVerdict>;
  /** Largest raw mail POST /test takes, in bytes (MAX_MAIL_BYTES). */
  maxMailBytes?: number;
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

      // POST /test: a dry run of the mail pipeline; a raw mail (message/rfc822) or JSON {from, subject, text}.
      app.post(
        '/test',
        deps.auth.require(['client', 'admin']),
        express.raw({ type: 'message/rfc822', limit: deps.maxMailBytes ?? 5_000_000 }),
        async (req, res, next) => {
          const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
          if (type !== 'message/rfc822') {
            if (type === 'application/json') return next();
            if (!type)
              throw errors.badRequest(
                'Request body is required: a raw mail (message/rfc822) or JSON {from, subject, text}',
              );
            throw new AppError(
              'unsupported_media_type',
              415,
              'POST /test takes message/rfc822 (a raw mail) or application/json ({from, subject, text})',
            );
          }
          if (!Buffer.isBuffer(req.body) || !(req.body as Buffer).length)
            throw errors.badRequest('The message/rfc822 body is empty');
          if (!deps.dryRun) throw channelNotConfigured('email');
          res.json(await deps.dryRun({ raw: req.body as Buffer }));
        },
        openapi.validate('testMail'),
        async (_req, res) => {
          if (!deps.dryRun) throw channelNotConfigured('email');
          res.json(await deps.dryRun(validated(res).body as Exclude<DryRunInput, { raw: Buffer }>));
        },
      );
      deps.mountWebhooks?.(app);
    },
  );
}
