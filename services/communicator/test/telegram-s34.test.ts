// Session 34: Telegram traffic of the T11 kind (a refused sendMessage whose answer can still be delivered), replies
// to the bot's own answers, and emoji typed as a reaction. Each test failed before its change:
// - a forum question deleted while it was answered: Telegram ignores `allow_sending_without_reply` in forum topics
//   (Bot API ReplyParameters: "Always False for replies in another chat or forum topic") and answers 400 "message to
//   be replied not found"; the ready answer was given up. Topics turned off meanwhile ("message thread not found")
//   lost it the same way;
// - "typing…" showed in General, not in the question's topic (sendChatAction without `message_thread_id`);
// - a follow-up sent as a reply to the bot's answer ("а за ноябрь такую же можно?") reached the secretary without
//   what it refers to; the secretary decides a message in an answered thread on its own text;
// - "👍" typed alone (the Bot API delivers it as `text`, not as a sticker) was analysed and answered.
import { describe, expect, it } from 'vitest';
import type { FakeTelegram, SentMessage } from '@workemon/testkit/fake-telegram';
import { isEmojiOnly } from '../src/telegram/telegram-update.js';
import { resendWithout } from '../src/telegram/telegram-channel.js';
import { answer, clarify } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '300' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Math.floor(Date.now() / 1000);
const sentTo = (tg: FakeTelegram, chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId);
const triesTo = (tg: FakeTelegram, chatId: number) =>
  tg.callsOf('sendMessage').filter((c) => Number(c.params['chat_id']) === chatId);
const botOf = (tg: FakeTelegram) => ({ id: 1, is_bot: true, first_name: 'Workemon', username: tg.botUsername });
/** Bot API `reply_to_message` naming a message the bot sent (`sent`) in `chat`, dated `date` (s). */
const replyToBot = (tg: FakeTelegram, sent: SentMessage, chat: Record<string, unknown>, date = now()) => ({
  reply_to_message: { message_id: sent.message_id, date, chat, from: botOf(tg), text: sent.text },
});
const mention = (tg: FakeTelegram, text: string) => ({
  text: `@${tg.botUsername} ${text}`,
  entities: [{ type: 'mention', offset: 0, length: tg.botUsername.length + 1 }],
});

const forum = { id: -1003400001, type: 'supergroup' as const };
/** A question in topic 50 of a forum supergroup (it replies to the topic's opening service message, as all do). */
const topicQuestion = (tg: FakeTelegram, from: { id: number; username: string }, text: string) =>
  tg.pushMessage({
    chat: forum,
    from,
    extra: {
      ...mention(tg, text),
      chat: { ...forum, title: 'Поддержка', is_forum: true },
      is_topic_message: true,
      message_thread_id: 50,
      reply_to_message: {
        message_id: 50,
        date: now() - 3600,
        chat: { ...forum, title: 'Поддержка', is_forum: true },
        from: { id: 7, is_bot: false, first_name: 'Админ' },
        forum_topic_created: { name: 'Выгрузки', icon_color: 7322096 },
      },
    },
  });

