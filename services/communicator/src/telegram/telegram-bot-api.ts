import { Telegram, TelegramError } from 'telegraf';
import type { Update, UserFromGetMe } from 'telegraf/types';
import type { SendButton } from '@workemon/contracts';
import { AppError, errors, sleep } from '@workemon/service-kit';

/** Telegram counts message length in UTF-16 code units, which is what String.length measures. */
export const MAX_MESSAGE_LENGTH = 4096;

export type BotApiFailure = {
  /**
   * `rejected`: a permanent refusal (403 blocked / deactivated / kicked, 400 chat not found, text empty, …);
   * `migrated`: 400 with `parameters.migrate_to_chat_id` (a group upgraded to a supergroup: send there);
   * `rate_limited`: 429 with `retry_after`; `unavailable`: 5xx or a network error (worth retrying soon).
   */
  kind: 'conflict' | 'rate_limited' | 'unauthorized' | 'rejected' | 'migrated' | 'unavailable' | 'aborted';
  status?: number;
  retryAfterS?: number;
  /** Bot API `parameters.migrate_to_chat_id`: the supergroup the group became. */
  migrateToChatId?: number;
  /**
   * A short stable label for metrics and logs (`bot_blocked`, `user_deactivated`, `bot_kicked`, `chat_not_found`,
   * `message_text_empty`, `forbidden`, `bad_request`, `rate_limited`, `unavailable`, …): never Telegram's free text.
   */
  reason: string;
  /** Telegram's description with the token scrubbed (it appears in network error URLs). */
  message: string;
};

/** An inline keyboard button (Bot API InlineKeyboardButton with callback_data): the contract's SendButton. */
export type InlineButton = SendButton;

export type TelegramBotApi = {
  getMe: () => Promise<UserFromGetMe>;
  deleteWebhook: () => Promise<void>;
  getUpdates: (offset: number, timeoutS: number, signal: AbortSignal) => Promise<Update[]>;
  /** Sends plain text (no parse_mode: model output is full of Markdown/HTML metacharacters); 429 honoured. */
  sendText: (
    chatId: number | string,
    text: string,
    options?: {
      replyToMessageId?: number;
      signal?: AbortSignal;
      buttons?: InlineButton[];
      /** Waits for `retry_after` and repeats on 429 at most this often (default 5; 0: the caller schedules). */
      maxRateLimitRetries?: number;
    },
  ) => Promise<{ messageId: number }>;
  sendTyping: (chatId: number | string) => Promise<void>;
  /** Stops the client's spinner on a pressed button; `text` shows as a toast (or an alert). */
  answerCallbackQuery: (callbackQueryId: string, text?: string, showAlert?: boolean) => Promise<void>;
  /** Removes a message's inline keyboard (after a decision, so it cannot be pressed again). */
  removeButtons: (chatId: number | string, messageId: number) => Promise<void>;
  /** Classifies anything the Bot API client threw. */
  describe: (err: unknown) => BotApiFailure;
};

