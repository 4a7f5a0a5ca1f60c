import { domainToASCII } from 'node:url';
import { getDomain } from 'tldts';
import type { SenderAuthentication } from '@workemon/contracts';

/**
 * The communicator's verdict on a mail's sender, passed to the secretary as `sender_authentication` (the
 * contract's SenderAuthentication): `verified` when the receiving server's Authentication-Results show a DMARC
 * pass, or a DKIM or SPF pass aligned with the `From:` domain; `reason` explains either way (for the log).
 */
export type { SenderAuthentication };

/** One `method=result` of an Authentication-Results header, with its `ptype.property=value` pairs. */
export type AuthResult = {
  /** Lower case, without a method version (`dkim`, `spf`, `dmarc`, …). */
  method: string;
  /** Lower case (`pass`, `fail`, `softfail`, `none`, …). */
  result: string;
  /** Keyed `ptype.property` in lower case (`header.d`, `header.i`, `smtp.mailfrom`, `header.from`). */
  properties: Record<string, string>;
};

/** A parsed Authentication-Results header (RFC 8601 §2.2). `authservId` is '' when the header has none. */
export type AuthenticationResults = { authservId: string; results: AuthResult[] };

/** Replaces RFC 5322 comments (nested, with quoted-pairs) by a space, leaving quoted strings alone. */
function stripComments(text: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (depth === 0 && quoted) {
      out += c;
      if (c === '\\' && i + 1 < text.length) out += text[++i];
      else if (c === '"') quoted = false;
    } else if (c === '\\' && depth > 0) i += 1;
    else if (c === '(') {
      if (depth === 0) out += ' ';
      depth += 1;
    } else if (c === ')' && depth > 0) depth -= 1;
    else if (depth === 0) {
      if (c === '"') quoted = true;
      out += c;
    }
  }
  return out;
}

/** Splits on `separator` outside quoted strings. */
function splitOutsideQuotes(text: string, separator: RegExp): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i]!;
    if (quoted) {
      current += c;
      if (c === '\\' && i + 1 < text.length) current += text[++i];
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
      current += c;
    } else if (separator.test(c)) {
      parts.push(current);
      current = '';
    } else current += c;
  }
  parts.push(current);
  return parts.map((p) => p.trim()).filter(Boolean);
}

/** A `value` (RFC 2045 token or quoted-string) as plain text. */
function unquote(value: string): string {
  const v = value.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\(.)/g, '$1');
  return v;
}

/**
 * Parses the value of one Authentication-Results header field (RFC 8601 §2.2): the authserv-id, then
 * `;`-separated `method[/version]=result [reason=…] [ptype.property=value …]`. Comments are dropped; a
 * non-conforming part (Microsoft's `action=none`, `compauth=…`) is kept as a method or ignored as a property,
 * never fatal. A header starting with a result (Microsoft 365 writes no authserv-id) gets `authservId: ''`.
 */
export function parseAuthenticationResults(value: string): AuthenticationResults {
  const text = stripComments(value.replace(/\r?\n[ \t]+/g, ' '))
    // CFWS is allowed around "=", "." and "/" (RFC 8601 §2.2): glue them so that a space separates items only.
    .replace(/\s*=\s*/g, '=')
    .replace(/\s*\/\s*/g, '/');
  const [head = '', ...resinfos] = splitOutsideQuotes(text, /;/);
  let authservId = '';
  if (head.includes('=')) resinfos.unshift(head);
  else authservId = unquote(head.split(/\s+/)[0] ?? '').toLowerCase();
  const results: AuthResult[] = [];
  for (const resinfo of resinfos) {
    const [methodspec, ...rest] = splitOutsideQuotes(resinfo, /\s/);
    const eq = methodspec?.indexOf('=') ?? -1;
    if (!methodspec || eq <= 0) continue; // `none` (no result) and stray words
    const method = methodspec.slice(0, eq).split('/')[0]!.toLowerCase();
    const result = unquote(methodspec.slice(eq + 1)).toLowerCase();
    const properties: Record<string, string> = {};
    for (const item of rest) {
      const at = item.indexOf('=');
      if (at <= 0) continue;
      const key = item.slice(0, at).replace(/\s+/g, '').toLowerCase();
      if (!/^[a-z0-9-]+\.[a-z0-9_-]+$/.test(key)) continue; // reason=… and vendor extras
      properties[key] = unquote(item.slice(at + 1));
    }
    results.push({ method, result, properties });
  }
  return { authservId, results };
}