describe('telegram s34: a refused reply or topic does not lose a ready answer', () => {
  it('a forum question deleted while it was answered: the answer goes to its topic, unquoted; other chats go on', async () => {
    const { tg, secretary } = await setup();
    const asked = topicQuestion(
      tg,
      { id: 34011, username: 'u34011' },
      'выгрузка авторизаций за октябрь пустая, почему?',
    );
    tg.deleteMessage(forum.id, asked.message_id);
    tg.pushMessage({ from: { id: 34012, username: 'u34012' }, text: 'Нужен отчёт по возвратам' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 2, 'both answered', 15_000);
    expect(secretary.calls).toHaveLength(2);
    const [refused, resent] = triesTo(tg, forum.id).map((c) => c.params);
    expect(refused).toMatchObject({ message_thread_id: 50, reply_parameters: { message_id: asked.message_id } });
    expect(resent).toMatchObject({ message_thread_id: 50 });
    expect(resent).not.toHaveProperty('reply_parameters');
    expect(sentTo(tg, forum.id)[0]!.text).toContain('выгрузка авторизаций за октябрь пустая');
  });

  it('topics turned off while it was answered: the answer goes to the chat as a reply to the question', async () => {
    const { tg } = await setup();
    const asked = topicQuestion(tg, { id: 34013, username: 'u34013' }, 'не приходит выгрузка');
    tg.disableTopics(forum.id);
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered', 15_000);
    const sent = sentTo(tg, forum.id)[0]!.params;
    expect(sent).not.toHaveProperty('message_thread_id');
    // Only as a reply: were the question gone with its topic, Telegram refuses it rather than post into General.
    expect(sent).toMatchObject({
      reply_parameters: { message_id: asked.message_id, allow_sending_without_reply: false },
    });
  });

  it('topics off and the question gone: one fallback only, nothing lands unquoted in the chat', async () => {
    const { tg, communicator } = await setup();
    const asked = topicQuestion(tg, { id: 34014, username: 'u34014' }, 'не приходит выгрузка');
    tg.disableTopics(forum.id);
    tg.deleteMessage(forum.id, asked.message_id);
    await waitUntil(() => tg.pending() === 0, 'confirmed', 15_000);
    await sleep(500);
    expect(triesTo(tg, forum.id)).toHaveLength(2);
    expect(tg.sent).toHaveLength(0);
    expect(
      await communicator.metric('workemon_replies_failed_total', { channel: 'tg', reason: 'reply_not_found' }),
    ).toBe(1);
  });

  it('"typing…" is shown in the question\'s topic', async () => {
    const { tg, secretary } = await setup();
    secretary.delayMs = 600;
    topicQuestion(tg, { id: 34015, username: 'u34015' }, 'почему пустая выгрузка?');
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered', 15_000);
    const typing = tg.callsOf('sendChatAction').map((c) => c.params);
    expect(typing.length).toBeGreaterThanOrEqual(1);
    for (const t of typing) expect(t).toMatchObject({ chat_id: forum.id, message_thread_id: 50, action: 'typing' });
  });

  it('the fallbacks by refusal: one per answer, only for what the refused call carried', () => {
    const refused = (reason: string) => ({ kind: 'rejected' as const, status: 400, message: 'Bad Request', reason });
    const both = { reply: true, thread: true };
    expect(resendWithout(refused('reply_not_found'), both, false)).toBe('reply');
    expect(resendWithout(refused('thread_not_found'), both, false)).toBe('thread');
    expect(resendWithout(refused('reply_not_found'), both, true)).toBeUndefined();
    expect(resendWithout(refused('reply_not_found'), { reply: false, thread: true }, false)).toBeUndefined();
    expect(resendWithout(refused('thread_not_found'), { reply: true, thread: false }, false)).toBeUndefined();
    expect(resendWithout(refused('topic_closed'), both, false)).toBeUndefined();
    // A later piece carries no reply: out of its topic in a group it would land unquoted in General, so it is given
    // up; a private chat's topics are one person's, so its main chat takes it.
    expect(resendWithout(refused('thread_not_found'), { reply: false, thread: true }, false)).toBeUndefined();
    expect(resendWithout(refused('thread_not_found'), { reply: false, thread: true, privateChat: true }, false)).toBe(
      'thread',
    );
    expect(resendWithout(refused('bot_blocked'), both, false)).toBeUndefined();
  });
});

describe('telegram s34: a reply to the bot', () => {
  it("a follow-up sent as a reply to the bot's answer carries that answer's words", async () => {
    const { tg, secretary } = await setup();
    const from = { id: 34021, username: 'u34021' };
    tg.pushMessage({ from, text: 'Нужна выгрузка авторизаций по кошелькам b2c за октябрь' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    tg.pushMessage({ from, text: 'Сколько дней хранится лог?' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 2, 'answered twice');
    const first = tg.sent[0]!;
    tg.pushMessage({
      from,
      text: 'а за ноябрь такую же можно?',
      extra: {
        ...replyToBot(tg, first, { id: from.id, type: 'private', first_name: 'U' }, now() - 60),
      },
    });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 3, 'the follow-up answered');
    expect(secretary.calls[2]!.request).toBe(
      `В ответ на сообщение от бота:\n${first.text}\nа за ноябрь такую же можно?`,
    );
  });

  it("the answer's words take at most a quarter of MAX_REQUEST_CHARS: the follow-up's own words are never cut", async () => {
    const { tg, secretary } = await setup({ env: { MAX_REQUEST_CHARS: '1000' } });
    const from = { id: 34022, username: 'u34022' };
    secretary.decide = (r) => answer('Выгрузка готова, вот подробности по каждому полю. '.repeat(40), r.request);
    tg.pushMessage({ from, text: 'Нужна выгрузка авторизаций за октябрь' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    const first = tg.sent[0]!;
    tg.pushMessage({
      from,
      text: 'а за ноябрь такую же можно?',
      extra: {
        ...replyToBot(tg, first, { id: from.id, type: 'private', first_name: 'U' }),
      },
    });
    await waitUntil(() => tg.pending() === 0 && secretary.calls.length === 2, 'the follow-up asked');
    const request = secretary.calls[1]!.request;
    // Before: the answer's first 1,000 characters filled the request and the follow-up was cut away.
    expect(request.startsWith('В ответ на сообщение от бота:\nВыгрузка готова')).toBe(true);
    expect(request.endsWith('[…]\nа за ноябрь такую же можно?')).toBe(true);
    expect(request.length).toBeLessThanOrEqual(1000);
  });

  it("in a group, another member's reply to the bot's answer carries it; the asked member's answer to a question does not", async () => {
    const { tg, secretary } = await setup();
    const chat = { id: -1003420003, type: 'supergroup' as const };
    const a = { id: 34023, username: 'u34023' };
    const b = { id: 34024, username: 'u34024' };
    secretary.decide = (r) => clarify(`За какой период нужна выгрузка? (${r.request.length})`, r.request);
    tg.pushMessage({ chat, from: a, extra: mention(tg, 'нужна выгрузка авторизаций по кошелькам b2c') });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'the question asked');
    const question = tg.sent[0]!;
    const replyToQuestion = {
      ...replyToBot(tg, question, { ...chat, title: 'Команда' }),
    };
    // The asked member answers the question: the secretary joins it to the request (its pending question).
    tg.pushMessage({ chat, from: a, extra: { text: 'за октябрь', ...replyToQuestion } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 2, 'the answer taken');
    // Another member replies to the same message: the words it refers to come with it.
    tg.pushMessage({ chat, from: b, extra: { text: 'а мне за ноябрь такую же', ...replyToQuestion } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 3, "the other member's reply taken");
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'нужна выгрузка авторизаций по кошелькам b2c',
      'за октябрь',
      `В ответ на сообщение от бота:\n${question.text}\nа мне за ноябрь такую же`,
    ]);
  });
});

describe('telegram s34: emoji typed alone are a reaction', () => {
  it('"👍" after an answer, and "🙏" replying to it in a group: no analysis, no reply', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 34031, username: 'u34031' };
    tg.pushMessage({ from, text: 'Нужна выгрузка авторизаций по кошелькам за октябрь' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'answered');
    tg.pushMessage({ from, text: '👍' });
    const chat = { id: -1003420002, type: 'supergroup' as const };
    tg.pushMessage({ chat, from, extra: mention(tg, 'нужна выгрузка авторизаций за ноябрь') });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 2, 'the group answered');
    const answer = sentTo(tg, chat.id)[0]!;
    tg.pushMessage({
      chat,
      from,
      extra: {
        text: '🙏🏻',
        ...replyToBot(tg, answer, { ...chat, title: 'Команда' }),
      },
    });
    await waitUntil(() => tg.pending() === 0, 'confirmed');
    await sleep(800);
    expect(secretary.calls).toHaveLength(2);
    expect(tg.sent).toHaveLength(2);
  });

  it('"👍" answering the bot\'s clarifying question is the answer: it goes to the secretary', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = (r) =>
      secretary.calls.length === 1 ? clarify('Отправить отчёт Иванову?', r.request) : answer('Отправлено.', r.request);
    const from = { id: 34032, username: 'u34032' };
    tg.pushMessage({ from, text: 'Нужен отчёт по возвратам за ноябрь' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'the question asked');
    tg.pushMessage({ from, text: '👍' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 2, 'the answer taken');
    expect(secretary.calls.map((c) => c.request)).toEqual(['Нужен отчёт по возвратам за ноябрь', '👍']);
    // Answered: the next "👍" is a reaction again.
    tg.pushMessage({ from, text: '👍' });
    await waitUntil(() => tg.pending() === 0, 'confirmed');
    await sleep(500);
    expect(secretary.calls).toHaveLength(2);
  });

  it('tells emoji alone from words, digits and keycaps', () => {
    for (const text of ['👍', '🙏🏻', '👍👍', '❤️', '❤️‍🔥', '🇷🇺', ' 👌 ']) expect(isEmojiOnly(text), text).toBe(true);
    // Pictographs that say something (a question, an alarm, a "no", a number, a mark) are words, not a reaction.
    for (const text of [
      '',
      ' ',
      'ок',
      'ок 👍',
      '1',
      '1️⃣',
      '🔟',
      '❓',
      '‼️',
      '🆘',
      '❌',
      '©',
      '+',
      '?',
      '👍 спасибо',
      ':)',
    ]) {
      expect(isEmojiOnly(text), text).toBe(false);
    }
  });
});
