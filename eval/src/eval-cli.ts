/**
 * `npm run eval`: scores configurations of the guesser and the system analyst on a labelled set (or, with
 * --replay, on stored history) and prints the figures side by side. Never sends a reply or runs an action: it
 * calls only the two LLM services and the secretary's pure decision function. See docs/eval.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { sha256Hex } from '@workemon/llm';
import {
  llmEnvFrom,
  parseEvalConfig,
  TEMPERATURE_CONFIGURABLE,
  withPersonaArg,
  type EvalConfig,
} from './eval-config.js';
import { loadAnalyses, loadPersonas, openHistory, storedAsCase } from './history.js';
import { readLabelledSet, type EvalCase } from './labelled-set.js';
import { computeMetrics, type PriceTable } from './metrics.js';
import { htmlReport, jsonReport, textReport, type ConfigReport } from './report.js';
import { openClients, runSet, type CaseResult } from './runner.js';

const USAGE = `usage: npm run eval -- [--set eval/requests.jsonl] [--config FILE.json|key=value,… ...]
       [--persona DEPARTMENT=FILE ...] [--db-personas] [--guesser-url URL --analyst-url URL] [--prices eval/prices.json]
       [--json] [--html report.html] [--concurrency 4] [--timeout-ms 120000]
       [--replay [--since ISO-DATE] [--until ISO-DATE] [--limit N] [--database-url URL | --pglite-dir DIR]]`;

export type EvalOptions = {
  set: string;
  configs: string[];
  personas: string[];
  /** Add the directory's current personas (from the secretary's database) to every configuration. */
  dbPersonas: boolean;
  guesserUrl?: string;
  analystUrl?: string;
  prices: string;
  json: boolean;
  html?: string;
  concurrency: number;
  timeoutMs: number;
  replay: boolean;
  since?: Date;
  until?: Date;
  limit?: number;
  databaseUrl?: string;
  pgliteDir?: string;
};

function parseDate(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (Number.isNaN(date.getTime()))
    throw new Error(`${flag}: '${value}' is not a date (use ISO 8601, e.g. 2026-11-01)`);
  return date;
}

function positiveInt(value: string | undefined, flag: string, fallback: number | undefined): number | undefined {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer`);
  return n;
}

/** Parses the command line (throws with a message naming the bad flag). */
export function parseEvalArgs(argv: string[], env: NodeJS.ProcessEnv): EvalOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      set: { type: 'string', default: 'eval/requests.jsonl' },
      config: { type: 'string', multiple: true, default: [] },
      persona: { type: 'string', multiple: true, default: [] },
      'db-personas': { type: 'boolean', default: false },
      'guesser-url': { type: 'string' },
      'analyst-url': { type: 'string' },
      prices: { type: 'string', default: 'eval/prices.json' },
      json: { type: 'boolean', default: false },
      html: { type: 'string' },
      concurrency: { type: 'string' },
      'timeout-ms': { type: 'string' },
      replay: { type: 'boolean', default: false },
      since: { type: 'string' },
      until: { type: 'string' },
      limit: { type: 'string' },
      'database-url': { type: 'string' },
      'pglite-dir': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) throw new Error(USAGE);
  if (Boolean(values['guesser-url']) !== Boolean(values['analyst-url']))
    throw new Error('--guesser-url and --analyst-url go together');
  return {
    set: values.set!,
    configs: values.config!,
    personas: values.persona!,
    dbPersonas: values['db-personas']!,
    guesserUrl: values['guesser-url'],
    analystUrl: values['analyst-url'],
    prices: values.prices!,
    json: values.json!,
    html: values.html,
    concurrency: positiveInt(values.concurrency, '--concurrency', 4)!,
    timeoutMs: positiveInt(values['timeout-ms'], '--timeout-ms', 120_000)!,
    replay: values.replay!,
    since: parseDate(values.since, '--since'),
    until: parseDate(values.until, '--until'),
    limit: positiveInt(values.limit, '--limit', undefined),
    databaseUrl: values['database-url'] ?? env['DATABASE_URL'],
    pgliteDir: values['pglite-dir'] ?? env['PGLITE_DIR'],
  };
}

/** The price table file: `{ "provider/model": {input_per_million, output_per_million, currency} }` (`_` keys are notes). */
export function readPrices(path: string): PriceTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return {};
  }
  const raw = JSON.parse(text) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(raw).filter(([k]) => !k.startsWith('_'))) as PriceTable;
}

function progressBar(total: number, label: string) {
  // Only for a person watching: never into a pipe or a file, never on stdout (which may hold --json).
  if (!process.stderr.isTTY || total === 0) return { tick: () => {}, done: () => {} };
  let count = 0;
  const draw = () => {
    const width = 30;
    const filled = Math.round((count / total) * width);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${count}/${total}`);
  };
  draw();
  return {
    tick: () => {
      count += 1;
      draw();
    },
    done: () => process.stderr.write('\n'),
  };
}

