import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type * as NodeLlamaCppModule from 'node-llama-cpp';
import type {
  ChatHistoryItem,
  ChatWrapper,
  LlamaContext,
  LlamaContextSequence,
  LlamaGrammar,
  Llama,
  LlamaModel,
} from 'node-llama-cpp';
import {
  AppError,
  backoffMs,
  retry,
  sleep,
  startDeadline,
  untilAborted,
  type CheckResult,
  type Logger,
} from '@workemon/service-kit';
import type { LlmSettings, ProviderSettings } from './llm-config.js';
import { displayUrl, llmErrors } from './llm-errors.js';
import {
  ModelDownloadError,
  downloadHubFile,
  findDownloadedModel,
  hubFileUrl,
  hubModelDir,
  parseHubModelRef,
  resolveHubFile,
  tryLockDownload,
  type DownloadProgress,
  type HubFile,
  type HubModelRef,
} from './model-download.js';
import type { ChatMessage, GenerateRequest, ProviderWire } from './provider-wire.js';

type NodeLlamaCpp = typeof NodeLlamaCppModule;

/** Where the in-process model is on its way from configuration to answering (reported by /health). */
export type LocalModelPhase =
  | { phase: 'preparing'; file?: string }
  | { phase: 'downloading'; file: string; receivedBytes: number; totalBytes: number }
  | { phase: 'loading'; file: string }
  | { phase: 'ready'; file: string }
  | { phase: 'failed'; file?: string; problem: string };

/** The default model's file in its repository (known without asking the hub, for the "download it yourself" hint). */
const KNOWN_FILES: Record<string, string> = {
  'qwen/qwen3-0.6b-gguf:q8_0': 'Qwen3-0.6B-Q8_0.gguf',
  'qwen/qwen3-0.6b-gguf:': 'Qwen3-0.6B-Q8_0.gguf',
};

export type LocalWire = ProviderWire & {
  phase(): LocalModelPhase;
  /** Resolves when the model is loaded (or failed); for tests and the bench. */
  whenSettled(): Promise<LocalModelPhase>;
  /** Generations running now, calls waiting for a sequence, and the most generations ever run at once. */
  stats(): { active: number; waiting: number; peakActive: number };
  close(): Promise<void>;
};

export type LocalWireDeps = {
  logger?: Logger;
  /** Where the download progress bar is drawn (only when it is a TTY). Default process.stderr. */
  progressStream?: NodeJS.WriteStream;
  /** Loads the binding; injected by tests to simulate a platform where it cannot load. */
  importBinding?: () => Promise<NodeLlamaCpp>;
};

const MB = 1024 * 1024;
/** Tries of one download when the connection breaks off (each resumes where the last stopped). */
const DOWNLOAD_ATTEMPTS = 5;
/** 1.2 GB, 640 MB, 170 KB. */
function formatBytes(bytes: number): string {
  if (bytes >= 1024 * MB) return `${(bytes / (1024 * MB)).toFixed(1)} GB`;
  if (bytes >= MB) return `${Math.round(bytes / MB)} MB`;
  return `${Math.round(bytes / 1024)} KB`;
}
const percent = (p: DownloadProgress) => (p.totalBytes > 0 ? Math.floor((p.receivedBytes / p.totalBytes) * 100) : 0);

/** JSON Schema keywords node-llama-cpp's grammar builder understands; everything else is left out of the grammar. */
const GRAMMAR_KEYS = new Set([
  'type',
  'properties',
  'required',
  'additionalProperties',
  'items',
  'prefixItems',
  'minItems',
  'maxItems',
  'enum',
  'const',
  'oneOf',
  'minLength',
  'maxLength',
  'description',
  '$defs',
  '$ref',
  'minProperties',
  'maxProperties',
]);

/** Most values a bounded number may take in the grammar (see `boundedNumberEnum`). */
const BOUNDED_STEPS = 100;

/**
 * The values of a number bounded on both sides (`minimum` and `maximum`, e.g. a confidence 0–1), for a grammar
 * that cannot express a range: an integer's every value (at most BOUNDED_STEPS + 1 of them), a number's in
 * hundredths of the range. Undefined for anything else (the range is then checked only after parsing).
 */
