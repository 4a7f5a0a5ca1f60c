// The trust rules on their own (sender-trust.ts) and what the outbox plans for a held-back action; the same rules
// end to end, with the real communicator, Dovecot and the fakes, are in actions/actions-e2e.test.ts.
import { describe, expect, it } from 'vitest';
import knexFactory from 'knex';
import { DEFAULT_POLICY, ACTION_JIRA, ACTION_MAILING_LIST } from '../src/actions/action-policy.js';
import { createExecutionRepository } from '../src/actions/execution-repository.js';
import { senderKeys, type ResolvedEmployee } from '../src/directory-repository.js';
import { addrSpecOf, domainOf } from '../src/email-address.js';
import { clientKeyUsernamesOf } from '../src/config.js';
import { assessSenderTrust, isCompanyDomain, withheldReason, type SenderClaims } from '../src/sender-trust.js';

const ivanov = {
  id: 1,
  employee: { username: 'ivanov', telegram_id: '4242', email: 'ivan@corp.example' },
  departmentRecord: null,
} as unknown as ResolvedEmployee;

const assess = (
  channel: 'email' | 'tg' | 'direct',
  claims: SenderClaims,
  options: { employee?: ResolvedEmployee; sender?: string; policy?: 'reply-only' | 'allow' | 'reject' } = {},
) =>
  assessSenderTrust({
    channel,
    sender: options.sender ?? 'ivan@corp.example',
    employee: 'employee' in options ? options.employee : ivanov,
    claims,
    unknownUserPolicy: options.policy ?? 'reply-only',
    companyDomains: ['corp.example'],
  });

const verified = { verified: true, method: 'dkim', reason: 'dkim=pass by corp.example' };
const JIRA = { reachesPeople: false };
const LIST = { reachesPeople: true };

describe('assessSenderTrust', () => {
  it('email: believes the verdict only from a service key', () => {
    const fromService = assess('email', { principal: 'service', senderAuthentication: verified });
    expect(fromService).toMatchObject({ known: true, authenticated: true, external: false, method: 'dkim' });
    expect(withheldReason(fromService, LIST)).toBeUndefined();
    const fromClient = assess('email', { principal: 'client', senderAuthentication: verified });
    expect(fromClient).toMatchObject({ authenticated: false, method: 'none' });
    expect(withheldReason(fromClient, JIRA)).toBe('sender_unauthenticated');
    expect(assess('email', { principal: 'service' }).detail).toBe('the communicator sent no sender_authentication');
  });

  it('email: outside COMPANY_DOMAINS → never a list or a colleague, whatever UNKNOWN_USER_POLICY says', () => {
    const trust = assess(
      'email',
      { principal: 'service', senderAuthentication: verified },
      { employee: undefined, sender: 'x@partner.example', policy: 'allow' },
    );
    expect(trust).toMatchObject({ known: false, external: true });
    expect(withheldReason(trust, LIST)).toBe('external_domain');
    // Jira reaches no colleague: under `allow` an authenticated outsider may still file a task.
    expect(withheldReason(trust, JIRA)).toBeUndefined();
    expect(isCompanyDomain('msk.corp.example', ['corp.example'])).toBe(true);
    expect(isCompanyDomain('evilcorp.example', ['corp.example'])).toBe(false);
  });

  it('email: a quoted local part that looks like an address is not that address (s35 review)', () => {
    // `"<ceo@corp.example>"@evil.example` is one address at evil.example, which may well pass DMARC for it.
    const forged = '"<ceo@corp.example>"@evil.example';
    expect(addrSpecOf(forged)).toBe(forged);
    expect(domainOf(forged)).toBe('evil.example');
    expect(senderKeys('email', forged).email).toBe(forged.toLowerCase());
    const trust = assess(
      'email',
      { principal: 'service', senderAuthentication: verified },
      { employee: undefined, sender: forged },
    );
    expect(trust).toMatchObject({ known: false, external: true });
    // The display forms clients give still resolve to their address.
    for (const shown of ['CEO <ceo@corp.example>', '"Smith, <J>" <ceo@corp.example>', ' <ceo@corp.example> ']) {
      expect(senderKeys('email', shown).email).toBe('ceo@corp.example');
      expect(domainOf(shown)).toBe('corp.example');
    }
    expect(domainOf('"x@y" <a@Corp.Example.>')).toBe('corp.example');
  });

  it('tg: the user id must be the directory’s telegram_id', () => {
    expect(assess('tg', { principal: 'service', telegramUserId: '4242' })).toMatchObject({
      authenticated: true,
      method: 'telegram_id',
    });
    const other = assess('tg', { principal: 'service', telegramUserId: '999' });
    expect(other.authenticated).toBe(false);
    expect(other.detail).toBe("Telegram user id 999 is not the directory's telegram_id of ivanov");
    expect(assess('tg', { principal: 'client', telegramUserId: '4242' }).authenticated).toBe(false);
  });

  it('direct: any API key vouches for the username; no key, no vouching; unknown users need `allow`', () => {
    expect(assess('direct', { principal: 'client' })).toMatchObject({ authenticated: true, method: 'api_key' });
    expect(assess('direct', {}).authenticated).toBe(false);
    const stranger = assess('direct', { principal: 'client' }, { employee: undefined });
    expect(withheldReason(stranger, JIRA)).toBe('sender_unknown');
    const allowed = assess('direct', { principal: 'client' }, { employee: undefined, policy: 'allow' });
    expect(withheldReason(allowed, JIRA)).toBeUndefined();
  });

  it('direct: a client key bound by CLIENT_KEY_USERNAMES vouches only for its usernames; the key is named', () => {
    const bindings = clientKeyUsernamesOf(['bob=Ivanov|petrov', 'portal=*'], ['bob', 'portal', 'other'], []);
    const direct = (keyName: string, sender: string, principal: 'client' | 'admin' = 'client') =>
      assessSenderTrust({
        channel: 'direct',
        sender,
        employee: ivanov,
        claims: { principal, keyName },
        unknownUserPolicy: 'reply-only',
        companyDomains: [],
        clientKeyUsernames: bindings,
      });
    // Bob's own usernames, in any case: vouched, and the key's name (never the key) is kept for the messages.
    expect(direct('bob', 'ivanov')).toMatchObject({ authenticated: true, method: 'api_key', vouchedBy: 'bob' });
    // Anyone else's: not vouched, so no side effect (withheld as unauthenticated, a reply only).
    const impersonation = direct('bob', 'smirnov');
    expect(impersonation).toMatchObject({ authenticated: false, method: 'none' });
    expect(impersonation.vouchedBy).toBeUndefined();
    expect(impersonation.detail).toBe(
      "the client key 'bob' vouches only for its own usernames (CLIENT_KEY_USERNAMES), not for this one",
    );
    expect(withheldReason(impersonation, JIRA)).toBe('sender_unauthenticated');
    // `*` and keys without an entry vouch for anyone (an integration signing its users in); admin keys always.
    expect(direct('portal', 'smirnov').authenticated).toBe(true);
    expect(direct('other', 'smirnov')).toMatchObject({ authenticated: true, vouchedBy: 'other' });
    expect(direct('bob', 'smirnov', 'admin').authenticated).toBe(true);
  });

  it('CLIENT_KEY_USERNAMES: a malformed entry, a key named twice or a name no API_KEYS entry has stops the start', () => {
    const problems: string[] = [];
    clientKeyUsernamesOf(['bob', 'bob=a', 'bob=b', 'eve=a', 'carl=a||b'], ['bob', 'carl'], problems);
    expect(problems).toEqual([
      'CLIENT_KEY_USERNAMES: entry 1 must be name=user1|user2 or name=*',
      "CLIENT_KEY_USERNAMES: entry 3 names the key 'bob' a second time",
      "CLIENT_KEY_USERNAMES: entry 4: no API_KEYS entry is named 'eve'",
      'CLIENT_KEY_USERNAMES: entry 5 must be name=user1|user2 or name=*',
    ]);
  });
});

