import type { Channel } from '@workemon/contracts';
import type { KeyClass } from '@workemon/service-kit';
import type { UnknownUserPolicy } from './config.js';
import type { ResolvedEmployee } from './directory-repository.js';

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
};

/** The domain part of an address, lower case ('' when there is none). */
export function domainOf(address: string): string {
  const bare = (/<([^<>]+)>/.exec(address)?.[1] ?? address).trim().toLowerCase();
  const at = bare.lastIndexOf('@');
  return at < 0 ? '' : bare.slice(at + 1).replace(/\.$/, '');
}

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
 * - direct: the caller's API key (any class) vouches for the username; with no keys configured nobody does.
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
}): SenderTrust {
  const { channel, employee, claims } = input;
  const fromService = claims.principal === 'service';
  let authenticated = false;
  let method: TrustMethod = 'none';
  let detail: string;
  if (channel === 'email') {
    const claim = claims.senderAuthentication;
    if (!fromService) detail = 'sender_authentication is honoured only from a service key (the communicator)';
    else if (!claim) detail = 'the communicator sent no sender_authentication';
    else {
      authenticated = claim.verified;
      method = claim.verified && METHODS_FROM_MAIL.has(claim.method) ? (claim.method as TrustMethod) : 'none';
      detail = claim.reason;
    }
  } else if (channel === 'tg') {
    const id = claims.telegramUserId;
    if (!fromService) detail = 'telegram_user_id is honoured only from a service key (the communicator)';
    else if (!id) detail = 'the communicator sent no telegram_user_id';
    else if (!employee) {
      authenticated = true;
      detail = `Telegram user id ${id}, not in the directory`;
    } else if (!employee.employee.telegram_id) {
      detail = `the directory has no telegram_id for ${employee.employee.username}`;
    } else if (employee.employee.telegram_id !== id) {
      detail = `Telegram user id ${id} is not the directory's telegram_id of ${employee.employee.username}`;
    } else {
      authenticated = true;
      detail = `Telegram user id ${id} matches the directory`;
    }
    if (authenticated) method = 'telegram_id';
  } else if (claims.principal) {
    authenticated = true;
    method = 'api_key';
    detail = `vouched for by a ${claims.principal} key`;
  } else {
    detail = 'no API key vouches for the username (no keys are configured)';
  }
  return {
    known: !!employee,
    authenticated,
    external: channel === 'email' && !isCompanyDomain(domainOf(input.sender), input.companyDomains),
    unknownAllowed: input.unknownUserPolicy === 'allow',
    method,
    detail,
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
