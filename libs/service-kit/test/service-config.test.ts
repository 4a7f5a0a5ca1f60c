import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import {
  ConfigError,
  authEnvSchema,
  camelCaseKeys,
  camelCaseName,
  env,
  parseEnv,
  toServiceConfig,
  type CamelCase,
} from '../src/index.js';

describe('camelCase config fields (issue 11 point 5)', () => {
  it('maps env names to camelCase names, at run time and in the type', () => {
    expect(camelCaseName('PORT')).toBe('port');
    expect(camelCaseName('IMAP_SWEEP_INTERVAL_S')).toBe('imapSweepIntervalS');
    expect(camelCaseName('SES_S3_TIMEOUT')).toBe('sesS3Timeout');
    expect(camelCaseName('TRUSTED_AUTHSERV_ID')).toBe('trustedAuthservId');
    expectTypeOf<CamelCase<'IMAP_SWEEP_INTERVAL_S'>>().toEqualTypeOf<'imapSweepIntervalS'>();
    expectTypeOf<CamelCase<'SES_S3_TIMEOUT'>>().toEqualTypeOf<'sesS3Timeout'>();
  });

  it('renames every key, keeps the values and leaves out the omitted keys', () => {
    const mapped = camelCaseKeys({ EMAIL_CONCURRENCY: 4, MAIL_FROM: undefined, SECRET_INPUT: 'x' }, ['SECRET_INPUT']);
    expect(mapped).toEqual({ emailConcurrency: 4, mailFrom: undefined });
    expect(Object.keys(mapped)).toEqual(['emailConcurrency', 'mailFrom']);
    expectTypeOf(mapped).toEqualTypeOf<{ emailConcurrency: number; mailFrom: undefined }>();
  });

  it('toServiceConfig folds the key lists and files into apiKeys', () => {
    const schema = z.object({ ...authEnvSchema, RETRY_BASE_DELAY: env.durationMs('30s', 'first retry delay') });
    const config = toServiceConfig(
      parseEnv(schema, { API_KEYS: 'client-key-1', SERVICE_API_KEYS: 'svc:service-key-1', RETRY_BASE_DELAY: '2s' }),
    );
    expect(config.retryBaseDelay).toBe(2000);
    expect(config.host).toBe('0.0.0.0');
    expect(config.apiKeys.client.map((e) => e.key)).toEqual(['client-key-1']);
    expect(config.apiKeys.service).toEqual([{ name: 'svc', key: 'service-key-1' }]);
    expect(Object.keys(config).filter((k) => /api_?keys/i.test(k))).toEqual(['apiKeys']);
  });

  it('toServiceConfig refuses a key in two classes with a ConfigError naming the variables', () => {
    const schema = z.object({ ...authEnvSchema });
    const parsed = parseEnv(schema, { API_KEYS: 'same-key-123', ADMIN_API_KEYS: 'a:same-key-123' });
    expect(() => toServiceConfig(parsed)).toThrow(ConfigError);
  });
});
