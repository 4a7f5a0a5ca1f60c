/**
 * The real guesser and system-analyst apps, each on an ephemeral port and configured against its own fake
 * OpenAI-compatible LLM (see fake-llm.ts), for tests of services that call them (the secretary).
 *
 * The testkit depends on no service (a library importing a service makes package cycles): the caller passes the
 * apps' `buildApp` / `loadConfig`, e.g. `startLlmStack({ guesser, analyst })` with
 * `import * as guesser from '@workemon/guesser'` — each service's test folder has an `llm-services.ts` doing so.
 *
 * Default answers (override per service with `guesser` / `analyst`, or later with `guesserLlm.reply(...)`):
 * - guesser: a request of fewer than GUESSER_MIN_WORDS (5) words → `{is_enough:false, response:<a question>}`;
 *   otherwise `{is_enough:true, response:<a context naming department, position and request>}`.
 * - analyst: `{is_enough:true, response:<advice>, action}` with the action chosen by keywords in the request:
 *   "jira"/"задач" → 'создать jira-task'; "telegram"/"телеграм"/"коллег"/"сотрудник" → 'написать в telegram
 *   сотруднику'; "рассылк" → 'написать в рассылку департамента'; otherwise 'ответить сообщением'.
 * The services run with LLM_MAX_RETRIES=0 and a short timeout, so failures show up fast, and take the test
 * service key (`TEST_KEYS.service`, see api-keys.ts): callers send it as `apiKey: llm.serviceKey`.
 */
import type { RequestListener } from 'node:http';
import { ACTION_JIRA, ACTION_MAILING_LIST, ACTION_REPLY_MESSAGE, ACTION_TELEGRAM_EMPLOYEE } from '@workemon/contracts';
import { startFakeLlm, userDataOf, type FakeLlm } from './fake-llm.js';
import { listen } from './ports.js';
import { TEST_KEYS, TEST_KEY_ENV } from './api-keys.js';

export const GUESSER_MIN_WORDS = 5;

type Handler = (req: { system: string; user: string }) => unknown;

const fieldOf = (user: string, field: string): string => {
  const data = userDataOf(user);
  const value = data && typeof data === 'object' ? (data as Record<string, unknown>)[field] : undefined;
  return typeof value === 'string' ? value : '';
};

export const defaultGuesserReply: Handler = ({ user }) => {
  const request = fieldOf(user, 'request');
  const words = request.split(/\s+/).filter(Boolean).length;
  if (words < GUESSER_MIN_WORDS) {
    return { is_enough: false, response: 'Уточните, пожалуйста: о каких данных или операциях идёт речь?' };
  }
  return {
    is_enough: true,
    response: `${fieldOf(user, 'position')} из подразделения «${fieldOf(user, 'department')}» спрашивает: ${request}`,
  };
};

export const defaultAnalystReply: Handler = ({ user }) => {
  const request = fieldOf(user, 'request');
  const text = request.toLowerCase();
  const action = /jira|задач/.test(text)
    ? ACTION_JIRA
    : /telegram|телеграм|коллег|сотрудник/.test(text)
      ? ACTION_TELEGRAM_EMPLOYEE
      : /рассылк/.test(text)
        ? ACTION_MAILING_LIST
        : ACTION_REPLY_MESSAGE;
  return { is_enough: true, response: `Рекомендация по запросу: ${request}`, action };
};

/** What the stack needs of an LLM service package (`@workemon/guesser`, `@workemon/system-analyst`). */
export type LlmApp<Config, Logger> = {
  loadConfig(env: Record<string, string | undefined>): Config;
  buildApp(deps: { config: Config; logger: Logger }): RequestListener;
};

/**
 * The two services the stack starts, as their packages export them, and the logger each gets (the tests using
 * this stack assert on HTTP answers, not on these services' logs: pass a silent one).
 */
export type LlmApps<G, A, Logger> = {
  guesser: LlmApp<G, Logger>;
  analyst: LlmApp<A, Logger>;
  logger: (service: string) => Logger;
};

/** Options of `startLlmStack`. */
export type LlmStackOptions = {
  guesser?: Handler;
  analyst?: Handler;
  llmTimeoutMs?: number;
  /** More environment for both services (e.g. `LLM_MAX_INPUT_CHARS`), over the defaults above. */
  env?: Record<string, string>;
};

export type LlmServices = {
  guesserUrl: string;
  analystUrl: string;
  guesserLlm: FakeLlm;
  analystLlm: FakeLlm;
  /** The service key both services accept (send it as the secretary's upstream `apiKey`). */
  serviceKey: string;
  close(): Promise<void>;
};

function envFor(llm: FakeLlm, timeoutMs: number, extra: Record<string, string> = {}): Record<string, string> {
  return {
    LLM_PROVIDER: 'openai',
    LLM_BASE_URL: llm.url,
    LLM_API_KEY: llm.apiKey ?? '',
    LLM_MODEL: llm.model,
    LLM_TIMEOUT_MS: String(timeoutMs),
    LLM_MAX_RETRIES: '0',
    LOG_LEVEL: 'error',
    SERVICE_API_KEYS: TEST_KEY_ENV.SERVICE_API_KEYS,
    ...extra,
  };
}

/** Starts both services of `apps` over their own fake LLMs; `close()` stops all four servers. */
export async function startLlmStack<G, A, Logger>(
  apps: LlmApps<G, A, Logger>,
  opts: LlmStackOptions = {},
): Promise<LlmServices> {
  const timeoutMs = opts.llmTimeoutMs ?? 5000;
  const guesserLlm = await startFakeLlm({ wire: 'openai' });
  const analystLlm = await startFakeLlm({ wire: 'openai' });
  guesserLlm.reply(opts.guesser ?? defaultGuesserReply);
  analystLlm.reply(opts.analyst ?? defaultAnalystReply);

  const guesser = await listen(
    apps.guesser.buildApp({
      config: apps.guesser.loadConfig(envFor(guesserLlm, timeoutMs, opts.env)),
      logger: apps.logger('guesser'),
    }),
  );
  const analyst = await listen(
    apps.analyst.buildApp({
      config: apps.analyst.loadConfig(envFor(analystLlm, timeoutMs, opts.env)),
      logger: apps.logger('system-analyst'),
    }),
  );
  return {
    guesserUrl: guesser.url,
    analystUrl: analyst.url,
    guesserLlm,
    analystLlm,
    serviceKey: TEST_KEYS.service,
    async close() {
      await Promise.all([guesser.close(), analyst.close(), guesserLlm.close(), analystLlm.close()]);
    },
  };
}
