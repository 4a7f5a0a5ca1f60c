import { cutText } from '@workemon/service-kit';
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
  | {
      kind: 'message';
      chatKey: string;
      message: Message;
      /**
       * The message's own words for a request (requestTextOf: the forward's origin in front), without what it replies
       * to; empty for media without a caption, a sticker, or the bot's mention alone.
       */
      text: string;
      /**
       * What the message replies to (replyContextOf: `В ответ на сообщение от <author>:\n<words>`), kept apart from
       * `text`: clients attach the same reply to every part they send of an album or a split paste (Telegram-FOSS
       * passes replyingMessageObject to every split part), so a job's request puts each distinct context once, at
       * its top (telegram-channel.ts jobRequestTextOf), and the parts' words join as if it were not there.
       */
      context?: string;
      /**
       * Sent on behalf of a chat (isSentAsChat: an anonymous group admin, a member posting as a channel) and
       * addressed to the bot: nobody the directory can check, so it gets ANONYMOUS_REPLY, never an analysis.
       */
      anonymous?: true;
      /** The sender's own words are emoji alone (isEmojiOnly: "👍"), not a forward: a reaction like a sticker. */
      emojiOnly?: true;
    }
  | { kind: 'callback'; chatKey: string; query: CallbackQuery };

/** The durable "handled" key of an update (secretary `POST /deliveries`), unique per chat and message. */
export function handledKeyOf(update: Update): string {
  if ('callback_query' in update) return `tg:callback:${update.callback_query.id}`;
  if ('message' in update) return `tg:${update.message.chat.id}:${update.message.message_id}`;
  return `tg:update:${update.update_id}`;
}

/** Escapes a string for use in a RegExp. */
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * A mention of `@username` as Telegram marks it (a `mention` entity): not inside a longer username
 * (`@workemon_bot2`, `@workemon_bot_old` are other bots) nor an e-mail address (`a@workemon_bot.ru` is not one).
 * Telegram usernames are 5–32 characters of `A-Za-z0-9_`, compared case-insensitively.
 */
export function mentionPattern(username: string): RegExp {
  return new RegExp(`(?<![\\w@.])@${escapeRegExp(username)}(?![\\w@.]*\\w)`, 'ig');
}

/** The message's own words: its text, or the caption of a photo/document/album part. */
export function ownTextOf(message: Message): string | undefined {
  if ('text' in message) return message.text;
  if ('caption' in message) return message.caption;
  return undefined;
}

/**
 * Whether a message is for the bot: every private message; in groups only a mention of `@bot` or a reply to one of
 * the bot's messages. A mention is removed from the text, in private chats too (`@bot` alone leaves no words: a
 * call for attention, answered with the help).
 */
export function addressedText(message: Message, me: UserFromGetMe | undefined): { addressed: boolean; text?: string } {
  const text = ownTextOf(message);
  const mentioned = me?.username && text !== undefined ? withoutMention(text, me.username) : undefined;
  if (message.chat.type === 'private') return { addressed: true, text: mentioned ?? text };
  const repliedToBot =
    'reply_to_message' in message &&
    message.reply_to_message?.from?.id !== undefined &&
    message.reply_to_message.from.id === me?.id;
  const command = ownCommandOf(text, me);
  if (command !== undefined) return { addressed: true, text: command };
  if (mentioned !== undefined) return { addressed: true, text: mentioned };
  return { addressed: repliedToBot, text };
}

/**
 * `text` without the mentions of `@username`, or undefined when it has none; empty when nothing but punctuation,
 * symbols or spaces is left (`@bot`, `@bot, ?`, `@bot 👋`): a call for attention, never a request.
 */
function withoutMention(text: string, username: string): string | undefined {
  if (!mentionPattern(username).test(text)) return undefined;
  const rest = text.replace(mentionPattern(username), '').trim();
  return /[\p{L}\p{N}]/u.test(rest) ? rest : '';
}

