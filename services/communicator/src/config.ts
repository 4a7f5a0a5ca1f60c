import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import {
  ConfigError,
  env,
  parseServiceEnv,
  serviceEnvSchema,
  type Env,
  type ServiceConfig,
} from '@workemon/service-kit';
import { secretaryRequestMaxLength } from './request-limit.js';

const SECRETARY_REQUEST_MAX = secretaryRequestMaxLength();

// LOG_LEVEL, ELASTICSEARCH_*, HOST, API_KEYS, ADMIN_API_KEYS, SERVICE_API_KEYS (+ _FILE): serviceEnvSchema; POST /send
// takes service keys. docs/operations.md.
const schema = serviceEnvSchema({
  PORT: env.port(8003),
  SECRETARY_URL: env.url('http://localhost:8000', 'Base URL of the secretary'),
  SECRETARY_API_KEY: env.optionalString(
    'Key sent to the secretary; default: the first of SERVICE_API_KEYS (older name, kept as an override)',
  ),
  SECRETARY_TIMEOUT: env.durationMs('120s', 'Deadline of one /analyze-request call (it waits for LLMs)'),

  IMAP_HOST: env.withDefault('imap.yandex.ru', 'IMAP server'),
  IMAP_PORT: env.port(993, 'IMAP port'),
  IMAP_SECURE: env.bool(true, 'Implicit TLS for IMAP (Yandex requires it)'),
  IMAP_USER: env.optionalString('Mailbox login; unset: the email channel is off'),
  IMAP_PASSWORD: env.optionalString('Mailbox password (a Yandex app password)'),
  IMAP_MAILBOX: env.withDefault('INBOX', 'Folder to read'),
  IMAP_SWEEP_INTERVAL_S: env.int(60, 'Seconds between sweeps for unseen mail (IDLE pushes in between)', { min: 1 }),
  IMAP_IDLE_RENEW: env.durationMs('5m', 'Restart IDLE this often; servers drop IDLE after ~30 min'),
  SMTP_HOST: env.withDefault('smtp.yandex.ru', 'SMTP server'),
  SMTP_PORT: env.port(465, 'SMTP port'),
  SMTP_SECURE: env.bool(true, 'Implicit TLS for SMTP (465); false: STARTTLS when offered'),
  SMTP_USER: env.optionalString('SMTP login; default IMAP_USER'),
  SMTP_PASSWORD: env.optionalString('SMTP password; default IMAP_PASSWORD'),
  SMTP_TIMEOUT: env.durationMs('60s', 'Deadline of one SMTP delivery'),
  MAIL_FROM: env.optionalString('From address of replies; default SMTP_USER'),
  EMAIL_CONCURRENCY: env.int(16, 'Mails processed at once', { min: 1, max: 64 }),
  RATE_LIMIT_PER_HOUR: env.int(20, 'Messages answered per sender per hour; beyond it: no reply', { min: 1 }),
  RATE_LIMIT_MAILBOX_PER_HOUR: env.int(
    1000,
    'Mails answered per hour in all, every sender and mail intake together (a flood of forged senders each with a ' +
      'fresh RATE_LIMIT_PER_HOUR); beyond it: no reply. 0: no such limit',
    { min: 0 },
  ),
  TEST_RATE_LIMIT_PER_KEY_PER_MINUTE: env.int(
    30,
    'POST /test mails decided per API key per minute (each calls the model); beyond it: 429. 0: no limit',
    { min: 0, max: 1_000_000 },
  ),
  MAX_ATTEMPTS: env.int(5, 'Attempts per mail before it is flagged $WorkemonFailed', { min: 1 }),
  RETRY_BASE_DELAY: env.durationMs('30s', 'First retry delay of a failed mail or update (doubles, with jitter)'),
  MAX_MAIL_BYTES: env.int(5_000_000, 'Bytes of a mail fetched at most (bigger mail is cut)', { min: 10_000 }),
  MAX_REQUEST_CHARS: env.int(
    SECRETARY_REQUEST_MAX,
    "Characters of a message passed to the secretary at most (default and ceiling: the secretary contract's maxLength)",
    { min: 100, max: SECRETARY_REQUEST_MAX },
  ),
  COMPANY_DOMAINS: env.list(
    "Comma-separated mail domains of the company: a Reply-To in one of them (or in the sender's domain) is honoured; others are ignored",
  ),
  IMAP_FAILED_MAILBOX: env.withDefault(
    'Workemon Failed',
    'Folder that unprocessable mail is moved to when the server keeps no custom keywords (else it gets $WorkemonFailed)',
  ),
  TRUSTED_AUTHSERV_ID: env.list(
    'authserv-id(s) of the receiving mail server whose Authentication-Results are believed in IMAP mail ' +
      '(mx.yandex.ru; *.mail.yandex.net for any host under it); unset: no IMAP mail counts as authenticated',
  ),

  TELEGRAM_BOT_TOKEN: env.optionalString('Bot token from @BotFather; unset: the Telegram channel is off'),
  TELEGRAM_API_ROOT: env.url('https://api.telegram.org', 'Bot API root (a local telegram-bot-api or a fake)'),
  TELEGRAM_POLL_TIMEOUT_S: env.int(50, 'Long-poll hold asked of getUpdates', { min: 0, max: 50 }),
  TELEGRAM_HANDLER_TIMEOUT: env.durationMs('150s', 'Deadline of handling one update'),
  TELEGRAM_CONFLICT_WAIT: env.durationMs('10s', 'Wait after a 409 (another poller) before polling again'),
  TELEGRAM_REQUEST_TIMEOUT: env.durationMs(
    '15s',
    'Deadline of one Bot API call (sendMessage, getMe …); getUpdates gets its long-poll hold plus this',
  ),
  TELEGRAM_MERGE_WINDOW_MS: env.int(
    1500,
    'Milliseconds within which album parts, and the parts of a long paste the client split, make one request',
    { min: 0, max: 60_000 },
  ),
  APPROVER_TELEGRAM_CHAT_ID: env.optionalString(
    'Chat whose Approve/Reject button presses decide held actions on the secretary; unset: presses are refused',
  ),

  APPROVER_TELEGRAM_USER_IDS: env.list(
    'Telegram user ids allowed to press Approve/Reject (in APPROVER_TELEGRAM_CHAT_ID); unset: nobody can',
  ),

  // Inbound mail webhooks (docs/webhooks.md): the same pipeline as IMAP mail; replies go out by SMTP (SMTP_*).
  MAILGUN_WEBHOOK_SIGNING_KEY: env.optionalString(
    'Mailgun HTTP webhook signing key: POST /webhook/mailgun checks HMAC-SHA256(timestamp + token); unset: that webhook answers 501',
  ),
  MAILGUN_WEBHOOK_MAX_AGE: env
    .durationMs('5m', 'Mailgun webhook timestamps further than this from our clock (past or future) are refused')
    // A longer window is a longer replay window for a captured signature: at most an hour.
    .refine((ms) => ms >= 1000 && ms <= 3_600_000, { message: 'must be between 1s and 1h' }),
  MAILGUN_TRUSTED_AUTHSERV_ID: env.list(
    "authserv-id(s) whose Authentication-Results are believed in mail posted by POST /webhook/mailgun (Mailgun's own, " +
      'only if it removes copies a sender forged, RFC 8601 §5); unset: such mail counts as unauthenticated',
  ),
  SENDGRID_WEBHOOK_SECRET: env.optionalString(
    'Secret the SendGrid Inbound Parse URL carries (?key=… or basic-auth password); Inbound Parse signs nothing; unset: 501',
  ),
  SENDGRID_TRUSTED_AUTHSERV_ID: env.list(
    'authserv-id(s) whose Authentication-Results are believed in mail posted by POST /webhook/sendgrid; unset: such ' +
      'mail counts as unauthenticated',
  ),
  SES_TRUSTED_AUTHSERV_ID: env.list(
    'authserv-id(s) whose Authentication-Results are believed in mail from POST /webhook/ses (besides the signed ' +
      "receipt's dmarcVerdict, which always counts); unset: only that verdict",
  ),
  SES_SNS_TOPIC_ARNS: env.list(
    'SNS topic ARNs whose SES receipt notifications POST /webhook/ses takes (comma-separated); unset: that webhook answers 501',
  ),
  SES_SNS_CERT_HOSTS: env.list(
    'Hosts the SNS signing certificate and SubscribeURL may come from (https only; * matches one DNS label, ' +
      'a region name under amazonaws.com); ' +
      'default sns.*.amazonaws.com,sns.*.amazonaws.com.cn',
  ),
  SES_SNS_CA_FILE: env.optionalString(
    'PEM file of extra CAs trusted (besides the system roots) when fetching SNS certificates and SubscribeURL (tests)',
  ),
  SES_S3_BUCKETS: env.list(
    'Buckets POST /webhook/ses may fetch mail from when a receipt rule stores it in S3 (S3 action; comma-separated); ' +
      'unset: S3 notifications are refused with 422',
  ),
  SES_S3_REGION: env.withDefault('us-east-1', 'AWS region of the SES_S3_BUCKETS (SigV4 signing, default endpoint)'),
  SES_S3_ENDPOINT: env.optionalString(
    'S3-compatible endpoint (http(s)://host[:port], path-style requests); unset: https://<bucket>.s3.<region>.amazonaws.com',
  ),
  SES_S3_ACCESS_KEY_ID: env.optionalString(
    'Access key id for GET on SES_S3_BUCKETS; unset: AWS_ACCESS_KEY_ID (and AWS_SESSION_TOKEN) from the environment',
  ),
  SES_S3_SECRET_ACCESS_KEY: env.optionalString(
    'Secret access key for SES_S3_ACCESS_KEY_ID; unset: AWS_SECRET_ACCESS_KEY from the environment',
  ),
  SES_S3_TIMEOUT: env.durationMs('10s', 'Deadline of one S3 GET of a mail (over it: 503, SNS retries)'),
  WEBHOOK_MAX_BYTES: env.int(10_000_000, 'Largest inbound webhook body accepted, in bytes (bigger: 413)', {
    min: 10_000,
  }),

  SHUTDOWN_TIMEOUT: env.durationMs('30s', 'Deadline for in-flight messages at shutdown'),
  POLLER_LEASE_TTL: env.durationMs(
    '10s',
    'How long the lease of the one replica that polls a mailbox or bot lasts; a standby takes over within ~1.25× it',
  ),
});

