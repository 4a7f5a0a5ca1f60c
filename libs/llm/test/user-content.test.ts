import { describe, expect, it } from 'vitest';
import { delimitUserContent, nextNonce, stripInvisible } from '../src/user-content.js';

describe('user content', () => {
  it('draws fresh 12-hex-digit nonces, never repeating across pooled draws', () => {
    const nonces = Array.from({ length: 1000 }, () => nextNonce());
    expect(nonces.every((n) => /^[0-9a-f]{12}$/.test(n))).toBe(true);
    expect(new Set(nonces).size).toBe(nonces.length);
    const a = delimitUserContent('x');
    const b = delimitUserContent('x');
    expect(a.userMessage).not.toBe(b.userMessage);
  });

  it('strips invisible characters, astral ones included, and returns a clean text as it is', () => {
    expect(stripInvisible('a\u200Bb\u202Ec\u{E0041}d\u{E0100}e\u00ADf')).toBe('abcdef');
    // A lone surrogate is not in the list: kept (sanitizing it is the service kit's job).
    expect(stripInvisible('x\uD800y')).toBe('x\uD800y');
    const clean = 'Хочу отчёт 👍';
    expect(stripInvisible(clean)).toBe(clean);
  });
});
