// The Workemon services as the ops checks need them: each real app (its buildApp) on an ephemeral loopback
// port, with its own logger (optionally shipping to an Elasticsearch) and metrics registry, the LLM services
// against fake LLM providers, the secretary against a real PostgreSQL database, the communicator against the
// secretary with no mailbox or bot configured (its channels are off).
import Transport from 'winston-transport';
import { buildApp as buildGuesser, loadConfig as loadGuesserConfig } from '@workemon/guesser';
import { buildApp as buildAnalyst, loadConfig as loadAnalystConfig } from '@workemon/system-analyst';
import {
  buildApp as buildSecretary,
  createAnalystClient,
  createGuesserClient,
  migrateDatabase,
  openDatabase,
} from '@workemon/secretary';
import { createCommunicator, loadConfig as loadCommunicatorConfig } from '@workemon/communicator';
import {
  createAuthenticator,
  createLogger,
  createMetrics,
  flushLogger,
  type Logger,
  type Metrics,
} from '@workemon/service-kit';
import { TEST_API_KEYS, TEST_KEYS, TEST_KEY_ENV } from '@workemon/testkit/api-keys';
import { listen, createTestDatabase, type Listening } from '@workemon/testkit';
import { startFakeLlm, type FakeLlm } from '@workemon/testkit/fake-llm';
import { defaultAnalystReply, defaultGuesserReply } from '@workemon/testkit/llm-stack';

export const SERVICES = ['secretary', 'guesser', 'system-analyst', 'communicator'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Drops stdout lines (the ops checks look at Elasticsearch and /metrics, not at the console). */
class NullTransport extends Transport {
  override log(_info: unknown, next: () => void): void {
    next();
  }
}

export type RunningService = Listening & { name: ServiceName; logger: Logger; metrics: Metrics };

export type Stack = {
  services: Record<ServiceName, RunningService>;
  guesserLlm: FakeLlm;
  analystLlm: FakeLlm;
  close: () => Promise<void>;
};

export type StackOptions = {
  postgresUrl: string;
  /** Ship every service's logs here (the fake Elasticsearch); unset: stdout only. */
  elasticsearchUrl?: string;
  /** Extra logger options per service (a small bufferLimit, a warning sink). */
  elasticsearch?: { bufferLimit?: number; flushIntervalMs?: number };
};

function llmEnv(llm: FakeLlm): Record<string, string> {
  return {
    LLM_PROVIDER: 'openai',
    LLM_BASE_URL: llm.url,
    LLM_API_KEY: llm.apiKey ?? '',
    LLM_MODEL: llm.model,
    LLM_TIMEOUT_MS: '5000',
    LLM_MAX_RETRIES: '0',
    // The test world's keys (libs/testkit/src/api-keys.ts), as every service would have them.
    ...TEST_KEY_ENV,
  };
}

/** The secretary's upstream client options: the test service key, no retries. */
const upstream = (metrics: Metrics, logger: Logger) => ({
  timeoutMs: 5000,
  metrics,
  logger,
  maxRetries: 0,
  apiKey: TEST_KEYS.service,
});

export async function startStack(options: StackOptions): Promise<Stack> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    while (closers.length) await closers.pop()!();
  };
  try {
    const makeLogger = (service: ServiceName) => {
      const logger = createLogger({
        service,
        version: 'ops-test',
        level: 'info',
        stdout: new NullTransport(),
        ...(options.elasticsearchUrl
          ? {
              elasticsearch: {
                url: options.elasticsearchUrl,
                flushIntervalMs: options.elasticsearch?.flushIntervalMs ?? 200,
                ...(options.elasticsearch?.bufferLimit ? { bufferLimit: options.elasticsearch.bufferLimit } : {}),
              },
              onTransportWarning: () => undefined,
            }
          : {}),
      });
      closers.push(() => flushLogger(logger, 3000));
      return logger;
    };

    const guesserLlm = await startFakeLlm({ wire: 'openai' });
    closers.push(() => guesserLlm.close());
    const analystLlm = await startFakeLlm({ wire: 'openai' });
    closers.push(() => analystLlm.close());
    guesserLlm.reply(defaultGuesserReply);
    analystLlm.reply(defaultAnalystReply);

    const serve = async (
      name: ServiceName,
      build: (logger: Logger, metrics: Metrics) => Parameters<typeof listen>[0],
      logger = makeLogger(name),
      metrics = createMetrics(name),
    ) => {
      const served = await listen(build(logger, metrics));
      closers.push(() => served.close());
      return { ...served, name, logger, metrics };
    };

    const guesser = await serve('guesser', (logger, metrics) =>
      buildGuesser({ config: loadGuesserConfig(llmEnv(guesserLlm)), logger, metrics }),
    );
    const analyst = await serve('system-analyst', (logger, metrics) =>
      buildAnalyst({ config: loadAnalystConfig(llmEnv(analystLlm)), logger, metrics }),
    );

    const database = await createTestDatabase(options.postgresUrl, 'ops');
    closers.push(() => database.drop());
    const db = openDatabase({ url: database.url, poolMax: 5 });
    closers.push(() => db.close());
    await migrateDatabase(db);
    const secretary = await serve('secretary', (logger, metrics) =>
      buildSecretary({
        knex: db.knex,
        guesser: createGuesserClient({ ...upstream(metrics, logger), baseURL: guesser.url }),
        analyst: createAnalystClient({ ...upstream(metrics, logger), baseURL: analyst.url }),
        logger,
        metrics,
        auth: createAuthenticator(TEST_API_KEYS),
        unknownUserPolicy: 'allow',
        clarificationTtlMs: 24 * 3600_000,
        maxClarifications: 3,
        attemptLeaseMs: 12_000,
      }),
    );

    const communicatorLogger = makeLogger('communicator');
    const communicatorMetrics = createMetrics('communicator');
    const communicatorApp = createCommunicator(
      loadCommunicatorConfig({ SECRETARY_URL: secretary.url, ...TEST_KEY_ENV }),
      {
        logger: communicatorLogger,
        metrics: communicatorMetrics,
      },
    );
    closers.push(async () => {
      for (const closer of communicatorApp.closers) await closer.close();
    });
    const communicator = await serve(
      'communicator',
      () => communicatorApp.app,
      communicatorLogger,
      communicatorMetrics,
    );

    return {
      services: { secretary, guesser, 'system-analyst': analyst, communicator },
      guesserLlm,
      analystLlm,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
