// Approval buttons: POST /send with `buttons` (an inline keyboard on Telegram) and the presses of those buttons
// (callback queries) turned into approve/reject calls on the secretary, only from the approver chat.
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { NOT_APPROVER_REPLY } from '../src/telegram/telegram-channel.js';
import { startFakeSecretary } from './fake-secretary.js';
import { SERVICE_AUTH, openapi, startCommunicator, waitUntil, type Running } from './harness.js';

const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

const APPROVER = '-100500';
// The people allowed to press the buttons (APPROVER_TELEGRAM_USER_IDS); 666 and 4242 are not among them.
const APPROVER_USERS = '31337,31338,5';

async function setup(env: Record<string, string> = {}) {
  const tg = await startFakeTelegram();
  const secretary = await startFakeSecretary();
  open.push(tg, secretary);
  const communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    telegram: tg,
    env: {
      APPROVER_TELEGRAM_CHAT_ID: APPROVER,
      APPROVER_TELEGRAM_USER_IDS: APPROVER_USERS,
      SECRETARY_API_KEY: 'sec-key',
      ...env,
    },
  });
  open.push(communicator);
  return { tg, secretary, communicator };
}

const buttons = (id: number) => [
  { text: 'Одобрить', callback_data: `action:approve:${id}` },
  { text: 'Отклонить', callback_data: `action:reject:${id}` },
];

function checked(res: request.Response) {
  expect(openapi.responseProblems('send', res.status, res.body)).toEqual([]);
  return res;
}

/** Sends the approval message through POST /send and returns the message the fake Bot API got. */
async function sendApprovalRequest(c: Running, tg: FakeTelegram, id: number) {
  const res = checked(
    await request(c.app)
      .post('/send')
      .set(SERVICE_AUTH)
      .send({ channel: 'tg', to: APPROVER, text: `Нужно согласование: действие №${id}`, buttons: buttons(id) }),
  );
  expect(res.status).toBe(200);
  const sent = await tg.waitForSent(tg.sent.length);
  return sent[sent.length - 1]!;
}

describe('POST /send with buttons', () => {
  it('shows the buttons as one row of an inline keyboard under the message', async () => {
    const { tg, communicator } = await setup();
    const sent = await sendApprovalRequest(communicator, tg, 7);
    expect(sent.chat_id).toBe(Number(APPROVER));
    const markup = sent.params['reply_markup'];
    expect(typeof markup === 'string' ? JSON.parse(markup) : markup).toEqual({ inline_keyboard: [buttons(7)] });
  });

  it('refuses buttons on email, over 8 buttons, and callback_data over 64 bytes, naming the parameter', async () => {
    const { tg, communicator } = await setup();
    const email = checked(
      await request(communicator.app)
        .post('/send')
        .set(SERVICE_AUTH)
        .send({ channel: 'email', to: 'a@example.test', text: 'x', buttons: buttons(1) }),
    );
    expect(email.status).toBe(400);
    expect(email.body.message).toMatch(/buttons/);
    const many = checked(
      await request(communicator.app)
        .post('/send')
        .set(SERVICE_AUTH)
        .send({ channel: 'tg', to: '1', text: 'x', buttons: Array.from({ length: 9 }, () => buttons(1)[0]) }),
    );
    expect(many.status).toBe(400);
    expect(many.body.message).toMatch(/buttons/);
    // 40 Cyrillic characters: within 64 characters, but 80 bytes.
    const long = checked(
      await request(communicator.app)
        .post('/send')
        .set(SERVICE_AUTH)
        .send({ channel: 'tg', to: '1', text: 'x', buttons: [{ text: 'Да', callback_data: 'д'.repeat(40) }] }),
    );
    expect(long.status).toBe(400);
    expect(long.body.message).toMatch(/buttons.*64 bytes/);
    expect(tg.sent).toHaveLength(0);
  });
});