/**
 * The values of every `Authentication-Results` field of a raw mail, topmost first (the order servers prepend
 * them in). Only the header block is read; folded lines are unfolded.
 */
export function authenticationResultsHeaders(source: Buffer | string): string[] {
  return headerValues(source, 'authentication-results');
}

/** The values of every field `name` (lower-case) of a raw mail's header block, in order; folded lines unfolded. */
export function headerValues(source: Buffer | string, name: string): string[] {
  const raw = typeof source === 'string' ? source : source.toString('latin1');
  const end = raw.search(/\r?\n\r?\n/);
  const head = (end < 0 ? raw : raw.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const values: string[] = [];
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) values.push(line.slice(colon + 1).trim());
  }
  return values;
}

/**
 * A DMARC pass a mail provider reported in a notification signed by it, outside the mail (SES's
 * `receipt.dmarcVerdict`, docs "Contents of notifications for Amazon SES email receiving"): `domain` the From:
 * domain it was evaluated for (the notification's `mail.commonHeaders.from`), `by` who says so.
 */
export type ProviderDmarcPass = { domain: string; by: string };

const ODD_LOCAL_PART = 'the From: address has a quoted local part with characters no mailbox of a person needs';

/**
 * Whether a bare address's local part holds quotes, `<`, `>`, `@`, white space or a backslash: `"<ceo@corp.test>"@evil.test`
 * is a DMARC pass for evil.test written to look like another address to whoever reads it loosely (s35 review).
 */
