// Session 37: three Telegram intake bugs of the field-case kinds T02 (an album: one answer to the caption) and T10 (a
// paste the client split: one answer that sees every part), and of a group that became a supergroup.
// 1. Clients attach a reply to every part they send (Telegram-FOSS passes replyingMessageObject to each split part):
//    the reply's context ("В ответ на сообщение от бота: …") went into every part's text, so the secretary got it once
//    per part, between the halves of a cut word, and caption-less album parts counted as words. Now it is once per job,
//    at the top, and the parts join as if it were not there.
// 2. A long part that is no cut inside a word (4096 units ending in "." or an emoji, 4095 after a trimmed space,
//    Telegram Desktop's cut at a paragraph) waited only the merge window: its next part 2.5 s later was answered apart.
//    Now a text of SPLIT_PART_MIN_CHARS or more waits SPLIT_PART_WAIT_MS and joins within SPLIT_PART_JOIN_S.
// 3. The resend to the supergroup after a 400 with migrate_to_chat_id quoted a message id of the old group.
// Every test here but the fast-path guards failed before the fix.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Update, UserFromGetMe } from 'telegraf/types';
import type { FakeTelegram } from '@workemon/testkit/fake-telegram';
import { SPLIT_PART_WAIT_MS, TEXT_ONLY_REPLY, jobRequestTextOf, nextJob } from '../src/telegram/telegram-channel.js';
import { classifyUpdate } from '../src/telegram/telegram-update.js';
import { answer } from './fake-secretary.js';
import { waitUntil } from './harness.js';
import { telegramSetup } from './telegram-setup.js';