describe('approval button presses', () => {
  it('asks getUpdates for callback queries', async () => {
    const { tg } = await setup();
    await waitUntil(() => tg.callsOf('getUpdates').length > 0, 'a poll');
    const allowed = tg.callsOf('getUpdates')[0]!.params['allowed_updates'];
    expect(typeof allowed === 'string' ? JSON.parse(allowed) : allowed).toEqual(['message', 'callback_query']);
  });

  it('approves from the approver chat: the secretary is called once, the buttons go, the approver is told', async () => {
    const { tg, secretary, communicator } = await setup();
    secretary.awaitApproval(7);
    const message = await sendApprovalRequest(communicator, tg, 7);
    const press = tg.pushCallbackQuery({
      data: 'action:approve:7',
      from: { id: 31337, username: 'boss' },
      message: { message_id: message.message_id, chat_id: APPROVER },
    });
    const sent = await tg.waitForSent(2);
    expect(sent[1]!.chat_id).toBe(Number(APPROVER));
    // `by` is the presser's Telegram user id (a username can change hands; the id cannot).
    expect(sent[1]!.text).toMatch(/№7 одобрено \(telegram:31337\)/);
    expect(secretary.decisions).toEqual([
      { id: 7, decision: 'approve', by: 'telegram:31337', authorization: 'Bearer sec-key' },
    ]);
    expect(tg.callsOf('answerCallbackQuery').map((c) => c.params)).toEqual([
      expect.objectContaining({ callback_query_id: press.callback_query_id, text: 'Одобрено' }),
    ]);
    expect(tg.callsOf('editMessageReplyMarkup')[0]!.params).toMatchObject({
      chat_id: Number(APPROVER),
      message_id: message.message_id,
    });
    await waitUntil(() => tg.pending() === 0, 'the press to be confirmed');

    // A second press (a double click, or another approver) is "already decided", and nothing runs twice.
    tg.pushCallbackQuery({
      data: 'action:reject:7',
      from: { id: 31338 },
      message: { message_id: message.message_id, chat_id: APPROVER },
    });
    const again = await tg.waitForSent(3);
    expect(again[2]!.text).toMatch(/№7: уже решено/);
    expect(secretary.decisions.map((d) => d.decision)).toEqual(['approve', 'reject']);
    expect(tg.callsOf('answerCallbackQuery')[1]!.params).toMatchObject({ text: 'Уже решено' });
  });

  it('refuses a press from another chat: no call to the secretary, an alert to the presser', async () => {
    const { tg, secretary } = await setup();
    secretary.awaitApproval(9);
    tg.pushCallbackQuery({ data: 'action:approve:9', from: { id: 666, username: 'mallory' } });
    await waitUntil(() => tg.callsOf('answerCallbackQuery').length === 1, 'the press to be answered');
    expect(tg.callsOf('answerCallbackQuery')[0]!.params).toMatchObject({ text: NOT_APPROVER_REPLY });
    await waitUntil(() => tg.pending() === 0, 'the press to be confirmed');
    expect(secretary.decisions).toEqual([]);
    expect(tg.callsOf('editMessageReplyMarkup')).toHaveLength(0);
    expect(tg.sent).toHaveLength(0);
  });

  it('refuses a press in the approver chat by someone not in APPROVER_TELEGRAM_USER_IDS', async () => {
    const { tg, secretary } = await setup();
    secretary.awaitApproval(12);
    tg.pushCallbackQuery({
      data: 'action:approve:12',
      from: { id: 4242, username: 'boss' },
      message: { message_id: 2, chat_id: APPROVER },
    });
    await waitUntil(() => tg.callsOf('answerCallbackQuery').length === 1, 'the press to be answered');
    expect(tg.callsOf('answerCallbackQuery')[0]!.params).toMatchObject({ text: NOT_APPROVER_REPLY });
    await waitUntil(() => tg.pending() === 0, 'the press to be confirmed');
    expect(secretary.decisions).toEqual([]);
    expect(tg.sent).toHaveLength(0);
  });

  it('refuses a listed approver pressing outside the approver chat (a private chat with the bot)', async () => {
    const { tg, secretary } = await setup();
    secretary.awaitApproval(13);
    tg.pushCallbackQuery({
      data: 'action:approve:13',
      from: { id: 31337 },
      message: { message_id: 3, chat_id: 31337 },
    });
    await waitUntil(() => tg.callsOf('answerCallbackQuery').length === 1, 'the press to be answered');
    await waitUntil(() => tg.pending() === 0, 'the press to be confirmed');
    expect(secretary.decisions).toEqual([]);
  });

  it('refuses every press when APPROVER_TELEGRAM_CHAT_ID is not set', async () => {
    const { tg, secretary } = await setup({ APPROVER_TELEGRAM_CHAT_ID: '' });
    secretary.awaitApproval(3);
    tg.pushCallbackQuery({ data: 'action:approve:3', from: { id: 1 }, message: { message_id: 1, chat_id: 1 } });
    await waitUntil(() => tg.callsOf('answerCallbackQuery').length === 1, 'the press to be answered');
    expect(secretary.decisions).toEqual([]);
  });

  it('retries a press while the secretary is down, then decides it once', async () => {
    const { tg, secretary } = await setup();
    secretary.awaitApproval(11);
    secretary.down('analysis');
    tg.pushCallbackQuery({
      data: 'action:reject:11',
      from: { id: 5, username: 'boss' },
      message: { message_id: 4, chat_id: APPROVER },
    });
    await waitUntil(() => secretary.decisions.length >= 1, 'a first try');
    expect(tg.pending()).toBe(1);
    secretary.up();
    const [told] = await tg.waitForSent(1);
    expect(told!.text).toMatch(/№11 отклонено/);
    await waitUntil(() => tg.pending() === 0, 'the press to be confirmed');
    expect(tg.sent).toHaveLength(1);
    expect(secretary.decisions.length).toBeGreaterThan(1);
    expect(new Set(secretary.decisions.map((d) => `${d.id}:${d.decision}`))).toEqual(new Set(['11:reject']));
  });
});
