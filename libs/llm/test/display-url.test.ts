// Base URLs shown to callers and in /health never carry credentials (user info, query).
import { describe, expect, it } from 'vitest';
import { displayUrl, llmErrors } from '../src/llm-errors.js';

describe('displayUrl', () => {
  it('drops user info, query and fragment, keeps scheme, host, port and path', () => {
    expect(displayUrl('http://llmuser:TopSecretPw99@127.0.0.1:9/v1?key=abc#x')).toBe('http://127.0.0.1:9/v1');
    expect(displayUrl('https://api.deepseek.com')).toBe('https://api.deepseek.com');
    expect(displayUrl('not a url')).toBe('(an invalid URL)');
  });

  it('keeps credentials out of the unreachable and model-missing messages a caller sees', () => {
    const url = 'http://llmuser:TopSecretPw99@127.0.0.1:9/v1';
    const unreachable = llmErrors.unreachable('openai', new Error('ECONNREFUSED'), { baseUrl: url, fix: 'start it' });
    const missing = llmErrors.modelMissing('ollama', 'qwen3:0.6b', 'pull it', url);
    for (const err of [unreachable, missing]) {
      expect(err.message).toContain('http://127.0.0.1:9/v1');
      expect(err.message).not.toMatch(/TopSecretPw99|llmuser/);
      expect(JSON.stringify(err.details)).not.toMatch(/TopSecretPw99/);
    }
  });
});
