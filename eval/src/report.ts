import {
  ACTION_CLARIFY,
  ACTION_JIRA,
  ACTION_MAILING_LIST,
  ACTION_REPLY_EMAIL,
  ACTION_REPLY_MESSAGE,
  ACTION_TELEGRAM_EMPLOYEE,
} from '@workemon/contracts';
import type { CaseResult } from './runner.js';
import type { Metrics, Rate } from './metrics.js';

/** One configuration's outcome, as the reports show it. */
export type ConfigReport = {
  name: string;
  /** What the configuration asked for (provider, model, prompts, personas' hashes, temperature). */
  config: Record<string, unknown>;
  /** What actually answered, from the answers' provenance: provider/model, prompt and persona versions, settings. */
  provenance: { models: string[]; prompts: string[]; personas: string[]; settings: Record<string, unknown>[] };
  metrics: Metrics;
  results: CaseResult[];
  /** Replay only: cases where the new decision differs from the stored one. */
  disagreements?: { id: string; stored: string; decided: string; request: string }[];
};

const pct = (r: Rate) =>
  r.value === null ? 'n/a' : `${(r.value * 100).toFixed(1)}% (${r.numerator}/${r.denominator})`;
const num = (x: number | null, digits = 0) => (x === null ? 'n/a' : x.toFixed(digits));

/** The rows of the side-by-side table: label, then one cell per configuration. */
export function summaryRows(reports: ConfigReport[], replay: boolean): string[][] {
  const row = (label: string, cell: (m: Metrics, r: ConfigReport) => string) => [
    label,
    ...reports.map((r) => cell(r.metrics, r)),
  ];
  return [
    ['', ...reports.map((r) => r.name)],
    row('model', (_m, r) => r.provenance.models.join(', ') || 'n/a'),
    row('prompts', (_m, r) => r.provenance.prompts.join(', ') || 'n/a'),
    row('cases', (m) => String(m.cases)),
    row('errors', (m) => String(m.errors)),
    row(replay ? 'is_enough agreement' : 'is_enough accuracy', (m) => pct(m.isEnoughAccuracy)),
    row(replay ? 'action agreement' : 'action accuracy', (m) => pct(m.actionAccuracy)),
    row('category accuracy', (m) => pct(m.categoryAccuracy)),
    row('clarification rate', (m) => pct(m.clarificationRate)),
    row('left unanswered (no_reply)', (m) => pct(m.noReplyRate)),
    row(replay ? 'questions where none was asked' : 'needless clarification', (m) => pct(m.needlessClarificationRate)),
    row('latency p50, ms', (m) => num(m.latencyMs.p50)),
    row('latency p95, ms', (m) => num(m.latencyMs.p95)),
    row('tokens in / 1000 req', (m) => num(m.tokens.inputPer1000)),
    row('tokens out / 1000 req', (m) => num(m.tokens.outputPer1000)),
    row('cost / 1000 req', (m) =>
      m.costPer1000
        ? `${m.costPer1000.amount.toFixed(2)} ${m.costPer1000.currency}`
        : `n/a${m.unpriced.length ? ' (no price: ' + m.unpriced.join(', ') + ')' : ''}`,
    ),
  ];
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => [...(r[col] ?? '')].length)));
  const line = (r: string[]) => r.map((cell, col) => cell + ' '.repeat(widths[col]! - [...cell].length)).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

const SHORT: Record<string, string> = {
  [ACTION_CLARIFY]: 'уточнить',
  [ACTION_REPLY_MESSAGE]: 'сообщение',
  [ACTION_JIRA]: 'jira',
  [ACTION_TELEGRAM_EMPLOYEE]: 'telegram',
  [ACTION_REPLY_EMAIL]: 'письмо',
  [ACTION_MAILING_LIST]: 'рассылка',
  error: 'ошибка',
};

