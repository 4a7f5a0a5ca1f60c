import type { CallbackQuery, Message, Update, UserFromGetMe } from 'telegraf/types';
import { randomUUID } from 'node:crypto';
import {
  AppError,
  backoffMs,
  getRequestId,
  isAppError,
  runWithRequestId,
  sleep,
  spreadMs,
  type Logger,
} from '@workemon/service-kit';
import type { TelegramSettings } from '../config.js';
import type { ChannelMetrics } from '../channel-metrics.js';
import { replyTextOf, type HandledOutcome, type SecretaryClient } from '../secretary-client.js';
import { secretaryRetry } from '../secretary-retry.js';
import { rateLimitKey, type RateLimitVerdict, type SenderRateLimit } from '../sender-rate-limit.js';
import { auditEventId, type AuditReporter, type AuditSkipReason } from '../audit-reporter.js';
import { splitMessage, type TelegramBotApi } from './telegram-bot-api.js';
import { createOffsetTracker } from './telegram-offset.js';
import {
  SPLIT_PART_MIN_CHARS,
  classifyUpdate,
  handledKeyOf,
  mediaGroupOf,
  type Classified,
} from './telegram-update.js';
import { checkApprovalPress } from './approval-press.js';

export const HELP_TEXT = [
  'Здравствуйте! Я Workemon — секретарь службы поддержки.',
  'Напишите свой вопрос или просьбу обычным текстом одним сообщением: я уточню детали, если их не хватит,',
  'и отвечу сам или передам запрос нужному сотруднику (задача в Jira, сообщение коллеге, письмо в рассылку).',
  'Команды: /help — эта справка.',
].join('\n');
export const TEXT_ONLY_REPLY =
  'Я понимаю только текст. Пожалуйста, опишите вопрос словами (стикеры, фото без подписи, голосовые и файлы я не читаю).';
export const NOT_APPROVER_REPLY = 'Согласовывать действия Workemon можно только из чата согласующего.';
export const GAVE_UP_REPLY = 'Извините, не удалось обработать ваше сообщение. Пожалуйста, повторите его чуть позже.';

/**
 * Delays (ms) between sends of one answer after 5xx or network errors: fast first (a blip of the Bot API),
 * then seconds; after the last the update is given up (`workemon_replies_failed_total{reason="unavailable"}`).
 */
export const SEND_RETRY_DELAYS_MS = [250, 750, 2000, 5000, 10_000, 20_000, 30_000, 30_000];
/** Delays (ms) between tries to record an update as handled, or to look it up, while the secretary is away. */
const RECORD_RETRY_DELAYS_MS = [200, 500, 1000, 2000, 5000];
/** While some update is pending the offset cannot move past it, so getUpdates answers at once: poll this often. */
const BUSY_POLL_MS = 300;

export type TelegramChannel = {
  start: () => void;
  stop: (deadlineMs: number) => Promise<void>;
  health: () => { bot?: string; lastPollAt?: number; pollTimeoutS: number };
  api: TelegramBotApi;
};

/** An update waiting in its chat's queue. */
type Queued = {
  update: Update;
  classified: Extract<Classified, { kind: 'message' | 'callback' }>;
  arrivedAt: number;
};
type QueuedMessage = Queued & { classified: { kind: 'message'; message: Message; text: string } };
const isMessage = (q: Queued): q is QueuedMessage => q.classified.kind === 'message';

/** The answer to one job, before delivery; `skip` means nothing is sent. */
type Reply =
  | { send: true; chatId: number; text: string; replyTo?: number; outcome: HandledOutcome; reason?: string }
  | { send: false; outcome: HandledOutcome; reason: string };

/** The audit log's skip reason of each reason a job ends without an answer. */
const AUDIT_SKIP_REASONS: Record<string, AuditSkipReason> = {
  rate_limited: 'rate-limited',
  no_reply: 'no-reply',
  not_approver: 'untrusted',
  unsupported_callback: 'not-addressed',
};

