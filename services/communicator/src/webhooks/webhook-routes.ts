import { createHash } from 'node:crypto';
import express, { type Express, type Request } from 'express';
import { AppError, errors, type Logger } from '@workemon/service-kit';
import type { ChannelMetrics } from '../channel-metrics.js';
import type { WebhookSettings } from '../config.js';
import type { MailPipeline, MailSource } from '../email/mail-pipeline.js';
import type { SecretaryClient } from '../secretary-client.js';
import { parseForm, parseMultipart } from './form-body.js';
import { mailgunMail, verifyMailgunSignature } from './mailgun.js';
import { sendgridAuthorized, sendgridMail } from './sendgrid.js';
import { fetchSesMailFromS3 } from './s3.js';
import { sesMail } from './ses.js';
import { SnsVerificationError, createSnsVerifier, isSnsMessage, type SnsVerifier } from './sns.js';

/** The JSON a webhook answers with 200 (`WebhookResult` in the communicator's OpenAPI document). */
export type WebhookResult = {
  outcome:
    | 'replied'
    | 'skipped'
    | 'duplicate'
    | 'rate-limited'
    | 'no-reply'
    | 'failed'
    | 'subscribed'
    | 'unsubscribed'
    | 'ignored';
  reason?: string;
  message_id?: string;
};

type Provider = Exclude<MailSource, 'email'>;

/** Deliveries keys are at most 200 characters: a longer Message-ID is keyed by its hash. */
/**
 * How old an SNS notification may be: SNS retries an HTTP(S) delivery for at most an hour (its delivery
 * policy's total duration), and a retry keeps the original, signed Timestamp. Plus a little clock skew.
 */
const SNS_MAX_AGE_MS = 60 * 60 * 1000 + 5 * 60 * 1000;
const SNS_CLOCK_SKEW_MS = 5 * 60 * 1000;

function deliveryKey(prefix: string, id: string): string {
  const key = `${prefix}:${id}`;
  return key.length <= 200 ? key : `${prefix}:sha256:${createHash('sha256').update(id).digest('hex')}`;
}