/**
 * A command addressed to this bot by name (`/help@bot …`, as clients complete it in groups), without the name; or
 * `/start` / `/help` without a name (the bot's own commands: answered with the help, no secretary call).
 */
function ownCommandOf(text: string | undefined, me: UserFromGetMe | undefined): string | undefined {
  // `/start` and `/help` without a name: Telegram delivers them to a bot in privacy mode only when meant for it.
  if (text !== undefined && /^\/(start|help)(?=\s|$)/i.test(text)) return text.trim();
  const command = text === undefined ? null : /^(\/[A-Za-z0-9_]+)@([A-Za-z0-9_]+)(?=\s|$)/.exec(text);
  if (!command || !me?.username || command[2]!.toLowerCase() !== me.username.toLowerCase()) return undefined;
  return `${command[1]}${text!.slice(command[0].length)}`.trim();
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
  const origin = m['forward_origin'] as MessageOrigin | undefined;
  if (origin) return originNameOf(origin);
  const from = nameOf(m['forward_from'] as Named | undefined);
  if (from) return from;
  if (typeof m['forward_sender_name'] === 'string') return m['forward_sender_name'];
  const chat = nameOf(m['forward_from_chat'] as Named | undefined);
  if (chat) return signed(chat, m['forward_signature']);
  return undefined;
}

/** Bot API MessageOrigin (of a forward, or of the message an `external_reply` answers), as far as we read it. */
type MessageOrigin = {
  type?: string;
  sender_user?: Named;
  sender_user_name?: string;
  sender_chat?: Named;
  chat?: Named;
  author_signature?: string;
};

const signed = (base: string | undefined, signature: unknown) =>
  base && typeof signature === 'string' && signature ? `${base}, ${signature}` : base;

/** Who a MessageOrigin names: `user` → sender_user, `hidden_user` → sender_user_name, `chat`, `channel` (+ signature). */
function originNameOf(origin: MessageOrigin): string {
  switch (origin.type) {
    case 'user':
      return nameOf(origin.sender_user) ?? 'пользователь';
    case 'hidden_user':
      return origin.sender_user_name ?? 'скрытый пользователь';
    case 'chat':
      return signed(nameOf(origin.sender_chat) ?? 'чат', origin.author_signature)!;
    case 'channel':
      return signed(nameOf(origin.chat) ?? 'канал', origin.author_signature)!;
    default:
      return 'неизвестный отправитель';
  }
}

/**
 * How many characters of the bot's own message `replied`, which `message` replies to, go in front of its request (0:
 * none): the channel knows which of its messages were answers, and which a clarifying question asked of this sender,
 * and how long a request may be.
 */
export type BotWordsKept = (message: Message, replied: Message) => number;

/**
 * What an addressed message answers, as the first lines of its job's request (`В ответ на сообщение от
 * <author>:\n…`; Classified `context`, put once per job however many of its parts carry it):
 * the part it quotes (`quote.text`, Bot API TextQuote; also from another chat, `external_reply`), or the words of the
 * replied-to message (`reply_to_message` text or caption): in groups a colleague's question the bot is called on
 * (`@bot` as a reply to it), and in any chat the bot's own answer that a follow-up refers to ("а за ноябрь такую же
 * можно?"), when `keepsBotWords` says so (not a clarifying question of this sender: the secretary joins the answer to
 * it; nor a quote of such a question). Undefined without a reply; for a replied message without words (the service message opening a forum topic,
 * which every topic message replies to); and in a private chat for someone else's message without a quote (the
 * user's earlier messages there already went to the secretary).
 */
export function replyContextOf(
  message: Message,
  me: UserFromGetMe | undefined,
  keepsBotWords?: BotWordsKept,
): string | undefined {
  const m = message as ReplyFields;
  const toBot = m.reply_to_message?.from?.id !== undefined && m.reply_to_message.from.id === me?.id;
  const botWords = toBot && keepsBotWords ? keepsBotWords(message, m.reply_to_message!) : 0;
  // A quote of the bot's clarifying question to this sender (the part selected before replying) is that question
  // again: dropped like the whole of it.
  const quote = toBot && botWords <= 0 ? undefined : m.quote?.text?.trim();
  const words = quote || repliedWordsOf(message, toBot, botWords);
  if (!words) return undefined;
  const author = replyAuthorOf(m, toBot);
  return `В ответ на сообщение${author ? ` от ${author}` : ''}:\n${words}`;
}