describe('planExecution for a held-back action', () => {
  // Planning reads nothing: the repository is made over a query builder with no connection (no pool is opened).
  const { planExecution } = createExecutionRepository(knexFactory({ client: 'pg' }));
  const base = {
    channel: 'email' as const,
    jira: { configured: true, defaultProjectKey: 'OPS' },
    analysisId: 7,
    payload: { department: { name: 'IT', mailing_list: 'it@corp.example' }, jira_project: null },
  };

  it('is skipped with the reason, and the requester is told it was not done', () => {
    const plan = planExecution({
      ...base,
      action: ACTION_JIRA,
      policy: DEFAULT_POLICY,
      withheld: { reason: 'sender_unauthenticated', detail: 'no DKIM or SPF pass' },
    });
    expect(plan).toMatchObject({
      status: 'skipped',
      withheldReason: 'sender_unauthenticated',
      error: 'sender_unauthenticated: no DKIM or SPF pass',
      target: null,
    });
    expect(plan.notice).toContain('Отвечаю только сообщением');
  });

  it('waits for approval when ACTION_POLICY says approve, except mail from outside to a list', () => {
    const policy = { ...DEFAULT_POLICY, [ACTION_JIRA]: 'approve', [ACTION_MAILING_LIST]: 'approve' } as const;
    expect(
      planExecution({
        ...base,
        action: ACTION_JIRA,
        policy,
        withheld: { reason: 'sender_unknown', detail: 'not in the directory' },
      }),
    ).toMatchObject({ status: 'awaiting_approval', withheldReason: 'sender_unknown' });
    expect(
      planExecution({
        ...base,
        action: ACTION_MAILING_LIST,
        policy,
        withheld: { reason: 'external_domain', detail: 'partner.example' },
      }),
    ).toMatchObject({ status: 'skipped', withheldReason: 'external_domain' });
  });
});
