import { SLOW_CALL_BUCKETS, type Metrics } from '@workemon/service-kit';

/** `email` is the IMAP mailbox; mailgun, sendgrid and ses are the inbound webhooks (same pipeline). */
export type ChannelName = 'email' | 'tg' | 'mailgun' | 'sendgrid' | 'ses';

/** The communicator's metrics (names from docs/architecture.md "Observability names"), created once per app. */
export function createChannelMetrics(metrics: Metrics) {
  const received = metrics.counter('workemon_messages_received_total', 'Inbound messages seen, by channel', [
    'channel',
  ]);
  const replies = metrics.counter(
    'workemon_replies_sent_total',
    'Replies and outbound messages, by channel and outcome (sent, failed, rejected)',
    ['channel', 'outcome'],
  );
  const skipped = metrics.counter(
    'workemon_messages_skipped_total',
    'Inbound messages deliberately not answered, by reason (loop rules, rate limit, duplicates)',
    ['channel', 'reason'],
  );
  const duration = metrics.histogram(
    'workemon_message_processing_duration_seconds',
    'Time from picking up an inbound message to its reply being accepted, by outcome',
    ['channel', 'outcome'],
    SLOW_CALL_BUCKETS,
  );
  const reconnects = metrics.counter(
    'workemon_imap_reconnects_total',
    'IMAP connections re-established after a loss',
    [],
  );
  const emailFailed = metrics.counter(
    'workemon_email_failed_total',
    'Mails given up on after MAX_ATTEMPTS (flagged $WorkemonFailed, left in the mailbox)',
    [],
  );
  const lastSuccess = metrics.gauge(
    'workemon_channel_last_success_timestamp_seconds',
    'Unix time of the last successful poll/sweep of a channel',
    ['channel'],
  );
  const oldestUnseen = metrics.gauge(
    'workemon_imap_oldest_unseen_age_seconds',
    'Age of the oldest unseen mail in the mailbox that is still to be answered (0 when none), as of the last sweep',
    [],
  );
  const pollErrors = metrics.counter('workemon_channel_poll_errors_total', 'Failed polls/sweeps, by channel and kind', [
    'channel',
    'kind',
  ]);
  const repliesFailed = metrics.counter(
    'workemon_replies_failed_total',
    'Inbound messages given up without a normal answer, by channel and reason (bot_blocked, chat_not_found, ' +
      'unavailable, secretary_failed, …)',
    ['channel', 'reason'],
  );
  const oldestPending = metrics.gauge(
    'workemon_telegram_oldest_pending_update_age_seconds',
    'Age of the oldest Telegram update not yet handled: it holds the getUpdates offset back',
    [],
  );
  return {
    repliesFailed: (channel: ChannelName, reason: string) => repliesFailed.inc({ channel, reason }),
    oldestPendingUpdate: (ageMs: number) => oldestPending.set(ageMs / 1000),
    received: (channel: ChannelName) => received.inc({ channel }),
    reply: (channel: ChannelName, outcome: 'sent' | 'failed' | 'rejected') => replies.inc({ channel, outcome }),
    skipped: (channel: ChannelName, reason: string) => skipped.inc({ channel, reason }),
    startTimer: (channel: ChannelName) => {
      const end = duration.startTimer({ channel });
      return (outcome: string) => end({ outcome });
    },
    imapReconnect: () => reconnects.inc(),
    emailFailed: () => emailFailed.inc(),
    success: (channel: ChannelName) => lastSuccess.set({ channel }, Date.now() / 1000),
    pollError: (channel: ChannelName, kind: string) => pollErrors.inc({ channel, kind }),
    oldestUnseenAge: (seconds: number) => oldestUnseen.set(seconds),
  };
}

export type ChannelMetrics = ReturnType<typeof createChannelMetrics>;
