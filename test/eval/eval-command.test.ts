// `npm run eval` end to end: the real command (tsx, as npm runs it) over the shipped set, with two configurations
// pointing at scripted fake LLMs whose right and wrong answers are known, so every figure is asserted exactly.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeLlm, userDataOf, type FakeLlm } from '@workemon/testkit/fake-llm';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildApp as buildGuesser, loadConfig as loadGuesserConfig } from '@workemon/guesser';
import { buildApp as buildAnalyst, loadConfig as loadAnalystConfig } from '@workemon/system-analyst';
import { createLogger } from '@workemon/service-kit';
import { EVAL_ACTIONS, NO_REPLY, readLabelledSet, type EvalCase } from '../../eval/src/labelled-set.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const SET = readLabelledSet(join(ROOT, 'eval/requests.jsonl'));
const PERSONA = 'Департамент платежей: отвечай на «вы». Владелец шлюза PGW — дежурный @pgw_oncall.';

const createHashHex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

// The scripted model's known mistakes on the shipped set (none of these cases has a follow-up).
const ASKS_ALTHOUGH_CLEAR = ['an-03', 'card-06', 'inc-03'];
const WRONG_ACTION: Record<string, string> = { 'an-07': 'создать jira-task', 'acc-05': 'создать jira-task' };
const ANSWERS_VAGUE = 'an-10';

/** The case a request belongs to: itself, or (a follow-up) the joined text ending with the case's answer. */
function caseOf(text: string): EvalCase {
  const exact = SET.find((c) => c.request === text);
  if (exact) return exact;
  const ends = SET.filter((c) => text.endsWith(` ${c.request}`)).sort((a, b) => b.request.length - a.request.length);
  if (!ends[0]) throw new Error(`unknown request: ${text}`);
  return ends[0];
}

const isAnalyst = (data: Record<string, unknown>) => typeof data['context'] === 'string';

/** Right on every case except the known mistakes above. */
function scriptedModel({ user }: { user: string }) {
  const data = userDataOf(user) as Record<string, string>;
  const c = caseOf(data['request']!);
  if (isAnalyst(data)) {
    if (c.id === ANSWERS_VAGUE) return { is_enough: true, response: 'Совет', action: 'ответить сообщением' };
    return { is_enough: true, response: 'Совет по шагам', action: WRONG_ACTION[c.id] ?? c.expected.action };
  }
  // Automatic mail and marketing: classified so, surely, so the secretary leaves them unanswered.
  if (c.expected.action === NO_REPLY)
    return { is_enough: true, response: 'Рассылка', category: c.expected.category, confidence: 0.95 };
  const enough = ASKS_ALTHOUGH_CLEAR.includes(c.id) ? false : c.id === ANSWERS_VAGUE ? true : c.expected.is_enough;
  return { is_enough: enough, response: enough ? `Контекст: ${c.department}` : 'Уточните, пожалуйста, детали?' };
}

/** A model that never finds a request clear enough. */
const askingModel = () => ({ is_enough: false, response: 'Уточните, пожалуйста?' });

let dir: string;
let scripted: FakeLlm;
let asking: FakeLlm;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'workemon-eval-'));
  scripted = await startFakeLlm({ wire: 'openai' });
  asking = await startFakeLlm({ wire: 'openai', model: 'asking-model' });
  scripted.reply(scriptedModel);
  asking.reply(askingModel);
});

afterAll(async () => {
  await scripted?.close();
  await asking?.close();
  rmSync(dir, { recursive: true, force: true });
});

const configOf = (name: string, fake: FakeLlm, extra = '') =>
  `name=${name},provider=openai,base_url=${fake.url},model=${fake.model},api_key=${fake.apiKey},LLM_MAX_RETRIES=0${extra}`;

/** The environment an LLM service needs to call `fake` (an OpenAI-compatible fake). */
const envOfFake = (fake: FakeLlm) => ({
  LLM_PROVIDER: 'openai',
  LLM_BASE_URL: fake.url,
  LLM_MODEL: fake.model,
  LLM_API_KEY: fake.apiKey!,
  LLM_MAX_RETRIES: '0',
});

