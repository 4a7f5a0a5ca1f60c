// The Telegram tests' setup: a fake Bot API, a fake secretary and a real communicator polling the first, asking the
// second; everything a test opened is closed after it, newest first. Shared by telegram.test.ts,
// telegram-faults.test.ts and telegram-adversarial.test.ts.
import { afterEach } from 'vitest';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { startCommunicator, type Running } from './harness.js';

export type TelegramSetup = { tg: FakeTelegram; secretary: FakeSecretary; communicator: Running };

type Closable = { close?: () => Promise<void>; stop?: () => Promise<void> };

/**
 * Registers the closing `afterEach` and returns `setup` (its `env` over `defaultEnv`; `before` runs once both
 * fakes listen, before the communicator starts) and `track`, for anything else a test opens.
 */
export function telegramSetup(defaultEnv: Record<string, string> = {}): {
  setup: (options?: {
    env?: Record<string, string>;
    before?: (tg: FakeTelegram, secretary: FakeSecretary) => void;
  }) => Promise<TelegramSetup>;
  track: (item: Closable) => void;
} {
  const open: Closable[] = [];
  afterEach(async () => {
    for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
  });
  return {
    async setup(options = {}) {
      const tg = await startFakeTelegram();
      const secretary = await startFakeSecretary();
      open.push(tg, secretary);
      options.before?.(tg, secretary);
      const communicator = await startCommunicator({
        secretaryUrl: secretary.url,
        telegram: tg,
        env: { ...defaultEnv, ...options.env },
      });
      open.push(communicator);
      return { tg, secretary, communicator };
    },
    track: (item) => void open.push(item),
  };
}
