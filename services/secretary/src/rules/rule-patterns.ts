import { RE2JS } from 're2js';

/** Longest pattern a rule may hold, in characters. */
export const PATTERN_MAX_CHARS = 300;
/**
 * Largest compiled program (RE2 instructions) a rule pattern may have. The matcher's time per character of text
 * grows with it (up to this bound about 30 ms over MATCH_INPUT_MAX_CHARS of text on this project's bench machine);
 * the patterns people write compile to tens of instructions, `(a|aa|aaa){1,1000}` to sixteen thousand.
 */
export const PROGRAM_MAX_INSTRUCTIONS = 1000;
/** Patterns run against at most this much text (characters): a bound on the work one request can cause. */
export const MATCH_INPUT_MAX_CHARS = 10_000;

/**
 * Why a pattern cannot be a rule's: the `message` of the 400 on save (after `Parameter '<field>' `), and the
 * reason shown in GET /rules for a stored rule whose pattern no longer compiles.
 */
export type PatternProblem = { message: string };

/** A compiled rule pattern: whether it finds a match in a text (unanchored, case-insensitive). */
export type RulePattern = { test: (text: string) => boolean };

// ECMAScript's \s with the `u` flag (ECMA-262 §22.2.2.9, CharacterClassEscape :: s): WhiteSpace (TAB, VT, FF,
// SP, NBSP, ZWNBSP and every Zs) and LineTerminator (LF, CR, LS, PS). RE2's \s is Perl's ASCII [\t\n\f\r ]
// (github.com/google/re2/wiki/Syntax), so the rules' `\s` is spelled out for it, as are `\S` and `.`.
const WHITESPACE =
  '\\x{9}-\\x{D}\\x{20}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}';
// The complement of WHITESPACE over every code point: a range list, so that it also works inside a class
// (`[\S,]`, `[^\S]`), where RE2 has no way to put a negated set.
const NOT_WHITESPACE =
  '\\x{0}-\\x{8}\\x{E}-\\x{1F}\\x{21}-\\x{9F}\\x{A1}-\\x{167F}\\x{1681}-\\x{1FFF}\\x{200B}-\\x{2027}' +
  '\\x{202A}-\\x{202E}\\x{2030}-\\x{205E}\\x{2060}-\\x{2FFF}\\x{3001}-\\x{FEFE}\\x{FF00}-\\x{10FFFF}';
// ECMAScript's `.` without the `s` flag: any code point but a LineTerminator (§22.2.2.7); RE2's excludes only LF.
const ANY_BUT_LINE_TERMINATOR = '[^\\x{A}\\x{D}\\x{2028}\\x{2029}]';

const isHex = (text: string) => /^[0-9a-fA-F]+$/.test(text);

/**
 * `\uXXXX`, `\u{X…}` or a surrogate pair of `\u` escapes (one code point with the `u` flag) at `pattern[i]` as
 * RE2's `\x{…}`; undefined when it is none of them.
 */
function translateUnicodeEscape(pattern: string, i: number): { out: string; length: number } | undefined {
  const braced = /^\{([0-9a-fA-F]+)\}/.exec(pattern.slice(i + 2));
  if (braced) return { out: `\\x{${braced[1]}}`, length: 2 + braced[0].length };
  const unit = pattern.slice(i + 2, i + 6);
  if (unit.length !== 4 || !isHex(unit)) return undefined;
  const high = parseInt(unit, 16);
  const low = /^\\u([0-9a-fA-F]{4})/.exec(pattern.slice(i + 6));
  const lowUnit = low ? parseInt(low[1]!, 16) : 0;
  if (high >= 0xd800 && high <= 0xdbff && lowUnit >= 0xdc00 && lowUnit <= 0xdfff) {
    const codePoint = (high - 0xd800) * 0x400 + (lowUnit - 0xdc00) + 0x10000;
    return { out: `\\x{${codePoint.toString(16)}}`, length: 12 };
  }
  return { out: `\\x{${unit}}`, length: 6 };
}

/**
 * One escape of a JavaScript pattern (`pattern[i]` is the backslash) in RE2's syntax, and how many characters it
 * took. Only the escapes whose meaning or spelling differs are rewritten: `\s` `\S` (Unicode white space in
 * JavaScript), `\uXXXX`, `\u{X…}` and a surrogate pair of `\u` escapes (one code point with the `u` flag), `\cX`
 * (a control character), `\0` (NUL) and `[\b]` (backspace); the rest (`\d`, `\w`, `\b`, `\p{…}`, `\x41`, `\.`)
 * mean the same in both and are kept. Backreferences are kept too: RE2 refuses them.
 */
function translateEscape(pattern: string, i: number, inClass: boolean): { out: string; length: number } {
  const next = pattern.charAt(i + 1);
  if (next === 's') return { out: inClass ? WHITESPACE : `[${WHITESPACE}]`, length: 2 };
  if (next === 'S') return { out: inClass ? NOT_WHITESPACE : `[${NOT_WHITESPACE}]`, length: 2 };
  if (next === 'b' && inClass) return { out: '\\x{8}', length: 2 };
  if (next === '0' && !/^[0-9]/.test(pattern.slice(i + 2))) return { out: '\\x{0}', length: 2 };
  if (next === 'c' && /^[A-Za-z]/.test(pattern.slice(i + 2)))
    return { out: `\\x{${(pattern.charCodeAt(i + 2) % 32).toString(16)}}`, length: 3 };
  if (next === 'u') return translateUnicodeEscape(pattern, i) ?? { out: '\\u', length: 2 };
  return { out: `\\${next}`, length: 2 };
}

