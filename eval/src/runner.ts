import { ACTION_CLARIFY } from '@workemon/contracts';
import { buildApp as buildGuesser, loadConfig as loadGuesserConfig } from '@workemon/guesser';
import { buildApp as buildAnalyst, loadConfig as loadAnalystConfig } from '@workemon/system-analyst';
import {
  channelReplyAction,
  createAnalystClient,
  createGuesserClient,
  noReplyDecision,
  proposeDecision,
  type AnalystAnswer,
  type AnalystClient,
  type Decision,
  type GuesserClient,
  type LlmCallRecord,
} from '@workemon/secretary';
import {
  createLogger,
  createMetrics,
  isAppError,
  readApiKeys,
  serviceKeyToSend,
  type AuthEnv,
} from '@workemon/service-kit';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EvalConfig } from './eval-config.js';
import type { EvalCase, Expected } from './labelled-set.js';

/** What one case came to under one configuration. */
export type CaseResult = {
  id: string;
  expected: Expected;
  /** The secretary's decision (before routing rules); unset when a call failed. */
  decision?: Decision;
  /** The guesser's `category`, when its answer carries one. */
  category?: string;
  /** Both calls, as the eval saw them (HTTP included), in milliseconds. */
  latencyMs: number;
  /** Provenance of each LLM service call (provider, model, prompt and persona versions, settings, tokens). */
  calls: LlmCallRecord[];
  /** The error code of a failed call (the case then counts as wrong everywhere). */
  error?: string;
  /** What the failed call said (the upstream's message: "Missing API key: …"), so a report can say why. */
  errorMessage?: string;
};

type Clients = { guesser: GuesserClient; analyst: AnalystClient; close: () => Promise<void> };

async function serve(app: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const quietLogger = (service: string) => {
  const logger = createLogger({ service, level: 'error' });
  logger.silent = true;
  return logger;
};

/**
 * The guesser and system-analyst of a configuration: their real apps (buildApp with the configuration's
 * environment and prompt files) on loopback ports, or the running services it names; reached with the
 * secretary's own clients, so requests (persona included) are exactly what the secretary sends. The LLM services
 * take only a service key: the apps built here get a fresh one of their own; a running service is sent the first
 * of SERVICE_API_KEYS (and SERVICE_API_KEYS_FILE) of `keyEnv` (the environment), as the secretary would.
 */
export async function openClients(
  config: EvalConfig,
  timeoutMs: number,
  keyEnv: AuthEnv = process.env as AuthEnv,
): Promise<Clients> {
  const logger = quietLogger('eval');
  const metrics = createMetrics('eval');
  const servers: Server[] = [];
  const ownKey = randomBytes(24).toString('hex');
  const start = async (which: 'guesser' | 'system-analyst', url: string | undefined) => {
    if (url) return { url, apiKey: serviceKeyToSend(readApiKeys(keyEnv)) };
    const env = {
      LOG_LEVEL: 'error',
      ...config.env,
      ...(config.prompts[which] ? { PROMPT_FILE: config.prompts[which] } : {}),
      SERVICE_API_KEYS: `eval:${ownKey}`,
    };
    const app =
      which === 'guesser'
        ? buildGuesser({ config: loadGuesserConfig(env), logger: quietLogger(which) })
        : buildAnalyst({ config: loadAnalystConfig(env), logger: quietLogger(which) });
    const served = await serve(app);
    servers.push(served.server);
    return { url: served.url, apiKey: ownKey };
  };
  const guesser = await start('guesser', config.guesserUrl);
  const analyst = await start('system-analyst', config.analystUrl);
  const options = { timeoutMs, metrics, logger, maxRetries: 0 };
  const keyOf = (apiKey: string | undefined) => (apiKey ? { apiKey } : {});
  return {
    guesser: createGuesserClient({ baseURL: guesser.url, ...keyOf(guesser.apiKey), ...options }),
    analyst: createAnalystClient({ baseURL: analyst.url, ...keyOf(analyst.apiKey), ...options }),
    close: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      );
    },
  };
}

/** Where a conversation stands after a case: what a follow-up continues (as the secretary's history would). */
type Thread = { request: string; question: string; rounds: number } | undefined;