const unauthorized = (message: string) => new AppError('unauthorized', 401, message);
const retryLater = (message: string, cause?: unknown) =>
  new AppError('dependency_unavailable', 503, message, { cause, headers: { 'Retry-After': '60' } });

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
export function mountWebhookRoutes(
  app: Express,
  deps: {
    settings: WebhookSettings;
    /** Undefined when SMTP is not configured: there is no way to reply, so the webhooks answer 501. */
    pipeline?: MailPipeline;
    secretary: SecretaryClient;
    metrics: ChannelMetrics;
    logger: Logger;
    now?: () => number;
    /** Default: built from `settings.ses`. */
    sns?: SnsVerifier;
  },
) {
  const { settings, secretary, metrics, logger } = deps;
  const now = deps.now ?? Date.now;
  const sns = deps.sns ?? (settings.ses ? createSnsVerifier(settings.ses) : undefined);
  const rawBody = express.raw({ type: () => true, limit: settings.maxBytes });
  /** Mail whose sender budget this process already took (a provider retry after an outage takes none again). */
  const rateCounted = new Set<string>();
  /** Mailgun tokens this process has seen answered, until their timestamp is stale anyway (no secretary call). */
  const usedTokens = new Map<string, number>();

  const bodyOf = (req: Request): Buffer => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));

  function configured(provider: Provider, on: boolean, key: string) {
    if (!on) throw new AppError('not_configured', 501, `The ${provider} webhook is not configured (${key})`);
    if (!deps.pipeline)
      throw new AppError('not_configured', 501, `Replies need SMTP: set SMTP_USER and SMTP_PASSWORD (or IMAP_USER)`);
  }

  /** Records keys as handled; a failure is logged (the mail itself is done, a retry is answered idempotently). */
  async function record(keys: string[], outcome: 'sent' | 'skipped' | 'failed', reason?: string) {
    if (!keys.length) return;
    try {
      await secretary.recordHandled('email', keys, outcome, reason);
    } catch (err) {
      logger.warn('recording a handled webhook mail failed; a provider retry is answered idempotently', {
        error: { message: (err as Error).message },
      });
    }
  }

  /** Runs one mail through the pipeline and turns its outcome into the HTTP answer. */
  async function acceptMail(provider: Provider, raw: Buffer, extraKeys: string[] = []): Promise<WebhookResult> {
    metrics.received(provider);
    const contentKey = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
    // Mail without a Message-ID is known by its content: a provider's retry of it is the same bytes.
    const contentMailKey = deliveryKey('mail', contentKey);
    // The provider's own message keys (an SNS MessageId) too: a replayed notification is the same message.
    const knownKeys = [contentMailKey, ...extraKeys];
    const answeredBefore = await secretary.lookupHandled(knownKeys).catch((err: unknown) => {
      throw retryLater('The secretary is unavailable; the mail is not taken yet, retry later', err);
    });
    if (knownKeys.some((key) => answeredBefore.has(key))) return { outcome: 'duplicate' };
    let mailKey: string | undefined;
    const outcome = await deps
      .pipeline!.processMail(
        { source: provider, raw, fallbackKey: contentKey, logContext: { webhook: { provider } } },
        {
          isAnswered: async (messageId) => {
            mailKey = deliveryKey('mail', messageId);
            return (await secretary.lookupHandled([mailKey])).has(mailKey);
          },
          get rateCounted() {
            return rateCounted.has(mailKey ?? contentKey);
          },
          onRateCounted: () => {
            rateCounted.add(mailKey ?? contentKey);
            if (rateCounted.size > 10_000) rateCounted.delete(rateCounted.values().next().value!);
          },
          confirm: async () => {
            await secretary.recordHandled('email', [mailKey ?? contentMailKey, ...extraKeys], 'sent');
          },
        },
      )
      .catch((err: unknown) => {
        // Only the duplicate lookup throws out of the pipeline: the secretary is unreachable.
        throw retryLater('The secretary is unavailable; the mail is not taken yet, retry later', err);
      });
    const messageId = 'mail' in outcome ? outcome.mail.messageId?.slice(0, 998) : undefined;
    const mailKeys = [mailKey ?? contentMailKey];
    const done = (result: WebhookResult) => ({ ...result, ...(messageId ? { message_id: messageId } : {}) });
    switch (outcome.kind) {
      case 'unparseable':
        throw errors.badRequest(`The mail cannot be parsed (${outcome.code})`);
      case 'skipped':
        await record(extraKeys, 'skipped', outcome.reason);
        return done({ outcome: 'skipped', reason: outcome.reason });
      case 'duplicate':
        await record(extraKeys, 'skipped', 'duplicate');
        return done({ outcome: 'duplicate' });
      case 'rate-limited':
        await record([...mailKeys, ...extraKeys], 'skipped', 'rate-limited');
        return done({ outcome: 'rate-limited' });
      case 'no-reply':
        await record([...mailKeys, ...extraKeys], 'skipped', 'no-reply');
        return done({ outcome: 'no-reply' });
      case 'replied':
        return done({ outcome: 'replied' });
      case 'deferred':
        throw retryLater('A mail with this Message-ID is being answered right now; retry later');
      case 'secretary-failed':
        throw retryLater('The secretary cannot decide now; retry later', outcome.error);
      case 'delivery-failed':
        if (!outcome.permanent) throw retryLater('The reply cannot be delivered yet; retry later', outcome.error);
        metrics.repliesFailed(provider, 'smtp_rejected');
        await record([...mailKeys, ...extraKeys], 'failed', 'smtp-rejected');
        logger.error('the reply to a webhook mail was refused by the SMTP server; given up', {
          webhook: { provider },
          email: { message_id: messageId?.slice(0, 256) },
        });
        return done({ outcome: 'failed', reason: 'smtp-rejected' });
      case 'dry-run':
        // Webhook mail is never a dry run (only POST /test asks for one): reaching this is a programming error.
        throw new Error('a webhook mail ended as a dry run');
    }
  }

  app.post('/webhook/mailgun', rawBody, async (req, res) => {
    configured('mailgun', !!settings.mailgun, 'MAILGUN_WEBHOOK_SIGNING_KEY');
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
    for (const [token, until] of usedTokens) if (until < t) usedTokens.delete(token);
    if (usedTokens.has(verdict.token)) throw unauthorized('This Mailgun token was used before');
    const raw = await mailgunMail(form);
    const tokenKey = deliveryKey('mailgun-token', verdict.token);
    const seen = await secretary.lookupHandled([tokenKey]).catch((err: unknown) => {
      throw retryLater('The secretary is unavailable; retry later', err);
    });
    if (seen.has(tokenKey)) throw unauthorized('This Mailgun token was used before');
    const result = await acceptMail('mailgun', raw, [tokenKey]);
    usedTokens.set(verdict.token, t + 2 * maxAgeMs);
    res.json(result);
  });

  app.post('/webhook/sendgrid', rawBody, async (req, res) => {
    configured('sendgrid', !!settings.sendgrid, 'SENDGRID_WEBHOOK_SECRET');
    if (!sendgridAuthorized(req.query, req.get('authorization'), settings.sendgrid!.secret)) {
      logger.warn('sendgrid webhook refused: no or a wrong secret', { webhook: { provider: 'sendgrid' } });
      res.setHeader('WWW-Authenticate', 'Basic realm="workemon-webhook"');
      throw unauthorized('The SendGrid webhook secret is missing or wrong (?key= or basic auth)');
    }
    const type = req.get('content-type') ?? '';
    if (!/^multipart\/form-data/i.test(type))
      throw errors.badRequest('SendGrid Inbound Parse posts multipart/form-data');
    const form = await parseMultipart(bodyOf(req), type, settings.maxBytes);
    const raw = await sendgridMail(form);
    res.json(await acceptMail('sendgrid', raw));
  });

  app.post('/webhook/ses', rawBody, async (req, res) => {
    configured('ses', !!settings.ses && !!sns, 'SES_SNS_TOPIC_ARNS');
    let body: unknown = req.body;
    if (Buffer.isBuffer(body)) {
      try {
        body = JSON.parse(body.toString('utf8'));
      } catch {
        throw errors.badRequest('The body is not an SNS message (not JSON)');
      }
    }
    if (!isSnsMessage(body)) throw errors.badRequest('The body is not an SNS message (fields missing or not strings)');
    const message = body;
    if (!settings.ses!.topicArns.includes(message.TopicArn)) {
      logger.warn('ses webhook refused: topic not in SES_SNS_TOPIC_ARNS', { webhook: { provider: 'ses' } });
      throw unauthorized('The SNS topic is not one this endpoint takes (SES_SNS_TOPIC_ARNS)');
    }
    try {
      await sns!.verify(message);
    } catch (err) {
      if (err instanceof SnsVerificationError && err.reason === 'certificate-unavailable')
        throw retryLater('The SNS signing certificate cannot be fetched now; retry later', err);
      logger.warn(`ses webhook refused: ${(err as Error).message}`, { webhook: { provider: 'ses' } });
      throw unauthorized('The SNS message signature cannot be verified');
    }
    if (message.Type === 'SubscriptionConfirmation') {
      let status: number;
      try {
        status = await sns!.get(message.SubscribeURL!);
      } catch (err) {
        if (err instanceof SnsVerificationError) throw errors.badRequest('SubscribeURL is not an allowed https URL');
        throw retryLater('Confirming the SNS subscription failed; retry later', err);
      }
      if (status !== 200) throw retryLater(`Confirming the SNS subscription answered ${status}; retry later`);
      logger.info('SNS subscription confirmed', { webhook: { provider: 'ses' }, sns: { topic: message.TopicArn } });
      res.json({ outcome: 'subscribed' } satisfies WebhookResult);
      return;
    }
    if (message.Type === 'UnsubscribeConfirmation') {
      // Not re-subscribed: an unsubscribe is the operator's decision (AWS console or API).
      logger.warn('SNS subscription ended', { webhook: { provider: 'ses' }, sns: { topic: message.TopicArn } });
      res.json({ outcome: 'unsubscribed' } satisfies WebhookResult);
      return;
    }
    // SNS signs its Timestamp, and retries a delivery for at most an hour: an older notification is a replay.
    const sentAt = Date.parse(message.Timestamp);
    const t = Date.now();
    if (!Number.isFinite(sentAt) || sentAt < t - SNS_MAX_AGE_MS || sentAt > t + SNS_CLOCK_SKEW_MS) {
      logger.warn('ses webhook refused: Timestamp outside the delivery window', { webhook: { provider: 'ses' } });
      throw unauthorized('The SNS message is too old or from the future (Timestamp)');
    }
    const mail = sesMail(message.Message);
    if (mail.kind === 'ignored') {
      res.json({ outcome: 'ignored', reason: mail.type } satisfies WebhookResult);
      return;
    }
    let raw: Buffer;
    if (mail.kind === 's3') {
      const s3 = settings.ses!.s3;
      if (!s3)
        throw new AppError(
          'unsupported_action',
          422,
          'SES receipt rule action S3 is not configured (SES_S3_BUCKETS): use an SNS action with encoding UTF8 or Base64',
          { retryable: false },
        );
      try {
        raw = await fetchSesMailFromS3(s3, mail);
      } catch (err) {
        const fields = {
          webhook: { provider: 'ses' },
          s3: { bucket: mail.bucket.slice(0, 63), key: mail.key.slice(0, 1024) },
        };
        const text = `ses webhook: the mail in S3 cannot be fetched: ${(err as Error).message}`;
        if (err instanceof AppError && err.status === 503) logger.warn(text, fields);
        else logger.error(text, fields);
        throw err;
      }
    } else raw = mail.raw;
    res.json(await acceptMail('ses', raw, [deliveryKey('sns', message.MessageId)]));
  });
}