/** The confusion matrix as text: rows expected (or stored) action, columns decided action. */
export function confusionTable(m: Metrics, replay: boolean): string {
  const cols = m.confusion.labels.map((l) => SHORT[l] ?? l);
  const rows = [[replay ? 'stored \\ decided' : 'expected \\ decided', ...cols]];
  // Rows carry the contract's full action strings; columns their short forms, in the same order.
  m.confusion.matrix.forEach((counts, i) => rows.push([m.confusion.labels[i]!, ...counts.map(String)]));
  return table(rows);
}

/** The terminal report: the side-by-side table, then each configuration's confusion matrix (and disagreements). */
export function textReport(reports: ConfigReport[], replay: boolean): string {
  const parts = [table(summaryRows(reports, replay))];
  for (const r of reports) {
    parts.push(`\n${r.name}: action confusion matrix\n${confusionTable(r.metrics, replay)}`);
    const failures = failureCauses(r.results);
    if (failures.length) parts.push(`\n${r.name}: why cases failed\n${failures.join('\n')}`);
    if (r.disagreements?.length) {
      parts.push(
        `\n${r.name}: ${r.disagreements.length} disagreement(s) with stored decisions\n` +
          r.disagreements
            .slice(0, 50)
            .map((d) => `  ${d.id}: ${d.stored} → ${d.decided}  «${d.request.slice(0, 80)}»`)
            .join('\n'),
      );
    }
  }
  return `${parts.join('\n')}\n`;
}

/**
 * The distinct causes of failed cases, most frequent first: `  90 × upstream_rejected: Missing API key: …`. A run
 * whose every case failed on a missing key or a stopped service would otherwise read as a 0 % model.
 */
export function failureCauses(results: CaseResult[]): string[] {
  const counts = new Map<string, number>();
  for (const r of results) {
    if (r.error === undefined) continue;
    const cause = r.errorMessage && r.errorMessage !== r.error ? `${r.error}: ${r.errorMessage}` : r.error;
    counts.set(cause, (counts.get(cause) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1]).map(([cause, n]) => `  ${n} × ${cause.slice(0, 300)}`);
}

/** The machine-readable report (`--json`). */
export function jsonReport(reports: ConfigReport[], meta: Record<string, unknown>): string {
  return `${JSON.stringify({ ...meta, configs: reports }, null, 2)}\n`;
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function htmlTable(rows: string[][], header = true): string {
  const cells = (r: string[], tag: string) => r.map((c) => `<${tag}>${escapeHtml(c)}</${tag}>`).join('');
  const [head, ...body] = rows;
  return (
    '<table>' +
    (header ? `<thead><tr>${cells(head!, 'th')}</tr></thead>` : '') +
    `<tbody>${(header ? body : rows).map((r) => `<tr>${cells(r, 'td')}</tr>`).join('')}</tbody></table>`
  );
}

/** A small self-contained HTML page (`--html report.html`): the summary, matrices and disagreements. */
export function htmlReport(
  reports: ConfigReport[],
  meta: { title: string; replay: boolean; generatedAt: string },
): string {
  const sections = reports.map((r) => {
    const m = r.metrics;
    const rows = [
      [meta.replay ? 'stored \\ decided' : 'expected \\ decided', ...m.confusion.labels],
      ...m.confusion.matrix.map((counts, i) => [m.confusion.labels[i]!, ...counts.map(String)]),
    ];
    const disagreements = r.disagreements?.length
      ? `<h3>Disagreements (${r.disagreements.length})</h3>` +
        htmlTable([
          ['case', 'stored', 'decided', 'request'],
          ...r.disagreements.map((d) => [d.id, d.stored, d.decided, d.request]),
        ])
      : '';
    return `<section><h2>${escapeHtml(r.name)}</h2><h3>Action confusion matrix</h3>${htmlTable(rows)}${disagreements}</section>`;
  });
  return `<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>${escapeHtml(meta.title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}th{background:#f3f3f3}</style></head>
<body><h1>${escapeHtml(meta.title)}</h1><p>Generated ${escapeHtml(meta.generatedAt)}.</p>
${htmlTable(summaryRows(reports, meta.replay))}
${sections.join('\n')}
</body></html>
`;
}
