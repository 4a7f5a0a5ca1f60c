import { createHash } from 'node:crypto';
import express, { Router, type Request, type RequestHandler, type Response } from 'express';
import { AppError, errors, isAppError, type Logger } from '@workemon/service-kit';
import type { WebhookResult } from '@workemon/contracts';
import type { ChannelMetrics } from '../channel-metrics.js';
import type { WebhookSettings } from '../config.js';
import { contentKeyOf, legacyMailDeliveryKey, mailDeliveryKey } from '../email/mail-handled-record.js';
import type { MailOutcome, MailPipeline, MailSource, PipelineHooks } from '../email/mail-pipeline.js';
import type { SecretaryClient } from '../secretary-client.js';
import type { ProviderDmarcPass } from '../email/sender-authentication.js';
import { parseForm, parseMultipart } from './form-body.js';
import { mailgunMail, mailgunPayloadDigest, verifyMailgunSignature } from './mailgun.js';
import { sendgridAuthorized, sendgridMail } from './sendgrid.js';
import { fetchSesMailFromS3 } from './s3.js';
import { sesMail } from './ses.js';
import { SnsVerificationError, createSnsVerifier, isSnsMessage, type SnsMessage, type SnsVerifier } from './sns.js';

/** The JSON a webhook answers with 200 (`WebhookResult` in the communicator's OpenAPI document). */
export type { WebhookResult };

type Provider = Exclude<MailSource, 'email'>;

/**
 * How old an SNS notification may be: SNS retries an HTTP(S) delivery for at most an hour (its delivery
 * policy's total duration), and a retry keeps the original, signed Timestamp. Plus a little clock skew.
 */
const SNS_MAX_AGE_MS = 60 * 60 * 1000 + 5 * 60 * 1000;
const SNS_CLOCK_SKEW_MS = 5 * 60 * 1000;

/** Deliveries keys are at most 200 characters: a longer Message-ID is keyed by its hash. */
function deliveryKey(prefix: string, id: string): string {
  const key = `${prefix}:${id}`;
  return key.length <= 200 ? key : `${prefix}:sha256:${createHash('sha256').update(id).digest('hex')}`;
}

const unauthorized = (message: string) => new AppError('unauthorized', 401, message);
const retryLater = (message: string, cause?: unknown) =>
  new AppError('dependency_unavailable', 503, message, { cause, headers: { 'Retry-After': '60' } });

/** What the webhook routes need. */
export type WebhookRoutesDeps = {
  settings: WebhookSettings;
  /** Undefined when SMTP is not configured: there is no way to reply, so the webhooks answer 501. */
  pipeline?: MailPipeline;
  secretary: SecretaryClient;
  metrics: ChannelMetrics;
  logger: Logger;
  now?: () => number;
  /** Default: built from `settings.ses`. */
  sns?: SnsVerifier;
};

/** The routes' state, shared by the named steps below: one per `createWebhookRoutes` call. */
type Webhooks = WebhookRoutesDeps & {
  now: () => number;
  sns?: SnsVerifier;
  /** Mail whose sender budget this process already took (a provider retry after an outage takes none again). */
  rateCounted: Set<string>;
  /** Mailgun tokens this process has seen answered, until their timestamp is stale anyway (no secretary call). */
  usedTokens: Map<string, { until: number; payloadSha256: string; inFlight: boolean }>;
};

/**
 * `POST /webhook/mailgun`, `/webhook/sendgrid`, `/webhook/ses` (docs/webhooks.md). Each authenticates the provider
 * (Mailgun: HMAC signature, fresh timestamp, unused token; SendGrid: the operator's URL secret; SES: the SNS
 * signature and an allowed topic) before anything is stored or sent, turns the payload into one raw RFC 5322 mail
 * and hands it to the shared mail pipeline (source = the provider). Answers:
 * 200 `WebhookResult` once the mail is handled for good (answered, deliberately skipped, or given up);
 * 503 with Retry-After while it cannot be handled yet (secretary down, SMTP failing, the same Message-ID in
 * flight), so the provider retries instead of the mail being lost; 401 forged/stale/replayed; 400 malformed;
 * 413 too big; 501 the provider (or SMTP for replies) is not configured.
 * Idempotency across retries, restarts and replicas: the secretary's `/deliveries` record `mail:<Message-ID>`
 * (looked up before, recorded once the reply was accepted by SMTP); Mailgun tokens as `mailgun-token:<token>`.
 */
