/**
 * The real guesser and system-analyst behind fake LLMs, for this package's tests: libs/testkit's `startLlmStack`
 * with the two apps passed in (the testkit itself depends on no service). Options and default answers:
 * libs/testkit/src/llm-stack.ts.
 */
import * as guesser from '@workemon/guesser';
import * as analyst from '@workemon/system-analyst';
import { createLogger } from '@workemon/service-kit';
import { startLlmStack, type LlmServices, type LlmStackOptions } from '@workemon/testkit/llm-stack';

const silentLogger = (service: string) => Object.assign(createLogger({ service, level: 'error' }), { silent: true });

export const startLlmServices = (opts?: LlmStackOptions): Promise<LlmServices> =>
  startLlmStack({ guesser, analyst, logger: silentLogger }, opts);