/** Thrown out of a job when the channel stops: the job is left unconfirmed for the next process. */
class Stopped extends Error {}

/**
 * Step "per-chat queue → merge": the next job of a chat — the head update plus what belongs to it — or how long
 * to wait for the rest of it:
 * - an album (one `media_group_id`) is one job, once no part arrived for `mergeWindowMs`;
 * - a long paste the client split (a part of at least SPLIT_PART_MIN_CHARS characters followed, within the
 *   window, by another message of the same sender) is one job; a long last part waits for a continuation
 *   until the window has passed since it arrived;
 * - anything else is a job of its own.
 */
export function nextJob(items: Queued[], now: number, mergeWindowMs: number): { job: Queued[] } | { waitMs: number } {
  const head = items[0]!;
  if (!isMessage(head)) return { job: [head] };
  const group = mediaGroupOf(head.classified.message);
  if (group) {
    const parts = items.filter((q) => isMessage(q) && mediaGroupOf(q.classified.message) === group);
    const last = Math.max(...parts.map((q) => q.arrivedAt));
    if (now - last < mergeWindowMs) return { waitMs: mergeWindowMs - (now - last) };
    return { job: parts };
  }
  const job: Queued[] = [head];
  let previous = head;
  const windowS = Math.ceil(mergeWindowMs / 1000);
  while (previous.classified.text.length >= SPLIT_PART_MIN_CHARS) {
    const next = items[job.length];
    if (!next) {
      const waited = now - previous.arrivedAt;
      if (waited < mergeWindowMs) return { waitMs: mergeWindowMs - waited };
      break;
    }
    const a = previous.classified.message;
    if (
      !isMessage(next) ||
      mediaGroupOf(next.classified.message) ||
      next.classified.message.from?.id !== a.from?.id ||
      next.classified.message.date - a.date > windowS
    )
      break;
    job.push(next);
    previous = next;
  }
  return { job };
}

/**
 * The Telegram channel, as small steps: poll (getUpdates) → classify (telegram-update.ts) → per-chat queue
 * (merging albums and split pastes) → decide (the secretary, or a fixed reply) → deliver (sendMessage, errors
 * by kind) → confirm (record the update as handled in the secretary, move the offset over the handled prefix).
 *
 * Guarantees (docs/communicator.md "Telegram: exactly once"):
 * - each chat is an ordered queue of its own; a chat waiting on a retry, a 429 or a slow analysis never delays
 *   another chat, and polling never waits on a chat;
 * - an update is confirmed as soon as it and every update below it are handled; handled updates are recorded
 *   durably first, so a restart that sees them again does not answer them. The one window: a crash after
 *   sendMessage succeeded and before the record was written answers that update again — at most one update
 *   per chat, since a chat's next update starts only after the record is written;
 * - permanent Bot API errors are not retried; 429 waits `retry_after` in that chat only; 5xx and network errors
 *   are retried soon, with the stored answer (never a new analysis).
 */