export function createWebhookRoutes(deps: WebhookRoutesDeps): Router {
  const webhooks: Webhooks = {
    ...deps,
    now: deps.now ?? Date.now,
    sns: deps.sns ?? (deps.settings.ses ? createSnsVerifier(deps.settings.ses) : undefined),
    rateCounted: new Set(),
    usedTokens: new Map(),
  };
  const rawBody = express.raw({ type: () => true, limit: deps.settings.maxBytes });
  const budget = bodyBudget(WEBHOOK_BODY_BUDGET_FACTOR * deps.settings.maxBytes, deps.settings.maxBytes);
  const router = Router();
  router.post('/webhook/mailgun', budget, rawBody, async (req, res) => {
    res.json(await handleMailgun(webhooks, req));
  });
  // The SendGrid secret is in the URL or Authorization: judged before a byte of the body is read.
  router.post(
    '/webhook/sendgrid',
    (req, res, next) => next(checkSendgrid(webhooks, req, res)),
    budget,
    rawBody,
    async (req, res) => {
      res.json(await handleSendgrid(webhooks, req));
    },
  );
  router.post('/webhook/ses', budget, rawBody, async (req, res) => {
    res.json(await handleSes(webhooks, req));
  });
  return router;
}

/**
 * How many of the largest webhook bodies (`WEBHOOK_MAX_BYTES`) may be read at once. Mailgun's and SNS's signatures
 * are inside the body, so an unauthenticated post is held in memory until it is judged: without a bound, a few
 * hundred concurrent 10 MB posts take gigabytes. Providers post one mail at a time per connection and retry a 503.
 */
export const WEBHOOK_BODY_BUDGET_FACTOR = 4;

/**
 * Middleware reserving a request's body size (its Content-Length, or `maxBytes` when it has none) from a budget of
 * `budgetBytes` shared by the webhook routes until the response ends or the connection closes; a request that does
 * not fit gets the catalogue's 503 with Retry-After at once, its body unread (the provider retries).
 */
function bodyBudget(budgetBytes: number, maxBytes: number): RequestHandler {
  let inFlight = 0;
  return (req, res, next) => {
    const declared = Number(req.headers['content-length']);
    const cost = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, maxBytes) : maxBytes;
    if (inFlight + cost > budgetBytes) {
      // The unread body must not be taken as the next request on a kept-alive connection.
      res.setHeader('Connection', 'close');
      throw retryLater('Too many webhook bodies are being received at once; retry later');
    }
    inFlight += cost;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      inFlight -= cost;
    };
    res.once('finish', release);
    res.once('close', release);
    next();
  };
}

const bodyOf = (req: Request): Buffer => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));

/** How often (ms) a call to a webhook that is not enabled is logged, per provider. */
const NOT_ENABLED_LOG_MS = 10 * 60_000;
const notEnabledLoggedAt = new Map<Provider, number>();

/**
 * 501 unless the provider's keys are set (`key` names them) and SMTP is there for replies. These routes face the
 * internet and their callers carry no key: the answer says only that the webhook is not enabled, so a scanner learns
 * no configuration key; the operator's explanation (which keys to set) goes to the log.
 */
function requireConfigured(webhooks: Webhooks, provider: Provider, on: boolean, key: string): void {
  const missing = !on ? `set ${key}` : !webhooks.pipeline ? 'replies need SMTP: set SMTP_USER and SMTP_PASSWORD' : '';
  if (!missing) return;
  // Anyone can call: at most one line per provider every NOT_ENABLED_LOG_MS, so calls cannot flood the log.
  const now = Date.now();
  if (now - (notEnabledLoggedAt.get(provider) ?? -Infinity) >= NOT_ENABLED_LOG_MS) {
    notEnabledLoggedAt.set(provider, now);
    webhooks.logger.warn(`a ${provider} webhook call came, but the webhook is not enabled (${missing})`, {
      webhook: { provider },
    });
  }
  throw new AppError('not_configured', 501, `The ${provider} webhook is not enabled on this server`);
}

/** Records keys as handled; a failure is logged (the mail itself is done, a retry is answered idempotently). */
async function recordHandled(
  webhooks: Webhooks,
  keys: string[],
  outcome: 'sent' | 'skipped' | 'failed',
  reason?: string,
): Promise<void> {
  if (!keys.length) return;
  try {
    await webhooks.secretary.recordHandled('email', keys, outcome, reason);
  } catch (err) {
    webhooks.logger.warn('recording a handled webhook mail failed; a provider retry is answered idempotently', {
      error: { message: (err as Error).message },
    });
  }
}