function provenanceOf(results: CaseResult[]): ConfigReport['provenance'] {
  const models = new Set<string>();
  const prompts = new Set<string>();
  const personas = new Set<string>();
  const settings = new Map<string, Record<string, unknown>>();
  for (const r of results) {
    for (const c of r.calls) {
      if (c.provider) models.add(`${c.provider}/${c.model ?? '?'}`);
      if (c.promptName) prompts.add(`${c.promptName}@${(c.promptSha256 ?? '').slice(0, 12)}`);
      if (c.personaSha256) personas.add(c.personaSha256.slice(0, 12));
      if (c.settings) settings.set(JSON.stringify(c.settings), c.settings);
    }
  }
  return { models: [...models], prompts: [...prompts], personas: [...personas], settings: [...settings.values()] };
}

function describeConfig(config: EvalConfig): Record<string, unknown> {
  return {
    provider: config.env['LLM_PROVIDER'] ?? 'ollama',
    model: config.env['LLM_MODEL'] ?? null,
    base_url: config.env['LLM_BASE_URL'] ?? null,
    prompts: config.prompts,
    personas: Object.fromEntries(Object.entries(config.personas).map(([d, t]) => [d, sha256Hex(t.trim())])),
    temperature: config.temperature ?? null,
    // The LLM client sends a fixed temperature until LLM_TEMPERATURE exists: then the requested one is applied.
    temperature_applied: config.temperature === undefined ? null : TEMPERATURE_CONFIGURABLE,
    guesser_url: config.guesserUrl ?? null,
    analyst_url: config.analystUrl ?? null,
    max_clarifications: config.maxClarifications,
  };
}

/** Disagreements of a replay: cases whose decided action differs from the stored one. */
function disagreementsOf(cases: EvalCase[], results: CaseResult[]): NonNullable<ConfigReport['disagreements']> {
  return results.flatMap((r, i) => {
    const decided = r.decision ? r.decision.action : `error: ${r.error}`;
    if (r.decision && r.decision.action === r.expected.action && r.decision.is_enough === r.expected.is_enough)
      return [];
    return [{ id: r.id, stored: r.expected.action, decided, request: cases[i]!.request }];
  });
}

/** Runs the whole command; returns the reports (and writes the outputs). `out` is stdout. */
export async function runEval(options: EvalOptions, out: (text: string) => void): Promise<ConfigReport[]> {
  const base = llmEnvFrom(process.env);
  let configs = (options.configs.length ? options.configs : ['name=environment']).map((c, i) =>
    parseEvalConfig(c, base, i),
  );
  for (const p of options.personas) configs = configs.map((c) => withPersonaArg(c, p));
  if (options.guesserUrl)
    configs = configs.map((c) => ({
      ...c,
      guesserUrl: c.guesserUrl ?? options.guesserUrl,
      analystUrl: c.analystUrl ?? options.analystUrl,
    }));
  const names = new Set<string>();
  configs = configs.map((c, i) => {
    const name = names.has(c.name) ? `${c.name}#${i + 1}` : c.name;
    names.add(name);
    return { ...c, name };
  });

  let cases: EvalCase[] = [];
  let setName: string;
  if (options.replay || options.dbPersonas) {
    const db = openHistory({ databaseUrl: options.databaseUrl, pgliteDir: options.pgliteDir });
    try {
      if (options.replay) cases = (await loadAnalyses(db, options)).map(storedAsCase);
      if (options.dbPersonas) {
        const stored = await loadPersonas(db);
        // A configuration's own persona for a department wins over the directory's.
        configs = configs.map((c) => ({ ...c, personas: { ...stored, ...c.personas } }));
      }
    } finally {
      await db.close();
    }
  }
  if (options.replay) {
    setName = `replay of ${cases.length} stored decisions`;
  } else {
    cases = readLabelledSet(options.set);
    setName = options.set;
  }
  const prices = readPrices(options.prices);
  const reports: ConfigReport[] = [];
  for (const config of configs) {
    const clients = await openClients(config, options.timeoutMs);
    const bar = progressBar(cases.length, config.name);
    try {
      const results = await runSet(cases, clients, config, { concurrency: options.concurrency, onCase: bar.tick });
      reports.push({
        name: config.name,
        config: describeConfig(config),
        provenance: provenanceOf(results),
        metrics: computeMetrics(results, prices),
        results,
        ...(options.replay ? { disagreements: disagreementsOf(cases, results) } : {}),
      });
    } finally {
      bar.done();
      await clients.close();
    }
  }
  const generatedAt = new Date().toISOString();
  if (options.json) out(jsonReport(reports, { set: setName, replay: options.replay, generated_at: generatedAt }));
  else out(`${setName}\n\n${textReport(reports, options.replay)}`);
  if (options.html) {
    writeFileSync(
      options.html,
      htmlReport(reports, { title: `Workemon eval: ${setName}`, replay: options.replay, generatedAt }),
    );
  }
  return reports;
}
