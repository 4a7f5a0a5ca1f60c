import { describe, expect, it } from 'vitest';
import { ConfigError } from '@workemon/service-kit';
import { loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({ INIT_CWD: '/srv/workemon' });
    expect(config.databaseUrl).toBeUndefined();
    expect(config).toMatchObject({
      port: 8000,
      pgliteDir: '/srv/workemon/data/secretary',
      guesserUrl: 'http://localhost:8001',
      systemAnalystUrl: 'http://localhost:8002',
      communicatorUrl: 'http://localhost:8003',
      apiKeys: { client: [], service: [] },
      unknownUserPolicy: 'reply-only',
      companyDomains: [],
      clarificationTtl: 24 * 3600_000,
      maxClarifications: 3,
      guesserTimeout: 90_000,
    });
  });

  it('parses lists and durations (a bare number of CLARIFICATION_TTL is seconds)', () => {
    const config = loadConfig({
      API_KEYS: 'a-key-7c1e9b3d5f2a4c68, b-key-2d8f6a4c1e3b5d79',
      CLARIFICATION_TTL: '600',
      UNKNOWN_USER_POLICY: 'reject',
    });
    expect(config.apiKeys.client.map((entry) => entry.key)).toEqual([
      'a-key-7c1e9b3d5f2a4c68',
      'b-key-2d8f6a4c1e3b5d79',
    ]);
    expect(config.clarificationTtl).toBe(600_000);
    expect(config.unknownUserPolicy).toBe('reject');
    expect(loadConfig({ UNKNOWN_USER_POLICY: 'allow' }).unknownUserPolicy).toBe('allow');
    expect(loadConfig({ COMPANY_DOMAINS: 'example.ru, example.com' }).companyDomains).toEqual([
      'example.ru',
      'example.com',
    ]);
  });

  it('names every bad key and never echoes a value', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        UNKNOWN_USER_POLICY: 'maybe',
        GUESSER_URL: 'ftp://secret-host',
        MAX_CLARIFICATIONS: '-1',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const key of ['PORT', 'UNKNOWN_USER_POLICY', 'GUESSER_URL', 'MAX_CLARIFICATIONS'])
      expect(problems).toContain(key);
    expect(problems).not.toContain('secret-host');
  });

  it('refuses a DATABASE_URL that is not postgres:// or postgresql://, naming the key', () => {
    for (const url of ['mysql://u:p@db/workemon', 'sqlite:///./test.db', './data/secretary']) {
      let error: unknown;
      try {
        loadConfig({ DATABASE_URL: url });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems).toEqual([
        expect.stringMatching(/^DATABASE_URL: must be a postgres:\/\//),
      ]);
      expect((error as ConfigError).message).not.toContain(url);
    }
    for (const url of ['postgres://u@db:5432/workemon', 'postgresql://u:p@db/workemon?sslmode=require']) {
      expect(loadConfig({ DATABASE_URL: url }).databaseUrl).toBe(url);
    }
  });
});
