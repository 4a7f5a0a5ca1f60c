import type { SenderRateLimit } from '../sender-rate-limit.js';
import { rateLimitKey } from '../sender-rate-limit.js';
import { parseInboundMail, type InboundMail } from './mail-parsing.js';
import { replyAddressOf } from './mail-pipeline.js';
import { authenticateMail } from './sender-authentication.js';

/**
 * What a dry run reads of the budgets the real pipeline draws from (mail-pipeline.ts `rateLimitStep`), and what it
 * needs to name the keys as that step does. Read with `peek` only: a dry run never takes a unit.
 */
export type DryRunBudgets = {
  /** RATE_LIMIT_PER_HOUR: the sender (`email:<address>`) and a differing reply address (`reply-to:<address>`). */
  rateLimit: Pick<SenderRateLimit, 'peek'>;
  /** RATE_LIMIT_MAILBOX_PER_HOUR (`mailbox:all`); absent: no such limit (0). */
  mailboxRateLimit?: Pick<SenderRateLimit, 'peek'>;
  /** COMPANY_DOMAINS: where the reply may go (Reply-To), and whose authenticated senders the mailbox does not count. */
  companyDomains: readonly string[];
  /** TRUSTED_AUTHSERV_ID: whose Authentication-Results count (the mail is tried as if it came by IMAP). */
  trustedAuthservIds: readonly string[];
  /** Our own addresses, as the pipeline parses mail (a Reply-To naming one of them is not a reply address). */
  ownAddresses: readonly string[];
};

/**
 * The budget a mail would be refused by now (communicator.yaml `DryRunVerdict.rate_limit`): `sender`
 * (RATE_LIMIT_PER_HOUR) or `mailbox` (RATE_LIMIT_MAILBOX_PER_HOUR), its exhausted key and whole seconds until it has
 * a unit again.
 */
export type OverBudget = { limit: 'sender' | 'mailbox'; key: string; retry_after_seconds: number };

/** The audit detail of each limit, as the real pipeline writes it (mail-pipeline.ts OVER_LIMIT). */
export const OVER_BUDGET_DETAIL: Record<OverBudget['limit'], string> = {
  sender: 'over RATE_LIMIT_PER_HOUR',
  mailbox: 'over RATE_LIMIT_MAILBOX_PER_HOUR (all mail together)',
};

/**
 * Thrown by a dry run's step before the secretary is asked when the mail would be rate limited, so the pass ends
 * there as a real one would (no decision, no model call, nothing drawn from the caller's budget); the dry run turns
 * it into its `skipped` / `rate-limited` verdict.
 */
export class WouldBeRateLimitedError extends Error {
  constructor(readonly over: OverBudget) {
    super(`the mail would be rate limited: ${OVER_BUDGET_DETAIL[over.limit]} (${over.key})`);
  }
}

const domainOf = (address: string) => address.slice(address.lastIndexOf('@') + 1).toLowerCase();

/**
 * Which budget the mail would be refused by if it arrived now, read without drawing (`peek`): first the sender's and
 * its reply address's (RATE_LIMIT_PER_HOUR), then, for a sender who is not an authenticated colleague (in
 * COMPANY_DOMAINS with a verified Authentication-Results of TRUSTED_AUTHSERV_ID), the mailbox's (`mailbox:all`) —
 * the order and the exemption of mail-pipeline.ts `overLimit`. Undefined: within both, or no sender (the pipeline
 * skips such mail before any limit). `mail` is the parsed mail when the caller has it; else `raw` is parsed.
 * @throws the secretary's AppError when the budgets cannot be read (503, 504): no dry run guesses a budget.
 */
export async function overBudget(
  budgets: DryRunBudgets,
  raw: Buffer,
  mail?: Pick<InboundMail, 'from' | 'replyTo'>,
): Promise<OverBudget | undefined> {
  const parsed = mail ?? (await parseInboundMail(raw, { ownAddresses: budgets.ownAddresses }));
  const sender = parsed.from;
  if (!sender) return undefined;
  const replyTo = replyAddressOf(parsed, budgets.companyDomains);
  const keys = [rateLimitKey.email(sender)];
  if (replyTo.toLowerCase() !== sender.toLowerCase()) keys.push(rateLimitKey.replyTo(replyTo));
  const own = await budgets.rateLimit.peek(keys);
  if (!own.allowed) return { limit: 'sender', key: own.key, retry_after_seconds: own.retryAfterSeconds };
  if (!budgets.mailboxRateLimit || isColleague(budgets, raw, sender)) return undefined;
  const all = await budgets.mailboxRateLimit.peek([rateLimitKey.mailbox]);
  return all.allowed ? undefined : { limit: 'mailbox', key: all.key, retry_after_seconds: all.retryAfterSeconds };
}

/** An authenticated sender in COMPANY_DOMAINS: not counted against the mailbox (mail-pipeline.ts isColleague). */
function isColleague(budgets: DryRunBudgets, raw: Buffer, sender: string): boolean {
  const domain = domainOf(sender);
  if (!budgets.companyDomains.some((d) => domain === d || domain.endsWith(`.${d}`))) return false;
  return authenticateMail({
    source: raw,
    from: sender,
    trustedAuthservIds: budgets.trustedAuthservIds,
    setting: 'TRUSTED_AUTHSERV_ID',
  }).verified;
}
