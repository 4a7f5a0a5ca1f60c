/**
 * The addr-spec (RFC 5322 §3.4.1 `local-part@domain`) of a mail sender as callers give it: a bare address, or
 * `Name <addr>` as some clients present it. The angle brackets count only outside a quoted string and at the end:
 * `"<ceo@corp.test>"@evil.test` is one address at evil.test whose quoted local part merely looks like another
 * (before, the first `<…>` anywhere was taken, so a stranger with DMARC for evil.test was matched to the CEO's
 * directory entry and counted as internal, s35 review). Trimmed; case kept.
 */
export function addrSpecOf(value: string): string {
  const text = value.trim();
  if (!text.endsWith('>')) return text;
  let quoted = false;
  let open = -1;
  for (let i = 0; i < text.length - 1; i += 1) {
    const c = text[i]!;
    if (c === '\\' && quoted) i += 1;
    else if (c === '"') quoted = !quoted;
    else if (c === '<' && !quoted) open = i;
  }
  return open < 0 ? text : text.slice(open + 1, -1).trim();
}

/** The domain part of an address (`addrSpecOf`, then after its last `@`), lower case without a final dot; '' without one. */
export function domainOf(address: string): string {
  const bare = addrSpecOf(address).toLowerCase();
  const at = bare.lastIndexOf('@');
  return at < 0 ? '' : bare.slice(at + 1).replace(/\.$/, '');
}