/** The `/deliveries` keys of one webhook mail: by content, by Message-ID once known, and the provider's own. */
type MailKeys = {
  /** `sha256:<hex>` of the raw mail: the pipeline's fallback key when the mail has no Message-ID. */
  contentKey: string;
  /** `mail:<contentKey>`: a provider's retry of mail without a Message-ID is the same bytes. */
  contentMailKey: string;
  /** `mail:<Message-ID>`, set by the pipeline's duplicate check. */
  mailKey?: string;
  /** The provider's message keys (an SNS MessageId, a Mailgun token): a replayed notification is the same mail. */
  extraKeys: string[];
};

/** Runs one mail through the pipeline and turns its outcome into the HTTP answer. */
async function acceptMail(
  webhooks: Webhooks,
  provider: Provider,
  raw: Buffer,
  extraKeys: string[] = [],
  providerDmarcPass?: ProviderDmarcPass,
): Promise<WebhookResult> {
  webhooks.metrics.received(provider);
  const contentKey = contentKeyOf(raw);
  const keys: MailKeys = { contentKey, contentMailKey: deliveryKey('mail', contentKey), extraKeys };
  if (await answeredBefore(webhooks, [keys.contentMailKey, ...extraKeys])) return { outcome: 'duplicate' };
  const outcome = await webhooks
    .pipeline!.processMail(
      { source: provider, raw, fallbackKey: contentKey, logContext: { webhook: { provider } }, providerDmarcPass },
      pipelineHooks(webhooks, keys),
    )
    .catch((err: unknown) => {
      // Only the duplicate lookup throws out of the pipeline: the secretary is unreachable.
      throw retryLater('The secretary is unavailable; the mail is not taken yet, retry later', err);
    });
  const messageId = 'mail' in outcome ? outcome.mail.messageId?.slice(0, 998) : undefined;
  const result = await answerOf(webhooks, provider, outcome, keys);
  return { ...result, ...(messageId ? { message_id: messageId } : {}) };
}

/** Whether the secretary has any of `keys` as handled; 503 (retry later) when it cannot be asked. */
async function answeredBefore(webhooks: Webhooks, keys: string[]): Promise<boolean> {
  const handled = await webhooks.secretary.lookupHandled(keys).catch((err: unknown) => {
    throw retryLater('The secretary is unavailable; the mail is not taken yet, retry later', err);
  });
  return keys.some((key) => handled.has(key));
}

/** The webhook side of one pipeline pass: the `mail:` delivery record and this process's rate-limit memory. */
function pipelineHooks(webhooks: Webhooks, keys: MailKeys): PipelineHooks {
  const { secretary, rateCounted } = webhooks;
  const budgetKey = () => keys.mailKey ?? keys.contentKey;
  return {
    isAnswered: async (messageId, sender) => {
      // This sender's Message-ID (mailDeliveryKey), or one recorded before keys named the sender.
      const mailKey = mailDeliveryKey(messageId, sender);
      keys.mailKey = mailKey;
      const lookedUp = [mailKey, legacyMailDeliveryKey(messageId)];
      const handled = await secretary.lookupHandled(lookedUp);
      return lookedUp.some((key) => handled.has(key));
    },
    get rateCounted() {
      return rateCounted.has(budgetKey());
    },
    onRateCounted: () => {
      rateCounted.add(budgetKey());
      if (rateCounted.size > 10_000) rateCounted.delete(rateCounted.values().next().value!);
    },
    confirm: async () => {
      await secretary.recordHandled('email', [keys.mailKey ?? keys.contentMailKey, ...keys.extraKeys], 'sent');
    },
  };
}

