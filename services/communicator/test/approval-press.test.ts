import { describe, expect, it } from 'vitest';
import { checkApprovalPress } from '../src/telegram/approval-press.js';

const settings = { approverChatId: '-100500', approverUserIds: ['31337', '42'] };

describe('checkApprovalPress', () => {
  it('accepts a listed user in the approver chat, recording telegram:<user id>', () => {
    expect(checkApprovalPress({ chatId: -100500, userId: 31337 }, settings)).toEqual({
      ok: true,
      by: 'telegram:31337',
    });
    expect(checkApprovalPress({ chatId: '-100500', userId: '42' }, settings)).toEqual({ ok: true, by: 'telegram:42' });
  });

  it('refuses the right chat with an unlisted user, and a listed user in another chat', () => {
    expect(checkApprovalPress({ chatId: -100500, userId: 666 }, settings)).toEqual({
      ok: false,
      reason: 'not_approver',
    });
    // A private chat with the bot has the user's own id as chat id: still not the approver chat.
    expect(checkApprovalPress({ chatId: 31337, userId: 31337 }, settings)).toEqual({ ok: false, reason: 'wrong_chat' });
    expect(checkApprovalPress({ chatId: undefined, userId: 31337 }, settings)).toEqual({
      ok: false,
      reason: 'wrong_chat',
    });
  });

  it('refuses everyone without an approver chat or without approver ids', () => {
    expect(checkApprovalPress({ chatId: -100500, userId: 31337 }, { approverUserIds: ['31337'] })).toEqual({
      ok: false,
      reason: 'no_approver_chat',
    });
    expect(checkApprovalPress({ chatId: -100500, userId: 31337 }, { ...settings, approverUserIds: [] })).toEqual({
      ok: false,
      reason: 'not_approver',
    });
  });

  it('compares whole ids, never prefixes or numbers that merely look alike', () => {
    expect(checkApprovalPress({ chatId: -100500, userId: 3133 }, settings).ok).toBe(false);
    expect(checkApprovalPress({ chatId: -1005000, userId: 31337 }, settings).ok).toBe(false);
  });
});
