import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { createRequire } from 'node:module';
import type * as Telegraf from 'telegraf';
import type { TelegramError } from 'telegraf';
import type { Update, UserFromGetMe } from 'telegraf/types';
import type { SendButton } from '@workemon/contracts';
import { AppError, errors, isRetryable, retry, retryAfterMsOf, withDeadline } from '@workemon/service-kit';

let telegrafModule: typeof Telegraf | undefined;

/**
 * telegraf, loaded with the first Bot API client (or error to describe): a communicator without TELEGRAM_BOT_TOKEN
 * never loads it (it cost ~2 MB of every start's memory; docs/operations.md, "Memory at start-up").
 */
function loadTelegraf(): typeof Telegraf {
  telegrafModule ??= createRequire(import.meta.url)('telegraf') as typeof Telegraf;
  return telegrafModule;
}

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
   * `chat_deleted`, `no_rights`, `topic_closed`, `thread_not_found`, `message_too_long`, `message_text_empty`,
   * `forbidden`, `bad_request`, `rate_limited`, `unavailable`, `timeout` (no answer in time), …): never Telegram's
   * free text.
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
      /** Refused (400) rather than sent unquoted when the replied-to message is gone (`allow_sending_without_reply`). */
      replyRequired?: boolean;
      /** Bot API `message_thread_id`: the forum topic to send to. */
      messageThreadId?: number;
      signal?: AbortSignal;
      buttons?: InlineButton[];
      /** Waits for `retry_after` and repeats on 429 at most this often (default 5; 0: the caller schedules). */
      maxRateLimitRetries?: number;
    },
  ) => Promise<{ messageId: number }>;
  /** `sendChatAction` typing, in the forum topic (or private-chat topic) `messageThreadId` when given. */
  sendTyping: (chatId: number | string, messageThreadId?: number) => Promise<void>;
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

/**
 * Classifies what a Bot API call threw (telegraf's `TelegramError` carries the HTTP status as `code`, the Bot API
 * `description` and `parameters` — `retry_after` in seconds, `migrate_to_chat_id`); anything else is a network
 * error (`unavailable`) or an abort. `scrub` removes the bot token from the text (it appears in request URLs).
 */
export function describeBotApiError(err: unknown, scrub: (text: string) => string = (text) => text): BotApiFailure {
  if (err instanceof BotApiError) return err.failure;
  if (err instanceof loadTelegraf().TelegramError)
    return describeTelegramError(err, scrub(err.description ?? err.message));
  const e = err as { name?: string; type?: string; message?: string } | undefined;
  if (e?.name === 'AbortError' || e?.type === 'aborted')
    return { kind: 'aborted', message: 'aborted', reason: 'aborted' };
  return { kind: 'unavailable', message: scrub(e?.message ?? String(err)), reason: 'network' };
}

/**
 * A Bot API error answer by its status (Bot API "Making requests": `error_code`, `description`, `parameters`):
 * 409 another getUpdates/webhook, 429 `retry_after`, 401/404 a bad token, 5xx unavailable, 400 with
 * `migrate_to_chat_id` a migrated group, any other 4xx a permanent refusal.
 */
function describeTelegramError(err: TelegramError, message: string): BotApiFailure {
  const status = err.code;
  const parameters = err.parameters;
  if (status === 409) return { kind: 'conflict', status, message, reason: 'conflict' };
  if (status === 429)
    return { kind: 'rate_limited', status, retryAfterS: parameters?.retry_after ?? 1, message, reason: 'rate_limited' };
  if (status === 401 || status === 404) return { kind: 'unauthorized', status, message, reason: 'unauthorized' };
  if (status >= 500)
    return { kind: 'unavailable', status, retryAfterS: parameters?.retry_after, message, reason: 'unavailable' };
  const migrateTo = parameters?.migrate_to_chat_id;
  if (migrateTo !== undefined)
    return { kind: 'migrated', status, migrateToChatId: migrateTo, message, reason: 'chat_migrated' };
  return { kind: 'rejected', status, message, reason: rejectionReason(status, message) };
}

/**
 * Whether a failed `sendMessage` is repeated inside `sendText`: only a 429 (its AppError is retryable and carries
 * `Retry-After`, from Bot API `parameters.retry_after`); a refusal such as 403 "bot was blocked by the user" is
 * not retryable, and 5xx/network errors are left to the caller (the channel has its own schedule for them).
 */
