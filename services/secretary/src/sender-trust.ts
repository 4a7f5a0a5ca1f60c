import type { Channel } from '@workemon/contracts';
import type { KeyClass } from '@workemon/service-kit';
import type { UnknownUserPolicy } from './config.js';
import type { ResolvedEmployee } from './directory-repository.js';
import { domainOf } from './email-address.js';

/** Why a side-effect action did not run automatically (the execution log's `withheld_reason`). */
export const WITHHELD_REASONS = ['sender_unknown', 'sender_unauthenticated', 'external_domain'] as const;
export type WithheldReason = (typeof WITHHELD_REASONS)[number];

/** How the sender's identity was established (or `none`). */
export type TrustMethod = 'dkim' | 'spf' | 'dmarc' | 'telegram_id' | 'api_key' | 'none';

/** What the caller of /analyze-request claims about the sender, and who the caller is. */
export type SenderClaims = {
  /** The key class the caller authenticated with; undefined when no key was required or matched. */
  principal?: KeyClass;
  /** email: the communicator's Authentication-Results verdict (the contract's SenderAuthentication). */
  senderAuthentication?: { verified: boolean; method: string; reason: string };
  /** tg: the numeric user id from the Bot API. */
  telegramUserId?: string;
  /** The caller's key name (API_KEYS `name:key`; never the key), for the direct channel's vouching. */
  keyName?: string;
};

/**
 * The verdict on a sender, recorded on the analysis row (`analyses.sender_trust`) and consulted before any
 * side-effect action: `known` (in the directory), `authenticated` (the channel proved the identity), and for
 * email whether the address lies outside the company's domains.
 */
export type SenderTrust = {
  known: boolean;
  authenticated: boolean;
  /** email only: the sender's domain is not one of the company's (COMPANY_DOMAINS). */
  external: boolean;
  /** UNKNOWN_USER_POLICY=allow: senders outside the directory may trigger actions (still authenticated). */
  unknownAllowed: boolean;
  method: TrustMethod;
  /** Operator-facing explanation (never shown to the sender). */
  detail: string;
  /**
   * direct: the name of the API key that vouched for the username (`portal`, the `name:key` name; never the key).
   * Messages to colleagues and lists name it, so a request made in someone's name can be traced to the key.
   */
  vouchedBy?: string;
};

export { domainOf };

/** Whether `domain` is one of `companyDomains` or a subdomain of one. */
export function isCompanyDomain(domain: string, companyDomains: readonly string[]): boolean {
  if (!domain) return false;
  return companyDomains.some((d) => {
    const c = d.trim().toLowerCase().replace(/^@/, '').replace(/\.$/, '');
    return c !== '' && (domain === c || domain.endsWith(`.${c}`));
  });
}

const METHODS_FROM_MAIL = new Set(['dkim', 'spf', 'dmarc']);

/**
 * Decides how far the secretary trusts a sender (issue 9, "Trust in the sender"):
 * - email: authenticated only when a service principal (the communicator) passes `sender_authentication`
 *   with `verified: true` (its DMARC-aligned reading of the trusted Authentication-Results header);
 * - tg: authenticated only when a service principal passes `telegram_user_id` and it equals the directory's
 *   `telegram_id` of the employee (an unknown user's id proves only that id);
 * - direct: the caller's API key vouches for the username; a client key bound to usernames (CLIENT_KEY_USERNAMES)
 *   only for those; with no keys configured nobody does.
 * Claims from any other caller are ignored: a client key cannot make mail look signed.
 */
export function assessSenderTrust(input: {
  channel: Channel;
  sender: string;
  employee: ResolvedEmployee | undefined;
  claims: SenderClaims;
  unknownUserPolicy: UnknownUserPolicy;
  /** COMPANY_DOMAINS, or (unset) the domains of the directory's employees. */
  companyDomains: readonly string[];
  /** CLIENT_KEY_USERNAMES: the usernames a bound client key may vouch for; absent: every key vouches for any. */
  clientKeyUsernames?: ReadonlyMap<string, ReadonlySet<string> | '*'>;
}): SenderTrust {
  const { channel, employee, claims } = input;
  const verdict: Verdict =
    channel === 'email'
      ? mailVerdict(claims)
      : channel === 'tg'
        ? telegramVerdict(claims, employee)
        : claims.principal
          ? vouchingOf(claims, input.sender, input.clientKeyUsernames)
          : {
              authenticated: false,
              method: 'none',
              detail: 'no API key vouches for the username (no keys are configured)',
            };
  const { authenticated, method, detail, vouchedBy } = verdict;
  return {
    known: !!employee,
    authenticated,
    external: channel === 'email' && !isCompanyDomain(domainOf(input.sender), input.companyDomains),
    unknownAllowed: input.unknownUserPolicy === 'allow',
    method,
    detail,
    ...(vouchedBy && { vouchedBy }),
  };
}

