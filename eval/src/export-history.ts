/**
 * `npm run eval:export`: labelled cases from real history, for `npm run eval --set`. Usernames and the addresses
 * and Telegram handles inside texts are replaced by a stable keyed hash (HMAC-SHA256 with the operator's key), so
 * the same person gets the same pseudonym in every export made with that key and no one can reverse it without it.
 */
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ACTIONS } from '@workemon/contracts';
import { loadAnalyses, openHistory, type StoredAnalysis } from './history.js';
import type { EvalCase } from './labelled-set.js';

/** A correction of a stored decision (one line of the --labels file), by analysis id. */
export const labelSchema = z.object({
  analysis_id: z.number().int().positive(),
  is_enough: z.boolean(),
  action: z.enum(ACTIONS),
  category: z.string().min(1).optional(),
});
export type Label = z.infer<typeof labelSchema>;

export function parseLabels(text: string, source: string): Map<number, Label> {
  const labels = new Map<number, Label>();
  text.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    const parsed = labelSchema.safeParse(JSON.parse(line));
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`${source}:${i + 1}: ${issue.path.join('.') || 'label'}: ${issue.message}`);
    }
    labels.set(parsed.data.analysis_id, parsed.data);
  });
  return labels;
}

/** A stable pseudonymiser: `u_` + 12 hex of HMAC-SHA256(key, lower-cased identifier). */
export function createPseudonymiser(key: string) {
  if (key.length < 16) throw new Error('the pseudonym key must be at least 16 characters');
  const hash = (value: string) =>
    createHmac('sha256', key).update(value.trim().toLowerCase()).digest('hex').slice(0, 12);
  const EMAIL = /[\p{L}\p{N}._%+-]+@[\p{L}\p{N}.-]+\.[\p{L}]{2,}/gu;
  const HANDLE = /(^|[^\p{L}\p{N}_@])@([A-Za-z][A-Za-z0-9_]{3,31})\b/gu;
  return {
    username: (name: string) => `u_${hash(name)}`,
    /** Email addresses and @handles inside a text, each replaced by its pseudonym. */
    text: (text: string) =>
      text
        .replace(EMAIL, (address) => `u_${hash(address)}@pseudonym.invalid`)
        .replace(HANDLE, (_m, before: string, handle: string) => `${before}@u_${hash(handle)}`),
  };
}

/** Cases from stored analyses: corrected labels where given, otherwise the stored decision (label_source says which). */
export function exportCases(
  analyses: StoredAnalysis[],
  labels: Map<number, Label>,
  pseudonymise: ReturnType<typeof createPseudonymiser>,
  options: { onlyLabelled: boolean },
): EvalCase[] {
  const cases: EvalCase[] = [];
  for (const a of analyses) {
    const label = labels.get(a.id);
    if (!label && options.onlyLabelled) continue;
    if (!label && !(ACTIONS as readonly string[]).includes(a.action)) continue;
    cases.push({
      id: `analysis-${a.id}`,
      channel: a.channel,
      username: pseudonymise.username(a.username),
      department: a.department,
      position: a.position,
      request: pseudonymise.text(a.request),
      expected: label
        ? { is_enough: label.is_enough, action: label.action, ...(label.category ? { category: label.category } : {}) }
        : { is_enough: a.is_enough, action: a.action as EvalCase['expected']['action'] },
      label_source: label ? 'corrected' : 'decision',
    });
  }
  return cases;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      since: { type: 'string' },
      until: { type: 'string' },
      labels: { type: 'string' },
      'only-labelled': { type: 'boolean', default: false },
      out: { type: 'string' },
      'key-file': { type: 'string' },
      'database-url': { type: 'string' },
      'pglite-dir': { type: 'string' },
    },
  });
  const key = values['key-file'] ? readFileSync(values['key-file'], 'utf8').trim() : process.env['EVAL_PSEUDONYM_KEY'];
  if (!key) throw new Error('set EVAL_PSEUDONYM_KEY or --key-file: usernames and addresses are pseudonymised with it');
  const since = values.since ? new Date(values.since) : undefined;
  const until = values.until ? new Date(values.until) : undefined;
  for (const [flag, d] of [
    ['--since', since],
    ['--until', until],
  ] as const)
    if (d && Number.isNaN(d.getTime())) throw new Error(`${flag} is not a date (use ISO 8601, e.g. 2026-11-01)`);
  const labels = values.labels
    ? parseLabels(readFileSync(values.labels, 'utf8'), values.labels)
    : new Map<number, Label>();
  const db = openHistory({
    databaseUrl: values['database-url'] ?? process.env['DATABASE_URL'],
    pgliteDir: values['pglite-dir'] ?? process.env['PGLITE_DIR'],
  });
  try {
    const analyses = await loadAnalyses(db, { since, until });
    const cases = exportCases(analyses, labels, createPseudonymiser(key), { onlyLabelled: values['only-labelled']! });
    const text = cases.map((c) => JSON.stringify(c)).join('\n') + (cases.length ? '\n' : '');
    if (values.out) writeFileSync(values.out, text);
    else process.stdout.write(text);
    process.stderr.write(
      `exported ${cases.length} case(s) (${cases.filter((c) => c.label_source === 'corrected').length} corrected)\n`,
    );
  } finally {
    await db.close();
  }
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  main().catch((err: unknown) => {
    process.stderr.write(`eval:export: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