/** The HTTP answer to a pipeline outcome (recording what is done for good); throws the 400/503 ones. */
async function answerOf(
  webhooks: Webhooks,
  provider: Provider,
  outcome: MailOutcome,
  keys: MailKeys,
): Promise<WebhookResult> {
  const allKeys = [keys.mailKey ?? keys.contentMailKey, ...keys.extraKeys];
  switch (outcome.kind) {
    case 'unparseable':
      throw errors.badRequest(`The mail cannot be parsed (${outcome.code})`);
    case 'skipped':
      await recordHandled(webhooks, keys.extraKeys, 'skipped', outcome.reason);
      return { outcome: 'skipped', reason: outcome.reason };
    case 'duplicate':
      await recordHandled(webhooks, keys.extraKeys, 'skipped', 'duplicate');
      return { outcome: 'duplicate' };
    case 'rate-limited':
    case 'no-reply':
      await recordHandled(webhooks, allKeys, 'skipped', outcome.kind);
      return { outcome: outcome.kind };
    case 'replied':
      return { outcome: 'replied' };
    case 'deferred':
      throw retryLater('A mail with this Message-ID is being answered right now; retry later');
    case 'secretary-failed':
      throw retryLater('The secretary cannot decide now; retry later', outcome.error);
    case 'delivery-failed':
      return deliveryFailed(webhooks, provider, outcome, allKeys);
    case 'dry-run':
      // Webhook mail is never a dry run (only POST /test asks for one): reaching this is a programming error.
      throw new Error('a webhook mail ended as a dry run');
  }
}

/** A reply SMTP did not take: 503 while it may still go out; a permanent refusal is recorded and given up. */
async function deliveryFailed(
  webhooks: Webhooks,
  provider: Provider,
  outcome: Extract<MailOutcome, { kind: 'delivery-failed' }>,
  keys: string[],
): Promise<WebhookResult> {
  if (!outcome.permanent) throw retryLater('The reply cannot be delivered yet; retry later', outcome.error);
  webhooks.metrics.repliesFailed(provider, 'smtp_rejected');
  await recordHandled(webhooks, keys, 'failed', 'smtp-rejected');
  webhooks.logger.error('the reply to a webhook mail was refused by the SMTP server; given up', {
    webhook: { provider },
    email: { message_id: outcome.mail.messageId?.slice(0, 256) },
  });
  return { outcome: 'failed', reason: 'smtp-rejected' };
}

/** `POST /webhook/mailgun`: a signed, fresh, unused token (Mailgun's webhook signature), then the mail. */
async function handleMailgun(webhooks: Webhooks, req: Request): Promise<WebhookResult> {
  const { settings, now, usedTokens, logger } = webhooks;
  requireConfigured(webhooks, 'mailgun', !!settings.mailgun, 'MAILGUN_WEBHOOK_SIGNING_KEY');
  const { signingKey, maxAgeMs } = settings.mailgun!;
  const form = await parseForm(bodyOf(req), req.get('content-type'), settings.maxBytes);
  const verdict = verifyMailgunSignature(form, signingKey, maxAgeMs, now());
  if (!verdict.ok) {
    logger.warn(`mailgun webhook refused: ${verdict.refusal}`, { webhook: { provider: 'mailgun' } });
    throw unauthorized(
      verdict.refusal === 'stale'
        ? 'The Mailgun signature timestamp is outside the accepted window'
        : 'The Mailgun signature is missing or does not match',
    );
  }
  const t = now();
  for (const [token, used] of usedTokens) if (used.until < t) usedTokens.delete(token);
  const payloadSha256 = mailgunPayloadDigest(form);
  const used = usedTokens.get(verdict.token);
  // Mailgun signs timestamp + token, not the mail: the token is taken before anything slow, so a captured
  // signature posted again with another mail while this post is being answered is a replay. The same payload
  // again is Mailgun retrying a post whose answer it did not get (a timeout): answered `duplicate` once done
  // (docs/webhooks.md). Given back when this post fails (a 503 is retried by Mailgun with the same token). This map
  // is the fast check of this process; the secretary's reservation below is the one every replica shares.
  if (used && used.payloadSha256 !== payloadSha256) throw unauthorized('This Mailgun token was used before');
  // The same post again while it is being answered (a retry racing the first, or a replay burst): it waits for the
  // outcome instead of being answered again (a mail without a Message-ID has no other guard in this process).
  if (used?.inFlight) throw retryLater('This Mailgun post is being answered; retry later');
  const entry = { until: t + 2 * maxAgeMs, payloadSha256, inFlight: true };
  usedTokens.set(verdict.token, entry);
  try {
    const raw = await mailgunMail(form);
    await reserveMailgunToken(webhooks, verdict.token, payloadSha256, maxAgeMs);
    const tokenKey = deliveryKey('mailgun-token', verdict.token);
    const seen = await webhooks.secretary.lookupHandled([tokenKey]).catch((err: unknown) => {
      throw retryLater('The secretary is unavailable; retry later', err);
    });
    // The reservation held: this very payload was posted and handled before.
    if (seen.has(tokenKey)) return { outcome: 'duplicate' };
    return await acceptMail(webhooks, 'mailgun', raw, [tokenKey]);
  } catch (err) {
    if (!used) usedTokens.delete(verdict.token);
    throw err;
  } finally {
    entry.inFlight = false;
  }
}

