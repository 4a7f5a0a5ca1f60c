// The local-model part of `npm run bench`: the guesser and the system analyst with LLM_PROVIDER=local on the
// default model (hf:Qwen/Qwen3-0.6B-GGUF:Q8_0 in LLM_MODELS_DIR, as the first `npm start` downloads it) or on
// BENCH_LOCAL_MODEL=<file.gguf>. Prints output tokens per second, seconds per analysis (one /analyze-request =
// a guesser call + an analyst call, one at a time) and each LLM service's RSS with the model loaded. Skipped
// with a note when the model file is not there: the bench never downloads anything.
//
// Environment: BENCH_LOCAL_MODEL (a GGUF file), BENCH_LOCAL_RUNS (analyses, default 3), LLM_MODELS_DIR,
// LLM_THREADS, LLM_CONTEXT_SIZE (passed on to the services).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { findDownloadedModel, hubModelDir, parseHubModelRef, PROVIDER_DEFAULTS } from '@workemon/llm';
import { waitFor } from '@workemon/testkit';

type Started = { name: string; child: { pid?: number }; url: string };

export type LocalBenchDeps = {
  /** Starts a service from source with this environment and waits for it to answer /health. */
  startService: (name: string, env: Record<string, string>) => Promise<Started>;
  /** HOST and the service key every service of the run gets (as npm start). */
  authEnv: Record<string, string>;
  /** The client key /analyze-request is called with. */
  clientKey: string;
  /** The secretary's database settings (DATABASE_URL or PGLITE_DIR). */
  databaseEnv: Record<string, string>;
  /** Adds a process to those the caller stops. */
  track: (p: Started) => void;
  rssMb: (pid: number | undefined) => string;
};

/** The default model's file when it has been downloaded, else undefined. */
async function defaultModelFile(): Promise<string | undefined> {
  const ref = parseHubModelRef(PROVIDER_DEFAULTS.local.model)!;
  return findDownloadedModel(hubModelDir(process.env['LLM_MODELS_DIR'] ?? './data/models', ref), ref);
}

/** Sums a Prometheus counter's (or histogram _sum's) samples whose labels contain `match`. */
function metricSum(text: string, name: string, match: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) && line.includes(match)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

async function llmCounters(urls: string[]): Promise<{ outputTokens: number; seconds: number }> {
  let outputTokens = 0;
  let seconds = 0;
  for (const url of urls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    outputTokens += metricSum(text, 'workemon_llm_tokens_total', 'kind="output"');
    seconds += metricSum(text, 'workemon_llm_request_duration_seconds_sum', 'provider="local"');
  }
  return { outputTokens, seconds };
}

export async function benchLocalModel(deps: LocalBenchDeps): Promise<void> {
  const file = process.env['BENCH_LOCAL_MODEL'] ? resolve(process.env['BENCH_LOCAL_MODEL']) : await defaultModelFile();
  if (!file || !existsSync(file)) {
    const where = hubModelDir(
      process.env['LLM_MODELS_DIR'] ?? './data/models',
      parseHubModelRef(PROVIDER_DEFAULTS.local.model)!,
    );
    console.log(
      `[bench] local model: skipped — no ${PROVIDER_DEFAULTS.local.model} in ${where} ` +
        '(the first `npm start` downloads it; or set BENCH_LOCAL_MODEL=<file.gguf>)',
    );
    return;
  }
  const runs = Number(process.env['BENCH_LOCAL_RUNS'] ?? 3);
  console.log(`[bench] local model: ${file}, ${runs} analyses one at a time`);
  const env = {
    ...deps.authEnv,
    LLM_PROVIDER: 'local',
    LLM_MODEL: file,
    LLM_MAX_RETRIES: '0',
    LLM_TIMEOUT_MS: '300000',
    ...(process.env['LLM_THREADS'] ? { LLM_THREADS: process.env['LLM_THREADS'] } : {}),
    ...(process.env['LLM_CONTEXT_SIZE'] ? { LLM_CONTEXT_SIZE: process.env['LLM_CONTEXT_SIZE'] } : {}),
  };
  const loadStarted = performance.now();
  const guesser = await deps.startService('guesser', env);
  deps.track(guesser);
  const analyst = await deps.startService('system-analyst', env);
  deps.track(analyst);
  for (const s of [guesser, analyst]) {
    let down: string | undefined;
    await waitFor(
      async () => {
        const health = (await (await fetch(`${s.url}/health`)).json()) as {
          checks?: Record<string, { status: string; detail?: string }>;
        };
        const check = health.checks?.['llm:local'];
        if (check?.status === 'down') down = check.detail;
        return check?.status === 'ok' || down !== undefined;
      },
      { timeoutMs: 300_000, what: `${s.name} model loaded` },
    );
    if (down) {
      console.log(`[bench] local model: ${s.name} cannot use ${file}: ${down}`);
      return;
    }
  }
  console.log(`  both services loaded the model in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`);
  const secretary = await deps.startService('secretary', {
    ...deps.authEnv,
    ...deps.databaseEnv,
    GUESSER_URL: guesser.url,
    SYSTEM_ANALYST_URL: analyst.url,
    GUESSER_TIMEOUT: '300s',
    SYSTEM_ANALYST_TIMEOUT: '300s',
  });
  deps.track(secretary);

  const before = await llmCounters([guesser.url, analyst.url]);
  const seconds: number[] = [];
  let failed = 0;
  for (let i = 0; i < runs; i += 1) {
    const request = `Хочу получать аналитику по операциям авторизации наших кошельков за прошлый месяц (${i + 1})`;
    const started = performance.now();
    const res = await fetch(
      `${secretary.url}/analyze-request?channel=direct&username=bench${i}&request=${encodeURIComponent(request)}`,
      { signal: AbortSignal.timeout(600_000), headers: { authorization: `Bearer ${deps.clientKey}` } },
    );
    await res.text();
    if (!res.ok) failed += 1;
    seconds.push((performance.now() - started) / 1000);
  }
  const after = await llmCounters([guesser.url, analyst.url]);
  const tokens = after.outputTokens - before.outputTokens;
  const genSeconds = after.seconds - before.seconds;
  const mean = seconds.reduce((a, b) => a + b, 0) / seconds.length;
  console.log(
    `  seconds per analysis: mean ${mean.toFixed(1)} s, max ${Math.max(...seconds).toFixed(1)} s` +
      `${failed ? ` (${failed} of ${runs} failed)` : ''}`,
  );
  console.log(
    `  output tokens per second: ${genSeconds > 0 ? (tokens / genSeconds).toFixed(1) : '?'} ` +
      `(${tokens} tokens in ${genSeconds.toFixed(1)} s of LLM calls, prompt evaluation included)`,
  );
  console.log('  RSS with the model loaded:');
  for (const s of [guesser, analyst]) console.log(`    ${s.name.padEnd(16)} ${deps.rssMb(s.child.pid).padStart(9)}`);
}
