// Issue 16: the secretary's `no_reply: true` (a category such as automatic mail or marketing) means nothing is
// sent back, on either channel; and a mail's Subject reaches the secretary as its own field for routing rules.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AnalysisResponse } from '@workemon/contracts';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startFakeTelegram } from '@workemon/testkit/fake-telegram';
import { startSmtpSink } from '@workemon/testkit/smtp-sink';
import { answer, startFakeSecretary } from './fake-secretary.js';
import { buildEmail, startCommunicator, waitUntil } from './harness.js';

const noReply = (request: string): AnalysisResponse => ({
  is_enough: true,
  request,
  action: 'ответить на письмо',
  'context-response': '',
  question: '',
  response: '',
  category: 'marketing',
  confidence: 0.97,
  no_reply: true,
});

let dovecot: DovecotServer;
const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
beforeAll(async () => {
  dovecot = await startDovecot([{ user: 'bot-noreply@example.test', password: 'pw-noreply' }]);
});
afterAll(async () => {
  await dovecot?.destroy();
});
afterEach(async () => {
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

describe('no_reply from the secretary', () => {
  it('email: sends the Subject, sends no reply for no_reply, marks the mail seen but not answered', async () => {
    const user = 'bot-noreply@example.test';
    const sink = await startSmtpSink();
    const secretary = await startFakeSecretary((r) =>
      r.request.includes('Скидки') ? noReply(r.request) : answer(`Ответ на: ${r.request}`, r.request),
    );
    open.push(sink, secretary);
    const communicator = await startCommunicator({ secretaryUrl: secretary.url, dovecot, user, sink });
    open.push(communicator);

    const promo = await dovecot.append(
      buildEmail({ messageId: '<promo@shop.test>', subject: 'Скидки недели', body: 'Скидки на всё до пятницы' }),
      { user },
    );
    await waitUntil(
      async () => (await dovecot.messages({ user })).find((m) => m.uid === promo)?.flags.includes('\\Seen'),
      'the promotion to be marked seen',
    );
    // A real mail after it is answered: the channel is alive, so the silence above is a decision.
    await dovecot.append(buildEmail({ messageId: '<human@client.test>', subject: '[Инцидент] VPN' }), { user });
    const mails = await sink.waitForMails(1);
    expect(mails.map((m) => m.header('in-reply-to'))).toEqual(['<human@client.test>']);
    const flags = (await dovecot.messages({ user })).find((m) => m.uid === promo)!.flags;
    expect(flags).not.toContain('\\Answered');
    expect(secretary.calls.map((c) => c.subject)).toEqual(['Скидки недели', '[Инцидент] VPN']);
    expect(await communicator.metric('workemon_messages_skipped_total', { channel: 'email', reason: 'no_reply' })).toBe(
      1,
    );
  });

  it('telegram: sends nothing for no_reply and still confirms the update', async () => {
    const tg = await startFakeTelegram();
    const secretary = await startFakeSecretary((r) =>
      r.request.includes('Скидки') ? noReply(r.request) : answer(`Ответ на: ${r.request}`, r.request),
    );
    open.push(tg, secretary);
    const communicator = await startCommunicator({ secretaryUrl: secretary.url, telegram: tg });
    open.push(communicator);
    tg.pushMessage({ text: 'Скидки на подписку', from: { id: 90, username: 'promo' } });
    tg.pushMessage({ text: 'Как подключиться к VPN?', from: { id: 91, username: 'petrov' } });
    const sent = await tg.waitForSent(1);
    await waitUntil(() => tg.pending() === 0, 'both updates to be confirmed');
    expect(sent.map((m) => m.chat_id)).toEqual([91]);
    expect(tg.sent).toHaveLength(1);
    expect(secretary.calls.map((c) => c.subject)).toEqual([undefined, undefined]);
    expect(await communicator.metric('workemon_messages_skipped_total', { channel: 'tg', reason: 'no_reply' })).toBe(1);
  });
});
