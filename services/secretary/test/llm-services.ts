// The real guesser and system-analyst apps, each backed by a FakeLlm (OpenAI wire), served on loopback ports.
// Same shape as testkit's planned `startLlmServices` (llm-stack.ts), which did not exist when these tests
// were written; switch the import when it lands.
import { buildApp as buildGuesser, loadConfig as loadGuesserConfig } from '@workemon/guesser';
import { buildApp as buildAnalyst, loadConfig as loadAnalystConfig } from '@workemon/system-analyst';
import { createLogger } from '@workemon/service-kit';
import { listen } from '@workemon/testkit';
import { startFakeLlm, type FakeLlm } from '@workemon/testkit/fake-llm';
import Transport from 'winston-transport';

type Handler = (req: { system: string; user: string }) => unknown;

class Silent extends Transport {
  override log(_info: unknown, next: () => void): void {
    next();
  }
}

export type LlmServices = {
  guesserUrl: string;
  analystUrl: string;
  guesserLlm: FakeLlm;
  analystLlm: FakeLlm;
  close(): Promise<void>;
};

export async function startLlmServices(
  opts: { guesser?: Handler; analyst?: Handler; llmTimeoutMs?: number } = {},
): Promise<LlmServices> {
  const guesserLlm = await startFakeLlm();
  const analystLlm = await startFakeLlm();
  if (opts.guesser) guesserLlm.reply(opts.guesser);
  if (opts.analyst) analystLlm.reply(opts.analyst);
  const envFor = (llm: FakeLlm) => ({
    LLM_PROVIDER: 'openai',
    LLM_BASE_URL: llm.url,
    LLM_API_KEY: llm.apiKey,
    LLM_MODEL: llm.model,
    LLM_TIMEOUT_MS: String(opts.llmTimeoutMs ?? 5000),
    LLM_MAX_RETRIES: '0',
    LOG_LEVEL: 'error',
  });
  const logger = (service: string) => createLogger({ service, level: 'error', stdout: new Silent() });
  const guesser = await listen(
    buildGuesser({ config: loadGuesserConfig(envFor(guesserLlm)), logger: logger('guesser') }),
  );
  const analyst = await listen(
    buildAnalyst({ config: loadAnalystConfig(envFor(analystLlm)), logger: logger('system-analyst') }),
  );
  return {
    guesserUrl: guesser.url,
    analystUrl: analyst.url,
    guesserLlm,
    analystLlm,
    close: async () => {
      await Promise.all([guesser.close(), analyst.close(), guesserLlm.close(), analystLlm.close()]);
    },
  };
}