/** Serves an app on a free loopback port. */
async function serveApp(app: Parameters<typeof createServer>[1]) {
  const server = createServer(app);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

type Rate = { value: number | null; numerator: number; denominator: number };
type JsonReport = {
  configs: {
    name: string;
    config: { personas: Record<string, string> };
    provenance: { models: string[]; personas: string[] };
    metrics: {
      cases: number;
      errors: number;
      isEnoughAccuracy: Rate;
      actionAccuracy: Rate;
      categoryAccuracy: Rate;
      clarificationRate: Rate;
      noReplyRate: Rate;
      needlessClarificationRate: Rate;
      confusion: { labels: string[]; matrix: number[][] };
      latencyMs: { p50: number | null; p95: number | null };
      tokens: { input: number; output: number; inputPer1000: number; outputPer1000: number };
      costPer1000: { amount: number; currency: string } | null;
      unpriced: string[];
    };
  }[];
};

describe('npm run eval', () => {
  it('scores two configurations side by side with exact figures, JSON and HTML', async () => {
    const prices = join(dir, 'prices.json');
    writeFileSync(
      prices,
      JSON.stringify({ 'openai/fake-model': { input_per_million: 2, output_per_million: 8, currency: 'USD' } }),
    );
    const persona = join(dir, 'payments.md');
    writeFileSync(persona, PERSONA);
    const html = join(dir, 'report.html');
    const { stdout, stderr } = await run(
      join(ROOT, 'node_modules/.bin/tsx'),
      [
        '--conditions=@workemon/source',
        'eval/src/main.ts',
        '--config',
        configOf('scripted', scripted, `,persona.Платежи=${persona}`),
        '--config',
        configOf('asking', asking),
        '--prices',
        prices,
        '--json',
        '--html',
        html,
      ],
      { cwd: ROOT, timeout: 60_000, env: { ...process.env, LLM_PROVIDER: 'ollama' } },
    );
    // Not a terminal: no progress bar, nothing on stderr.
    expect(stderr).toBe('');
    const report = JSON.parse(stdout) as JsonReport;
    expect(report.configs.map((c) => c.name)).toEqual(['scripted', 'asking']);
    const [good, bad] = report.configs.map((c) => c.metrics) as [
      JsonReport['configs'][0]['metrics'],
      JsonReport['configs'][0]['metrics'],
    ];
    const n = SET.length;
    const clear = SET.filter((c) => c.expected.is_enough).length;
    const vague = n - clear;
    expect(n).toBeGreaterThanOrEqual(80);

    // The scripted model: 3 needless questions, 2 wrong actions, 1 vague request answered.
    expect(good.cases).toBe(n);
    expect(good.errors).toBe(0);
    expect(good.isEnoughAccuracy).toEqual({ value: (n - 4) / n, numerator: n - 4, denominator: n });
    expect(good.actionAccuracy).toEqual({ value: (n - 6) / n, numerator: n - 6, denominator: n });
    expect(good.clarificationRate).toEqual({ value: (vague - 1 + 3) / n, numerator: vague - 1 + 3, denominator: n });
    expect(good.needlessClarificationRate).toEqual({ value: 3 / clear, numerator: 3, denominator: clear });
    // The guesser classifies only automatic mail and marketing, rightly and surely: those are left unanswered, with
    // no analyst call, as the secretary does (before, the eval asked the analyst and scored an answer).
    const unanswered = SET.filter((c) => c.expected.action === NO_REPLY);
    expect(unanswered.length).toBeGreaterThanOrEqual(9);
    expect(good.categoryAccuracy).toEqual({
      value: unanswered.length / n,
      numerator: unanswered.length,
      denominator: n,
    });
    expect(good.noReplyRate).toEqual({ value: unanswered.length / n, numerator: unanswered.length, denominator: n });
    const analystAsked = scripted.requests.filter((r) => isAnalyst(userDataOf(r.user) as Record<string, unknown>));
    for (const c of unanswered)
      expect(analystAsked.some((r) => (userDataOf(r.user) as { request: string }).request === c.request)).toBe(false);

    const labels = [...EVAL_ACTIONS, 'error'];
    const expectedMatrix = EVAL_ACTIONS.map(() => labels.map(() => 0));
    const byId = new Map(SET.map((c) => [c.id, c]));
    const at = (expected: string, decided: string) => {
      expectedMatrix[(EVAL_ACTIONS as readonly string[]).indexOf(expected)]![labels.indexOf(decided)]! += 1;
    };
    for (const c of SET) {
      if (ASKS_ALTHOUGH_CLEAR.includes(c.id)) at(c.expected.action, 'уточнить');
      else if (WRONG_ACTION[c.id]) at(c.expected.action, WRONG_ACTION[c.id]!);
      else if (c.id === ANSWERS_VAGUE)
        at(c.expected.action, byId.get(c.id)!.channel === 'email' ? 'ответить на письмо' : 'ответить сообщением');
      else at(c.expected.action, c.expected.action);
    }
    expect(good.confusion).toEqual({ labels, matrix: expectedMatrix });

    // Tokens and cost: exactly what the fake provider reported, at the price table's rates.
    const input = scripted.requests.reduce((sum, r) => sum + r.usage!.inputTokens, 0);
    const output = scripted.requests.reduce((sum, r) => sum + r.usage!.outputTokens, 0);
    expect(good.tokens).toEqual({
      input,
      output,
      inputPer1000: (input / n) * 1000,
      outputPer1000: (output / n) * 1000,
    });
    expect(good.costPer1000!.currency).toBe('USD');
    expect(good.costPer1000!.amount).toBeCloseTo((((input * 2 + output * 8) / 1e6) * 1000) / n, 9);
    expect(good.latencyMs.p50).toBeGreaterThan(0);
    expect(good.latencyMs.p95).toBeGreaterThanOrEqual(good.latencyMs.p50!);
    // Guesser for every case, the analyst only where the guesser found the request clear and answerable.
    expect(scripted.requests).toHaveLength(n + (clear - 3 + 1 - unanswered.length));

    // The asking model: every decision is a question (follow-ups included), the analyst is never asked.
    expect(bad.isEnoughAccuracy).toEqual({ value: vague / n, numerator: vague, denominator: n });
    expect(bad.actionAccuracy).toEqual({ value: vague / n, numerator: vague, denominator: n });
    expect(bad.clarificationRate).toEqual({ value: 1, numerator: n, denominator: n });
    expect(bad.needlessClarificationRate).toEqual({ value: 1, numerator: clear, denominator: clear });
    expect(bad.confusion.matrix.map((row) => row[0])).toEqual(
      EVAL_ACTIONS.map((a) => SET.filter((c) => c.expected.action === a).length),
    );
    expect(bad.costPer1000).toBeNull();
    expect(bad.unpriced).toEqual(['openai/asking-model']);
    expect(asking.requests).toHaveLength(n);

    // The persona reached the provider for the payments department's requests only, and is in provenance.
    const paymentsCases = SET.filter((c) => c.department === 'Платежи').length;
    const withPersona = scripted.requests.filter((r) => r.system.includes(PERSONA));
    const paymentsRequests = scripted.requests.filter(
      (r) => caseOf((userDataOf(r.user) as { request: string }).request).department === 'Платежи',
    );
    expect(paymentsRequests.length).toBeGreaterThanOrEqual(paymentsCases);
    expect(withPersona).toEqual(paymentsRequests);
    expect(asking.requests.some((r) => r.system.includes('department_instructions'))).toBe(false);
    expect(report.configs[0]!.config.personas).toEqual({
      Платежи: createHashHex(PERSONA),
    });
    expect(report.configs[0]!.provenance.personas).toEqual([createHashHex(PERSONA).slice(0, 12)]);
    expect(report.configs[0]!.provenance.models).toEqual(['openai/fake-model']);

    const page = readFileSync(html, 'utf8');
    expect(page).toContain('<title>Workemon eval: eval/requests.jsonl</title>');
    for (const name of ['scripted', 'asking']) expect(page).toContain(`<h2>${name}</h2>`);
    expect(page).toContain(`${((good.actionAccuracy.value ?? 0) * 100).toFixed(1)}% (${n - 6}/${n})`);
  }, 90_000);

  it('prints the side-by-side table on stdout and rejects a bad flag with a clear message', async () => {
    const tsx = join(ROOT, 'node_modules/.bin/tsx');
    const small = join(dir, 'small.jsonl');
    writeFileSync(
      small,
      SET.slice(0, 3)
        .map((c) => JSON.stringify(c))
        .join('\n'),
    );
    const { stdout } = await run(
      tsx,
      ['--conditions=@workemon/source', 'eval/src/main.ts', '--set', small, '--config', configOf('asking', asking)],
      { cwd: ROOT, timeout: 60_000 },
    );
    expect(stdout).toMatch(/^clarification rate\s+100\.0% \(3\/3\)\s*$/m);
    expect(stdout).toContain('asking: action confusion matrix');
    const failed = await run(tsx, ['--conditions=@workemon/source', 'eval/src/main.ts', '--since', 'yesterday'], {
      cwd: ROOT,
      timeout: 60_000,
    }).catch((err: { code: number; stderr: string }) => err);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toMatch(/--since: 'yesterday' is not a date/);
  }, 90_000);

  it('running LLM services it may not call: every case fails and the report says why', async () => {
    // A real guesser and system analyst that take only their own service key; the eval is given none.
    const key = 'eval-test-service-key-0123456789';
    const env = { LOG_LEVEL: 'error', SERVICE_API_KEYS: `svc:${key}`, ...envOfFake(scripted) };
    const quiet = createLogger({ service: 'eval-test', level: 'error' });
    quiet.silent = true;
    const guesser = await serveApp(buildGuesser({ config: loadGuesserConfig(env), logger: quiet }));
    const analyst = await serveApp(buildAnalyst({ config: loadAnalystConfig(env), logger: quiet }));
    try {
      const small = join(dir, 'keyless.jsonl');
      writeFileSync(
        small,
        SET.filter((c) => !c.follows)
          .slice(0, 3)
          .map((c) => JSON.stringify(c))
          .join('\n'),
      );
      const args = ['--conditions=@workemon/source', 'eval/src/main.ts', '--set', small];
      const urls = ['--guesser-url', guesser.url, '--analyst-url', analyst.url];
      const { stdout } = await run(join(ROOT, 'node_modules/.bin/tsx'), [...args, ...urls], {
        cwd: ROOT,
        timeout: 60_000,
        env: { PATH: process.env['PATH'] },
      });
      expect(stdout).toMatch(/^errors\s+3\s*$/m);
      expect(stdout).toContain(
        "why cases failed\n  3 × upstream_key_refused: The guesser refused the secretary's service key (HTTP 401): " +
          "the guesser's SERVICE_API_KEYS must hold the key the secretary sends it (GUESSER_API_KEY or " +
          'GUESSER_API_KEY_FILE; unset: the first of SERVICE_API_KEYS)',
      );
      // With the services' key the same run has no failures.
      const keyed = await run(join(ROOT, 'node_modules/.bin/tsx'), [...args, ...urls], {
        cwd: ROOT,
        timeout: 60_000,
        env: { PATH: process.env['PATH'], SERVICE_API_KEYS: `me:${key}` },
      });
      expect(keyed.stdout).toMatch(/^errors\s+0\s*$/m);
      expect(keyed.stdout).not.toContain('why cases failed');
    } finally {
      await guesser.close();
      await analyst.close();
    }
  }, 90_000);
});
