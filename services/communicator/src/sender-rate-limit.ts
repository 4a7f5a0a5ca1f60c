import { domainToASCII } from 'node:url';
import { rateLimitVerdictOf, type RateLimitVerdict } from '@workemon/contracts';
import { isAppError, type Logger } from '@workemon/service-kit';
import type { SecretaryClient } from './secretary-client.js';

/** The window of RATE_LIMIT_PER_HOUR, in seconds (sent as `window_seconds`). */
export const RATE_LIMIT_WINDOW_SECONDS = 3600;

/**
 * The mailbox an address reaches, as one budget key: NFKC, lower case, the local part unquoted (RFC 5322 §3.4.1
 * quoted-string) and without its `+detail` sub-address (RFC 5233), the domain in its ASCII (IDNA) form. So
 * `"Victim"+1@Client.test` and `victim+2@client.test` share `victim@client.test`'s budget. Merging more than a
 * provider would is the safe side for a limit.
 */
export function mailboxKey(address: string): string {
  const normalized = address.normalize('NFKC').trim().toLowerCase();
  const at = normalized.lastIndexOf('@');
  if (at <= 0) return normalized;
  let local = normalized.slice(0, at);
  if (local.length >= 2 && local.startsWith('"') && local.endsWith('"'))
    local = local.slice(1, -1).replace(/\\(.)/g, '$1');
  const plus = local.indexOf('+');
  if (plus > 0) local = local.slice(0, plus);
  const domain = normalized.slice(at + 1).replace(/\.$/, '');
  return `${local}@${domainToASCII(domain) || domain}`;
}

/** Budget keys as agreed with the secretary (docs/audit-and-limits.md); every intake of a sender shares one. */
export const rateLimitKey = {
  /** The sender of a mail, whatever its intake (IMAP or a webhook): `email:<mailbox>` (`mailboxKey`). */
  email: (address: string) => `email:${mailboxKey(address)}`.slice(0, 300),
  /** The address a reply goes to when it is not the sender (Reply-To): `reply-to:<mailbox>`. */
  replyTo: (address: string) => `reply-to:${mailboxKey(address)}`.slice(0, 300),
  /**
   * Every mail answered, whatever its sender or intake (RATE_LIMIT_MAILBOX_PER_HOUR): `mailbox:all`. Forged senders
   * each get a fresh per-sender budget; this one bounds the replies (and model calls) a flood of them can cause.
   */
  mailbox: 'mailbox:all',
  /** A Telegram user: `telegram:<user id>`. */
  telegram: (userId: number | string) => `telegram:${userId}`,
  /**
   * The caller of `POST /test` by its key's class and name (`test:key:client:<name>`; names are unique only within a
   * class), or `test:key:anonymous` for the open class of a keyless loopback install: the budget of
   * TEST_RATE_LIMIT_PER_KEY_PER_MINUTE.
   */
  testKey: (caller: { keyClass: string; name: string; anonymous?: true } | undefined) =>
    !caller || caller.anonymous ? 'test:key:anonymous' : `test:key:${caller.keyClass}:${caller.name}`.slice(0, 300),
};

/** One definition for every service (libs/contracts): the camelCase form of the contract's RateLimitVerdict. */
export type { RateLimitVerdict };

/**
 * Per-sender limits of RATE_LIMIT_PER_HOUR messages per hour, kept by the secretary (`POST /rate-limits/consume`,
 * in its database): they survive restarts and are shared by every communicator replica. The communicator keeps
 * no count of its own.
 */
export type SenderRateLimit = {
  /**
   * Takes one unit from each of `keys` (1..10; see `rateLimitKey`), all or nothing.
   * @throws the secretary's AppError when it cannot be asked (503 unreachable, 504 timeout, …): the caller must
   *   not answer the message now and leaves it for its next try — a message is never answered without a check.
   */
  consume: (keys: string[]) => Promise<RateLimitVerdict>;
  /**
   * What `consume(keys)` would answer now, taking nothing (a dry run's "would be rate limited"): the secretary's
   * `POST /rate-limits/check`, or this process's own count while the secretary is older than the routes (404).
   * @throws the secretary's AppError when it cannot be asked, as `consume`.
   */
  peek: (keys: string[]) => Promise<RateLimitVerdict>;
};

/**
 * The client of the secretary's durable limit. A secretary that answers 404 for the route is older than the
 * route (a rolling upgrade): the limit is then counted in this process, as before the route existed, with one
 * warning; the durable limit is used again as soon as the secretary answers it.
 */
export function createSenderRateLimit(deps: {
  secretary: Pick<SecretaryClient, 'consumeRateLimit' | 'checkRateLimit'>;
  limitPerHour: number;
  logger: Logger;
  now?: () => number;
}): SenderRateLimit {
  const local = createLocalWindow(deps.limitPerHour, deps.now);
  let warned = false;
  const request = (keys: string[]) => ({
    keys,
    limit: deps.limitPerHour,
    window_seconds: RATE_LIMIT_WINDOW_SECONDS,
  });
  return {
    peek: async (keys) => {
      try {
        return rateLimitVerdictOf(await deps.secretary.checkRateLimit(request(keys)));
      } catch (err) {
        // An older secretary has no check route: this process's own count (empty unless consume fell back too).
        if (!(isAppError(err) && err.status === 404)) throw err;
        return local(keys, { peek: true });
      }
    },
    consume: async (keys) => {
      try {
        const answer = await deps.secretary.consumeRateLimit({
          keys,
          limit: deps.limitPerHour,
          window_seconds: RATE_LIMIT_WINDOW_SECONDS,
        });
        return rateLimitVerdictOf(answer);
      } catch (err) {
        if (!(isAppError(err) && err.status === 404)) throw err;
        if (!warned) {
          warned = true;
          deps.logger.warn(
            'the secretary has no POST /rate-limits/consume (an older version): sender limits are counted in this ' +
              'process only until it is upgraded',
          );
        }
        return local(keys);
      }
    },
  };
}

/** A sliding window of one hour in memory, all or nothing over the keys (the fallback of an older secretary). */
function createLocalWindow(limitPerHour: number, now: () => number = Date.now) {
  const windowMs = RATE_LIMIT_WINDOW_SECONDS * 1000;
  const seen = new Map<string, number[]>();
  /** One unit from every key, all or nothing; `peek`: the verdict only, nothing recorded. */
  return (keys: string[], options: { peek?: boolean } = {}): RateLimitVerdict => {
    const t = now();
    for (const key of keys) {
      const recent = (seen.get(key) ?? []).filter((at) => t - at < windowMs);
      seen.set(key, recent);
      if (recent.length >= limitPerHour)
        return { allowed: false, key, retryAfterSeconds: Math.max(1, Math.ceil((recent[0]! + windowMs - t) / 1000)) };
    }
    if (options.peek) return { allowed: true };
    for (const key of keys) seen.get(key)!.push(t);
    if (seen.size > 10_000) {
      for (const [key, times] of seen) if (times.every((at) => t - at >= windowMs)) seen.delete(key);
    }
    return { allowed: true };
  };
}