/** How one channel's claims were weighed: SenderTrust's `authenticated`, `method`, `detail` and `vouchedBy`. */
type Verdict = { authenticated: boolean; method: TrustMethod; detail: string; vouchedBy?: string };

/** email: the communicator's (a service key's) DMARC-aligned reading of the trusted Authentication-Results. */
function mailVerdict(claims: SenderClaims): Verdict {
  const claim = claims.senderAuthentication;
  if (claims.principal !== 'service')
    return {
      authenticated: false,
      method: 'none',
      detail: 'sender_authentication is honoured only from a service key (the communicator)',
    };
  if (!claim) return { authenticated: false, method: 'none', detail: 'the communicator sent no sender_authentication' };
  const method = claim.verified && METHODS_FROM_MAIL.has(claim.method) ? (claim.method as TrustMethod) : 'none';
  return { authenticated: claim.verified, method, detail: claim.reason };
}

/** tg: the Bot API user id the communicator (a service key) passes, against the directory's telegram_id. */
function telegramVerdict(claims: SenderClaims, employee: ResolvedEmployee | undefined): Verdict {
  const id = claims.telegramUserId;
  const refused = (detail: string): Verdict => ({ authenticated: false, method: 'none', detail });
  if (claims.principal !== 'service')
    return refused('telegram_user_id is honoured only from a service key (the communicator)');
  if (!id) return refused('the communicator sent no telegram_user_id');
  if (!employee)
    return { authenticated: true, method: 'telegram_id', detail: `Telegram user id ${id}, not in the directory` };
  const { telegram_id: known, username } = employee.employee;
  if (!known) return refused(`the directory has no telegram_id for ${username}`);
  if (known !== id) return refused(`Telegram user id ${id} is not the directory's telegram_id of ${username}`);
  return { authenticated: true, method: 'telegram_id', detail: `Telegram user id ${id} matches the directory` };
}

/**
 * The direct channel: whether the caller's key vouches for `sender`. Any key does, except a client key bound to
 * usernames (CLIENT_KEY_USERNAMES) for a username not among them.
 */
function vouchingOf(
  claims: SenderClaims,
  sender: string,
  clientKeyUsernames: ReadonlyMap<string, ReadonlySet<string> | '*'> | undefined,
): Verdict {
  const key = `${claims.principal} key${claims.keyName ? ` '${claims.keyName}'` : ''}`;
  const bound = claims.principal === 'client' && claims.keyName ? clientKeyUsernames?.get(claims.keyName) : undefined;
  if (bound && bound !== '*' && !bound.has(sender.toLowerCase()))
    return {
      authenticated: false,
      method: 'none',
      detail: `the ${key} vouches only for its own usernames (CLIENT_KEY_USERNAMES), not for this one`,
    };
  return {
    authenticated: true,
    method: 'api_key',
    detail: `vouched for by the ${key}`,
    ...(claims.keyName && { vouchedBy: claims.keyName }),
  };
}

/**
 * Why `action` must not run automatically for this sender, or undefined when it may. Mail from outside the
 * company never reaches a department list or a colleague, whatever the policy; every side effect needs a known
 * (or, under UNKNOWN_USER_POLICY=allow, any) and authenticated sender.
 */
export function withheldReason(trust: SenderTrust, action: { reachesPeople: boolean }): WithheldReason | undefined {
  if (trust.external && action.reachesPeople) return 'external_domain';
  if (!trust.known && !trust.unknownAllowed) return 'sender_unknown';
  if (!trust.authenticated) return 'sender_unauthenticated';
  return undefined;
}
