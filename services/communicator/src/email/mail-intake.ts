import { isAppError, type Logger } from '@workemon/service-kit';
import type { SecretaryClient } from '../secretary-client.js';
import type { MailSource } from './mail-pipeline.js';

/**
 * How a mail reached the communicator, as the secretary is told it (`intake` on /analyze-request, secretary.yaml
 * AnalyzeRequest): the IMAP mailbox or a provider's inbound webhook. The secretary writes it into its audit rows
 * of the mail as `event_provider` (docs/audit.md, "Intake"): the channel of those rows is `email` either way.
 */
export type MailIntake = 'imap' | 'mailgun' | 'sendgrid' | 'ses';

/** The intake of a pipeline source: the IMAP channel's source is `email`, a webhook's is its provider. */
export const intakeOfSource = (source: MailSource): MailIntake => (source === 'email' ? 'imap' : source);

/**
 * `call` that copes with a secretary older than an optional field it is sent: such a secretary refuses the field
 * (400, `refuses` says so: its schema has no such property), so the call is made again with the field taken out
 * (`without`; undefined: the input has none, nothing to retry), and every later call too, with one `warning` — the
 * rolling-upgrade rule of the rate limits' 404 fallback. Other errors are passed on unchanged.
 */
function withoutFieldOnRefusal<I, R>(
  call: (input: I) => Promise<R>,
  without: (input: I) => I | undefined,
  refuses: (err: unknown) => boolean,
  warning: string,
  logger: Logger,
): (input: I) => Promise<R> {
  let unsupported = false;
  return async (input) => {
    const stripped = without(input);
    if (stripped === undefined) return call(input);
    if (unsupported) return call(stripped);
    try {
      return await call(input);
    } catch (err) {
      if (!refuses(err)) throw err;
      unsupported = true;
      logger.warn(warning);
      return call(stripped);
    }
  };
}

/** Whether a secretary error is its refusal of the `intake` field (400 naming it): a secretary older than the field. */
function refusesIntake(err: unknown): boolean {
  return isAppError(err) && err.status === 400 && err.message.includes("'intake'");
}

/**
 * `secretary` whose `analyze` copes with a secretary older than `intake` (analyzeRequestOf sets it on every email
 * request but a dry run): such a secretary refuses it (400 naming `intake`, its schema has no such property), so the
 * request is sent again without it, and every later one too, with one warning — the mail is answered, its audit rows
 * keep no intake until the secretary is upgraded (the same rolling-upgrade rule as the rate limits' 404 fallback).
 */
export function withIntakeField(secretary: SecretaryClient, logger: Logger): SecretaryClient {
  type Request = Parameters<SecretaryClient['analyze']>[0];
  const without = (request: Request): Request | undefined => {
    if (request.intake === undefined) return undefined;
    const { intake: _intake, ...rest } = request;
    return rest;
  };
  return {
    ...secretary,
    analyze: withoutFieldOnRefusal(
      (request: Request) => secretary.analyze(request),
      without,
      refusesIntake,
      "the secretary refuses /analyze-request's `intake` (an older version): mail is passed on without it, and " +
        'its audit rows do not tell the intake, until the secretary is upgraded',
      logger,
    ),
  };
}

/** Whether a secretary error is its refusal of an audit event's `event_provider` (400 naming it): an older secretary. */
function refusesEventProvider(err: unknown): boolean {
  return isAppError(err) && err.status === 400 && /event_provider' is not allowed/.test(err.message);
}

/**
 * `send` (POST /audit-events) that copes with a secretary older than `event_provider` on audit events (the IMAP
 * mailbox's own rows carry `imap`, mail-audit.ts): such a secretary refuses the whole batch (400 naming the field,
 * its schema has no such property), which the audit reporter would drop. The batch is sent again without the field,
 * and every later one too, with one warning — the rows are kept, without their intake, until the secretary is
 * upgraded (the same rule as {@link withIntakeField}).
 *
 * @param send the reporter's sender (secretary-client.ts `postAuditEvents`); its errors other than that refusal
 *   are passed on unchanged (the reporter decides between retrying and dropping).
 */
export function withAuditEventProviderFallback<E extends { event_provider?: unknown }, R>(
  send: (events: E[]) => Promise<R>,
  logger: Logger,
): (events: E[]) => Promise<R> {
  const without = (events: E[]): E[] | undefined =>
    events.some((e) => e.event_provider !== undefined)
      ? events.map((e) => {
          if (e.event_provider === undefined) return e;
          const { event_provider: _provider, ...rest } = e;
          return rest as E;
        })
      : undefined;
  return withoutFieldOnRefusal(
    send,
    without,
    refusesEventProvider,
    "the secretary refuses audit events' `event_provider` (an older version): the mailbox's audit rows are " +
      'reported without their intake until the secretary is upgraded',
    logger,
  );
}