export function isSendRateLimit(err: unknown): boolean {
  return isRetryable(err) && err instanceof BotApiError && err.failure.kind === 'rate_limited';
}

/** The Bot API `sendMessage` parameters of a plain-text answer (no parse_mode, no link preview). */
function sendMessageExtra(options: {
  replyToMessageId?: number;
  replyRequired?: boolean;
  messageThreadId?: number;
  buttons?: InlineButton[];
}) {
  return {
    link_preview_options: { is_disabled: true },
    ...(options.messageThreadId !== undefined ? { message_thread_id: options.messageThreadId } : {}),
    ...(options.buttons?.length ? { reply_markup: { inline_keyboard: [options.buttons] } } : {}),
    ...(options.replyToMessageId
      ? {
          reply_parameters: {
            message_id: options.replyToMessageId,
            allow_sending_without_reply: !options.replyRequired,
          },
        }
      : {}),
  };
}

/** Default deadline (ms) of one Bot API call (TELEGRAM_REQUEST_TIMEOUT); getUpdates gets its hold on top. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 15_000;

/**
 * Runs one Bot API call under a deadline of `timeoutMs`, also ended by the caller's `signal`. A connection that
 * went silent (no answer, no FIN/RST: a NAT or proxy dropped it) otherwise waits for telegraf's own 500 s. Past the
 * deadline the call is aborted (its socket closed) and a BotApiError `unavailable` / `timeout` is thrown — worth
 * retrying; an abort by the caller stays an abort (`aborted`).
 */
export async function callWithin<T>(
  method: string,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  return withDeadline(timeoutMs, async (deadline) => {
    // Not AbortSignal.any: with the channel's long-lived stop signal as a source it retains every composite
    // (a known Node.js leak) — one per getUpdates. A controller of our own, unlinked once the call is over.
    const call = new AbortController();
    const cut = () => call.abort();
    if (signal?.aborted || deadline.aborted) call.abort();
    signal?.addEventListener('abort', cut, { once: true });
    deadline.addEventListener('abort', cut, { once: true });
    try {
      return await work(call.signal);
    } catch (err) {
      if (!deadline.aborted || signal?.aborted) throw err;
      const failure: BotApiFailure = {
        kind: 'unavailable',
        reason: 'timeout',
        message: `no answer to ${method} within ${timeoutMs} ms`,
      };
      throw new BotApiError(failure, err);
    } finally {
      signal?.removeEventListener('abort', cut);
      deadline.removeEventListener('abort', cut);
    }
  });
}

/**
 * Closes the idle keep-alive connections of `agent` (Node's `Agent.freeSockets`). After a call got no answer within
 * its deadline the path to the Bot API is presumed dead (a NAT or egress failover drops every flow without FIN or
 * RST), and each pooled connection would otherwise cost the next calls one whole deadline apiece before a new one
 * is opened (minutes for a long poll, s35 review E1). Connections carrying a call keep their own deadlines.
 */
export function closeIdleConnections(agent: HttpAgent): number {
  let closed = 0;
  for (const sockets of Object.values(agent.freeSockets))
    for (const socket of sockets ?? []) {
      socket.destroy();
      closed += 1;
    }
  return closed;
}

/** Most updates one getUpdates asks for (the Bot API's own maximum, `limit` 1–100). */
const MAX_POLL_LIMIT = 100;

/**
 * The only code that knows the Bot API's URL and token. Built on telegraf's `Telegram` client.
 *
 * @param options.requestTimeoutMs deadline (ms) of every call (TELEGRAM_REQUEST_TIMEOUT; default 15 s); getUpdates
 *   gets its long-poll `timeout` (s) on top (`callWithin`).
 */