/**
 * Reserves a signed Mailgun token for this post's payload in the secretary (`POST /webhook-tokens`), shared by
 * every replica, for twice the timestamp window (a token is useless once its timestamp is stale). Passes when the
 * token is new or already this payload's (Mailgun retrying the post); 401 when another payload holds it (a captured
 * signature replayed with another mail); 503 + Retry-After when the secretary cannot answer (fail closed: nothing
 * is taken or sent, Mailgun retries).
 */
async function reserveMailgunToken(
  webhooks: Webhooks,
  token: string,
  payloadSha256: string,
  maxAgeMs: number,
): Promise<void> {
  const ttlSeconds = Math.ceil((2 * maxAgeMs) / 1000);
  try {
    await webhooks.secretary.reserveWebhookToken({ provider: 'mailgun', token, payloadSha256, ttlSeconds });
  } catch (err) {
    if (isAppError(err) && err.status === 409 && err.details?.['upstreamCode'] === 'token_reserved') {
      webhooks.logger.warn('mailgun webhook refused: replayed (the token is reserved for another payload)', {
        webhook: { provider: 'mailgun' },
      });
      throw unauthorized('This Mailgun token was used before');
    }
    throw retryLater('The secretary is unavailable; the mail is not taken yet, retry later', err);
  }
}

/**
 * The checks of `POST /webhook/sendgrid` that need no body: configured (501), the operator's URL secret (`?key=`
 * or basic auth; 401 with WWW-Authenticate). Returns the error to answer, undefined when the post may be read.
 */
function checkSendgrid(webhooks: Webhooks, req: Request, res: Response): AppError | undefined {
  const { settings, logger } = webhooks;
  try {
    requireConfigured(webhooks, 'sendgrid', !!settings.sendgrid, 'SENDGRID_WEBHOOK_SECRET');
  } catch (err) {
    return err as AppError;
  }
  if (sendgridAuthorized(req.query, req.get('authorization'), settings.sendgrid!.secret)) return undefined;
  logger.warn('sendgrid webhook refused: no or a wrong secret', { webhook: { provider: 'sendgrid' } });
  res.setHeader('WWW-Authenticate', 'Basic realm="workemon-webhook"');
  // The body stays unread: the connection is not reused for what may follow it.
  res.setHeader('Connection', 'close');
  return unauthorized('The SendGrid webhook secret is missing or wrong (?key= or basic auth)');
}

/** `POST /webhook/sendgrid` once `checkSendgrid` let it through: the Inbound Parse form. */
async function handleSendgrid(webhooks: Webhooks, req: Request): Promise<WebhookResult> {
  const { settings } = webhooks;
  const type = req.get('content-type') ?? '';
  if (!/^multipart\/form-data/i.test(type)) throw errors.badRequest('SendGrid Inbound Parse posts multipart/form-data');
  const form = await parseMultipart(bodyOf(req), type, settings.maxBytes);
  return acceptMail(webhooks, 'sendgrid', await sendgridMail(form));
}

/**
 * `POST /webhook/ses`: an SNS message from an allowed topic with a valid signature. A subscription
 * (un)confirmation is answered as such; a notification must be fresh and carries the SES mail (in the message,
 * or in S3).
 */
async function handleSes(webhooks: Webhooks, req: Request): Promise<WebhookResult> {
  requireConfigured(webhooks, 'ses', !!webhooks.settings.ses && !!webhooks.sns, 'SES_SNS_TOPIC_ARNS');
  const message = snsMessageOf(req.body);
  await verifySnsMessage(webhooks, message);
  if (message.Type === 'SubscriptionConfirmation') return confirmSubscription(webhooks, message);
  if (message.Type === 'UnsubscribeConfirmation') {
    // Not re-subscribed: an unsubscribe is the operator's decision (AWS console or API).
    webhooks.logger.warn('SNS subscription ended', {
      webhook: { provider: 'ses' },
      sns: { topic: message.TopicArn },
    });
    return { outcome: 'unsubscribed' };
  }
  checkSnsTimestamp(webhooks, message);
  const mail = sesMail(message.Message);
  if (mail.kind === 'ignored') return { outcome: 'ignored', reason: mail.type };
  const raw = mail.kind === 's3' ? await sesMailFromS3(webhooks, mail) : mail.raw;
  const dmarc = mail.dmarcPassFor ? { domain: mail.dmarcPassFor, by: 'SES receipt, signed by SNS' } : undefined;
  return acceptMail(webhooks, 'ses', raw, [deliveryKey('sns', message.MessageId)], dmarc);
}

