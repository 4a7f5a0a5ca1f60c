import { describe, expect, expectTypeOf, it } from 'vitest';
import request from 'supertest';
import { createServiceApp } from '../src/app.js';
import { z } from 'zod';
import {
  ConfigError,
  authEnvSchema,
  camelCaseKeys,
  camelCaseName,
  env,
  parseEnv,
  serviceEnvSchema,
  type CamelCase,
} from '../src/config.js';
import { parseServiceEnv, startService, toServiceConfig } from '../src/service-start.js';

describe('camelCase config fields (issue 11 point 5)', () => {
  it('maps env names to camelCase names, at run time and in the type', () => {
    const names = ['PORT', 'IMAP_SWEEP_INTERVAL_S', 'SES_S3_TIMEOUT', 'TRUSTED_AUTHSERV_ID'];
    expect(names.map(camelCaseName)).toEqual(['port', 'imapSweepIntervalS', 'sesS3Timeout', 'trustedAuthservId']);
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

  it('serviceEnvSchema adds the common and auth keys; parseServiceEnv gives both views', () => {
    const schema = serviceEnvSchema({ PORT: env.port(8123) });
    const { parsed, config } = parseServiceEnv(schema, { PORT: '9000', LOG_LEVEL: 'warn', API_KEYS: 'k-123456' });
    expect(parsed).toMatchObject({ PORT: 9000, LOG_LEVEL: 'warn', HOST: '0.0.0.0', API_KEYS: ['k-123456'] });
    expect(config).toMatchObject({ port: 9000, logLevel: 'warn', host: '0.0.0.0' });
    expect(config.apiKeys.client.map((e) => e.key)).toEqual(['k-123456']);
    expect(() => parseServiceEnv(schema, { PORT: 'x', LOG_LEVEL: 'loud' })).toThrow(
      /PORT[\s\S]*LOG_LEVEL|LOG_LEVEL[\s\S]*PORT/,
    );
  });

  it('startService loads the config and builds the auth, logger and metrics of a loopback service', async () => {
    const schema = serviceEnvSchema({});
    const started = startService({
      service: 'start-test',
      version: '1.0.0',
      loadConfig: () =>
        parseServiceEnv(schema, {
          HOST: '127.0.0.1',
          LOG_LEVEL: 'error',
          SERVICE_API_KEYS: 's:svc-key-1-Qb7x2V9nT6cW3eH5jL8sA1',
        }).config,
      served: ['client', 'service'],
      secrets: () => ['extra-secret'],
    });
    expect(started.config.host).toBe('127.0.0.1');
    expect(started.logger.level).toBe('error');
    const res = await request(
      createServiceApp(
        { service: 'start-test', version: '1.0.0', logger: started.logger, metrics: started.metrics },
        (app) => app.get('/svc', started.auth.require(['service']), (_req, r) => r.json({ ok: true })),
      ),
    )
      .get('/svc')
      .set('Authorization', 'Bearer svc-key-1-Qb7x2V9nT6cW3eH5jL8sA1');
    expect(res.status).toBe(200);
    expect(await started.metrics.registry.metrics()).toContain('process_cpu');
  });
});