function boundedNumberEnum(schema: Record<string, unknown>): number[] | undefined {
  const { type, minimum: min, maximum: max } = schema;
  if (type !== 'number' && type !== 'integer') return undefined;
  if (typeof min !== 'number' || typeof max !== 'number' || !Number.isFinite(min) || !Number.isFinite(max)) {
    return undefined;
  }
  if (max < min || 'enum' in schema || 'const' in schema) return undefined;
  if (type === 'integer') {
    const from = Math.ceil(min);
    const to = Math.floor(max);
    if (to < from || to - from > BOUNDED_STEPS) return undefined;
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  }
  const values = Array.from({ length: BOUNDED_STEPS + 1 }, (_, i) =>
    Number((min + ((max - min) * i) / BOUNDED_STEPS).toPrecision(12)),
  );
  return [...new Set(values)];
}

/**
 * The answer schema as node-llama-cpp's GBNF JSON-schema subset: `anyOf` becomes `oneOf`, a number bounded on
 * both sides becomes the enum of its values (integers) or hundredths (numbers), so a small model cannot answer
 * a confidence of 4; other unknown keywords (`pattern`, an open-ended `minimum`, `format`…) are dropped — the
 * full schema is still checked when the answer is parsed.
 */
export function grammarSchemaOf(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(grammarSchemaOf);
  if (!schema || typeof schema !== 'object') return schema;
  const bounded = boundedNumberEnum(schema as Record<string, unknown>);
  if (bounded) {
    const description = (schema as Record<string, unknown>)['description'];
    return { enum: bounded, ...(typeof description === 'string' ? { description } : {}) };
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema as Record<string, unknown>)) {
    const name = key === 'anyOf' ? 'oneOf' : key;
    if (!GRAMMAR_KEYS.has(name)) continue;
    if (name === 'properties' || name === '$defs') {
      out[name] = Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, grammarSchemaOf(v)]),
      );
    } else if (name === 'enum' || name === 'const' || name === 'required' || name === 'description') {
      out[name] = value;
    } else out[name] = grammarSchemaOf(value);
  }
  return out;
}

function toHistory(messages: ChatMessage[], noThink: boolean): ChatHistoryItem[] {
  const lastUser = messages.map((m) => m.role).lastIndexOf('user');
  return messages.map((m, i): ChatHistoryItem => {
    if (m.role === 'system') return { type: 'system', text: m.content };
    if (m.role === 'assistant') return { type: 'model', response: [m.content] };
    // Qwen3's soft switch: "/no_think" in the last user turn answers without a reasoning block.
    return { type: 'user', text: noThink && i === lastUser ? `${m.content}\n/no_think` : m.content };
  });
}

/** A FIFO pool of context sequences: one generation per sequence; waiting callers leave the line when aborted. */
function createSequencePool(sequences: LlamaContextSequence[]) {
  const free = [...sequences];
  const waiting: { take: (s: LlamaContextSequence) => void; signal?: AbortSignal }[] = [];
  return {
    acquire(signal?: AbortSignal): Promise<LlamaContextSequence> {
      const s = free.shift();
      if (s) return Promise.resolve(s);
      return new Promise((take, reject) => {
        const entry = { take, signal };
        waiting.push(entry);
        signal?.addEventListener(
          'abort',
          () => {
            const at = waiting.indexOf(entry);
            if (at >= 0) waiting.splice(at, 1);
            reject(signal.reason);
          },
          { once: true },
        );
      });
    },
    release(s: LlamaContextSequence) {
      const next = waiting.shift();
      if (next) next.take(s);
      else free.push(s);
    },
  };
}

/** What the download steps of one local wire share (see fetchHubModel). */
type DownloadContext = {
  provider: ProviderSettings;
  /** LLM_MODELS_DIR. */
  modelsDir: string;
  logger?: Logger;
  /** Where the progress bar is drawn (only when it is a TTY). */
  progressStream: NodeJS.WriteStream;
  /** Aborts when the wire closes: the download, the waits between attempts and the wait for another process stop. */
  signal: AbortSignal;
  /** Reports where the model is (`downloading` with its byte counts) to the wire's health. */
  setPhase: (phase: LocalModelPhase) => void;
};

