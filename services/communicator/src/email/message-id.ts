/**
 * One msg-id from a Message-ID (or In-Reply-To) field value, as RFC 5322 §3.6.4 writes it: `"<" id-left "@"
 * id-right ">"`, with the comments and folding white space (CFWS) that may surround it (§3.2.2) and the obsolete
 * forms' white space inside the brackets (§4.5.4) left out. `<abc@x> (Exchange)` → `<abc@x>`, `< abc@x >` →
 * `<abc@x>`, a bare `abc@x` → `<abc@x>`. Non-ASCII ids (RFC 6532 §3.2) are kept as they are. Undefined for an
 * empty value or an empty `<>`. The first msg-id wins when a field carries several.
 *
 * mailparser keeps a trailing comment inside what it returns (`<abc@x> (Exchange)>`), which then went into our
 * reply's In-Reply-To and References and broke the thread in the sender's mail client.
 */
export function msgIdOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const bare = withoutComments(value);
  const bracketed = /<([^<>]*)>/.exec(bare);
  // White space (the obsolete forms') and control characters (never part of an id; the secretary refuses them
  // in message_id and thread_key) are left out.
  const id = (bracketed ? bracketed[1]! : bare.replace(/[<>]/g, '')).replace(/[\s\p{Cc}]+/gu, '');
  return id ? `<${id}>` : undefined;
}

/** `value` without its RFC 5322 §3.2.2 comments: parenthesised, nestable, `\` quoting the next character. */
function withoutComments(value: string): string {
  if (!value.includes('(')) return value;
  let out = '';
  let depth = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!;
    if (ch === '\\' && depth > 0) i++;
    else if (ch === '(') depth++;
    else if (ch === ')' && depth > 0) depth--;
    else if (depth === 0) out += ch === ')' ? '' : ch;
  }
  return out;
}