const { setup } = telegramSetup({ TELEGRAM_MERGE_WINDOW_MS: '1500' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => Math.floor(Date.now() / 1000);
const sentTo = (tg: FakeTelegram, chatId: number) => tg.sent.filter((m) => Number(m.chat_id) === chatId);
const triesTo = (tg: FakeTelegram, chatId: number) =>
  tg.callsOf('sendMessage').filter((c) => Number(c.params['chat_id']) === chatId);
const botOf = (tg: FakeTelegram) => ({ id: 1, is_bot: true, first_name: 'Workemon', username: tg.botUsername });
const lengths = (r: { request: string }) => answer(`Принято: ${r.request.length} символов`, r.request);
const photo = (n: number, group: string) => ({
  photo: [{ file_id: `p${n}`, file_unique_id: `p${n}u`, width: 90, height: 90 }],
  media_group_id: group,
});
const mention = (tg: FakeTelegram, text: string) => ({
  text: `@${tg.botUsername} ${text}`,
  entities: [{ type: 'mention', offset: 0, length: tg.botUsername.length + 1 }],
});
const CONTEXT = 'В ответ на сообщение от бота:';
/** The T10 field case: Android's split of a paste, 4096 units cut inside a word + 55. */
const fieldT10 = () =>
  (
    JSON.parse(
      readFileSync(new URL('./fixtures/field-cases/telegram/T10-client-split.json', import.meta.url), 'utf8'),
    ) as Array<{ message: { text: string } }>
  ).map((u) => u.message.text) as [string, string];

/** Asks the first question in a private `chat`; returns the bot's answer and a `reply_to_message` to it. */
async function firstAnswer(
  tg: FakeTelegram,
  chat: { id: number; type: 'private' },
  from: { id: number },
  text: string,
) {
  tg.pushMessage({ chat, from, text });
  await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'first answer');
  const first = tg.sent[0]!;
  const replied = { ...chat, first_name: 'User' };
  return {
    first,
    reply: {
      reply_to_message: { message_id: first.message_id, date: now(), chat: replied, from: botOf(tg), text: first.text },
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// 1. The reply's context once per job.
// ---------------------------------------------------------------------------------------------------------------
describe('s37: what a reply answers, once per album or split paste', () => {
  const me = { id: 1, is_bot: true, first_name: 'Workemon', username: 'workemon_test_bot' } as UserFromGetMe;
  const bot = { id: 1, is_bot: true, first_name: 'Workemon', username: 'workemon_test_bot' };
  const chat = { id: 37001, type: 'private' as const, first_name: 'U' };
  const from = { id: 37001, is_bot: false, first_name: 'U' };
  const replied = { message_id: 5, date: 1, chat, from: bot, text: 'Выгрузка готова.' };
  const update = (id: number, fields: Record<string, unknown>) =>
    ({
      update_id: id,
      message: { message_id: id, date: 2, chat, from, reply_to_message: replied, ...fields },
    }) as Update;
  const classified = (u: Update) => {
    const c = classifyUpdate(u, me, () => 1000);
    if (c.kind !== 'message') throw new Error(`not a message: ${c.kind}`);
    return { classified: c };
  };

  it('classifyUpdate keeps the context apart from the words: a caption-less album part has no words', () => {
    const part = classified(update(10, photo(1, 'g1')));
    expect(part.classified.text).toBe('');
    expect(part.classified.context).toBe(`${CONTEXT}\nВыгрузка готова.`);
    expect(classified(update(11, { ...photo(2, 'g1'), caption: 'вот что выходит' })).classified.text).toBe(
      'вот что выходит',
    );
  });

  it('jobRequestTextOf puts the context once at the top; a cut word is joined as if it were not there', () => {
    const album = [
      classified(update(20, { ...photo(1, 'g2'), caption: 'вот что выходит' })),
      classified(update(21, photo(2, 'g2'))),
      classified(update(22, photo(3, 'g2'))),
    ];
    expect(jobRequestTextOf(album)).toBe(`${CONTEXT}\nВыгрузка готова.\nвот что выходит`);
    const body = 'отказавторизациипокошелькуномерсемь'.repeat(130);
    const split = [
      classified(update(30, { text: body.slice(0, 4096) })),
      classified(update(31, { text: `${body.slice(4096, 4200)}. Почему?` })),
    ];
    expect(jobRequestTextOf(split)).toBe(`${CONTEXT}\nВыгрузка готова.\n${body.slice(0, 4200)}. Почему?`);
    // Media without any caption stays wordless: no request of the context alone.
    expect(jobRequestTextOf([classified(update(40, photo(1, 'g3'))), classified(update(41, photo(2, 'g3')))])).toBe('');
  });

  it("a private album sent as a reply to the bot's answer (every part carries it): the answer's words once", async () => {
    const { tg, secretary } = await setup();
    const from = { id: 37011, username: 'u37011' };
    const chat = { id: from.id, type: 'private' as const };
    const { first, reply } = await firstAnswer(tg, chat, from, 'Нужна выгрузка авторизаций за октябрь');
    tg.pushMessage({ from, extra: { ...photo(1, 's37a'), ...reply, caption: 'вот что выходит вместо неё' } });
    tg.pushMessage({ from, extra: { ...photo(2, 's37a'), ...reply } });
    tg.pushMessage({ from, extra: { ...photo(3, 's37a'), ...reply } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'album answered');
    await sleep(500);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Нужна выгрузка авторизаций за октябрь',
      `${CONTEXT}\n${first.text}\nвот что выходит вместо неё`,
    ]);
    expect(tg.sent).toHaveLength(2);
  });

  it("a group album replying to the bot's answer (no mention, caption on item 2): answered once, the words once", async () => {
    const { tg, secretary } = await setup();
    const group = { id: -1003700021, type: 'supergroup' as const };
    const from = { id: 37021, username: 'u37021' };
    tg.pushMessage({ chat: group, from, extra: mention(tg, 'нужна выгрузка авторизаций за октябрь') });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length === 1, 'first answer');
    const first = tg.sent[0]!;
    const reply = {
      reply_to_message: {
        message_id: first.message_id,
        date: now(),
        chat: { ...group, title: 'Team' },
        from: botOf(tg),
        text: first.text,
      },
    };
    tg.pushMessage({ chat: group, from, extra: { ...photo(1, 's37b'), ...reply } });
    tg.pushMessage({ chat: group, from, extra: { ...photo(2, 's37b'), ...reply, caption: 'вот что выходит' } });
    tg.pushMessage({ chat: group, from, extra: { ...photo(3, 's37b'), ...reply } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'album answered');
    await sleep(500);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'нужна выгрузка авторизаций за октябрь',
      `${CONTEXT}\n${first.text}\nвот что выходит`,
    ]);
    expect(tg.sent).toHaveLength(2);
    expect(tg.sent.some((m) => m.text === TEXT_ONLY_REPLY)).toBe(false);
  });

  it('a caption-less album replying to the bot\'s answer is media without words: one "text only", no analysis', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 37031, username: 'u37031' };
    const { reply } = await firstAnswer(
      tg,
      { id: from.id, type: 'private' as const },
      from,
      'Нужна выгрузка за октябрь',
    );
    for (let i = 1; i <= 3; i += 1) tg.pushMessage({ from, extra: { ...photo(i, 's37c'), ...reply } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'album handled');
    await sleep(500);
    // Before: the context alone, three times, went to the secretary as the request.
    expect(secretary.calls.map((c) => c.request)).toEqual(['Нужна выгрузка за октябрь']);
    expect(tg.sent.map((m) => m.text).slice(1)).toEqual([TEXT_ONLY_REPLY]);
  });

  it('an Android split paste (4096 hard cut + tail) sent as a reply to the bot: the words once, the word not broken', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 37041, username: 'u37041' };
    const { first, reply } = await firstAnswer(
      tg,
      { id: from.id, type: 'private' as const },
      from,
      'Нужна выгрузка за октябрь',
    );
    const body = 'отказавторизациипокошелькуномерсемь'.repeat(130);
    const p1 = body.slice(0, 4096);
    const p2 = `${body.slice(4096, 4300)}. Вот что в ней, почему так?`;
    secretary.decide = lengths;
    tg.pushMessage({ from, extra: { text: p1, ...reply } });
    tg.pushMessage({ from, extra: { text: p2, ...reply } });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'answered', 45_000);
    await sleep(1000);
    expect(secretary.calls.map((c) => c.request)).toEqual([
      'Нужна выгрузка за октябрь',
      `${CONTEXT}\n${first.text}\n${p1}${p2}`,
    ]);
    expect(tg.sent).toHaveLength(2);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------------------------
// 2. A long part waits SPLIT_PART_WAIT_MS for its next part.
// ---------------------------------------------------------------------------------------------------------------
describe('s37: a long part of a client split whose next part comes seconds later', () => {
  /** A private text message as the channel queues it: sent at `date` (s), arrived at `at` (ms). */
  const queuedText = (text: string, date: number, at: number, id = at) => {
    const message = { message_id: id, date, chat: { id: 7, type: 'private' }, from: { id: 7, is_bot: false }, text };
    const classified = { kind: 'message' as const, chatKey: '7', message: message as never, text };
    return { update: { update_id: id, message } as never, classified, arrivedAt: at };
  };

  it('nextJob: a long part waits SPLIT_PART_WAIT_MS (not the merge window); a short one and a backlog part do not', () => {
    const sentAt = 1_795_000_000;
    const arrived = sentAt * 1000 + 300;
    const long = [queuedText('Строка лога. '.repeat(200).trim(), sentAt, arrived)];
    expect(nextJob(long, arrived + 100, 1500)).toEqual({ waitMs: SPLIT_PART_WAIT_MS - 100 });
    expect(nextJob(long, arrived + SPLIT_PART_WAIT_MS, 1500)).toEqual({ job: long });
    // Its next part 3 s later (by Message.date) joins, with a line break: the cut was after a full stop.
    const split = [...long, queuedText('Почему?', sentAt + 3, arrived + 3000, 2)];
    expect(nextJob(split, arrived + 3100, 1500)).toEqual({ job: split });
    // A short message waits for no window at all (only for a poll after it: `now` is the poll here).
    const short = [queuedText('Где лог?', sentAt, arrived)];
    expect(nextJob(short, arrived, 1500)).toEqual({ job: short });
    // Sent a minute before it arrived (a backlog): its next part is at Telegram already; the merge window is enough.
    const backlog = [queuedText('Строка лога. '.repeat(200).trim(), sentAt - 60, arrived)];
    expect(nextJob(backlog, arrived + 100, 1500)).toEqual({ waitMs: 1400 });
  });

  /** Pushes `p1`, then `p2` `gapMs` later, from `from` (in `chat`); returns once all is handled. */
  async function splitPaste(
    tg: FakeTelegram,
    from: { id: number; username: string },
    p1: Record<string, unknown>,
    p2: Record<string, unknown>,
    gapMs = 2500,
    chat?: { id: number; type: 'supergroup' },
  ) {
    tg.pushMessage({ ...(chat && { chat }), from, extra: p1 });
    await sleep(gapMs);
    tg.pushMessage({ ...(chat && { chat }), from, extra: p2 });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 1, 'answered', 45_000);
    // Long enough for a second answer to the part 2 to show.
    await sleep(2500);
  }

  it('Android: 4096 units ending right after "." (whole sentence), part 2 2.5 s later: one request, one answer', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = lengths;
    const text = 'Строка лога: отказ авторизации кошелька. '.repeat(200);
    let start = 0;
    while (text[start + 4095] !== '.') start += 1;
    const p1 = text.slice(start, start + 4096);
    expect([p1.length, p1.at(-1)]).toEqual([4096, '.']);
    const p2 = 'Ещё 55 строк такого же вида. Почему выгрузка пустая?';
    await splitPaste(tg, { id: 37101, username: 'u37101' }, { text: p1 }, { text: p2 });
    expect(secretary.calls.map((c) => c.request)).toEqual([`${p1}\n${p2}`]);
    expect(tg.sent).toHaveLength(1);
  }, 60_000);

  it('Android: the cut fell on a space the server trimmed (4095 units), part 2 2.5 s later: one request', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = lengths;
    const words = 'авторизация кошелька отклонена '.repeat(200);
    let start = 0;
    while (words[start + 4095] !== ' ') start += 1;
    const pasted = words.slice(start);
    const p1 = pasted.slice(0, 4096).trimEnd();
    const p2 = `${pasted.slice(4096, 4300)}почему?`.trim();
    expect(p1.length).toBe(4095);
    await splitPaste(tg, { id: 37102, username: 'u37102' }, { text: p1 }, { text: p2 });
    expect(secretary.calls.map((c) => c.request)).toEqual([`${p1}\n${p2}`]);
    expect(tg.sent).toHaveLength(1);
  }, 60_000);

  it('Android: 4096 units ending in an emoji (surrogate pair intact), part 2 2.5 s later: one request', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = lengths;
    let base = 'Статус 🔴 ошибка. '.repeat(300).slice(0, 4094);
    if (/[\uD800-\uDBFF]$/.test(base)) base = `${base.slice(0, -1)}а`;
    const p1 = `${base}🔴`;
    expect(p1.length).toBe(4096);
    const p2 = 'и дальше так же. Что делать?';
    await splitPaste(tg, { id: 37103, username: 'u37103' }, { text: p1 }, { text: p2 });
    expect(secretary.calls.map((c) => c.request)).toEqual([`${p1}\n${p2}`]);
    expect(tg.sent).toHaveLength(1);
  }, 60_000);

  it("Telegram Desktop's cut at a paragraph break (2319 + 2531), part 2 2.5 s later: one request", async () => {
    const { tg, secretary } = await setup();
    secretary.decide = lengths;
    const p1 = 'Журнал авторизаций кошельков за октябрь, первая выгрузка. '.repeat(40).trim();
    const p2 = `${'Строки с пустым статусом повторяются каждые пять минут. '.repeat(45).trim()} Почему так?`;
    expect([p1.length, p2.length]).toEqual([2319, 2531]);
    await splitPaste(tg, { id: 37104, username: 'u37104' }, { text: p1 }, { text: p2 });
    expect(secretary.calls.map((c) => c.request)).toEqual([`${p1}\n${p2}`]);
    expect(tg.sent).toHaveLength(1);
  }, 60_000);

  it('in a group: part 1 mentions the bot (4096, ends in "."), part 2 without a mention 3.5 s later: one request', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = lengths;
    const group = { id: -1003710500, type: 'supergroup' as const };
    const words = 'Строка лога: отказ авторизации кошелька. '.repeat(200);
    const lead = `@${tg.botUsername} `;
    let start = 0;
    while (words[start + 4095 - lead.length] !== '.') start += 1;
    const body = words.slice(start, start + 4096 - lead.length);
    const p2 = 'Ещё строки того же вида. Почему выгрузка пустая?';
    const first = { text: lead + body, entities: [{ type: 'mention', offset: 0, length: lead.length - 1 }] };
    // 3.5 s: Message.date 3 s or more apart, past the 2 s a merge window of 1.5 s allows.
    await splitPaste(tg, { id: 37105, username: 'u37105' }, first, { text: p2 }, 3500, group);
    expect(secretary.calls.map((c) => c.request)).toEqual([`${body}\n${p2}`]);
    expect(tg.sent).toHaveLength(1);
  }, 60_000);

  it('the T10 field case (4096 cut inside a word + 55) still joins without a line break', async () => {
    const { tg, secretary } = await setup();
    secretary.decide = lengths;
    const [p1, p2] = fieldT10();
    await splitPaste(tg, { id: 37106, username: 'u37106' }, { text: p1 }, { text: p2 });
    expect(secretary.calls.map((c) => c.request)).toEqual([`${p1}\n${p2}`]);
    expect(tg.sent).toHaveLength(1);
  }, 60_000);

  it('fast path kept: short messages 2.5 s apart are two requests, the first answered before the second is sent', async () => {
    const { tg, secretary } = await setup();
    const from = { id: 37107, username: 'u37107' };
    const started = Date.now();
    tg.pushMessage({ from, text: 'Где лог кассы?' });
    await waitUntil(() => tg.sent.length >= 1, 'first answered', 10_000);
    expect(Date.now() - started).toBeLessThan(2500);
    tg.pushMessage({ from, text: 'И где отчёт?' });
    await waitUntil(() => tg.pending() === 0 && tg.sent.length >= 2, 'second answered');
    expect(secretary.calls.map((c) => c.request)).toEqual(['Где лог кассы?', 'И где отчёт?']);
  });

  it('a long text sent while the bot was away (Message.date a minute old) is not held for SPLIT_PART_WAIT_MS', async () => {
    const { tg, secretary } = await setup();
    const text = `${'Заявка, отправленная, пока бот был недоступен. '.repeat(60).trim()}?`;
    const started = Date.now();
    tg.pushMessage({ from: { id: 37109, username: 'u37109' }, text, extra: { date: now() - 60 } });
    await waitUntil(() => tg.sent.length >= 1, 'answered', 25_000);
    // Its next part, had there been one, was sent within SPLIT_PART_JOIN_S of it: at Telegram long ago.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(secretary.calls.map((c) => c.request)).toEqual([text]);
  });

  it('a long text with nothing after it is answered after about SPLIT_PART_WAIT_MS, not the 30 s of a hard cut', async () => {
    const { tg, secretary } = await setup();
    const text = `${'Полный текст заявки без продолжения. '.repeat(80).trim()}?`;
    const started = Date.now();
    tg.pushMessage({ from: { id: 37108, username: 'u37108' }, text });
    await waitUntil(() => tg.sent.length >= 1, 'answered', 25_000);
    expect(Date.now() - started).toBeLessThan(12_000);
    await sleep(500);
    expect(secretary.calls.map((c) => c.request)).toEqual([text]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// 3. The answer sent to the supergroup a group became quotes nothing of the old group.
// ---------------------------------------------------------------------------------------------------------------
describe('s37: a group that became a supergroup', () => {
  it('after 400 migrate_to_chat_id the resend carries no reply_parameters of the old group', async () => {
    const { tg } = await setup();
    const group = { id: -93701, type: 'group' as const };
    const superId = -1009370100;
    tg.failChat(group.id, { code: 400, migrateToChatId: superId });
    const q = tg.pushMessage({
      chat: group,
      from: { id: 37201, username: 'u37201' },
      extra: mention(tg, 'нужен пропуск'),
    });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, superId).length === 1, 'answered in the supergroup');
    expect(triesTo(tg, group.id).map((c) => c.params['reply_parameters'])).toEqual([
      { message_id: q.message_id, allow_sending_without_reply: true },
    ]);
    expect(triesTo(tg, superId).map((c) => c.params['reply_parameters'])).toEqual([undefined]);
    // A question asked in the supergroup itself is still answered as a reply to it.
    const asked = tg.pushMessage({
      chat: { id: superId, type: 'supergroup' },
      from: { id: 37201, username: 'u37201' },
      extra: mention(tg, 'и ещё ключ'),
    });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, superId).length === 2, 'the second answer');
    expect(triesTo(tg, superId)[1]!.params['reply_parameters']).toEqual({
      message_id: asked.message_id,
      allow_sending_without_reply: true,
    });
  });

  it('after the service message carrying migrate_to_chat_id the answer still due goes there unquoted', async () => {
    const { tg, secretary } = await setup();
    const group = { id: -93702, type: 'group' as const };
    const superId = -1009370200;
    tg.failChat(group.id, { code: 400, migrateToChatId: superId });
    secretary.delayMs = 300;
    tg.pushMessage({ chat: group, from: { id: 37202 }, extra: mention(tg, 'нужен доступ') });
    tg.pushMessage({ chat: group, from: { id: 37202 }, extra: { migrate_to_chat_id: superId } });
    await waitUntil(() => tg.pending() === 0 && sentTo(tg, superId).length === 1, 'answered in the supergroup');
    expect(triesTo(tg, group.id)).toHaveLength(0);
    expect(triesTo(tg, superId).map((c) => c.params['reply_parameters'])).toEqual([undefined]);
  });
});
