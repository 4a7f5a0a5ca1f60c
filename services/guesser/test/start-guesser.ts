import { Writable } from 'node:stream';
import winston from 'winston';
import type { Express } from 'express';
import request from 'supertest';
import { createLogger } from '@workemon/service-kit';
import { TEST_KEY_ENV, bearer } from '@workemon/testkit/api-keys';
import type { FakeLlm } from '@workemon/testkit/fake-llm';
import { buildApp, loadConfig } from '../src/index.js';

/** The environment that points a provider at a fake: key, base URL and model (and folder for YandexGPT). */
export function envForFake(provider: string, fake: FakeLlm): Record<string, string> {
  return {
    LLM_PROVIDER: provider,
    LLM_BASE_URL: fake.url,
    LLM_MODEL: fake.model,
    ...(fake.apiKey ? { LLM_API_KEY: fake.apiKey } : {}),
    ...(provider === 'yandexgpt' ? { YANDEX_FOLDER_ID: fake.folderId } : {}),
  };
}

export type StartedGuesser = { app: Express; logs: string[] };

/**
 * Builds the real guesser app from an environment object, as main.ts does, with fast retries by default and
 * every log line captured (serialized) instead of printed.
 */
export function startGuesser(env: Record<string, string>): StartedGuesser {
  const logs: string[] = [];
  const sink = new Writable({
    objectMode: true,
    write(info: unknown, _encoding, done) {
      logs.push(JSON.stringify(info));
      done();
    },
  });
  const config = loadConfig({
    LLM_MAX_RETRIES: '0',
    LLM_RETRY_BASE_MS: '10',
    SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS,
    ...env,
  });
  const logger = createLogger({
    service: 'guesser',
    level: 'debug',
    secrets: config.secrets,
    stdout: new winston.transports.Stream({ stream: sink }),
  });
  return { app: buildApp({ config, logger }), logs };
}

export const validQuery = (overrides: Record<string, string> = {}) => ({
  username: 'smirnovanton',
  department: 'Департамент клиентского сервиса',
  position: 'младший аналитик',
  request: 'Я хочу получать аналитику об авторизационных операциях наших кошельков',
  ...overrides,
});

/** A supertest agent sending the test service key (the secretary's) on every request. */
export function asService(app: Parameters<typeof request.agent>[0]) {
  return request.agent(app).set(bearer('service'));
}
