/**
 * A fake Telegram Bot API server (https://core.telegram.org/bots/api) for tests.
 *
 * Imitates: `POST|GET /bot<token>/<method>` with JSON, form or query parameters; the `{ok, result}` /
 * `{ok:false, error_code, description, parameters}` envelope; `getMe`, `deleteWebhook`, `setWebhook`,
 * `getUpdates` with the real offset semantics (an offset confirms and forgets every update below it; a negative
 * offset keeps only the last -offset updates), `limit`, and a long-poll hold up to `timeout` seconds; a second
 * `getUpdates` while one is held makes the held one answer 409 "terminated by other getUpdates request", and
 * getUpdates while a webhook is set answers 409 too, as Telegram does; `sendMessage` (rejects empty text and text
 * over 4096 UTF-16 code units with 400, as Telegram does), `sendChatAction`, `answerCallbackQuery`,
 * `editMessageReplyMarkup`; inline keyboards on `sendMessage` (callback_data over 64 bytes → 400
 * BUTTON_DATA_INVALID, as Telegram does); `pushCallbackQuery` queues a button press; a wrong token answers 401.
 * Per-chat faults (`failChat`): sendMessage to one chat answers what Telegram answers there — 403 "Forbidden: bot
 * was blocked by the user" (or deactivated / kicked), 400 "Bad Request: chat not found", 400 "Bad Request: group
 * chat was upgraded to a supergroup chat" with `parameters.migrate_to_chat_id` (for good: the old id stays
 * migrated), 429 with `retry_after`, 502 "Bad Gateway" — while every other chat is answered normally.
 *
 * Silent connection drops (`hangNext`): the next calls of a method are read and then never answered — no status, no
 * FIN, no RST, or headers and half a body — the way a connection dies behind a NAT or a proxy; only the client's own
 * deadline ends them.
 *
 * Deleted messages (`deleteMessage`) and topics turned off (`disableTopics`) answer the 400s Telegram gives a reply to
 * them or a send into them.
 *
 * Leaves out: files and media uploads, entities/parse_mode checking, real rate limiting (use `failNext` for 429),
 * chats and users beyond what a test pushes, allowed_updates filtering, every other method (answers 404).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { waitFor } from './ports.js';

export type ApiCall = { method: string; params: Record<string, unknown>; at: number };

export type FakeTelegramFailure = {
  code: number;
  description?: string;
  retryAfterS?: number;
  /** Bot API ResponseParameters.migrate_to_chat_id (a 400 for a group that became a supergroup). */
  migrateToChatId?: number;
};

/**
 * How a hung call goes silent: `before-headers` (default) nothing is ever written; `after-headers` the status line,
 * headers and the start of the JSON body are written, then nothing more (a proxy that died mid-answer).
 */
export type FakeTelegramHang = 'before-headers' | 'after-headers';

export type SentMessage = {
  chat_id: number | string;
  text: string;
  message_id: number;
  params: Record<string, unknown>;
};