/** The body as an SNS message (JSON whatever its content type, as SNS posts text/plain); 400 otherwise. */
function snsMessageOf(body: unknown): SnsMessage {
  let parsed = body;
  if (Buffer.isBuffer(body)) {
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw errors.badRequest('The body is not an SNS message (not JSON)');
    }
  }
  if (!isSnsMessage(parsed)) throw errors.badRequest('The body is not an SNS message (fields missing or not strings)');
  return parsed;
}

/** 401 for a topic not in SES_SNS_TOPIC_ARNS or a bad signature; 503 while the signing certificate is unreachable. */
async function verifySnsMessage(webhooks: Webhooks, message: SnsMessage): Promise<void> {
  const { settings, logger } = webhooks;
  if (!settings.ses!.topicArns.includes(message.TopicArn)) {
    logger.warn('ses webhook refused: topic not in SES_SNS_TOPIC_ARNS', { webhook: { provider: 'ses' } });
    throw unauthorized('The SNS topic is not one this endpoint takes (SES_SNS_TOPIC_ARNS)');
  }
  try {
    await webhooks.sns!.verify(message);
  } catch (err) {
    if (err instanceof SnsVerificationError && err.reason === 'certificate-unavailable')
      throw retryLater('The SNS signing certificate cannot be fetched now; retry later', err);
    logger.warn(`ses webhook refused: ${(err as Error).message}`, { webhook: { provider: 'ses' } });
    throw unauthorized('The SNS message signature cannot be verified');
  }
}

/** Confirms an SNS subscription by a GET of its SubscribeURL (an allowed https URL only; 503 when it fails). */
async function confirmSubscription(webhooks: Webhooks, message: SnsMessage): Promise<WebhookResult> {
  let status: number;
  try {
    status = await webhooks.sns!.get(message.SubscribeURL!);
  } catch (err) {
    if (err instanceof SnsVerificationError) throw errors.badRequest('SubscribeURL is not an allowed https URL');
    throw retryLater('Confirming the SNS subscription failed; retry later', err);
  }
  if (status !== 200) throw retryLater(`Confirming the SNS subscription answered ${status}; retry later`);
  webhooks.logger.info('SNS subscription confirmed', {
    webhook: { provider: 'ses' },
    sns: { topic: message.TopicArn },
  });
  return { outcome: 'subscribed' };
}

/** SNS signs its Timestamp, and retries a delivery for at most an hour: an older notification is a replay (401). */
function checkSnsTimestamp(webhooks: Webhooks, message: SnsMessage): void {
  const sentAt = Date.parse(message.Timestamp);
  const t = Date.now();
  if (!Number.isFinite(sentAt) || sentAt < t - SNS_MAX_AGE_MS || sentAt > t + SNS_CLOCK_SKEW_MS) {
    webhooks.logger.warn('ses webhook refused: Timestamp outside the delivery window', {
      webhook: { provider: 'ses' },
    });
    throw unauthorized('The SNS message is too old or from the future (Timestamp)');
  }
}

/** The mail an SES S3 action stored (422 when SES_S3_BUCKETS is not set); a failed fetch is logged and thrown. */
async function sesMailFromS3(webhooks: Webhooks, mail: { kind: 's3'; bucket: string; key: string }): Promise<Buffer> {
  const s3 = webhooks.settings.ses!.s3;
  if (!s3)
    throw new AppError(
      'unsupported_action',
      422,
      'SES receipt rule action S3 is not configured (SES_S3_BUCKETS): use an SNS action with encoding UTF8 or Base64',
      { retryable: false },
    );
  try {
    return await fetchSesMailFromS3(s3, mail);
  } catch (err) {
    const fields = {
      webhook: { provider: 'ses' },
      s3: { bucket: mail.bucket.slice(0, 63), key: mail.key.slice(0, 1024) },
    };
    const text = `ses webhook: the mail in S3 cannot be fetched: ${(err as Error).message}`;
    if (err instanceof AppError && err.status === 503) webhooks.logger.warn(text, fields);
    else webhooks.logger.error(text, fields);
    throw err;
  }
}
