import type { CallbackQuery, Message, Update, UserFromGetMe } from 'telegraf/types';

/**
 * What one update is, decided from the update alone (step "classify"):
 * - `ignore`: confirmed at once, nothing sent, nothing recorded (other bots, group chatter not addressed to us,
 *   update types we do not handle) — handling it again after a restart gives the same result;
 * - `message`: a message for us, queued in its chat's queue;
 * - `callback`: an approval button press, queued in the chat it was pressed in.
 */
export type Classified =
  | { kind: 'ignore'; reason: string }
  | { kind: 'message'; chatKey: string; message: Message; text: string }
  | { kind: 'callback'; chatKey: string; query: CallbackQuery };

/** The durable "handled" key of an update (secretary `POST /deliveries`), unique per chat and message. */
export function handledKeyOf(update: Update): string {
  if ('callback_query' in update) return `tg:callback:${update.callback_query.id}`;
  if ('message' in update) return `tg:${update.message.chat.id}:${update.message.message_id}`;
  return `tg:update:${update.update_id}`;
}

/** Escapes a string for use in a RegExp. */
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The message's own words: its text, or the caption of a photo/document/album part. */
export function ownTextOf(message: Message): string | undefined {
  if ('text' in message) return message.text;
  if ('caption' in message) return message.caption;
  return undefined;
}

/**
 * Whether a message is for the bot: every private message; in groups only a mention of `@bot` (removed from
 * the text) or a reply to one of the bot's messages.
 */
export function addressedText(message: Message, me: UserFromGetMe | undefined): { addressed: boolean; text?: string } {
  const text = ownTextOf(message);
  if (message.chat.type === 'private') return { addressed: true, text };
  const mention = me?.username ? `@${me.username}` : undefined;
  const repliedToBot =
    'reply_to_message' in message &&
    message.reply_to_message?.from?.id !== undefined &&
    message.reply_to_message.from.id === me?.id;
  if (mention && text?.toLowerCase().includes(mention.toLowerCase())) {
    return { addressed: true, text: text.replace(new RegExp(escapeRegExp(mention), 'ig'), '').trim() };
  }
  return { addressed: repliedToBot, text };
}

type Named = { first_name?: string; last_name?: string; username?: string; title?: string };
const nameOf = (who: Named | undefined) => {
  if (!who) return undefined;
  const name = [who.first_name, who.last_name].filter(Boolean).join(' ') || who.title;
  return who.username ? `${name ? `${name} ` : ''}(@${who.username})` : name;
};

/**
 * Who a forwarded message came from, per the Bot API: `forward_origin` (MessageOrigin: `user` → sender_user,
 * `hidden_user` → sender_user_name, `chat` → sender_chat (+ author_signature), `channel` → chat (+
 * author_signature)), or, from clients and servers older than Bot API 7.0, `forward_from`, `forward_sender_name`,
 * `forward_from_chat` (+ `forward_signature`). Undefined when the message is not a forward.
 */
export function forwardOriginOf(message: Message): string | undefined {
  const m = message as unknown as Record<string, unknown>;
  const origin = m['forward_origin'] as
    | {
        type?: string;
        sender_user?: Named;
        sender_user_name?: string;
        sender_chat?: Named;
        chat?: Named;
        author_signature?: string;
      }
    | undefined;
  const signed = (base: string | undefined, signature: unknown) =>
    base && typeof signature === 'string' && signature ? `${base}, ${signature}` : base;
  if (origin) {
    switch (origin.type) {
      case 'user':
        return nameOf(origin.sender_user) ?? 'пользователь';
      case 'hidden_user':
        return origin.sender_user_name ?? 'скрытый пользователь';
      case 'chat':
        return signed(nameOf(origin.sender_chat) ?? 'чат', origin.author_signature);
      case 'channel':
        return signed(nameOf(origin.chat) ?? 'канал', origin.author_signature);
      default:
        return 'неизвестный отправитель';
    }
  }
  const from = nameOf(m['forward_from'] as Named | undefined);
  if (from) return from;
  if (typeof m['forward_sender_name'] === 'string') return m['forward_sender_name'];
  const chat = nameOf(m['forward_from_chat'] as Named | undefined);
  if (chat) return signed(chat, m['forward_signature']);
  return undefined;
}

/**
 * The text a message contributes to a request: its own words, and for a forward the origin in front, so the
 * secretary sees whose words they are ("Переслано от Иван Петров (@ivanov):\n…").
 */
export function requestTextOf(message: Message, text: string | undefined): string {
  const own = text?.trim() ?? '';
  const origin = forwardOriginOf(message);
  if (!origin || !own) return own;
  return `Переслано от ${origin}:\n${own}`;
}

/** Step "classify": what to do with one update (see Classified). */
export function classifyUpdate(update: Update, me: UserFromGetMe | undefined): Classified {
  if ('callback_query' in update) {
    const query = update.callback_query;
    return { kind: 'callback', chatKey: String(query.message?.chat.id ?? query.from.id), query };
  }
  if (!('message' in update)) return { kind: 'ignore', reason: 'unsupported_update' };
  const message = update.message;
  if (!message.from || message.from.is_bot) return { kind: 'ignore', reason: 'bot_sender' };
  const { addressed, text } = addressedText(message, me);
  if (!addressed) return { kind: 'ignore', reason: 'group_not_mentioned' };
  return { kind: 'message', chatKey: String(message.chat.id), message, text: requestTextOf(message, text) };
}

/** A message that may be the first part of a long paste the client split (clients split at 4096 characters). */
export const SPLIT_PART_MIN_CHARS = 3000;

/** Album parts share `media_group_id`. */
export const mediaGroupOf = (message: Message): string | undefined =>
  (message as { media_group_id?: string }).media_group_id;