/** The progress bar line: `[local model] file [###...] 42 % 120 MB of 640 MB 8.1 MB/s`. */
function progressLine(file: string, progress: DownloadProgress, rateMbPerS: number): string {
  const width = 30;
  const pct = percent(progress);
  const filled = Math.round((pct / 100) * width);
  return (
    `\r[local model] ${basename(file)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct} % ` +
    `${formatBytes(progress.receivedBytes)} of ${formatBytes(progress.totalBytes)} ${rateMbPerS.toFixed(1)} MB/s `
  );
}

/**
 * Reports a download's progress: the wire's phase on every call, a progress bar redrawn at most every 200 ms on a
 * TTY, and an info log line every 10 %.
 */
function progressReporter(ctx: DownloadContext, file: string): { update(progress: DownloadProgress): void } {
  const stream = ctx.progressStream;
  const tty = stream.isTTY === true;
  let lastDraw = 0;
  let lastPercent = -10;
  const started = Date.now();
  let startBytes: number | undefined;
  return {
    update(progress: DownloadProgress) {
      ctx.setPhase({ phase: 'downloading', file, ...progress });
      startBytes ??= progress.receivedBytes;
      const pct = percent(progress);
      const now = Date.now();
      const complete = progress.receivedBytes === progress.totalBytes;
      if (tty && (now - lastDraw > 200 || complete)) {
        lastDraw = now;
        const rate = (progress.receivedBytes - startBytes) / MB / Math.max(0.001, (now - started) / 1000);
        stream.write(progressLine(file, progress, rate));
        if (complete) stream.write('\n');
      }
      if (pct >= lastPercent + 10) {
        lastPercent = pct - (pct % 10);
        ctx.logger?.info(`local model: downloading ${basename(file)}: ${pct} %`, {
          llm: {
            provider: ctx.provider.name,
            file,
            received_bytes: progress.receivedBytes,
            total_bytes: progress.totalBytes,
          },
        });
      }
    },
  };
}

/** Waits for another process's download of `dest` (it holds the lock), showing the part's growth. */
async function followOtherDownload(
  ctx: DownloadContext,
  hubFile: HubFile,
  dest: string,
): Promise<'done' | 'lock-free'> {
  for (;;) {
    if (ctx.signal.aborted) throw new Error('closed');
    if (existsSync(dest)) return 'done';
    if (!existsSync(`${dest}.lock`)) return 'lock-free';
    const have = (await stat(`${dest}.part`).catch(() => undefined))?.size ?? 0;
    ctx.setPhase({ phase: 'downloading', file: dest, receivedBytes: have, totalBytes: hubFile.size });
    await sleep(1000, { signal: ctx.signal });
  }
}

/** What an operator without network does instead: the file's URL and where to put it (or a GGUF path). */
function noNetworkHint(baseUrl: string, ref: HubModelRef, dir: string, hubFile?: HubFile): string {
  const key = `${ref.owner}/${ref.repo}:${ref.quant ?? ''}`.toLowerCase();
  const name = hubFile?.path ?? KNOWN_FILES[key];
  if (name) {
    return (
      `download ${hubFileUrl(baseUrl, ref, name)} and put it at ${join(dir, basename(name))} ` +
      '(or set LLM_MODEL to the path of a GGUF file)'
    );
  }
  return (
    `download a GGUF file${ref.quant ? ` (${ref.quant})` : ''} of ${displayUrl(baseUrl)}/${ref.owner}/${ref.repo} into ${dir} ` +
    '(or set LLM_MODEL to the path of a GGUF file)'
  );
}

/** The hub's file for `ref`; a failed look-up throws an Error naming the model and the no-network hint. */
async function lookUpHubFile(ctx: DownloadContext, ref: HubModelRef, dir: string): Promise<HubFile> {
  try {
    return await resolveHubFile(ctx.provider.baseUrl, ref);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`cannot look up ${ctx.provider.model}: ${why}; ${noNetworkHint(ctx.provider.baseUrl, ref, dir)}`, {
      cause: err,
    });
  }
}

/** Whether a failed download attempt is worth resuming: the connection broke off (the part stays on disk). */
function isBrokenConnection(err: unknown): boolean {
  return err instanceof ModelDownloadError && err.kind === 'network';
}

/**
 * Downloads `hubFile` to `dest`; a connection that breaks off is resumed from the bytes already on disk (Range)
 * up to DOWNLOAD_ATTEMPTS tries in all, waiting 1 s, 2 s, 4 s … (at most 30 s, resilience `backoffMs` without
 * jitter: one process, nobody to spread from) in between. Throws the last ModelDownloadError.
 */
