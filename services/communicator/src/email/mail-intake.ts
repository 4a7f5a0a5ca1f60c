import { AsyncLocalStorage } from 'node:async_hooks';
import { isAppError, type Logger } from '@workemon/service-kit';
import type { SecretaryClient } from '../secretary-client.js';
import type { MailPipeline, MailSource } from './mail-pipeline.js';

/**
 * How a mail reached the communicator, as the secretary is told it (`intake` on /analyze-request, secretary.yaml
 * AnalyzeRequest): the IMAP mailbox or a provider's inbound webhook. The secretary writes it into its audit rows
 * of the mail as `event_provider` (docs/audit.md, "Intake"): the channel of those rows is `email` either way.
 */
export type MailIntake = 'imap' | 'mailgun' | 'sendgrid' | 'ses';

/** The intake of a pipeline source: the IMAP channel's source is `email`, a webhook's is its provider. */
export const intakeOfSource = (source: MailSource): MailIntake => (source === 'email' ? 'imap' : source);

// The intake of the mail whose pass runs in this async context (one pass per processMail call), as the request id
// is carried (service-kit request-context): the pipeline hands the secretary client no more than the request.
const currentIntake = new AsyncLocalStorage<MailIntake>();

/**
 * The pipeline with each pass run in the context of its mail's intake (from `PipelineInput.source`), so the
 * secretary client made by `withIntakeField` can name it. A dry run (POST /test) has no intake: it came by neither.
 */
export function withMailIntake(pipeline: MailPipeline): MailPipeline {
  return {
    processMail: (input, hooks) =>
      input.dryRun
        ? pipeline.processMail(input, hooks)
        : currentIntake.run(intakeOfSource(input.source), () => pipeline.processMail(input, hooks)),
  };
}

/** Whether a secretary error is its refusal of the `intake` field (400 naming it): a secretary older than the field. */
function refusesIntake(err: unknown): boolean {
  return isAppError(err) && err.status === 400 && err.message.includes("'intake'");
}

/**
 * `secretary` whose `analyze` adds `intake` to an email request made within a `withMailIntake` pass. A secretary
 * older than the field refuses it (400 naming `intake`, its schema has no such property): the request is sent
 * again without it, and every later one too, with one warning — the mail is answered, its audit rows keep no
 * intake until the secretary is upgraded (the same rolling-upgrade rule as the rate limits' 404 fallback).
 */
export function withIntakeField(secretary: SecretaryClient, logger: Logger): SecretaryClient {
  let unsupported = false;
  return {
    ...secretary,
    analyze: async (request) => {
      const intake = currentIntake.getStore();
      if (!intake || unsupported || request.channel !== 'email') return secretary.analyze(request);
      try {
        return await secretary.analyze({ ...request, intake });
      } catch (err) {
        if (!refusesIntake(err)) throw err;
        unsupported = true;
        logger.warn(
          "the secretary refuses /analyze-request's `intake` (an older version): mail is passed on without it, and " +
            'its audit rows do not tell the intake, until the secretary is upgraded',
        );
        return secretary.analyze(request);
      }
    },
  };
}
