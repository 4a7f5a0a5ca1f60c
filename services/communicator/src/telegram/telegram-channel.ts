import type { CallbackQuery, Message, Update, UserFromGetMe } from 'telegraf/types';
import { isAppError, type Logger } from '@workemon/service-kit';
import type { TelegramSettings } from '../config.js';
import type { ChannelMetrics } from '../channel-metrics.js';
import { replyTextOf, type SecretaryClient } from '../secretary-client.js';
import type { SenderRateLimit } from '../sender-rate-limit.js';
import { splitMessage, type TelegramBotApi } from './telegram-bot-api.js';
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

type Outcome = 'sent' | 'skipped';

export type TelegramChannel = {
  start: () => void;
  stop: (deadlineMs: number) => Promise<void>;
  health: () => { bot?: string; lastPollAt?: number; pollTimeoutS: number };
  api: TelegramBotApi;
};

class HandlerTimeout extends Error {}

/**
 * Runs one attempt with a deadline. The abandoned attempt cannot be stopped mid-call, so it gets an aborted
 * signal: it must not send anything after the deadline, or its late answer and the retry's would both arrive.
 */
function withTimeout<T>(work: (signal: AbortSignal) => Promise<T>, ms: number, parent: AbortSignal): Promise<T> {
  const attempt = new AbortController();
  const onParentAbort = () => attempt.abort();
  parent.addEventListener('abort', onParentAbort, { once: true });
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work(attempt.signal),
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        attempt.abort();
        reject(new HandlerTimeout(`handler took longer than ${ms} ms`));
      }, ms);
    }),
  ]).finally(() => {
    clearTimeout(timer);
    parent.removeEventListener('abort', onParentAbort);
  });
}

/**
 * Long polling with our own getUpdates loop on telegraf's `Telegram` client rather than `bot.launch()`:
 * telegraf stops polling for good on any 4xx (409 from a second poller or a previous instance's open poll,
 * 429), and it confirms updates before they are handled. Here an update is confirmed (offset moved past it)
 * only after it was answered, deliberately skipped, or given up after MAX_ATTEMPTS; 409 and 429 mean wait and
 * poll again; nothing ends the loop but stop().
 */