/**
 * Decides one request the way the secretary does: guesser, then (when it is enough) the system analyst, then the
 * secretary's own proposeDecision (decision.ts). Sends nothing and runs no action.
 */
export async function decideRequest(
  clients: Pick<Clients, 'guesser' | 'analyst'>,
  config: Pick<EvalConfig, 'personas' | 'maxClarifications'>,
  input: { channel: EvalCase['channel']; username: string; department: string; position: string; request: string },
  thread: Thread,
): Promise<{ decision: Decision; category?: string; calls: LlmCallRecord[]; latencyMs: number }> {
  const request = thread
    ? [thread.request, thread.question, input.request].map((s) => s.trim()).join(' ')
    : input.request;
  const persona = config.personas[input.department];
  const started = performance.now();
  const guess = await clients.guesser.getContext({
    username: input.username,
    department: input.department,
    position: input.position,
    request,
    ...(persona ? { persona } : {}),
  });
  const guessed = performance.now();
  const calls: LlmCallRecord[] = [
    { service: 'guesser', ...guess.provenance, durationMs: Math.round(guessed - started) },
  ];
  let analysis: AnalystAnswer | undefined;
  // A category marked (no_reply) that the guesser is sure of: no analyst call and no answer, as the secretary's
  // analyzer does (before, the eval asked the analyst and scored an answer production never sends).
  if (guess.is_enough && !guess.no_reply) {
    analysis = await clients.analyst.prepareAnalytics({
      context: guess.response,
      request,
      ...(persona ? { persona } : {}),
    });
    calls.push({
      service: 'system-analyst',
      ...analysis.provenance,
      durationMs: Math.round(performance.now() - guessed),
    });
  }
  const { proposal } = guess.no_reply
    ? { proposal: noReplyDecision(request, channelReplyAction(input.channel), guess) }
    : proposeDecision({
        channel: input.channel,
        request,
        guess,
        analysis,
        clarificationRounds: thread?.rounds ?? 0,
        maxClarifications: config.maxClarifications,
        departmentName: input.department,
      });
  const category = (guess as { category?: unknown }).category;
  return {
    decision: proposal,
    category: typeof category === 'string' ? category : undefined,
    calls,
    latencyMs: performance.now() - started,
  };
}

/**
 * Runs a labelled set under one configuration. Cases run `concurrency` conversations at a time; a follow-up waits
 * for the case it follows and, when that case was answered with a question, continues it (earlier request,
 * question, answer — the seed's rule), otherwise starts afresh, as the secretary would.
 */
export async function runSet(
  cases: EvalCase[],
  clients: Pick<Clients, 'guesser' | 'analyst'>,
  config: Pick<EvalConfig, 'personas' | 'maxClarifications'>,
  options: { concurrency: number; onCase?: () => void },
): Promise<CaseResult[]> {
  const results = new Map<string, CaseResult>();
  const threads = new Map<string, Thread>();
  const followers = new Map<string, EvalCase[]>();
  const roots: EvalCase[] = [];
  for (const c of cases) {
    if (c.follows) followers.set(c.follows, [...(followers.get(c.follows) ?? []), c]);
    else roots.push(c);
  }
  const runCase = async (c: EvalCase): Promise<void> => {
    const parent = c.follows ? threads.get(c.follows) : undefined;
    try {
      const out = await decideRequest(clients, config, c, parent);
      results.set(c.id, { id: c.id, expected: c.expected, ...out });
      threads.set(
        c.id,
        out.decision.action === ACTION_CLARIFY
          ? { request: out.decision.request, question: out.decision.question, rounds: (parent?.rounds ?? 0) + 1 }
          : undefined,
      );
    } catch (err) {
      results.set(c.id, {
        id: c.id,
        expected: c.expected,
        latencyMs: 0,
        calls: [],
        error: isAppError(err) ? err.code : err instanceof Error ? err.message : String(err),
        errorMessage: err instanceof Error ? err.message : String(err),
      });
      threads.set(c.id, undefined);
    }
    options.onCase?.();
    for (const next of followers.get(c.id) ?? []) await runCase(next);
  };
  let cursor = 0;
  const worker = async () => {
    while (cursor < roots.length) await runCase(roots[cursor++]!);
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
  return cases.map((c) => results.get(c.id)!);
}