type ReplyFields = {
  reply_to_message?: Message;
  external_reply?: { origin?: MessageOrigin };
  quote?: { text?: string };
};

/**
 * Characters of the bot's own answer put in front of a follow-up at most (its first sentences: what it was about),
 * so that a long answer does not bury the follow-up's own words.
 */
export const BOT_WORDS_MAX_CHARS = 1000;

/**
 * The words of the replied-to message: a colleague's in groups, the bot's own where kept, cut to `botWords`
 * characters (see replyContextOf).
 */
function repliedWordsOf(message: Message, toBot: boolean, botWords: number): string | undefined {
  const replied = (message as ReplyFields).reply_to_message;
  if (!replied || (toBot ? botWords <= 0 : message.chat.type === 'private')) return undefined;
  const words = ownTextOf(replied)?.trim();
  return toBot && words ? cutText(words, botWords, { marker: ' […]' }) : words;
}

/** Who wrote what a reply answers: the replied-to message's sender, the bot, or the origin of an external reply. */
function replyAuthorOf(m: ReplyFields, toBot: boolean): string | undefined {
  if (toBot) return 'бота';
  if (m.reply_to_message) return nameOf(m.reply_to_message.from);
  return m.external_reply?.origin ? originNameOf(m.external_reply.origin) : undefined;
}

/** The line put in front of a forward's words in a request: `Переслано от <origin>:`. */
export const forwardHeaderOf = (origin: string): string => `Переслано от ${origin}:`;

/**
 * The text a message contributes to a request: its own words, and for a forward the origin in front, so the
 * secretary sees whose words they are ("Переслано от Иван Петров (@ivanov):\n…").
 */
export function requestTextOf(message: Message, text: string | undefined): string {
  const own = text?.trim() ?? '';
  const origin = forwardOriginOf(message);
  if (!origin || !own) return own;
  return `${forwardHeaderOf(origin)}\n${own}`;
}

/**
 * Bot API Message fields of media that carry a caption of at most CAPTION_MAX_CHARS (`animation`, `audio`,
 * `document`, `photo`, `video`, `voice`; Bot API sendPhoto … sendVoice `caption`). Clients send a longer text as a
 * message of its own, just before or after the media: the two are joined again (telegram-channel.ts `nextJob`).
 */
export const CAPTIONED_MEDIA_FIELDS = ['animation', 'audio', 'document', 'photo', 'video', 'voice'] as const;

/** Telegram's caption limit (Bot API: "0-1024 characters after entities parsing"; more for Premium users). */
export const CAPTION_MAX_CHARS = 1024;

/** Whether a message carries media that could have had a caption (CAPTIONED_MEDIA_FIELDS). */
export const hasCaptionedMedia = (message: Message): boolean =>
  CAPTIONED_MEDIA_FIELDS.some((field) => field in message);

type FileInfo = { file_name?: string; title?: string; performer?: string };

/**
 * What a message carries besides words, in Russian, one name per attachment: `фото`, `файл <file_name>`, `видео`,
 * `голосовое сообщение`, `аудио <title>`, `GIF-анимация`, `видеосообщение`, `стикер`. An animation also fills
 * `document` (Bot API, for backward compatibility): named once. Empty for a message of words only.
 */