async function downloadWithResume(ctx: DownloadContext, hubFile: HubFile, dest: string): Promise<void> {
  const reporter = progressReporter(ctx, dest);
  await retry(() => downloadHubFile(hubFile, dest, { onProgress: (pr) => reporter.update(pr), signal: ctx.signal }), {
    maxRetries: DOWNLOAD_ATTEMPTS - 1,
    shouldRetry: isBrokenConnection,
    delayMs: (n) => backoffMs(n, { baseMs: 1000, maxMs: 30_000, jitter: 0 }),
    onRetry: (err, n, waitMs) =>
      ctx.logger?.warn(`local model: ${(err as Error).message}; resuming in ${waitMs / 1000} s`, {
        llm: { provider: ctx.provider.name, file: dest, attempt: n + 1 },
      }),
    signal: ctx.signal,
  });
}

/**
 * The download of `hubFile` to `dest` by the process holding its lock (a file another process finished meanwhile
 * is taken as is). A broken connection that stays broken throws an Error with the no-network hint.
 */
async function downloadHolding(
  ctx: DownloadContext,
  ref: HubModelRef,
  hubFile: HubFile,
  dest: string,
): Promise<string> {
  if (existsSync(dest)) return dest;
  const llm = { provider: ctx.provider.name, file: dest };
  ctx.logger?.info(`local model: downloading ${hubFile.url} (${formatBytes(hubFile.size)}) to ${dest}`, {
    llm: { ...llm, url: hubFile.url, total_bytes: hubFile.size },
  });
  try {
    await downloadWithResume(ctx, hubFile, dest);
  } catch (err) {
    if (!isBrokenConnection(err)) throw err;
    const hint = noNetworkHint(ctx.provider.baseUrl, ref, dirname(dest), hubFile);
    throw new Error(`${(err as Error).message}; ${hint}`, { cause: err });
  }
  ctx.logger?.info(`local model: downloaded and verified ${dest}`, { llm });
  return dest;
}

/**
 * hf: reference → a local file: one already in `LLM_MODELS_DIR/<owner>/<repo>/`, else downloaded under a lock
 * file (another process holding it is waited for; see tryLockDownload). Throws an Error an operator can act on.
 */
async function fetchHubModel(ctx: DownloadContext, ref: HubModelRef): Promise<string> {
  const dir = hubModelDir(ctx.modelsDir, ref);
  const present = await findDownloadedModel(dir, ref);
  if (present) return present;
  const hubFile = await lookUpHubFile(ctx, ref, dir);
  const dest = join(dir, basename(hubFile.path));
  for (;;) {
    const release = await tryLockDownload(dest);
    if (release) {
      try {
        return await downloadHolding(ctx, ref, hubFile, dest);
      } finally {
        await release();
      }
    }
    ctx.logger?.info(`local model: another process is downloading ${dest}; waiting for it`, {
      llm: { provider: ctx.provider.name, file: dest },
    });
    if ((await followOtherDownload(ctx, hubFile, dest)) === 'done') return dest;
  }
}

/**
 * The `local` provider: a GGUF model run in this process by llama.cpp through node-llama-cpp (an optional
 * dependency, imported only here). `LLM_MODEL` is a file path or `hf:<owner>/<repo>[:<quant>]`; a hub model is
 * downloaded once into `LLM_MODELS_DIR/<owner>/<repo>/` (resumed, verified; see model-download.ts) and loaded
 * once. The answer is constrained by a grammar built from the answer's JSON Schema, so it always parses;
 * reasoning is switched off (Qwen3: an empty thought block and `/no_think`). Generations run one per context
 * sequence (`LLM_LOCAL_PARALLEL`, default 1); further calls wait in line, and a call's deadline
 * (`LLM_TIMEOUT_MS`, counted from entering the line) aborts its wait or its generation.
 *
 * Errors: model missing, corrupt, still downloading, or the binding not loadable → 503 `llm_model_unavailable`
 * naming the file and what to do; deadline → 504 `llm_timeout`; answer cut at the token limit → 502.
 */