/**
 * A pattern that is valid JavaScript (`new RegExp(pattern, 'iu')` accepted it) in RE2's syntax, meaning what it
 * means in JavaScript: the escapes of `translateEscape`, `.` outside a class, and JavaScript's empty class `[]`
 * (never matches) and `[^]` (any character), which RE2 reads differently. Everything else is the same in both
 * languages (RE2 syntax: github.com/google/re2/wiki/Syntax); what RE2 lacks (lookarounds, backreferences) is left
 * for RE2 to refuse.
 */
export function toRe2Syntax(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length;) {
    const c = pattern[i]!;
    if (c === '\\') {
      const escape = translateEscape(pattern, i, inClass);
      out += escape.out;
      i += escape.length;
    } else if (!inClass && c === '[') {
      if (pattern.startsWith('[]', i)) {
        out += '[^\\x{0}-\\x{10FFFF}]';
        i += 2;
      } else if (pattern.startsWith('[^]', i)) {
        out += '[\\x{0}-\\x{10FFFF}]';
        i += 3;
      } else {
        // With the `u` flag a class holds no nested class: its first unescaped `]` ends it.
        inClass = true;
        out += c;
        i += 1;
      }
    } else {
      if (inClass && c === ']') inClass = false;
      out += !inClass && c === '.' ? ANY_BUT_LINE_TERMINATOR : c;
      i += 1;
    }
  }
  return out;
}

/**
 * Compiles a rule's pattern for a linear-time engine: re2js (a JavaScript port of RE2 / Go's regexp), whose
 * matching time grows linearly with the text whatever the pattern (no backtracking, so no catastrophic
 * backtracking: `(\w|\d)+$` over a long text costs what `\w+$` does). Patterns are written in JavaScript's syntax
 * (`new RegExp(pattern, 'iu')`: case-insensitive, Unicode) and must be valid there too, so one pattern never
 * means two things; `toRe2Syntax` carries JavaScript's meaning over. RE2 does not run backreferences (`\1`,
 * `\k<name>`) or lookarounds (`(?=`, `(?!`, `(?<=`, `(?<!`): such a pattern is a problem, not a matcher.
 */
export function compileRulePattern(pattern: string): RulePattern | PatternProblem {
  if (pattern.length > PATTERN_MAX_CHARS) return { message: `must be at most ${PATTERN_MAX_CHARS} characters` };
  try {
    new RegExp(pattern, 'iu');
  } catch (err) {
    return { message: `is not a valid regular expression: ${(err as Error).message}` };
  }
  // JavaScript reads a negated property under the `i` flag by case folding (`\P{Lu}` then matches every letter);
  // RE2 does not: refused rather than meaning two things.
  if (/\\P\{/.test(pattern))
    return { message: 'uses a negated Unicode property (\\P{…}), which the matcher reads differently: use [^\\p{…}]' };
  let re: RE2JS;
  try {
    re = RE2JS.compile(toRe2Syntax(pattern), RE2JS.CASE_INSENSITIVE);
  } catch (err) {
    return {
      message:
        'uses what the linear-time matcher (RE2) does not run: backreferences (\\1, \\k<name>) and lookarounds ' +
        '((?=…), (?!…), (?<=…), (?<!…)) are not supported, nor repeats over 1000, nor \\p{…} names other than general ' +
        `categories and scripts (\\p{L}, \\p{Lu}, \\p{Cyrillic}) (RE2: ${(err as Error).message})`,
    };
  }
  // The matcher's work per character of text grows with the compiled program: counted repeats multiply it.
  if (re.programSize() > PROGRAM_MAX_INSTRUCTIONS)
    return {
      message:
        `is too large for the matcher (${re.programSize()} instructions compiled, at most ${PROGRAM_MAX_INSTRUCTIONS}): ` +
        'use fewer or smaller counted repeats ({n,m})',
    };
  return { test: (text) => re.test(text.slice(0, MATCH_INPUT_MAX_CHARS)) };
}

/** Whether `compileRulePattern` refused the pattern. */
export const isPatternProblem = (compiled: RulePattern | PatternProblem): compiled is PatternProblem =>
  'message' in compiled;

const compiled = new Map<string, RulePattern | PatternProblem>();

/**
 * `compileRulePattern`, kept per pattern text (at most 1000; the routing rules are few and change seldom, so a
 * pattern is compiled once per process, not per request). A problem is kept too: a stored pattern that cannot be
 * compiled is not retried on every request.
 */
export function rulePattern(pattern: string): RulePattern | PatternProblem {
  let entry = compiled.get(pattern);
  if (entry === undefined) {
    entry = compileRulePattern(pattern);
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(pattern, entry);
  }
  return entry;
}
