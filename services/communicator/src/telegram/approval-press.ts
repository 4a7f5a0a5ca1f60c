/**
 * Whether a pressed Approve/Reject button counts (issue 9: approvals are bound to a person). It counts only
 * when the press came from the approver chat (`APPROVER_TELEGRAM_CHAT_ID`) and the presser's Telegram user id is
 * listed in `APPROVER_TELEGRAM_USER_IDS`: being in the chat is not enough (anyone a member adds could press), and
 * neither is being listed (a listed user could press a forwarded copy elsewhere). Ids compare as decimal strings,
 * as the Bot API sends them (`Chat.id`, `User.id`: integers up to 52 bits; group chat ids are negative).
 *
 * Returns the `by` the secretary records (`telegram:<user id>`), or why the press is refused.
 */
export function checkApprovalPress(
  press: { chatId: number | string | undefined; userId: number | string },
  settings: { approverChatId?: string; approverUserIds: readonly string[] },
): { ok: true; by: string } | { ok: false; reason: 'no_approver_chat' | 'wrong_chat' | 'not_approver' } {
  const chat = settings.approverChatId?.trim();
  if (!chat) return { ok: false, reason: 'no_approver_chat' };
  if (press.chatId === undefined || String(press.chatId) !== chat) return { ok: false, reason: 'wrong_chat' };
  const user = String(press.userId);
  if (!settings.approverUserIds.some((id) => id.trim() === user)) return { ok: false, reason: 'not_approver' };
  return { ok: true, by: `telegram:${user}` };
}