export function createLocalWire(p: ProviderSettings, settings: LlmSettings, deps: LocalWireDeps = {}): LocalWire {
  const { logger } = deps;
  const local = settings.local;
  let state: LocalModelPhase = { phase: 'preparing' };
  let binding: NodeLlamaCpp | undefined;
  let llama: Llama | undefined;
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  let chatWrapper: ChatWrapper | undefined;
  let noThink = false;
  let pool: ReturnType<typeof createSequencePool> | undefined;
  let closed = false;
  const grammars = new WeakMap<object, Promise<LlamaGrammar>>();
  const downloadAbort = new AbortController();
  const counters = { active: 0, waiting: 0, peakActive: 0 };

  const downloadContext: DownloadContext = {
    provider: p,
    modelsDir: local.modelsDir,
    logger,
    progressStream: deps.progressStream ?? process.stderr,
    signal: downloadAbort.signal,
    setPhase: (phase) => {
      state = phase;
    },
  };

  const fail = (problem: string, file?: string): LocalModelPhase => {
    state = { phase: 'failed', file, problem };
    logger?.error(`local model: ${problem}`, { llm: { provider: p.name, model: p.model, file } });
    return state;
  };

  async function prepare(): Promise<LocalModelPhase> {
    const ref = parseHubModelRef(p.model);
    let file: string;
    if (ref) {
      try {
        file = await fetchHubModel(downloadContext, ref);
      } catch (err) {
        if (closed) return state;
        return fail(err instanceof Error ? err.message : String(err));
      }
    } else {
      file = resolve(p.model);
      if (!existsSync(file)) {
        return fail(
          `model file ${file} does not exist: put a GGUF model there, or set LLM_MODEL to hf:<owner>/<repo> to download one`,
          file,
        );
      }
    }
    if (closed) return state;
    state = { phase: 'loading', file };
    try {
      binding = await (deps.importBinding ?? (() => import('node-llama-cpp')))();
      llama = await binding.getLlama({
        gpu: false,
        build: 'never',
        logLevel: binding.LlamaLogLevel.warn,
        logger: (level, message) => {
          const text = message.trim();
          if (text) logger?.debug(`llama.cpp: ${text}`, { llm: { provider: p.name, level } });
        },
      });
    } catch (err) {
      return fail(
        `node-llama-cpp cannot load on this machine (${err instanceof Error ? err.message : String(err)}): ` +
          'install the optional dependency node-llama-cpp (npm ci without --omit=optional), or choose another LLM_PROVIDER',
        file,
      );
    }
    try {
      model = await llama.loadModel({ modelPath: file });
      context = await model.createContext({
        contextSize: Math.min(local.contextSize, model.trainContextSize),
        sequences: local.parallel,
        ...(local.threads > 0 ? { threads: local.threads } : {}),
      });
      const sequences = Array.from({ length: local.parallel }, () => context!.getSequence());
      pool = createSequencePool(sequences);
      chatWrapper = binding.resolveChatWrapper(model, { customWrapperSettings: { qwen: { thoughts: 'discourage' } } });
      noThink = chatWrapper instanceof binding.QwenChatWrapper;
    } catch (err) {
      return fail(
        `model file ${file} cannot be loaded (${err instanceof Error ? err.message : String(err)}): ` +
          'it is not a GGUF model llama.cpp can run, or it is damaged — replace it',
        file,
      );
    }
    if (closed) return state;
    state = { phase: 'ready', file };
    logger?.info(`local model ready: ${file}`, {
      llm: {
        provider: p.name,
        file,
        context_size: context.contextSize,
        threads: context.currentThreads,
        parallel: local.parallel,
        chat_wrapper: chatWrapper.wrapperName,
      },
    });
    return state;
  }

  const settled = prepare().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));

  function unavailable(): AppError {
    const s = state;
    if (s.phase === 'downloading') {
      return new AppError(
        'llm_model_unavailable',
        503,
        `The local model is still downloading (${percent(s)} % of ${basename(s.file)}); try again later`,
        { details: { provider: p.name, file: s.file }, headers: { 'Retry-After': '30' }, retryable: false },
      );
    }
    if (s.phase === 'failed') {
      return new AppError('llm_model_unavailable', 503, `The local model is unavailable: ${s.problem}`, {
        details: { provider: p.name, file: s.file },
        retryable: false,
      });
    }
    return new AppError('llm_model_unavailable', 503, 'The local model is still being prepared; try again shortly', {
      details: { provider: p.name },
      headers: { 'Retry-After': '5' },
      retryable: false,
    });
  }

  function grammarFor(jsonSchema: Record<string, unknown>): Promise<LlamaGrammar> {
    let g = grammars.get(jsonSchema);
    if (!g) {
      const converted = grammarSchemaOf(jsonSchema) as Parameters<Llama['createGrammarForJsonSchema']>[0];
      g = llama!.createGrammarForJsonSchema(converted).catch((err: unknown) => {
        // A schema outside the grammar builder's subset: any JSON object, validated after parsing.
        logger?.warn(`local model: no grammar for this schema (${String(err)}); constraining to JSON only`, {
          llm: { provider: p.name },
        });
        return llama!.getGrammarFor('json');
      });
      grammars.set(jsonSchema, g);
    }
    return g;
  }

  async function generate(req: GenerateRequest) {
    const deadline = startDeadline(req.timeoutMs);
    const signal = req.signal ? AbortSignal.any([deadline.signal, req.signal]) : deadline.signal;
    let sequence: LlamaContextSequence | undefined;
    try {
      if (state.phase === 'loading' || state.phase === 'preparing') {
        // Loading takes seconds; a download can take minutes and is answered with 503 + Retry-After instead.
        await untilAborted(settled, signal);
      }
      if (state.phase !== 'ready' || !pool || !binding || !model) throw unavailable();
      counters.waiting += 1;
      try {
        sequence = await pool.acquire(signal);
      } finally {
        counters.waiting -= 1;
      }
      counters.active += 1;
      counters.peakActive = Math.max(counters.peakActive, counters.active);
      const grammar = await grammarFor(req.jsonSchema);
      const before = sequence.tokenMeter.getState();
      const chat = new binding.LlamaChat({ contextSequence: sequence, chatWrapper });
      try {
        const result = await chat.generateResponse(toHistory(req.messages, noThink), {
          grammar,
          maxTokens: req.maxOutputTokens,
          temperature: req.temperature,
          signal,
          budgets: { thoughtTokens: 0 },
        });
        const used = sequence.tokenMeter.diff(before);
        const usage = {
          inputTokens: used.usedInputTokens,
          outputTokens: used.usedOutputTokens,
          totalTokens: used.usedInputTokens + used.usedOutputTokens,
        };
        if (result.metadata.stopReason === 'maxTokens') {
          throw llmErrors.invalidOutput(p.name, 'answer cut off at the token limit', result.response);
        }
        return { text: result.response, usage };
      } finally {
        chat.dispose({ disposeSequence: false });
      }
    } catch (err) {
      if (signal.aborted) throw llmErrors.timeout(p.name, req.timeoutMs);
      if (err instanceof AppError) throw err;
      const message = err instanceof Error ? err.message : String(err);
      throw new AppError('llm_rejected', 502, `LLM provider '${p.name}' could not generate an answer`, {
        cause: err,
        details: { provider: p.name, problem: message },
        retryable: false,
      });
    } finally {
      deadline.clear();
      if (sequence) {
        counters.active -= 1;
        pool!.release(sequence);
      }
    }
  }

  return {
    generate,
    async checkHealth(): Promise<CheckResult> {
      const s = state;
      switch (s.phase) {
        case 'ready':
          return { status: 'ok', detail: `local ${s.file}: loaded` };
        case 'downloading':
          return {
            status: 'degraded',
            detail:
              `local: downloading ${percent(s)} % of ${basename(s.file)} ` +
              `(${formatBytes(s.receivedBytes)} of ${formatBytes(s.totalBytes)}) into ${s.file}`,
          };
        case 'loading':
          return { status: 'degraded', detail: `local: loading ${s.file}` };
        case 'preparing':
          return { status: 'degraded', detail: `local: preparing ${p.model}` };
        case 'failed':
          return { status: 'down', detail: `local: ${s.problem}` };
      }
    },
    phase: () => state,
    stats: () => ({ ...counters }),
    whenSettled: () => settled,
    async close() {
      closed = true;
      downloadAbort.abort();
      await settled;
      await context?.dispose();
      await model?.dispose();
      await llama?.dispose();
    },
  };
}