export type FakeTelegram = {
  url: string;
  token: string;
  botUsername: string;
  calls: ApiCall[];
  sent: SentMessage[];
  /** Queues a raw update; its update_id is assigned when absent. Returns the update_id. */
  pushUpdate: (update: Record<string, unknown>) => number;
  /** Queues a message update from a user, in a private chat unless `chat` says otherwise. */
  pushMessage: (message: {
    text?: string;
    from?: { id: number; username?: string; first_name?: string };
    chat?: { id: number; type: 'private' | 'group' | 'supergroup' };
    extra?: Record<string, unknown>;
  }) => { update_id: number; message_id: number; chat_id: number };
  /**
   * Queues a `callback_query` update: a press of an inline button under `message` (a message the bot sent,
   * by default in the presser's private chat). Returns the update and callback query ids.
   */
  pushCallbackQuery: (press: {
    data: string;
    from?: { id: number; username?: string; first_name?: string };
    message?: { message_id: number; chat_id: number | string; text?: string };
  }) => { update_id: number; callback_query_id: string };
  /** The next `times` calls of `method` answer this error instead (409, 429 with retry_after, 500, …). */
  failNext: (method: string, failure: FakeTelegramFailure, times?: number) => void;
  /**
   * The next `times` sendMessage calls to `chatId` answer this error (default: every call, sendChatAction too);
   * other chats are unaffected. `{code: 400, migrateToChatId}` makes the chat a migrated group.
   */
  failChat: (chatId: number, failure: FakeTelegramFailure, times?: number) => void;
  /**
   * The next `times` calls of `method` are accepted and read, then never answered (the connection stays open,
   * silent): a dropped connection the client notices only by its own deadline. Counted in `calls`; a hung
   * sendMessage delivers nothing. `close` ends them. With `after`, that many calls are answered first.
   */
  hangNext: (method: string, times?: number, how?: FakeTelegramHang, after?: number) => void;
  /**
   * The user deletes a message: a sendMessage replying to it (`reply_parameters.message_id`) answers 400 "Bad Request:
   * message to be replied not found" when `allow_sending_without_reply` is not true or the send goes to a forum topic
   * (`message_thread_id`: Bot API ReplyParameters, "Always False for replies in another chat or forum topic"); else
   * it is sent without the reply.
   */
  deleteMessage: (chatId: number, messageId: number) => void;
  /**
   * The chat's admins turn topics off: sendMessage and sendChatAction with a `message_thread_id` to it answer 400
   * "Bad Request: message thread not found".
   */
  disableTopics: (chatId: number) => void;
  /**
   * A week passes without updates: the next update_id is `next`, chosen anew (Bot API, Update.update_id: "If there
   * are no new updates for at least a week, then identifier of the next update will be chosen randomly instead of
   * sequentially"), here below the old sequence. An offset above the old sequence does not confirm the new updates:
   * they are returned whatever such offset is asked, as Telegram does (go-telegram-bot-api#156), until an offset in
   * the new sequence confirms them.
   */
  restartUpdateIds: (next: number) => void;
  /** Calls of any method hanging now (accepted, never answered, not yet given up by the client). */
  hanging: () => number;
  /** Updates not yet confirmed by an offset. */
  pending: () => number;
  callsOf: (method: string) => ApiCall[];
  waitForSent: (count: number, timeoutMs?: number) => Promise<SentMessage[]>;
  close: () => Promise<void>;
};

type HeldPoll = { finish: (status: number, body: unknown) => void };

const MAX_TEXT_UTF16 = 4096;

async function readParams(req: IncomingMessage, url: URL): Promise<Record<string, unknown>> {
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  if (!body) return params;
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) return { ...params, ...(JSON.parse(body) as Record<string, unknown>) };
  if (type.includes('application/x-www-form-urlencoded'))
    return { ...params, ...Object.fromEntries(new URLSearchParams(body)) };
  return params;
}