export function attachmentsOf(message: Message): string[] {
  const m = message as unknown as Record<string, FileInfo | undefined>;
  const named = (kind: string, file: FileInfo | undefined) => {
    const name = file?.file_name ?? [file?.performer, file?.title].filter(Boolean).join(' — ');
    return name ? `${kind} ${name}` : kind;
  };
  const found: string[] = [];
  if ('photo' in message) found.push('фото');
  if (m['animation']) found.push('GIF-анимация');
  else if (m['document']) found.push(named('файл', m['document']));
  if (m['video']) found.push('видео');
  if (m['voice']) found.push('голосовое сообщение');
  if (m['audio']) found.push(named('аудио', m['audio']));
  if (m['video_note']) found.push('видеосообщение');
  if (m['sticker']) found.push('стикер');
  return found;
}

/**
 * The note of attachments in a request, as the mail channel writes it: `[Вложения (не переданы): фото ×3, файл
 * log.txt]` (repeated names counted, in order of first appearance); undefined for none. The secretary never gets
 * the files: the note tells it they were sent.
 */
export function attachmentNoteOf(names: string[]): string | undefined {
  if (!names.length) return undefined;
  const counts = new Map<string, number>();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  const list = [...counts].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name));
  return `[Вложения (не переданы): ${list.join(', ')}]`;
}

/** A message sent on behalf of a chat (isSentAsChat) and addressed to this bot, classified `anonymous`; else none. */
function anonymousOf(message: Message, me: UserFromGetMe | undefined): Classified | undefined {
  if (!isSentAsChat(message) || isAutomaticForward(message) || isServiceMessage(message)) return undefined;
  const { addressed, text } = addressedText(message, me);
  if (!addressed || isOtherBotsCommand(text, me)) return undefined;
  return { kind: 'message', chatKey: String(message.chat.id), message, text: '', anonymous: true };
}

/** Step "classify": what to do with one update (see Classified). */
export function classifyUpdate(
  update: Update,
  me: UserFromGetMe | undefined,
  keepsBotWords?: BotWordsKept,
): Classified {
  if ('callback_query' in update) {
    const query = update.callback_query;
    return { kind: 'callback', chatKey: String(query.message?.chat.id ?? query.from.id), query };
  }
  if (!('message' in update)) return { kind: 'ignore', reason: 'unsupported_update' };
  const message = update.message;
  if (!message.from || message.from.is_bot) return anonymousOf(message, me) ?? { kind: 'ignore', reason: 'bot_sender' };
  // A channel post Telegram copies into the channel's discussion group (sent as 777000 "Telegram", not a bot).
  if (isAutomaticForward(message)) return { kind: 'ignore', reason: 'automatic_forward' };
  // A pin, an auto-delete timer, a wallpaper, new members …: nobody wrote anything to answer.
  if (isServiceMessage(message)) return { kind: 'ignore', reason: 'service_message' };
  const { addressed, text } = addressedText(message, me);
  if (!addressed) return { kind: 'ignore', reason: 'group_not_mentioned' };
  if (isOtherBotsCommand(text, me)) return { kind: 'ignore', reason: 'other_bot_command' };
  const context = replyContextOf(message, me, keepsBotWords);
  return {
    kind: 'message',
    chatKey: String(message.chat.id),
    message,
    // The words alone: the context goes once at the top of the job's request (jobRequestTextOf), not per part.
    text: requestTextOf(message, text),
    ...(context !== undefined && { context }),
    ...(isOwnEmojiOnly(message, text) && { emojiOnly: true as const }),
  };
}

/** The sender's own words (`text`, mention removed) are emoji alone, in a message that is no forward and has no media. */
const isOwnEmojiOnly = (message: Message, text: string | undefined): boolean =>
  isEmojiOnly(text) && forwardOriginOf(message) === undefined && !hasCaptionedMedia(message);

/**
 * Whether `text` is emoji alone ("👍", "🙏🏻", "👍👍", "❤️‍🔥", a flag): Extended_Pictographic characters (Unicode
 * UTS #51) with their skin-tone modifiers, ZWJ and presentation selectors, or regional indicators, and white space;
 * no letter, digit or punctuation. Clients show such a message big, but the Bot API delivers it as plain `text`, not
 * as a `sticker`. A keycap ("1️⃣", an answer to a numbered question) keeps its digit, so it is not.
 */