export function createTelegramChannel(deps: {
  settings: TelegramSettings;
  api: TelegramBotApi;
  secretary: SecretaryClient;
  rateLimit: SenderRateLimit;
  /** Audit events of every update (received, skipped, the answer delivered or failed); default: none reported. */
  audit?: AuditReporter;
  metrics: ChannelMetrics;
  logger: Logger;
  /** Backoff after network errors and 5xx of getUpdates (ms, doubled per failure, full jitter). */
  errorBaseDelayMs?: number;
}): TelegramChannel {
  const { settings, api, secretary, metrics, logger } = deps;
  const errorBaseDelay = deps.errorBaseDelayMs ?? 1000;
  const mergeWindowMs = settings.mergeWindowMs;
  let me: UserFromGetMe | undefined;
  let lastPollAt: number | undefined;
  let stopping = false;
  let loop: Promise<void> | undefined;
  // `stopSignal` ends waits (retries, back-off, merge windows) at once on stop; `abort` ends calls in flight
  // once the shutdown deadline has passed.
  const stopController = new AbortController();
  const abort = new AbortController();
  const offsets = createOffsetTracker();
  const chats = new Map<string, { items: Queued[]; running?: Promise<void>; wake?: () => void }>();
  // A group that became a supergroup (400 with migrate_to_chat_id): where its answers go now.
  const migratedChats = new Map<number, number>();
  let wakePoll: (() => void) | undefined;

  // ---- audit (docs/audit-and-limits.md): ids `telegram:<handled key>:<outcome>` and `…:reply` ----

  const senderOf = (update: Update): string | undefined => {
    const from =
      'callback_query' in update ? update.callback_query.from : 'message' in update ? update.message.from : undefined;
    return from ? `tg:${from.id}` : undefined;
  };
  function auditInbound(update: Update, outcome: 'received' | 'skipped', reason?: AuditSkipReason, detail?: string) {
    const messageId = handledKeyOf(update);
    deps.audit?.report({
      event_id: auditEventId('telegram', messageId, outcome),
      channel: 'telegram',
      direction: 'inbound',
      outcome,
      message_id: messageId,
      sender: senderOf(update),
      request_id: getRequestId(),
      ...(reason ? { reason } : {}),
      ...(detail ? { detail } : {}),
    });
  }

  /** Waits `ms`, or less when `wakeUp` is called (through `onWake`) or the channel stops. */
  const wait = async (ms: number, onWake?: (wake: () => void) => void): Promise<void> => {
    if (stopping) return;
    const cut = new AbortController();
    const done = () => cut.abort();
    stopController.signal.addEventListener('abort', done, { once: true });
    onWake?.(done);
    await sleep(ms, { signal: cut.signal });
    stopController.signal.removeEventListener('abort', done);
  };

  /** A call in flight, cut short (Stopped) once the shutdown deadline has passed. */
  function untilDeadline<T>(work: Promise<T>): Promise<T> {
    if (abort.signal.aborted) return Promise.reject(new Stopped('stopped'));
    let onAbort: (() => void) | undefined;
    return Promise.race([
      work,
      new Promise<never>((_resolve, reject) => {
        onAbort = () => reject(new Stopped('stopped'));
        abort.signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]).finally(() => abort.signal.removeEventListener('abort', onAbort!));
  }

  /** Waits for a retry; throws Stopped when the channel stops meanwhile. */
  async function retryWait(ms: number): Promise<void> {
    await wait(ms);
    if (stopping) throw new Stopped('stopping');
  }

  // ---- step: poll ----

  /** Waits as a getUpdates failure asks; never throws, never gives up. */
  async function backOff(err: unknown, failures: number, during: string): Promise<void> {
    const f = api.describe(err);
    if (f.kind === 'aborted' || stopping) return;
    metrics.pollError('tg', f.kind);
    let delay: number;
    if (f.kind === 'conflict') delay = settings.conflictWaitMs;
    else if (f.kind === 'rate_limited') delay = (f.retryAfterS ?? 1) * 1000;
    else if (f.kind === 'unauthorized') delay = 60_000;
    else
      delay =
        (f.retryAfterS ? f.retryAfterS * 1000 : 0) +
        backoffMs(Math.min(failures, 10), { baseMs: errorBaseDelay, maxMs: 30_000 });
    const log = f.kind === 'unauthorized' ? logger.error.bind(logger) : logger.warn.bind(logger);
    log(`Telegram ${during} failed (${f.kind}); retrying in ${Math.round(delay)} ms`, {
      error: { message: f.message, code: f.status },
    });
    await wait(delay);
  }

  async function connect(): Promise<void> {
    for (let failures = 0; !stopping; failures += 1) {
      try {
        me = await api.getMe();
        await api.deleteWebhook();
        logger.info(`Telegram bot @${me.username} ready`);
        return;
      } catch (err) {
        await backOff(err, failures, 'start');
      }
    }
  }

  async function pollLoop() {
    await connect();
    let failures = 0;
    while (!stopping) {
      const busy = offsets.pendingCount() > 0;
      let updates: Update[];
      try {
        // While an update is pending, Telegram answers at once (it still holds that update): no long poll then.
        updates = await api.getUpdates(offsets.offset(), busy ? 0 : settings.pollTimeoutS, abort.signal);
        failures = 0;
        lastPollAt = Date.now();
        metrics.success('tg');
      } catch (err) {
        failures += 1;
        await backOff(err, failures, 'getUpdates');
        continue;
      }
      for (const update of updates) dispatch(update);
      metrics.oldestPendingUpdate(offsets.oldestPendingAgeMs());
      // Nothing new while some chat works: look again soon, or as soon as the offset can move.
      if (offsets.pendingCount() > 0) await wait(BUSY_POLL_MS, (wake) => (wakePoll = wake));
      wakePoll = undefined;
    }
  }

  // ---- step: classify ----

  /** Takes one polled update: queues it in its chat, or confirms it at once. False for a repeat. */
  function dispatch(update: Update): boolean {
    if (!offsets.add(update.update_id)) return false;
    metrics.received('tg');
    auditInbound(update, 'received');
    const classified = classifyUpdate(update, me);
    if (classified.kind === 'ignore') {
      metrics.skipped('tg', classified.reason);
      auditInbound(
        update,
        'skipped',
        classified.reason === 'bot_sender' ? 'automatic' : 'not-addressed',
        classified.reason,
      );
      confirm([update]);
      return true;
    }
    enqueue({ update, classified, arrivedAt: Date.now() });
    return true;
  }

  // ---- step: per-chat queue ----

  function enqueue(item: Queued) {
    let chat = chats.get(item.classified.chatKey);
    if (!chat) {
      chat = { items: [] };
      chats.set(item.classified.chatKey, chat);
    }
    chat.items.push(item);
    chat.wake?.();
    chat.running ??= runChat(item.classified.chatKey, chat).finally(() => {
      chat.running = undefined;
      if (chat.items.length === 0 && chats.get(item.classified.chatKey) === chat) chats.delete(item.classified.chatKey);
    });
  }

  async function runChat(chatKey: string, chat: { items: Queued[]; wake?: () => void }) {
    while (chat.items.length > 0 && !stopping) {
      const next = nextJob(chat.items, Date.now(), mergeWindowMs);
      if ('waitMs' in next) {
        await wait(next.waitMs, (wake) => (chat.wake = wake));
        chat.wake = undefined;
        continue;
      }
      chat.items = chat.items.filter((q) => !next.job.includes(q));
      try {
        // One request id per job: sent to the secretary and put on the job's audit events.
        await runWithRequestId(randomUUID(), () => runJob(next.job));
        confirm(next.job.map((q) => q.update));
      } catch (err) {
        if (err instanceof Stopped) return;
        // A bug, not a failure of Telegram or the secretary: keep the job at the head and try again later.
        logger.error('Telegram update could not be handled; retrying in 5 s', {
          err: err instanceof Error ? err : undefined,
          telegram: { chat_id: chatKey, update_id: next.job[0]!.update.update_id },
        });
        chat.items.unshift(...next.job);
        await wait(5000);
      }
    }
  }

  // ---- step: confirm ----

  function confirm(updates: Update[]) {
    const before = offsets.offset();
    for (const u of updates) offsets.done(u.update_id);
    metrics.oldestPendingUpdate(offsets.oldestPendingAgeMs());
    if (offsets.offset() > before) wakePoll?.();
  }

  /** Records the job's updates as handled; retried until the secretary takes it (or the channel stops). */
  async function recordHandled(keys: string[], outcome: HandledOutcome, reason?: string) {
    for (let failures = 0; ; failures += 1) {
      try {
        await untilDeadline(secretary.recordHandled('tg', keys, outcome, reason));
        return;
      } catch (err) {
        if (err instanceof Stopped) throw err;
        logger.warn('recording a Telegram update as handled failed; retrying', {
          telegram: { handled_keys: keys.slice(0, 5) },
          error: { message: (err as Error).message },
        });
        await retryWait(RECORD_RETRY_DELAYS_MS[Math.min(failures, RECORD_RETRY_DELAYS_MS.length - 1)]!);
      }
    }
  }

  async function lookupHandled(keys: string[]): Promise<boolean> {
    for (let failures = 0; ; failures += 1) {
      try {
        return (await untilDeadline(secretary.lookupHandled(keys))).size > 0;
      } catch (err) {
        if (err instanceof Stopped) throw err;
        logger.warn('looking up handled Telegram updates failed; retrying', {
          error: { message: (err as Error).message },
        });
        await retryWait(RECORD_RETRY_DELAYS_MS[Math.min(failures, RECORD_RETRY_DELAYS_MS.length - 1)]!);
      }
    }
  }

  /** One job, start to end: already handled? → decide → deliver → record. Throws only Stopped. */
  async function runJob(job: Queued[]): Promise<void> {
    const keys = job.map((q) => handledKeyOf(q.update));
    const endTimer = metrics.startTimer('tg');
    if (await lookupHandled(keys)) {
      // Handled by a previous process that stopped before the offset moved past it.
      metrics.skipped('tg', 'duplicate');
      auditInbound(job[0]!.update, 'skipped', 'duplicate', 'recorded as handled by an earlier process');
      endTimer('skipped');
      return;
    }
    const head = job[0]!;
    const reply = isMessage(head)
      ? await decideMessage(job.filter(isMessage))
      : await handleCallback((head.classified as { query: CallbackQuery }).query);
    let outcome = reply.outcome;
    let reason = reply.reason;
    if (reply.send) {
      const delivered = await deliver(reply);
      if (delivered.outcome === 'failed') {
        outcome = 'failed';
        reason = delivered.reason;
      }
      auditReply(head.update, reply, delivered, keys.length);
    } else {
      auditInbound(head.update, 'skipped', AUDIT_SKIP_REASONS[reply.reason] ?? 'not-addressed', reply.reason);
    }
    await recordHandled(keys, outcome, reason);
    endTimer(outcome);
  }

  /** The answer's delivery: `delivered` once Telegram accepted every piece, else `failed` with the Bot API reason. */
  function auditReply(
    update: Update,
    reply: Extract<Reply, { send: true }>,
    delivered: { outcome: HandledOutcome; reason?: string },
    updates: number,
  ) {
    const messageId = handledKeyOf(update);
    const failed = delivered.outcome === 'failed' && delivered.reason !== 'secretary_failed';
    const notes = [
      reply.reason === 'rejected' ? 'the secretary refused the request; its message was sent' : undefined,
      reply.reason === 'secretary_failed' ? 'the secretary kept failing; an apology was sent' : undefined,
      updates > 1 ? `one answer to ${updates} updates (album or split message)` : undefined,
    ].filter(Boolean);
    deps.audit?.report({
      event_id: auditEventId('telegram', messageId, 'reply'),
      channel: 'telegram',
      direction: 'outbound',
      outcome: failed ? 'failed' : 'delivered',
      message_id: messageId,
      sender: senderOf(update),
      request_id: getRequestId(),
      recipient: String(migratedChats.get(reply.chatId) ?? reply.chatId),
      ...(failed ? { reason: `telegram-${(delivered.reason ?? 'failed').replace(/_/g, '-')}` } : {}),
      ...(notes.length ? { detail: notes.join('; ') } : {}),
    });
  }

  /**
   * Asks the secretary's durable limit (`telegram:<user id>`); while the secretary cannot answer, retried within
   * seconds (secretary-retry.ts) and the update stays unconfirmed: it is never answered without a check.
   */
  async function consumeBudget(userId: number, updateId: number): Promise<RateLimitVerdict> {
    for (let failures = 1; ; failures += 1) {
      try {
        return await untilDeadline(deps.rateLimit.consume([rateLimitKey.telegram(userId)]));
      } catch (err) {
        if (err instanceof Stopped) throw err;
        const retry = secretaryRetry(err, failures, settings.retryBaseDelayMs);
        logger.warn('the rate limit could not be checked (secretary); retrying', {
          telegram: { update_id: updateId },
          error: { message: isAppError(err) ? err.code : (err as Error).message },
        });
        await retryWait(Math.min(retry.delayMs, 5000));
      }
    }
  }

  // ---- step: decide ----

  async function decideMessage(job: QueuedMessage[]): Promise<Reply> {
    const message = job[0]!.classified.message;
    const from = message.from!;
    const chatId = message.chat.id;
    const replyTo = message.chat.type === 'private' ? undefined : message.message_id;
    const text = job
      .map((q) => q.classified.text)
      .filter(Boolean)
      .join('\n')
      .trim();
    const command = /^\/(start|help)(@\w+)?(\s|$)/i.exec(text)?.[1];
    if (command) return { send: true, chatId, text: HELP_TEXT, replyTo, outcome: 'sent' };
    // One reply for an album without a caption, however many photos it has.
    if (!text) return { send: true, chatId, text: TEXT_ONLY_REPLY, replyTo, outcome: 'sent' };
    if (!(await consumeBudget(from.id, job[0]!.update.update_id)).allowed) {
      metrics.skipped('tg', 'rate_limited');
      logger.warn('Telegram sender over the hourly limit; no reply', {
        telegram: { update_id: job[0]!.update.update_id },
      });
      return { send: false, outcome: 'skipped', reason: 'rate_limited' };
    }

    // The typing indicator lasts ~5 s on the client; renew it while the secretary works.
    const typing = () => void api.sendTyping(migratedChats.get(chatId) ?? chatId).catch(() => undefined);
    typing();
    const typingTimer = setInterval(typing, 4500);
    try {
      let counted = 0;
      for (let failures = 1; ; failures += 1) {
        try {
          const capped = text.length > settings.maxRequestChars ? text.slice(0, settings.maxRequestChars) : text;
          const analysis = await withDeadline(
            untilDeadline(
              secretary.analyze({
                channel: 'tg',
                username: from.username ?? String(from.id),
                telegram_user_id: String(from.id),
                request: capped,
                message_id: `tg:${chatId}:${message.message_id}`,
                thread_key: message.chat.type === 'private' ? `tg:${chatId}` : `tg:${chatId}:${from.id}`,
              }),
            ),
            settings.handlerTimeoutMs,
          );
          if (analysis.no_reply) {
            // A category that gets no reply: the update is handled, nothing is sent.
            metrics.skipped('tg', 'no_reply');
            logger.info('Telegram message not answered: its category gets no reply', {
              telegram: { update_id: job[0]!.update.update_id },
              classification: { category: analysis.category },
            });
            return { send: false, outcome: 'skipped', reason: 'no_reply' };
          }
          return { send: true, chatId, text: replyTextOf(analysis) || GAVE_UP_REPLY, replyTo, outcome: 'sent' };
        } catch (err) {
          if (err instanceof Stopped) throw err;
          if (isAppError(err) && err.status >= 400 && err.status < 500 && err.status !== 429 && !err.retryable) {
            // The secretary said no (e.g. an unknown sender): its message is meant for the user.
            metrics.reply('tg', 'rejected');
            return { send: true, chatId, text: err.message, replyTo, outcome: 'sent', reason: 'rejected' };
          }
          const retry = secretaryRetry(err, failures, settings.retryBaseDelayMs);
          if (retry.counts) counted += 1;
          const why = isAppError(err) ? err.code : (err as Error).message;
          if (counted >= settings.maxAttempts) {
            logger.error('Telegram update given up after repeated failures', {
              telegram: { update_id: job[0]!.update.update_id },
              reason: why,
            });
            metrics.reply('tg', 'failed');
            metrics.repliesFailed('tg', 'secretary_failed');
            return { send: true, chatId, text: GAVE_UP_REPLY, replyTo, outcome: 'failed', reason: 'secretary_failed' };
          }
          logger.warn(`Telegram update failed (${why}); retrying in ${Math.round(retry.delayMs)} ms`, {
            telegram: { update_id: job[0]!.update.update_id },
          });
          await retryWait(retry.delayMs);
        }
      }
    } finally {
      clearInterval(typingTimer);
    }
  }

  /**
   * A pressed approval button (`action:approve:<id>` / `action:reject:<id>`, sent by the secretary through
   * POST /send): only presses in the approver chat are passed on, as `POST /action-executions/<id>/<decision>`.
   * The buttons are removed once decided (or found decided: 409), and the approver is told the result.
   * The secretary being unreachable is retried (seconds) like a message.
   */
  async function handleCallback(query: CallbackQuery): Promise<Reply> {
    const data = 'data' in query ? query.data : undefined;
    const answer = (text?: string, alert?: boolean) =>
      api.answerCallbackQuery(query.id, text, alert).catch((err: unknown) => {
        // Telegram refuses answers to queries older than about 15 s (a retried update): nothing to do.
        logger.debug('answerCallbackQuery failed', { error: { message: api.describe(err).message } });
      });
    const match = /^action:(approve|reject):(\d+)$/.exec(data ?? '');
    if (!match) {
      await answer();
      metrics.skipped('tg', 'unsupported_callback');
      return { send: false, outcome: 'skipped', reason: 'unsupported_callback' };
    }
    const decision = match[1] as 'approve' | 'reject';
    const id = Number(match[2]);
    const chat = query.message?.chat.id;
    const press = checkApprovalPress({ chatId: chat, userId: query.from.id }, settings);
    if (!press.ok) {
      logger.warn(`approval button press refused (${press.reason})`, {
        telegram: { chat_id: chat, user_id: query.from.id, action_execution: id },
      });
      await answer(NOT_APPROVER_REPLY, true);
      metrics.skipped('tg', 'not_approver');
      return { send: false, outcome: 'skipped', reason: 'not_approver' };
    }
    const by = press.by;
    let result: string;
    let toast: string;
    for (let failures = 1; ; failures += 1) {
      try {
        const decided = await untilDeadline(secretary.decideAction(id, decision, by));
        toast = decision === 'approve' ? 'Одобрено' : 'Отклонено';
        result = `Действие №${id} ${decision === 'approve' ? 'одобрено' : 'отклонено'} (${by}); статус: ${decided.status}.`;
        break;
      } catch (err) {
        if (err instanceof Stopped) throw err;
        if (isAppError(err) && (err.status === 409 || err.status === 404)) {
          toast = err.status === 409 ? 'Уже решено' : 'Действие не найдено';
          result = `Действие №${id}: ${err.status === 409 ? 'уже решено' : 'не найдено'}. ${err.message}`;
          break;
        }
        const retry = secretaryRetry(err, failures, settings.retryBaseDelayMs);
        logger.warn('approval press not passed on yet; retrying', { action_execution: { id } });
        await retryWait(Math.min(retry.delayMs, 5000));
      }
    }
    await answer(toast);
    if (chat !== undefined && query.message) {
      await api.removeButtons(chat, query.message.message_id).catch((err: unknown) => {
        // "message is not modified": the buttons are already gone (a retried update).
        logger.debug('editMessageReplyMarkup failed', { error: { message: api.describe(err).message } });
      });
    }
    return {
      send: true,
      chatId: chat ?? query.from.id,
      text: result,
      replyTo: query.message?.message_id,
      outcome: 'sent',
    };
  }

  // ---- step: deliver ----

  /**
   * Sends the answer, piece by piece (a retry never repeats a piece already sent), handling Bot API errors by
   * kind: permanent → given up at once; migrate_to_chat_id → once more to the supergroup, remembered; 429 → wait
   * retry_after (this chat only); 5xx/network → SEND_RETRY_DELAYS_MS, then given up.
   */
  async function deliver(reply: Extract<Reply, { send: true }>): Promise<{ outcome: HandledOutcome; reason?: string }> {
    const parts = splitMessage(reply.text);
    let failures = 0;
    let migrated = false;
    for (let i = 0; i < parts.length;) {
      const chatId = migratedChats.get(reply.chatId) ?? reply.chatId;
      try {
        await api.sendText(chatId, parts[i]!, {
          replyToMessageId: i === 0 ? reply.replyTo : undefined,
          signal: abort.signal,
          maxRateLimitRetries: 0,
        });
        i += 1;
        failures = 0;
        continue;
      } catch (err) {
        const f = api.describe(err);
        if (f.kind === 'aborted') throw new Stopped('stopping');
        if (f.kind === 'migrated' && f.migrateToChatId !== undefined && !migrated) {
          migrated = true;
          migratedChats.set(reply.chatId, f.migrateToChatId);
          logger.info('Telegram group became a supergroup; sending there', {
            telegram: { chat_id: reply.chatId, migrate_to_chat_id: f.migrateToChatId },
          });
          continue;
        }
        if (f.kind === 'rejected' || f.kind === 'migrated') {
          logger.warn(`Telegram refused the answer (${f.reason}); not retried`, {
            telegram: { chat_id: chatId },
            error: { message: f.message, code: f.status },
            reason: f.reason,
          });
          metrics.reply('tg', 'failed');
          metrics.repliesFailed('tg', f.reason);
          return { outcome: 'failed', reason: f.reason };
        }
        if (f.kind === 'rate_limited') {
          logger.warn(`Telegram asks this chat to wait ${f.retryAfterS ?? 1} s (429)`, {
            telegram: { chat_id: chatId },
          });
          await retryWait((f.retryAfterS ?? 1) * 1000);
          continue;
        }
        failures += 1;
        if (failures > SEND_RETRY_DELAYS_MS.length) {
          logger.error('Telegram answer given up: the Bot API kept failing', {
            telegram: { chat_id: chatId },
            error: { message: f.message, code: f.status },
          });
          metrics.reply('tg', 'failed');
          metrics.repliesFailed('tg', 'unavailable');
          return { outcome: 'failed', reason: 'unavailable' };
        }
        const delay = spreadMs(SEND_RETRY_DELAYS_MS[failures - 1]!, 0.2);
        logger.warn(`sendMessage failed (${f.kind}); retrying in ${Math.round(delay)} ms`, {
          telegram: { chat_id: chatId },
          error: { message: f.message, code: f.status },
        });
        await retryWait(delay);
      }
    }
    metrics.reply('tg', 'sent');
    return { outcome: reply.outcome, reason: reply.reason };
  }

  return {
    api,
    start: () => {
      loop ??= pollLoop().catch((err: unknown) => {
        logger.error('Telegram polling loop ended unexpectedly', { err: err instanceof Error ? err : undefined });
      });
    },
    stop: async (deadlineMs) => {
      stopping = true;
      // Waits end now; a job in flight (an analysis, a send, its record) gets until the deadline.
      stopController.abort();
      const running = [...chats.values()].flatMap((c) => (c.running ? [c.running] : []));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(running), new Promise((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
      clearTimeout(timer);
      abort.abort();
      await loop;
      await Promise.all(running);
      // Confirm what was handled, so a restart does not even fetch it again (as telegraf does on stop).
      if (me) await api.getUpdates(offsets.offset(), 0, AbortSignal.timeout(3000)).catch(() => undefined);
    },
    health: () => ({ bot: me?.username, lastPollAt, pollTimeoutS: settings.pollTimeoutS }),
  };
}

/** Rejects with a 504 AppError after `ms`; the late result of `work` is dropped (nothing is sent from it). */
function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new AppError('handler_timeout', 504, `handling took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
