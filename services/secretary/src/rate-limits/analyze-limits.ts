import { errors, type AppError, type Principal } from '@workemon/service-kit';
import type { RateLimitEntry, RateLimitStore, RateLimitVerdict } from './rate-limit-store.js';

/** ANALYZE_RATE_LIMIT_PER_USERNAME_PER_HOUR's default: requests one username may make per hour (0: no limit). */
export const DEFAULT_ANALYZE_LIMIT_PER_USERNAME_PER_HOUR = 60;
/** ANALYZE_RATE_LIMIT_PER_KEY_PER_MINUTE's default: requests one API key may make per minute (0: no limit). */
export const DEFAULT_ANALYZE_LIMIT_PER_KEY_PER_MINUTE = 120;

export type AnalyzeLimits = {
  /** Requests per username per hour; 0 switches the limit off. */
  perUsernamePerHour: number;
  /** Requests per API key (by the key's class and name: analyzeApiKeyKey) per minute; 0 switches the limit off. */
  perKeyPerMinute: number;
};

/**
 * The bucket of a username's hourly budget (the communicator's own keys never start with `analyze:`):
 * `analyze:username:<name>` for admin keys and the anonymous loopback caller, and for a client key its own,
 * `analyze:username:client:<key name>:<name>`: a client key vouches for the names it sends, so with one shared
 * bucket any key could spend another application's users' budget and lock them out (found by a new-user attack:
 * 62 calls as `Victim2` from one key answered another key's calls for `victim2` with 429). A key's name holds no `:`.
 */
export const analyzeUsernameKey = (username: string, principal?: Principal) => {
  const name = username.trim().toLowerCase();
  const owner = principal?.keyClass === 'client' && !principal.anonymous ? `client:${principal.name}:` : '';
  return `analyze:username:${owner}${name}`.slice(0, 300);
};
/**
 * The per-key budget's bucket of a caller: `analyze:key:<class>:<name>` for a key (names are unique only within a
 * class: `API_KEYS=ops:…` and `ADMIN_API_KEYS=ops:…` are two budgets), `analyze:key:anonymous` for the open class of
 * a keyless loopback install (a key's name cannot contain `:`, so no key shares it).
 */
export const analyzeApiKeyKey = (principal: Principal | undefined): string =>
  !principal || principal.anonymous
    ? 'analyze:key:anonymous'
    : `analyze:key:${principal.keyClass}:${principal.name}`.slice(0, 300);

/**
 * The budgets one /analyze-request call draws from. Service-key callers (the communicator) draw from neither:
 * it checks its own per-sender limits (`email:`, `reply-to:`, `telegram:` keys, POST /rate-limits/consume)
 * before it calls, and a 429 here would leave a mail it already decided to answer waiting for a retry. Every
 * other caller (client and admin keys, and the anonymous caller of an open loopback install, which counts as
 * the key `anonymous`) draws from the username's hourly budget and from its key's per-minute budget.
 */
export function analyzeLimitEntries(
  limits: AnalyzeLimits,
  caller: { principal: Principal | undefined; username: string },
): RateLimitEntry[] {
  if (caller.principal?.keyClass === 'service') return [];
  const entries: RateLimitEntry[] = [];
  if (limits.perUsernamePerHour > 0)
    entries.push({
      key: analyzeUsernameKey(caller.username, caller.principal),
      limit: limits.perUsernamePerHour,
      windowSeconds: 3600,
    });
  if (limits.perKeyPerMinute > 0)
    entries.push({
      key: analyzeApiKeyKey(caller.principal),
      limit: limits.perKeyPerMinute,
      windowSeconds: 60,
    });
  return entries;
}

/**
 * The 429 `rate_limited` (with `Retry-After`, whole seconds) for a refused /analyze-request: it names the
 * exhausted budget in words the caller can act on.
 */
export function analyzeLimitRefusal(
  limits: AnalyzeLimits,
  username: string,
  verdict: Extract<RateLimitVerdict, { allowed: false }>,
): AppError {
  const which = verdict.key.startsWith('analyze:username:')
    ? `username '${username.trim()}' (${limits.perUsernamePerHour} requests per hour)`
    : `this API key (${limits.perKeyPerMinute} requests per minute)`;
  return errors.tooManyRequests(
    verdict.retryAfterSeconds,
    `Too many requests for ${which}; retry in ${verdict.retryAfterSeconds} s`,
  );
}

/**
 * What one analysed request draws from, for the analyzer to take beside its first statement (a draw sent at the
 * same time as the lookup): the entries, and the error to throw when the draw is refused. Undefined when nothing
 * applies.
 */
export type AnalyzeBudget = {
  entries: RateLimitEntry[];
  refusal: (verdict: Extract<RateLimitVerdict, { allowed: false }>) => AppError;
};

/** The budget an /analyze-request call draws from (analyzeLimitEntries), or undefined when none applies. */
export function analyzeBudget(
  limits: AnalyzeLimits,
  caller: { principal: Principal | undefined; username: string },
): AnalyzeBudget | undefined {
  const entries = analyzeLimitEntries(limits, caller);
  if (entries.length === 0) return undefined;
  return { entries, refusal: (verdict) => analyzeLimitRefusal(limits, caller.username, verdict) };
}

/**
 * The draw of a dry run (`dry_run: true`), or throws 429 `rate_limited` with `Retry-After` (whole seconds) before
 * any LLM is called. A dry run calls the guesser and the system analyst like any request, so it takes one unit
 * from the caller's per-key budget (`ANALYZE_RATE_LIMIT_PER_KEY_PER_MINUTE`: what bounds a key's use of the model).
 * The username's hourly budget counts the answers a person gets, and a dry run answers nobody: it is checked (a
 * username over it gets 429 here too) but nothing is taken from it. Service keys draw from neither
 * (analyzeLimitEntries). The analysed (not dry) request path draws beside its lookup instead (analyzeBudget).
 */
export async function enforceDryRunLimits(
  store: RateLimitStore,
  limits: AnalyzeLimits,
  caller: { principal: Principal | undefined; username: string },
): Promise<void> {
  const entries = analyzeLimitEntries(limits, caller);
  const usernameKey = analyzeUsernameKey(caller.username, caller.principal);
  const checked = entries.filter((entry) => entry.key === usernameKey);
  const taken = entries.filter((entry) => entry.key !== usernameKey);
  const refuse = (verdict: RateLimitVerdict) => {
    if (!verdict.allowed) throw analyzeLimitRefusal(limits, caller.username, verdict);
  };
  if (checked.length) refuse(await store.check(checked));
  if (taken.length) refuse(await store.consume(taken));
}