export function isEmojiOnly(text: string | undefined): boolean {
  if (!text?.trim() || SAYS_SOMETHING.test(text)) return false;
  const rest = text.replace(
    /\p{Extended_Pictographic}|\p{Emoji_Modifier}|\p{Regional_Indicator}|\u200D|\uFE0E|\uFE0F|\s/gu,
    '',
  );
  return rest === '' && /[\p{Extended_Pictographic}\p{Regional_Indicator}]/u.test(text);
}

/**
 * Pictographs that say something rather than react: a question or an alarm (❓ ❔ ❗ ❕ ‼ ⁉ 🆘), a "no" (❌ ❎ ✖), a
 * number (🔟, the keycap without a digit of its own), marks (© ® ™ ℹ). A message of them goes to the secretary.
 */
const SAYS_SOMETHING = /[\u00A9\u00AE\u2122\u2139\u203C\u2049\u2753-\u2755\u2757\u274C\u274E\u2716\u{1F198}\u{1F51F}]/u;

/**
 * A group message sent on behalf of a chat: an anonymous group admin (`from` is GroupAnonymousBot, `sender_chat` the
 * group) or a member posting as a channel (`from` is Channel_Bot, `sender_chat` the channel). Bot API "Message":
 * `sender_chat` — "the sender of the message when sent on behalf of a chat"; `from` then holds "a fake sender user
 * in non-channel chats".
 */
export function isSentAsChat(message: Message): boolean {
  const senderChat = (message as { sender_chat?: { id: number } }).sender_chat;
  return message.chat.type !== 'private' && senderChat !== undefined && message.from?.is_bot === true;
}

/** Telegram's own service account: the sender of channel posts copied into discussion groups, and of notices. */
export const TELEGRAM_SERVICE_USER_ID = 777000;

/** A channel post copied into its linked discussion group (`is_automatic_forward`, or sent by 777000). */
export function isAutomaticForward(message: Message): boolean {
  return (
    (message as { is_automatic_forward?: boolean }).is_automatic_forward === true ||
    message.from?.id === TELEGRAM_SERVICE_USER_ID
  );
}

/**
 * The Bot API `Message` fields that carry something a person sent (text, a caption, or media: Bot API "Message",
 * the fields before the service ones). A message with none of them is a service message (`pinned_message`,
 * `new_chat_members`, `message_auto_delete_timer_changed`, `chat_background_set`, `write_access_allowed`,
 * `forum_topic_created`, …): it is never answered, not even with the "text only" note.
 */
export const CONTENT_FIELDS = [
  'text',
  'caption',
  'animation',
  'audio',
  'document',
  'paid_media',
  'photo',
  'sticker',
  'story',
  'video',
  'video_note',
  'voice',
  'checklist',
  'contact',
  'dice',
  'game',
  'poll',
  'venue',
  'location',
  'invoice',
  'giveaway',
] as const;

/** Whether a message is a service message (none of CONTENT_FIELDS). */
export function isServiceMessage(message: Message): boolean {
  return !CONTENT_FIELDS.some((field) => field in message);
}

/**
 * A bot command (`/cmd@name`, Bot API "Commands": the `@name` says which bot it is for) addressed by name to a
 * bot other than this one: in a group another bot's business, in a private chat a slip; not answered.
 */
export function isOtherBotsCommand(text: string | undefined, me: UserFromGetMe | undefined): boolean {
  const target = /^\/[A-Za-z0-9_]+@([A-Za-z0-9_]+)(?:\s|$)/.exec(text?.trim() ?? '')?.[1];
  return target !== undefined && me?.username !== undefined && target.toLowerCase() !== me.username.toLowerCase();
}