export function createTelegramChannel(deps: {
  settings: TelegramSettings;
  api: TelegramBotApi;
  secretary: SecretaryClient;
  rateLimit: SenderRateLimit;
  metrics: ChannelMetrics;
  logger: Logger;
  /** Backoff after network errors and 5xx (ms, doubled per failure, full jitter). */
  errorBaseDelayMs?: number;
}): TelegramChannel {
  const { settings, api, secretary, metrics, logger } = deps;
  const errorBaseDelay = deps.errorBaseDelayMs ?? 1000;
  let me: UserFromGetMe | undefined;
  let offset = 0;
  let lastPollAt: number | undefined;
  let stopping = false;
  let loop: Promise<void> | undefined;
  const abort = new AbortController();
  // update_id → attempts so far; handled ids are remembered until the offset passes them.
  const attempts = new Map<number, number>();
  const handled = new Set<number>();
  // update_id → chunks of the answer already delivered, so a retry does not repeat them.
  const delivered = new Map<number, number>();
  let inFlight: Promise<unknown> | undefined;

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      if (stopping) return resolve();
      const timer = setTimeout(resolve, ms);
      abort.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });

  /** Waits as the failure asks; never throws, never gives up. Returns the delay used. */
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
        Math.random() * Math.min(30_000, errorBaseDelay * 2 ** Math.min(failures, 10));
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
      let updates: Update[];
      try {
        updates = await api.getUpdates(offset, settings.pollTimeoutS, abort.signal);
        failures = 0;
        lastPollAt = Date.now();
        metrics.success('tg');
      } catch (err) {
        failures += 1;
        await backOff(err, failures, 'getUpdates');
        continue;
      }
      for (const id of [...handled]) if (id < offset) handled.delete(id);
      if (updates.length === 0) continue;
      const batch = updates.filter((u) => !handled.has(u.update_id));
      inFlight = handleBatch(batch);
      const failedIds = (await inFlight) as number[];
      inFlight = undefined;
      const maxId = Math.max(...updates.map((u) => u.update_id));
      const firstFailed = failedIds.length ? Math.min(...failedIds) : undefined;
      const confirmedBefore = offset;
      offset = firstFailed ?? maxId + 1;
      if (firstFailed !== undefined) {
        // The updates handled before the failed one are confirmed now, not after the retry wait: a restart
        // during that wait would otherwise see them again and answer them twice.
        if (offset > confirmedBefore)
          await api.getUpdates(offset, 0, abort.signal).catch((err: unknown) => {
            logger.debug('confirming handled Telegram updates failed', {
              error: { message: api.describe(err).message },
            });
          });
        const tries = attempts.get(firstFailed) ?? 1;
        const delay = settings.retryBaseDelayMs * 2 ** (tries - 1) * (0.5 + Math.random() * 0.5);
        logger.warn(`Telegram update will be retried in ${Math.round(delay)} ms`, {
          telegram: { update_id: firstFailed },
        });
        await wait(delay);
      }
    }
  }

  /** Handles a batch (one chat's updates in order, chats side by side); resolves with the ids that failed. */
  async function handleBatch(batch: Update[]): Promise<number[]> {
    const byChat = new Map<string, Update[]>();
    for (const u of batch) {
      const chat = 'message' in u ? String(u.message.chat.id) : `update:${u.update_id}`;
      byChat.set(chat, [...(byChat.get(chat) ?? []), u]);
    }
    const failed: number[] = [];
    await Promise.all(
      [...byChat.values()].map(async (list) => {
        for (const u of list) {
          const ok = await handleWithRetries(u);
          if (!ok) failed.push(u.update_id);
        }
      }),
    );
    return failed;
  }

  async function handleWithRetries(update: Update): Promise<boolean> {
    const tries = (attempts.get(update.update_id) ?? 0) + 1;
    attempts.set(update.update_id, tries);
    if (tries === 1) metrics.received('tg');
    const endTimer = metrics.startTimer('tg');
    try {
      const outcome = await withTimeout(
        (signal) => handleUpdate(update, signal),
        settings.handlerTimeoutMs,
        abort.signal,
      );
      endTimer(outcome);
      finish(update.update_id);
      return true;
    } catch (err) {
      endTimer('retry');
      const reason = err instanceof HandlerTimeout ? 'timeout' : isAppError(err) ? err.code : (err as Error).message;
      logger.warn(`Telegram update failed (attempt ${tries}): ${reason}`, {
        telegram: { update_id: update.update_id },
      });
      if (tries < settings.maxAttempts) return false;
      metrics.reply('tg', 'failed');
      const chatId = 'message' in update ? update.message.chat.id : undefined;
      if (chatId !== undefined) await api.sendText(chatId, GAVE_UP_REPLY).catch(() => undefined);
      logger.error('Telegram update given up after repeated failures', { telegram: { update_id: update.update_id } });
      finish(update.update_id);
      return true;
    }
  }

  function finish(updateId: number) {
    handled.add(updateId);
    attempts.delete(updateId);
    delivered.delete(updateId);
  }

  async function deliver(updateId: number, chatId: number, text: string, signal: AbortSignal, replyTo?: number) {
    const parts = splitMessage(text);
    for (let i = delivered.get(updateId) ?? 0; i < parts.length; i += 1) {
      if (signal.aborted) throw new HandlerTimeout('attempt abandoned before its answer was sent');
      await api.sendText(chatId, parts[i]!, { replyToMessageId: i === 0 ? replyTo : undefined, signal });
      delivered.set(updateId, i + 1);
    }
    metrics.reply('tg', 'sent');
  }

  function isAddressedToBot(message: Message): { addressed: boolean; text?: string } {
    const text = 'text' in message ? message.text : 'caption' in message ? message.caption : undefined;
    if (message.chat.type === 'private') return { addressed: true, text };
    const mention = me?.username ? `@${me.username}` : undefined;
    const repliedToBot =
      'reply_to_message' in message &&
      message.reply_to_message?.from?.id !== undefined &&
      message.reply_to_message.from.id === me?.id;
    if (mention && text?.toLowerCase().includes(mention.toLowerCase())) {
      return {
        addressed: true,
        text: text.replace(new RegExp(mention.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'ig'), '').trim(),
      };
    }
    return { addressed: repliedToBot, text };
  }

  /**
   * A pressed approval button (`action:approve:<id>` / `action:reject:<id>`, sent by the secretary through
   * POST /send): only presses in the approver chat are passed on, as `POST /action-executions/<id>/<decision>`.
   * The buttons are removed once decided (or found decided: 409), and the approver is told the result.
   * The secretary being unreachable throws: the update is retried like a message.
   */
  async function handleCallback(query: CallbackQuery, signal: AbortSignal): Promise<Outcome> {
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
      return 'skipped';
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
      return 'skipped';
    }
    const by = press.by;
    let result: string;
    let toast: string;
    try {
      const decided = await secretary.decideAction(id, decision, by);
      toast = decision === 'approve' ? 'Одобрено' : 'Отклонено';
      result = `Действие №${id} ${decision === 'approve' ? 'одобрено' : 'отклонено'} (${by}); статус: ${decided.status}.`;
    } catch (err) {
      if (!isAppError(err) || (err.status !== 409 && err.status !== 404)) throw err;
      toast = err.status === 409 ? 'Уже решено' : 'Действие не найдено';
      result = `Действие №${id}: ${err.status === 409 ? 'уже решено' : 'не найдено'}. ${err.message}`;
    }
    await answer(toast);
    if (chat !== undefined && query.message) {
      await api.removeButtons(chat, query.message.message_id).catch((err: unknown) => {
        // "message is not modified": the buttons are already gone (a retried update).
        logger.debug('editMessageReplyMarkup failed', { error: { message: api.describe(err).message } });
      });
    }
    if (signal.aborted) throw new HandlerTimeout('attempt abandoned before its answer was sent');
    await api.sendText(chat ?? query.from.id, result, { replyToMessageId: query.message?.message_id, signal });
    metrics.reply('tg', 'sent');
    return 'sent';
  }

  async function handleUpdate(update: Update, signal: AbortSignal): Promise<Outcome> {
    if ('callback_query' in update) return handleCallback(update.callback_query, signal);
    if (!('message' in update)) {
      metrics.skipped('tg', 'unsupported_update');
      return 'skipped';
    }
    const message = update.message;
    const from = message.from;
    if (!from || from.is_bot) {
      metrics.skipped('tg', 'bot_sender');
      return 'skipped';
    }
    const { addressed, text: rawText } = isAddressedToBot(message);
    if (!addressed) {
      metrics.skipped('tg', 'group_not_mentioned');
      return 'skipped';
    }
    const chatId = message.chat.id;
    const replyTo = message.chat.type === 'private' ? undefined : message.message_id;
    const text = rawText?.trim() ?? '';
    const command = /^\/(start|help)(@\w+)?(\s|$)/i.exec(text)?.[1];
    if (command) {
      await deliver(update.update_id, chatId, HELP_TEXT, signal, replyTo);
      return 'sent';
    }
    if (!text) {
      await deliver(update.update_id, chatId, TEXT_ONLY_REPLY, signal, replyTo);
      return 'sent';
    }
    if (!delivered.has(update.update_id) && (attempts.get(update.update_id) ?? 1) === 1) {
      if (!deps.rateLimit.tryTake(`tg:${from.id}`)) {
        metrics.skipped('tg', 'rate_limited');
        logger.warn('Telegram sender over the hourly limit; no reply', { telegram: { update_id: update.update_id } });
        return 'skipped';
      }
    }

    // The typing indicator lasts ~5 s on the client; renew it while the secretary works.
    const typing = () => void api.sendTyping(chatId).catch(() => undefined);
    typing();
    const typingTimer = setInterval(typing, 4500);
    let answer: string;
    try {
      const capped = text.length > settings.maxRequestChars ? text.slice(0, settings.maxRequestChars) : text;
      const analysis = await secretary.analyze({
        channel: 'tg',
        username: from.username ?? String(from.id),
        request: capped,
        message_id: `tg:${chatId}:${message.message_id}`,
        thread_key: message.chat.type === 'private' ? `tg:${chatId}` : `tg:${chatId}:${from.id}`,
      });
      answer = replyTextOf(analysis);
    } catch (err) {
      if (isAppError(err) && err.status >= 400 && err.status < 500 && !err.retryable) {
        answer = err.message;
        metrics.reply('tg', 'rejected');
      } else {
        throw err;
      }
    } finally {
      clearInterval(typingTimer);
    }
    await deliver(update.update_id, chatId, answer || GAVE_UP_REPLY, signal, replyTo);
    return 'sent';
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
      // Aborts the open long poll; handling in progress gets until the deadline.
      const current = inFlight;
      if (current) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([current, new Promise((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
        clearTimeout(timer);
      }
      abort.abort();
      await loop;
      // Confirm what was handled, so a restart does not see it again (as telegraf does on stop).
      if (me && offset > 0) await api.getUpdates(offset, 0, AbortSignal.timeout(3000)).catch(() => undefined);
    },
    health: () => ({ bot: me?.username, lastPollAt, pollTimeoutS: settings.pollTimeoutS }),
  };
}