/** Splits at paragraph, then line, then word boundaries so no piece exceeds Telegram's limit. */
export function splitMessage(text: string, max = MAX_MESSAGE_LENGTH): string[] {
  const parts: string[] = [];
  let rest = text.trim();
  while (rest.length > max) {
    const window = rest.slice(0, max);
    let cut = window.lastIndexOf('\n\n');
    if (cut < max / 2) cut = window.lastIndexOf('\n');
    if (cut < max / 2) cut = window.lastIndexOf(' ');
    if (cut < max / 2) cut = max;
    // Never split a surrogate pair.
    if (/[\uD800-\uDBFF]/.test(rest.charAt(cut - 1))) cut -= 1;
    parts.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  if (rest) parts.push(rest);
  return parts;
}

/** The only code that knows the Bot API's URL and token. Built on telegraf's `Telegram` client. */
export function createTelegramBotApi(options: {
  token: string;
  apiRoot: string;
  maxSendRetries?: number;
}): TelegramBotApi {
  const telegram = new Telegram(options.token, { apiRoot: options.apiRoot, webhookReply: false });
  const scrub = (text: string) => text.split(options.token).join('<token>');
  const maxSendRetries = options.maxSendRetries ?? 5;

  const describe = (err: unknown): BotApiFailure => {
    if (err instanceof BotApiError) return err.failure;
    if (err instanceof TelegramError) {
      const message = scrub(err.description ?? err.message);
      const code = err.code;
      if (code === 409) return { kind: 'conflict', status: 409, message, reason: 'conflict' };
      if (code === 429)
        return {
          kind: 'rate_limited',
          status: 429,
          retryAfterS: err.parameters?.retry_after ?? 1,
          message,
          reason: 'rate_limited',
        };
      if (code === 401 || code === 404) return { kind: 'unauthorized', status: code, message, reason: 'unauthorized' };
      if (code >= 500)
        return {
          kind: 'unavailable',
          status: code,
          retryAfterS: err.parameters?.retry_after,
          message,
          reason: 'unavailable',
        };
      const migrateTo = err.parameters?.migrate_to_chat_id;
      if (migrateTo !== undefined)
        return { kind: 'migrated', status: code, migrateToChatId: migrateTo, message, reason: 'chat_migrated' };
      return { kind: 'rejected', status: code, message, reason: rejectionReason(code, message) };
    }
    const e = err as { name?: string; type?: string; message?: string };
    if (e?.name === 'AbortError' || e?.type === 'aborted')
      return { kind: 'aborted', message: 'aborted', reason: 'aborted' };
    return { kind: 'unavailable', message: scrub(e?.message ?? String(err)), reason: 'network' };
  };

  return {
    describe,
    getMe: () => telegram.getMe(),
    deleteWebhook: async () => {
      // Pending updates stay: they are messages people sent while we were down.
      await telegram.deleteWebhook({ drop_pending_updates: false });
    },
    getUpdates: (offset, timeoutS, signal) =>
      telegram.callApi(
        'getUpdates',
        // callback_query: presses of the approval buttons (POST /send with `buttons`).
        { offset, timeout: timeoutS, limit: 100, allowed_updates: ['message', 'callback_query'] },
        { signal: signal as never },
      ),
    sendText: async (chatId, text, opts = {}) => {
      for (let attempt = 0; ; attempt += 1) {
        try {
          const sent = await telegram.sendMessage(chatId, text, {
            link_preview_options: { is_disabled: true },
            ...(opts.buttons?.length ? { reply_markup: { inline_keyboard: [opts.buttons] } } : {}),
            ...(opts.replyToMessageId
              ? { reply_parameters: { message_id: opts.replyToMessageId, allow_sending_without_reply: true } }
              : {}),
          });
          return { messageId: sent.message_id };
        } catch (err) {
          const failure = describe(err);
          const retries = opts.maxRateLimitRetries ?? maxSendRetries;
          if (failure.kind === 'rate_limited' && attempt < retries && !opts.signal?.aborted) {
            await sleep((failure.retryAfterS ?? 1) * 1000, { signal: opts.signal });
            continue;
          }
          throw new BotApiError(failure, err);
        }
      }
    },
    sendTyping: async (chatId) => {
      await telegram.sendChatAction(chatId, 'typing');
    },
    answerCallbackQuery: async (callbackQueryId, text, showAlert) => {
      await telegram.callApi('answerCallbackQuery', {
        callback_query_id: callbackQueryId,
        ...(text ? { text: text.slice(0, 200) } : {}),
        ...(showAlert ? { show_alert: true } : {}),
      });
    },
    removeButtons: async (chatId, messageId) => {
      await telegram.callApi('editMessageReplyMarkup', {
        chat_id: chatId,
        message_id: messageId,
        reply_markup: { inline_keyboard: [] },
      });
    },
  };
}

/**
 * Labels of the permanent refusals people meet in practice (Bot API descriptions, e.g. "Forbidden: bot was
 * blocked by the user", "Bad Request: chat not found"); anything else is `forbidden` / `bad_request` by status.
 */
const REJECTIONS: Array<[RegExp, string]> = [
  [/blocked by the user/i, 'bot_blocked'],
  [/user is deactivated/i, 'user_deactivated'],
  [/kicked/i, 'bot_kicked'],
  [/not a member/i, 'bot_not_member'],
  [/can't initiate conversation|bot can't send messages to bots/i, 'cannot_initiate'],
  [/chat not found/i, 'chat_not_found'],
  [/message text is empty/i, 'message_text_empty'],
  [/message is too long/i, 'message_too_long'],
  [/have no rights|not enough rights|CHAT_WRITE_FORBIDDEN/i, 'no_rights'],
];

/** A stable reason label for a permanent Bot API refusal (`bot_blocked`, `chat_not_found`, …). */
export function rejectionReason(status: number, description: string): string {
  for (const [pattern, reason] of REJECTIONS) if (pattern.test(description)) return reason;
  return status === 403 ? 'forbidden' : 'bad_request';
}

/** A failed Bot API call: the catalogue's AppError (for POST /send) carrying the classified failure. */
export class BotApiError extends AppError {
  readonly failure: BotApiFailure;
  constructor(failure: BotApiFailure, cause?: unknown) {
    const mapped = toAppError(failure, cause);
    super(mapped.code, mapped.status, mapped.message, {
      cause,
      retryable: mapped.retryable,
      headers: mapped.headers,
    });
    this.failure = failure;
  }
}

/** Maps a Bot API failure to the error catalogue (used by POST /send). */
export function toAppError(failure: BotApiFailure, cause?: unknown): AppError {
  switch (failure.kind) {
    case 'rate_limited':
      return errors.tooManyRequests(failure.retryAfterS ?? 1, 'Telegram rate limit reached; try again later');
    case 'rejected':
    case 'migrated':
      return new AppError('delivery_rejected', 400, `Telegram rejected the message: ${failure.message}`, {
        cause,
        retryable: false,
      });
    case 'unauthorized':
      return errors.notConfigured('Telegram rejected the bot token');
    default:
      return errors.upstreamUnavailable('telegram', cause);
  }
}