const hasOddLocalPart = (address: string): boolean => /["<>@\s\\]/.test(address.slice(0, address.lastIndexOf('@')));

/**
 * The verdict for a raw mail: `authenticateSender` over its Authentication-Results, else a provider's signed DMARC
 * pass for the From: domain (`providerDmarcPass`); except that a mail with more than one `From:` field is never
 * authenticated. RFC 5322 §3.6 allows exactly one; with two, a DMARC evaluator and our parser may judge different
 * authors (the first versus the last), so no pass can be attributed to either. `setting` names where the trusted
 * ids come from, for the reason when there are none (TRUSTED_AUTHSERV_ID for IMAP mail, MAILGUN_TRUSTED_AUTHSERV_ID
 * … for a webhook's: a header naming the IMAP server in webhook mail never passed that server, so the sender wrote
 * it). A From: with an odd local part (hasOddLocalPart) is never verified, whoever vouches for its domain.
 */
export function authenticateMail(input: {
  source: Buffer | string;
  from: string | undefined;
  trustedAuthservIds: readonly string[];
  setting?: string;
  providerDmarcPass?: ProviderDmarcPass;
}): SenderAuthentication {
  if (headerValues(input.source, 'from').length > 1) {
    return { verified: false, method: 'none', reason: 'the mail has more than one From: field (RFC 5322 §3.6)' };
  }
  if (input.from && hasOddLocalPart(input.from)) return { verified: false, method: 'none', reason: ODD_LOCAL_PART };
  const verdict = authenticateSender({
    headers: authenticationResultsHeaders(input.source),
    from: input.from,
    trustedAuthservIds: input.trustedAuthservIds,
    setting: input.setting,
  });
  const provider = input.providerDmarcPass;
  const fromDomain = domainPart(input.from);
  // Compared in their ASCII (IDNA) forms: `почта.рф` and `xn--80a1acny.xn--p1ai` are one domain.
  const ascii = (d: string) => domainToASCII(d) || d;
  if (verdict.verified || !provider || !fromDomain || ascii(domainPart(provider.domain)) !== ascii(fromDomain))
    return verdict;
  return { verified: true, method: 'dmarc', reason: `dmarc=pass for ${fromDomain} (${provider.by})` };
}

/** Whether an authserv-id is one of the trusted ones: exact (case-insensitive), or `*.suffix` for any host under it. */
export function isTrustedAuthservId(authservId: string, trusted: readonly string[]): boolean {
  const id = authservId.toLowerCase();
  if (!id) return false;
  return trusted.some((t) => {
    const entry = t.trim().toLowerCase();
    if (entry.startsWith('*.')) return id.endsWith(entry.slice(1)) && id.length > entry.length - 1;
    return entry !== '' && id === entry;
  });
}

/** The domain of an address (`user@Example.COM` → `example.com`), or the value itself when it has no `@`. */
function domainPart(value: string | undefined): string {
  const v = (value ?? '').trim().toLowerCase().replace(/^<|>$/g, '');
  const at = v.lastIndexOf('@');
  return (at < 0 ? v : v.slice(at + 1)).replace(/\.$/, '');
}

/**
 * The Organizational Domain of RFC 7489 §3.2: the public suffix (Public Suffix List, ICANN and private sections)
 * plus one label, e.g. `mail.corp.example.co.uk` → `example.co.uk`. A name the list does not cover is its own.
 */
export function organizationalDomain(domain: string): string {
  const d = domain.toLowerCase().replace(/\.$/, '');
  return getDomain(d, { allowPrivateDomains: true }) ?? d;
}

/** DMARC relaxed alignment (RFC 7489 §3.1.1, §3.1.2): both domains share an Organizational Domain. */
export function isAligned(domain: string, fromDomain: string): boolean {
  if (!domain || !fromDomain) return false;
  return organizationalDomain(domain) === organizationalDomain(fromDomain);
}

/**
 * Authenticates a mail's `From:` from the Authentication-Results its receiving server stamped.
 * Only the topmost header whose authserv-id is in `trustedAuthservIds` counts: anyone can add such headers to
 * a mail they send, and a receiving server prepends its own above them (RFC 8601 §5 has it remove forged copies
 * too; taking the topmost one does not depend on that). Verified when that header shows
 * - `dmarc=pass` naming this From: domain in `header.from`, or
 * - `dkim=pass` with `header.d` (or `header.i`) aligned with the From: domain, or
 * - `spf=pass` with `smtp.mailfrom` (Yandex writes `smtp.mail`) aligned with it.
 * No trusted ids (`setting`, TRUSTED_AUTHSERV_ID by default, unset) → never verified.
 */
export function authenticateSender(input: {
  /** Values of every Authentication-Results field, topmost first (`authenticationResultsHeaders`). */
  headers: readonly string[];
  /** The From: address. */
  from: string | undefined;
  trustedAuthservIds: readonly string[];
  /** The configuration key of `trustedAuthservIds`, for the reason when it is empty (default TRUSTED_AUTHSERV_ID). */
  setting?: string;
}): SenderAuthentication {
  const fail = (reason: string): SenderAuthentication => ({ verified: false, method: 'none', reason });
  if (!input.trustedAuthservIds.length)
    return fail(`${input.setting ?? 'TRUSTED_AUTHSERV_ID'} is not set: no Authentication-Results are believed`);
  const fromDomain = domainPart(input.from);
  if (!input.from || !fromDomain) return fail('the mail has no From: address');
  const header = input.headers
    .map(parseAuthenticationResults)
    .find((h) => isTrustedAuthservId(h.authservId, input.trustedAuthservIds));
  if (!header) return fail(`no Authentication-Results from a trusted server (${input.trustedAuthservIds.join(', ')})`);
  const by = header.authservId;
  const pass = (method: string) => header.results.filter((r) => r.method === method && r.result === 'pass');

  // Only a pass that names this From: domain (header.from, RFC 7489 §11.2): without it, the verifier may have judged
  // another reading of a tricky From: than mailparser's (`<ceo@corp.test>@evil.test` parses to ceo@corp.test).
  const dmarc = pass('dmarc').find((r) => {
    const named = r.properties['header.from'];
    return !!named && domainPart(named) === fromDomain;
  });
  if (dmarc) return { verified: true, method: 'dmarc', reason: `dmarc=pass for ${fromDomain} (${by})` };
  for (const r of pass('dkim')) {
    const signer = domainPart(r.properties['header.d'] ?? r.properties['header.i']);
    if (isAligned(signer, fromDomain))
      return { verified: true, method: 'dkim', reason: `dkim=pass by ${signer}, aligned with ${fromDomain} (${by})` };
  }
  for (const r of pass('spf')) {
    const envelope = domainPart(r.properties['smtp.mailfrom'] ?? r.properties['smtp.mail']);
    if (isAligned(envelope, fromDomain))
      return { verified: true, method: 'spf', reason: `spf=pass for ${envelope}, aligned with ${fromDomain} (${by})` };
  }
  const seen = header.results
    .filter((r) => ['dkim', 'spf', 'dmarc'].includes(r.method))
    .map((r) => {
      const domain = domainPart(
        r.properties['header.d'] ??
          r.properties['header.i'] ??
          r.properties['smtp.mailfrom'] ??
          r.properties['smtp.mail'] ??
          r.properties['header.from'],
      );
      return `${r.method}=${r.result}${domain ? ` (${domain})` : ''}`;
    });
  return fail(
    `no DKIM or SPF pass aligned with ${fromDomain} (${by}: ${seen.length ? seen.join(', ') : 'no dkim/spf/dmarc results'})`,
  );
}