/**
 * A message (UTF-16 code units, JS `length`, as Telegram counts) that may be the first part of a long paste the client
 * split; it waits for its next part longer than the merge window (telegram-channel.ts SPLIT_PART_WAIT_MS). Clients
 * split only a text over the 4096 limit: Android and iOS at exactly 4096 units whatever the character (Telegram-FOSS
 * ChatActivityEnterView: `text.subSequence(a * maxLength, …)`; the server trims the white space at the cut, so a part
 * may be 4095 or a little less), Telegram Desktop at the best break after half of it (a paragraph break first, else a
 * space: tdesktop TextUtilities::CutPart), so its first part has more than 2048 units. 2000 leaves room for the
 * bot's mention removed in a group and the trimmed white space; a threshold near 4096 would miss every Desktop
 * split. Shorter messages are never a first part, and keep the fast path.
 */
export const SPLIT_PART_MIN_CHARS = 2000;

/** Telegram's text limit (Bot API sendMessage `text`: 1-4096 characters): a part this long was cut by the client. */
export const TEXT_MAX_CHARS = 4096;

/** Words that make a message a greeting on their own (Russian and English; `ё` written `е`). */
const GREETING_HEADS = new Set(
  `привет приветик приветствую здравствуйте здравствуй здрасте здрасьте здрасти салют хай
   hi hello hey hiya greetings morning`.split(/\s+/),
);
/** Words that make a greeting followed by a GREETING_TIMES word ("добрый день", "good afternoon"). */
const GREETING_ADJECTIVES = new Set(['добрый', 'доброе', 'доброго', 'доброй', 'good']);
const GREETING_TIMES = new Set(
  `день дня утро утра вечер вечера времени суток ночи morning afternoon evening day`.split(/\s+/),
);
/** Words a greeting may carry besides those: whom it greets, "again". */
const GREETING_COMPANIONS = new Set(
  `всем всех коллеги ребята друзья бот еще раз
   all everyone there team guys folks again bot`.split(/\s+/),
);
/** At most this many words make a greeting alone ("Доброго времени суток, коллеги" is five). */
export const GREETING_MAX_WORDS = 5;

/** At most this many capitalised words after the salutation name whom it greets ("Здравствуйте, Анна Петровна!"). */
const GREETING_NAME_MAX_WORDS = 2;

/**
 * Whether `text` is a greeting and nothing else ("Привет!", "Добрый день, коллеги", "Hi there 👋", "Здравствуйте,
 * Workemon!"): at most GREETING_MAX_WORDS words (letters or digits; punctuation and emoji are not words), each a
 * salutation or a word that goes with one, at least one a salutation (a GREETING_HEADS word, or "добрый"/"good"
 * before a time of day); after the salutation, up to GREETING_NAME_MAX_WORDS capitalised words in a row may name
 * whom it greets (the bot's display name, a person's). People greet in a message of their own and send the question
 * right after it; the channel joins the two (telegram-channel.ts nextJob), so the question is not answered with "how
 * can I help?" first. Case-insensitive but for the name; `ё` counts as `е`.
 */
export function isGreetingOnly(text: string): boolean {
  const written = text
    .replaceAll('ё', 'е')
    .replaceAll('Ё', 'Е')
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
  const words = written.map((w) => w.toLowerCase());
  const salutation = (i: number) =>
    GREETING_HEADS.has(words[i]!) || (GREETING_ADJECTIVES.has(words[i]!) && GREETING_TIMES.has(words[i + 1]!));
  const known = (i: number) => salutation(i) || GREETING_TIMES.has(words[i]!) || GREETING_COMPANIONS.has(words[i]!);
  const first = words.findIndex((_w, i) => salutation(i));
  if (first < 0 || words.length > GREETING_MAX_WORDS) return false;
  const names = words.map((_w, i) => i).filter((i) => !known(i));
  // Whom it greets by name: capitalised, after the salutation, one run.
  return (
    names.length <= GREETING_NAME_MAX_WORDS &&
    names.every((i, k) => i > first && /^\p{Lu}/u.test(written[i]!) && (k === 0 || i === names[k - 1]! + 1))
  );
}

/** Album parts share `media_group_id`. */
export const mediaGroupOf = (message: Message): string | undefined =>
  (message as { media_group_id?: string }).media_group_id;
