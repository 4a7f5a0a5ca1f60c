import { SLOW_CALL_BUCKETS, type Metrics } from '@workemon/service-kit';

/** `email` is the IMAP mailbox; mailgun, sendgrid and ses are the inbound webhooks (same pipeline). */
export type ChannelName = 'email' | 'tg' | 'mailgun' | 'sendgrid' | 'ses';

/** One metric of the communicator: its name (docs/architecture.md "Observability names"), help and labels. */
type MetricSpec = { readonly name: string; readonly help: string; readonly labels: readonly string[] };

/** The communicator's counters and gauges, by the name the channels call them. */
const COUNTERS = {
  received: {
    name: 'workemon_messages_received_total',
    help: 'Inbound messages seen, by channel',
    labels: ['channel'],
  },
  replies: {
    name: 'workemon_replies_sent_total',
    help: 'Replies and outbound messages, by channel and outcome (sent, failed, rejected)',
    labels: ['channel', 'outcome'],
  },
  skipped: {
    name: 'workemon_messages_skipped_total',
    help: 'Inbound messages deliberately not answered, by reason (loop rules, rate limit, duplicates)',
    labels: ['channel', 'reason'],
  },
  reconnects: {
    name: 'workemon_imap_reconnects_total',
    help: 'IMAP connections re-established after a loss',
    labels: [],
  },
  emailFailed: {
    name: 'workemon_email_failed_total',
    help: 'Mails given up on after MAX_ATTEMPTS (flagged $WorkemonFailed, left in the mailbox)',
    labels: [],
  },
  pollErrors: {
    name: 'workemon_channel_poll_errors_total',
    help: 'Failed polls/sweeps, by channel and kind',
    labels: ['channel', 'kind'],
  },
  parkedStored: {
    name: 'workemon_telegram_updates_parked_total',
    help: 'Telegram updates parked in the secretary so the getUpdates offset could move past them before they were handled',
    labels: [],
  },
  parkFailures: {
    name: 'workemon_telegram_park_failures_total',
    help: 'Telegram updates that could not be parked, by reason (too_large, full, conflict, unavailable); they keep the offset back',
    labels: ['reason'],
  },
  parkedDropped: {
    name: 'workemon_telegram_parked_updates_dropped_total',
    help: 'Parked Telegram updates dropped at load and never answered: malformed, or older than the parking bound',
    labels: [],
  },
  parkedLoaded: {
    name: 'workemon_telegram_parked_updates_loaded_total',
    help: 'Parked Telegram updates loaded from the secretary at start (or at a takeover of the poller lease)',
    labels: [],
  },
  repliesFailed: {
    name: 'workemon_replies_failed_total',
    help:
      'Inbound messages given up without a normal answer, by channel and reason (bot_blocked, chat_not_found, ' +
      'unavailable, secretary_failed, …)',
    labels: ['channel', 'reason'],
  },
} as const satisfies Record<string, MetricSpec>;

const GAUGES = {
  lastSuccess: {
    name: 'workemon_channel_last_success_timestamp_seconds',
    help: 'Unix time of the last successful poll/sweep of a channel',
    labels: ['channel'],
  },
  oldestUnseen: {
    name: 'workemon_imap_oldest_unseen_age_seconds',
    help: 'Age of the oldest unseen mail in the mailbox that is still to be answered (0 when none), as of the last sweep',
    labels: [],
  },
  parked: {
    name: 'workemon_telegram_parked_updates',
    help: 'Telegram updates parked in the secretary and not yet handled by this replica',
    labels: [],
  },
  oldestParked: {
    name: 'workemon_telegram_oldest_parked_update_age_seconds',
    help: 'Age since it was parked of the oldest Telegram update parked in the secretary and not yet handled by this replica (0 when none)',
    labels: [],
  },
  oldestPending: {
    name: 'workemon_telegram_oldest_pending_update_age_seconds',
    help: 'Age of the oldest Telegram update not yet handled: it holds the getUpdates offset back',
    labels: [],
  },
} as const satisfies Record<string, MetricSpec>;

/** The registry's counter for each spec of `specs`, by the same names. */
function countersOf<K extends string>(metrics: Metrics, specs: Record<K, MetricSpec>) {
  return Object.fromEntries(
    Object.entries<MetricSpec>(specs).map(([key, m]) => [key, metrics.counter(m.name, m.help, [...m.labels])]),
  ) as Record<K, ReturnType<Metrics['counter']>>;
}

/** The registry's gauge for each spec of `specs`, by the same names. */
function gaugesOf<K extends string>(metrics: Metrics, specs: Record<K, MetricSpec>) {
  return Object.fromEntries(
    Object.entries<MetricSpec>(specs).map(([key, m]) => [key, metrics.gauge(m.name, m.help, [...m.labels])]),
  ) as Record<K, ReturnType<Metrics['gauge']>>;
}

/** The communicator's metrics (names from docs/architecture.md "Observability names"), created once per app. */
export function createChannelMetrics(metrics: Metrics) {
  const counters = countersOf(metrics, COUNTERS);
  const gauges = gaugesOf(metrics, GAUGES);
  const duration = metrics.histogram(
    'workemon_message_processing_duration_seconds',
    'Time from picking up an inbound message to its reply being accepted, by outcome',
    ['channel', 'outcome'],
    SLOW_CALL_BUCKETS,
  );
  return {
    repliesFailed: (channel: ChannelName, reason: string) => counters.repliesFailed.inc({ channel, reason }),
    oldestPendingUpdate: (ageMs: number) => gauges.oldestPending.set(ageMs / 1000),
    parkedUpdates: (count: number) => gauges.parked.set(count),
    updatesParked: (count: number) => counters.parkedStored.inc(count),
    parkFailed: (reason: 'too_large' | 'full' | 'conflict' | 'unavailable', count = 1) =>
      counters.parkFailures.inc({ reason }, count),
    parkedLoaded: (count: number) => counters.parkedLoaded.inc(count),
    /** Parked rows dropped at load (malformed or too old), never answered. */
    parkedDropped: (count: number) => counters.parkedDropped.inc(count),
    /** Age (ms) of the oldest parked, unhandled update; set in seconds. */
    oldestParkedUpdate: (ageMs: number) => gauges.oldestParked.set(ageMs / 1000),
    received: (channel: ChannelName) => counters.received.inc({ channel }),
    reply: (channel: ChannelName, outcome: 'sent' | 'failed' | 'rejected') =>
      counters.replies.inc({ channel, outcome }),
    skipped: (channel: ChannelName, reason: string) => counters.skipped.inc({ channel, reason }),
    startTimer: (channel: ChannelName) => {
      const end = duration.startTimer({ channel });
      return (outcome: string) => end({ outcome });
    },
    imapReconnect: () => counters.reconnects.inc(),
    emailFailed: () => counters.emailFailed.inc(),
    success: (channel: ChannelName) => gauges.lastSuccess.set({ channel }, Date.now() / 1000),
    pollError: (channel: ChannelName, kind: string) => counters.pollErrors.inc({ channel, kind }),
    oldestUnseenAge: (seconds: number) => gauges.oldestUnseen.set(seconds),
  };
}

export type ChannelMetrics = ReturnType<typeof createChannelMetrics>;