export function createTelegramBotApi(options: {
  token: string;
  apiRoot: string;
  maxSendRetries?: number;
  requestTimeoutMs?: number;
}): TelegramBotApi {
  const telegram = new (loadTelegraf().Telegram)(options.token, { apiRoot: options.apiRoot, webhookReply: false });
  // Our own keep-alive pool (telegraf shares one https.Agent among all clients and uses none for http:), so that a
  // call past its deadline can close the pool's idle connections (closeIdleConnections).
  const agent = options.apiRoot.startsWith('https:')
    ? new HttpsAgent({ keepAlive: true, keepAliveMsecs: 10_000 })
    : new HttpAgent({ keepAlive: true, keepAliveMsecs: 10_000 });
  telegram.options.agent = agent;
  // What getUpdates asks for: halved after a poll that ran out of time (a slow link cut a large batch off mid-body,
  // and asking for the same batch again would be cut off again, s35 review G1), doubled back after each answer.
  let pollLimit = MAX_POLL_LIMIT;
  const scrub = (text: string) => text.split(options.token).join('<token>');
  const describe = (err: unknown): BotApiFailure => describeBotApiError(err, scrub);
  const maxSendRetries = options.maxSendRetries ?? 5;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  /** One call of `method` under the deadline (`extraMs` more for a long poll). */
  const call = async <T>(method: string, payload: Record<string, unknown>, signal?: AbortSignal, extraMs = 0) => {
    try {
      return (await callWithin(method, timeoutMs + extraMs, signal, (s) =>
        telegram.callApi(method as never, payload as never, { signal: s as never }),
      )) as T;
    } catch (err) {
      if (err instanceof BotApiError && err.failure.reason === 'timeout') closeIdleConnections(agent);
      throw err;
    }
  };

  return {
    describe,
    getMe: () => call<UserFromGetMe>('getMe', {}),
    deleteWebhook: async () => {
      // Pending updates stay: they are messages people sent while we were down.
      await call('deleteWebhook', { drop_pending_updates: false });
    },
    getUpdates: async (offset, timeoutS, signal) => {
      try {
        const updates = await call<Update[]>(
          'getUpdates',
          // callback_query: presses of the approval buttons (POST /send with `buttons`).
          { offset, timeout: timeoutS, limit: pollLimit, allowed_updates: ['message', 'callback_query'] },
          signal,
          timeoutS * 1000,
        );
        pollLimit = Math.min(MAX_POLL_LIMIT, pollLimit * 2);
        return updates;
      } catch (err) {
        if (err instanceof BotApiError && err.failure.reason === 'timeout') pollLimit = Math.max(1, pollLimit >> 1);
        throw err;
      }
    },
    sendText: (chatId, text, opts = {}) =>
      retry(
        async () => {
          try {
            const sent = await call<{ message_id: number }>(
              'sendMessage',
              { chat_id: chatId, text, ...sendMessageExtra(opts) },
              opts.signal,
            );
            return { messageId: sent.message_id };
          } catch (err) {
            throw new BotApiError(describe(err), err);
          }
        },
        {
          maxRetries: opts.maxRateLimitRetries ?? maxSendRetries,
          shouldRetry: isSendRateLimit,
          delayMs: (_retry, err) => retryAfterMsOf(err) ?? 1000,
          signal: opts.signal,
        },
      ),
    sendTyping: async (chatId, messageThreadId) => {
      await call('sendChatAction', {
        chat_id: chatId,
        ...(messageThreadId !== undefined ? { message_thread_id: messageThreadId } : {}),
        action: 'typing',
      });
    },
    answerCallbackQuery: async (callbackQueryId, text, showAlert) => {
      await call('answerCallbackQuery', {
        callback_query_id: callbackQueryId,
        ...(text ? { text: text.slice(0, 200) } : {}),
        ...(showAlert ? { show_alert: true } : {}),
      });
    },
    removeButtons: async (chatId, messageId) => {
      await call('editMessageReplyMarkup', {
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
  [/have no rights|not enough rights|need administrator rights|CHAT_WRITE_FORBIDDEN|CHAT_RESTRICTED/i, 'no_rights'],
  [/chat was deleted|chat was deactivated/i, 'chat_deleted'],
  [/PEER_ID_INVALID/i, 'chat_not_found'],
  // A forum topic closed by its admins ("Bad Request: TOPIC_CLOSED") or deleted ("message thread not found").
  [/TOPIC_CLOSED/i, 'topic_closed'],
  [/message thread not found/i, 'thread_not_found'],
  // The message an answer replies to was deleted meanwhile; `allow_sending_without_reply` is ignored in forum topics
  // (Bot API ReplyParameters: "Always False for replies in another chat or forum topic").
  [/message to be replied not found|reply message not found|REPLY_MESSAGE_ID_INVALID/i, 'reply_not_found'],
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