/** The parsed environment, keyed by env names (loadConfig's checks read it; nothing else does). */
type ParsedEnv = z.output<typeof schema>;

/**
 * The communicator's configuration: every env key of the schema as a camelCase field (`EMAIL_CONCURRENCY` →
 * `emailConcurrency`, durations in ms as parsed), the key lists folded into `apiKeys`.
 */
export type Config = ServiceConfig<ParsedEnv>;

/** The only reader of the environment. Throws ConfigError naming every bad key. */
export function loadConfig(source: Env): Config {
  const { parsed, config } = parseServiceEnv(schema, source);
  const problems = crossKeyProblems(parsed, source);
  if (problems.length) throw new ConfigError(problems);
  return config;
}

// An RFC 5322 mailbox in its two common forms, `local@domain.tld` or `Name <local@domain.tld>`: only the shape is
// checked (an @ and a dotted domain), the SMTP server decides the rest.
const MAILBOX = /^(?:[^<>]*<\s*)?[^\s<>@"]+@[^\s<>@.]+(?:\.[^\s<>@.]+)+\s*>?$/;

/**
 * The From of replies is MAIL_FROM, else the SMTP login, else the IMAP login. A Yandex login without its domain
 * (`support`) logs in to IMAP but is no address: every reply would carry `From: support`, which Yandex's SMTP
 * refuses and no client can answer. One problem naming the key to set.
 */
function mailFromProblems(parsed: ParsedEnv): string[] {
  const login = parsed.SMTP_USER ?? parsed.IMAP_USER;
  if (!login) return [];
  const from = parsed.MAIL_FROM ?? login;
  if (MAILBOX.test(from.trim())) return [];
  if (parsed.MAIL_FROM) return [`MAIL_FROM: '${from}' is not an address (name@domain or Name <name@domain>)`];
  const key = parsed.SMTP_USER ? 'SMTP_USER' : 'IMAP_USER';
  return [
    `MAIL_FROM: replies need a From address, and ${key} '${login}' is a login, not an address: set MAIL_FROM ` +
      `(e.g. ${login}@yandex.ru), or give ${key} with its domain`,
  ];
}

/** Keys that are only wrong together (IMAP_USER without IMAP_PASSWORD, half an S3 key pair): one message each. */
function crossKeyProblems(parsed: ParsedEnv, source: Env): string[] {
  const problems: string[] = [];
  if (parsed.IMAP_USER && !parsed.IMAP_PASSWORD) problems.push('IMAP_PASSWORD: is required when IMAP_USER is set');
  problems.push(...mailFromProblems(parsed));
  // The Bot API's token format (core.telegram.org/bots/api, "Authorizing your bot"): `<bot id>:<secret>`. A pasted
  // `bot` prefix, URL or quotes would otherwise surface only as getMe's 401/404 in the log. The value is never shown.
  if (parsed.TELEGRAM_BOT_TOKEN && !/^\d+:[A-Za-z0-9_-]+$/.test(parsed.TELEGRAM_BOT_TOKEN))
    problems.push(
      "TELEGRAM_BOT_TOKEN: must be the token @BotFather gave, <bot id>:<secret> (123456789:AAH…), with no 'bot' in front, quotes or spaces",
    );
  if (parsed.SENDGRID_WEBHOOK_SECRET && parsed.SENDGRID_WEBHOOK_SECRET.length < 16)
    problems.push(
      'SENDGRID_WEBHOOK_SECRET: must be at least 16 characters (it is the only proof a post comes from SendGrid)',
    );
  if (!!parsed.SES_S3_ACCESS_KEY_ID !== !!parsed.SES_S3_SECRET_ACCESS_KEY)
    problems.push('SES_S3_ACCESS_KEY_ID and SES_S3_SECRET_ACCESS_KEY: set both or neither');
  if (
    parsed.SES_S3_BUCKETS.length &&
    !parsed.SES_S3_ACCESS_KEY_ID &&
    !(source['AWS_ACCESS_KEY_ID'] && source['AWS_SECRET_ACCESS_KEY'])
  )
    problems.push(
      'SES_S3_BUCKETS: needs credentials: SES_S3_ACCESS_KEY_ID/SES_S3_SECRET_ACCESS_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY',
    );
  return [...problems, ...caFileProblems(parsed.SES_SNS_CA_FILE)];
}

/** SES_SNS_CA_FILE, when set, must be a readable file holding a PEM certificate. */
function caFileProblems(caFile: string | undefined): string[] {
  if (!caFile) return [];
  try {
    return /-----BEGIN CERTIFICATE-----/.test(readFileSync(caFile, 'utf8'))
      ? []
      : ['SES_SNS_CA_FILE: holds no PEM certificate'];
  } catch {
    return ['SES_SNS_CA_FILE: cannot be read'];
  }
}

export type EmailSettings = {
  imap: { host: string; port: number; secure: boolean; user: string; password: string; mailbox: string };
  smtp: { host: string; port: number; secure: boolean; user: string; password: string; timeoutMs: number };
  from: string;
  sweepIntervalMs: number;
  idleRenewMs: number;
  concurrency: number;
  rateLimitPerHour: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  maxMailBytes: number;
  maxRequestChars: number;
  /** Lower-case mail domains whose Reply-To addresses are honoured (besides the sender's own domain). */
  companyDomains: string[];
  failedMailbox: string;
  /** TRUSTED_AUTHSERV_ID: whose Authentication-Results count (sender-authentication.ts). */
  trustedAuthservIds: string[];
};

/** COMPANY_DOMAINS as lower-case domains without a leading `@` (empty entries dropped). */
export function companyDomainsOf(config: Pick<Config, 'companyDomains'>): string[] {
  return config.companyDomains.map((d) => d.trim().toLowerCase().replace(/^@/, '')).filter(Boolean);
}

/** The email channel's settings, or undefined when it is off (no IMAP_USER). */
export function emailSettings(config: Config): EmailSettings | undefined {
  if (!config.imapUser || !config.imapPassword) return undefined;
  const smtpUser = config.smtpUser ?? config.imapUser;
  return {
    imap: {
      host: config.imapHost,
      port: config.imapPort,
      secure: config.imapSecure,
      user: config.imapUser,
      password: config.imapPassword,
      mailbox: config.imapMailbox,
    },
    smtp: {
      host: config.smtpHost,
      port: config.smtpPort,
      secure: config.smtpSecure,
      user: smtpUser,
      password: config.smtpPassword ?? config.imapPassword,
      timeoutMs: config.smtpTimeout,
    },
    from: config.mailFrom ?? smtpUser,
    sweepIntervalMs: config.imapSweepIntervalS * 1000,
    idleRenewMs: config.imapIdleRenew,
    concurrency: config.emailConcurrency,
    rateLimitPerHour: config.rateLimitPerHour,
    maxAttempts: config.maxAttempts,
    retryBaseDelayMs: config.retryBaseDelay,
    maxMailBytes: config.maxMailBytes,
    maxRequestChars: config.maxRequestChars,
    companyDomains: companyDomainsOf(config),
    failedMailbox: config.imapFailedMailbox,
    trustedAuthservIds: config.trustedAuthservId,
  };
}

/** The default of SES_SNS_CERT_HOSTS: SNS's regional endpoints (AWS docs: the certificate comes from sns.<region>). */
export const DEFAULT_SNS_CERT_HOSTS = ['sns.*.amazonaws.com', 'sns.*.amazonaws.com.cn'];

/** The inbound webhooks' settings; a provider left undefined is not configured (its route answers 501). */
export type WebhookSettings = {
  mailgun?: { signingKey: string; maxAgeMs: number };
  sendgrid?: { secret: string };
  ses?: { topicArns: string[]; certHosts: string[]; caFile?: string; s3?: SesS3Settings };
  maxBytes: number;
};

/** Where SES S3-action mail is fetched from (docs/webhooks.md "SES with an S3 action"). */
export type SesS3Settings = {
  buckets: string[];
  region: string;
  /** S3-compatible endpoint (path-style); undefined: AWS, virtual-hosted style. */
  endpoint?: string;
  /** Undefined: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN of the environment, read per call. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  timeoutMs: number;
  maxBytes: number;
};

export function webhookSettings(config: Config): WebhookSettings {
  return {
    mailgun: config.mailgunWebhookSigningKey
      ? { signingKey: config.mailgunWebhookSigningKey, maxAgeMs: config.mailgunWebhookMaxAge }
      : undefined,
    sendgrid: config.sendgridWebhookSecret ? { secret: config.sendgridWebhookSecret } : undefined,
    ses: config.sesSnsTopicArns.length
      ? {
          topicArns: config.sesSnsTopicArns,
          certHosts: config.sesSnsCertHosts.length ? config.sesSnsCertHosts : DEFAULT_SNS_CERT_HOSTS,
          caFile: config.sesSnsCaFile,
          s3: config.sesS3Buckets.length
            ? {
                buckets: config.sesS3Buckets,
                region: config.sesS3Region,
                endpoint: config.sesS3Endpoint?.replace(/\/+$/, ''),
                credentials:
                  config.sesS3AccessKeyId && config.sesS3SecretAccessKey
                    ? { accessKeyId: config.sesS3AccessKeyId, secretAccessKey: config.sesS3SecretAccessKey }
                    : undefined,
                timeoutMs: config.sesS3Timeout,
                maxBytes: config.webhookMaxBytes,
              }
            : undefined,
        }
      : undefined,
    maxBytes: config.webhookMaxBytes,
  };
}

/**
 * SMTP settings for replies to webhook mail when there is no IMAP channel: SMTP_USER (else IMAP_USER) and
 * SMTP_PASSWORD (else IMAP_PASSWORD) must be set; undefined otherwise (the webhooks then answer 501).
 */
export function smtpSettings(config: Config): Pick<EmailSettings, 'smtp' | 'from'> | undefined {
  const user = config.smtpUser ?? config.imapUser;
  const password = config.smtpPassword ?? config.imapPassword;
  if (!user || !password) return undefined;
  return {
    smtp: {
      host: config.smtpHost,
      port: config.smtpPort,
      secure: config.smtpSecure,
      user,
      password,
      timeoutMs: config.smtpTimeout,
    },
    from: config.mailFrom ?? user,
  };
}

export type TelegramSettings = {
  token: string;
  apiRoot: string;
  pollTimeoutS: number;
  handlerTimeoutMs: number;
  conflictWaitMs: number;
  /**
   * Deadline (ms) of one Bot API call without an answer (a silently dropped connection): TELEGRAM_REQUEST_TIMEOUT;
   * getUpdates gets `pollTimeoutS` on top.
   */
  requestTimeoutMs: number;
  /** Album parts and split pastes arriving within this many ms are one request (TELEGRAM_MERGE_WINDOW_MS). */
  mergeWindowMs: number;
  rateLimitPerHour: number;
  maxAttempts: number;
  retryBaseDelayMs: number;
  maxRequestChars: number;
  /** The only chat whose approval button presses are passed to the secretary. */
  approverChatId?: string;
  /** Telegram user ids whose presses (in the approver chat) count: `APPROVER_TELEGRAM_USER_IDS`. */
  approverUserIds: readonly string[];
};

export function telegramSettings(config: Config): TelegramSettings | undefined {
  if (!config.telegramBotToken) return undefined;
  return {
    token: config.telegramBotToken,
    apiRoot: config.telegramApiRoot!,
    pollTimeoutS: config.telegramPollTimeoutS,
    handlerTimeoutMs: config.telegramHandlerTimeout,
    conflictWaitMs: config.telegramConflictWait,
    requestTimeoutMs: config.telegramRequestTimeout,
    mergeWindowMs: config.telegramMergeWindowMs,
    rateLimitPerHour: config.rateLimitPerHour,
    maxAttempts: config.maxAttempts,
    retryBaseDelayMs: config.retryBaseDelay,
    maxRequestChars: config.maxRequestChars,
    approverChatId: config.approverTelegramChatId,
    approverUserIds: config.approverTelegramUserIds,
  };
}