export async function startFakeTelegram(
  options: { token?: string; botUsername?: string; maxHoldMs?: number } = {},
): Promise<FakeTelegram> {
  const token = options.token ?? '123456:TEST-token';
  const botUsername = options.botUsername ?? 'workemon_test_bot';
  // Real Telegram holds a poll up to `timeout` s (telegraf asks for 50); tests need a shorter cap.
  const maxHoldMs = options.maxHoldMs ?? 1000;
  const calls: ApiCall[] = [];
  const sent: SentMessage[] = [];
  let updates: Array<Record<string, unknown> & { update_id: number }> = [];
  let nextUpdateId = 1000;
  // restartUpdateIds: the first id of the new sequence and the last of the old one.
  let restart: { start: number; oldLast: number } | undefined;
  let nextMessageId = 1;
  let nextCallbackId = 5_000_000;
  let webhookUrl = '';
  const failures = new Map<string, Array<FakeTelegramFailure>>();
  /** Per method, what each next call does: hang (how), or `answer` (a call let through before a hang). */
  const hangs = new Map<string, Array<FakeTelegramHang | 'answer'>>();
  const hung = new Set<ServerResponse>();
  const chatFailures = new Map<string, { failure: FakeTelegramFailure; left: number }>();
  const deleted = new Set<string>();
  const topicsOff = new Set<string>();
  let held: HeldPoll | undefined;
  const waiters = new Set<() => void>();

  const wake = () => {
    for (const w of [...waiters]) w();
  };

  const ok = (result: unknown) => ({ ok: true, result });
  const fail = (code: number, description: string, parameters?: Record<string, unknown>) => ({
    ok: false,
    error_code: code,
    description,
    ...(parameters ? { parameters } : {}),
  });

  function takeUpdates(offset: number | undefined, limit: number) {
    if (offset !== undefined && offset < 0) updates = updates.slice(offset);
    else if (offset !== undefined)
      updates = updates.filter(
        (u) => u.update_id >= offset || (!!restart && u.update_id >= restart.start && offset > restart.oldLast),
      );
    return updates.slice(0, limit);
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const match = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    const send = (status: number, body: unknown) => {
      if (res.writableEnded || res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!match) return send(404, fail(404, 'Not Found'));
    const [, givenToken, method] = match as unknown as [string, string, string];
    const params = await readParams(req, url);
    calls.push({ method, params, at: Date.now() });
    if (givenToken !== token) return send(401, fail(401, 'Unauthorized'));
    const hang = hangs.get(method)?.shift();
    if (hang && hang !== 'answer') {
      // Never answered (in full): the client's deadline (or close) ends it.
      hung.add(res);
      res.on('close', () => hung.delete(res));
      if (hang === 'after-headers') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '4096' });
        res.write('{"ok":true,"result":[');
      }
      return;
    }

    const queued = failures.get(method);
    let failure = queued?.shift();
    if (queued && queued.length === 0) failures.delete(method);
    const perChat = params['chat_id'] === undefined ? undefined : chatFailures.get(String(params['chat_id']));
    if (!failure && perChat && perChat.left > 0) {
      // A limited fault counts sendMessage calls only; a lasting one (a blocked user) refuses every call.
      if (method === 'sendMessage') {
        perChat.left -= 1;
        failure = perChat.failure;
      } else if (method === 'sendChatAction' && perChat.left === Infinity) failure = perChat.failure;
    }
    if (failure) {
      const description =
        failure.description ??
        (failure.code === 429
          ? `Too Many Requests: retry after ${failure.retryAfterS ?? 1}`
          : failure.code === 409
            ? 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running'
            : failure.code === 403
              ? 'Forbidden: bot was blocked by the user'
              : failure.migrateToChatId !== undefined
                ? 'Bad Request: group chat was upgraded to a supergroup chat'
                : failure.code === 400
                  ? 'Bad Request: chat not found'
                  : failure.code === 502
                    ? 'Bad Gateway'
                    : 'Internal Server Error');
      const parameters = {
        ...(failure.retryAfterS !== undefined ? { retry_after: failure.retryAfterS } : {}),
        ...(failure.migrateToChatId !== undefined ? { migrate_to_chat_id: failure.migrateToChatId } : {}),
      };
      return send(
        failure.code,
        fail(failure.code, description, Object.keys(parameters).length ? parameters : undefined),
      );
    }

    switch (method) {
      case 'getMe':
        return send(200, ok({ id: 1, is_bot: true, first_name: 'Workemon', username: botUsername }));
      case 'deleteWebhook':
        webhookUrl = '';
        if (params['drop_pending_updates'] === true || params['drop_pending_updates'] === 'true') updates = [];
        return send(200, ok(true));
      case 'setWebhook':
        webhookUrl = String(params['url'] ?? '');
        return send(200, ok(true));
      case 'getUpdates': {
        if (webhookUrl) {
          return send(
            409,
            fail(
              409,
              "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ),
          );
        }
        // A newer poll terminates the one being held, exactly like two bot instances fighting.
        held?.finish(
          409,
          fail(
            409,
            'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running',
          ),
        );
        const offset = params['offset'] === undefined ? undefined : Number(params['offset']);
        const limit = Math.min(100, Math.max(1, Number(params['limit'] ?? 100)));
        const timeoutMs = Math.min(maxHoldMs, Number(params['timeout'] ?? 0) * 1000);
        const ready = takeUpdates(offset, limit);
        if (ready.length > 0 || timeoutMs <= 0) return send(200, ok(ready));
        await new Promise<void>((resolve) => {
          let done = false;
          const finish = (status: number, body: unknown) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            waiters.delete(onPush);
            if (held === me) held = undefined;
            send(status, body);
            resolve();
          };
          const me: HeldPoll = { finish };
          held = me;
          const onPush = () => finish(200, ok(takeUpdates(offset, limit)));
          waiters.add(onPush);
          const timer = setTimeout(() => finish(200, ok([])), timeoutMs);
          res.on('close', () => finish(200, ok([])));
        });
        return;
      }
      case 'sendMessage': {
        const text = typeof params['text'] === 'string' ? params['text'] : '';
        if (!text.trim()) return send(400, fail(400, 'Bad Request: message text is empty'));
        if (text.length > MAX_TEXT_UTF16) return send(400, fail(400, 'Bad Request: message is too long'));
        const chatId = params['chat_id'] as number | string;
        if (chatId === undefined || chatId === '') return send(400, fail(400, 'Bad Request: chat not found'));
        if (params['message_thread_id'] !== undefined && topicsOff.has(String(chatId)))
          return send(400, fail(400, 'Bad Request: message thread not found'));
        const reply = (
          typeof params['reply_parameters'] === 'string'
            ? JSON.parse(params['reply_parameters'])
            : params['reply_parameters']
        ) as { message_id?: number; allow_sending_without_reply?: boolean } | undefined;
        if (
          reply?.message_id !== undefined &&
          deleted.has(`${chatId}:${reply.message_id}`) &&
          (reply.allow_sending_without_reply !== true || params['message_thread_id'] !== undefined)
        )
          return send(400, fail(400, 'Bad Request: message to be replied not found'));
        const markup = (
          typeof params['reply_markup'] === 'string' ? JSON.parse(params['reply_markup']) : params['reply_markup']
        ) as { inline_keyboard?: Array<Array<{ callback_data?: string }>> } | undefined;
        for (const button of markup?.inline_keyboard?.flat() ?? []) {
          if (button.callback_data !== undefined && Buffer.byteLength(button.callback_data, 'utf8') > 64)
            return send(400, fail(400, 'Bad Request: BUTTON_DATA_INVALID'));
        }
        const messageId = nextMessageId++;
        sent.push({ chat_id: chatId, text, message_id: messageId, params });
        wake();
        return send(
          200,
          ok({
            message_id: messageId,
            date: Math.floor(Date.now() / 1000),
            chat: { id: Number(chatId), type: 'private' },
            text,
          }),
        );
      }
      case 'sendChatAction':
        if (params['message_thread_id'] !== undefined && topicsOff.has(String(params['chat_id'])))
          return send(400, fail(400, 'Bad Request: message thread not found'));
        return send(200, ok(true));
      case 'answerCallbackQuery':
        return send(200, ok(true));
      case 'editMessageReplyMarkup':
        return send(200, ok(true));
      default:
        return send(404, fail(404, 'Not Found: method not found'));
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify(fail(400, 'Bad Request: invalid parameters')));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const pushUpdate = (update: Record<string, unknown>) => {
    const update_id = typeof update['update_id'] === 'number' ? update['update_id'] : nextUpdateId++;
    updates.push({ ...update, update_id });
    wake();
    return update_id;
  };

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    botUsername,
    calls,
    sent,
    pushUpdate,
    pushMessage: (m) => {
      const from = { is_bot: false, first_name: 'User', ...(m.from ?? { id: 42, username: 'ivanov' }) };
      const chat = m.chat ?? { id: from.id, type: 'private' as const };
      const message_id = nextMessageId++;
      const update_id = pushUpdate({
        message: {
          message_id,
          date: Math.floor(Date.now() / 1000),
          from,
          chat: { ...chat, ...(chat.type === 'private' ? { first_name: from.first_name } : { title: 'Team' }) },
          ...(m.text !== undefined ? { text: m.text } : {}),
          ...m.extra,
        },
      });
      return { update_id, message_id, chat_id: chat.id };
    },
    pushCallbackQuery: (press) => {
      const from = { is_bot: false, first_name: 'User', ...(press.from ?? { id: 42, username: 'ivanov' }) };
      const callback_query_id = String(nextCallbackId++);
      const message = press.message ?? { message_id: nextMessageId++, chat_id: from.id };
      const update_id = pushUpdate({
        callback_query: {
          id: callback_query_id,
          from,
          chat_instance: String(message.chat_id),
          data: press.data,
          message: {
            message_id: message.message_id,
            date: Math.floor(Date.now() / 1000),
            from: { id: 1, is_bot: true, first_name: 'Workemon', username: botUsername },
            chat: { id: Number(message.chat_id), type: 'private', first_name: from.first_name },
            text: message.text ?? 'message with buttons',
          },
        },
      });
      return { update_id, callback_query_id };
    },
    failNext: (method, failure, times = 1) => {
      const list = failures.get(method) ?? [];
      for (let i = 0; i < times; i += 1) list.push(failure);
      failures.set(method, list);
    },
    deleteMessage: (chatId, messageId) => void deleted.add(`${chatId}:${messageId}`),
    restartUpdateIds: (next) => {
      restart = { start: next, oldLast: nextUpdateId - 1 };
      nextUpdateId = next;
    },
    disableTopics: (chatId) => void topicsOff.add(String(chatId)),
    failChat: (chatId, failure, times = Infinity) => {
      chatFailures.set(String(chatId), { failure, left: times });
    },
    hangNext: (method, times = 1, how = 'before-headers', after = 0) => {
      const answered = Array.from({ length: after }, () => 'answer' as const);
      hangs.set(method, [...(hangs.get(method) ?? []), ...answered, ...Array.from({ length: times }, () => how)]);
    },
    hanging: () => hung.size,
    pending: () => updates.length,
    callsOf: (method) => calls.filter((c) => c.method === method),
    waitForSent: (count, timeoutMs = 15_000) =>
      waitFor(() => (sent.length >= count ? sent : undefined), {
        timeoutMs,
        what: `${count} sent Telegram message(s)`,
      }),
    close: () =>
      new Promise<void>((resolve) => {
        held?.finish(200, ok([]));
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
