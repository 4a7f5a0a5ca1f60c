// Reads the committed observability files the ops checks validate.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const repoPath = (relative: string): string => fileURLToPath(new URL(`../../${relative}`, import.meta.url));

export type GrafanaTarget = {
  refId: string;
  datasource?: { type: string; uid: string };
  expr?: string;
  query?: string;
};
export type GrafanaPanel = {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: GrafanaTarget[];
  panels?: GrafanaPanel[];
};
export type GrafanaDashboard = { uid: string; title: string; panels: GrafanaPanel[]; [key: string]: unknown };

export const DASHBOARD_FILE = 'observability/grafana/dashboards/workemon-overview.json';

export async function readDashboard(): Promise<GrafanaDashboard> {
  return JSON.parse(await readFile(repoPath(DASHBOARD_FILE), 'utf8')) as GrafanaDashboard;
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: GrafanaDashboard): GrafanaPanel[] {
  return dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

/** Every PromQL expression of the overview dashboard, with the panel it belongs to. */
export async function dashboardExpressions(): Promise<{ panel: string; expr: string }[]> {
  return allPanels(await readDashboard()).flatMap((p) =>
    (p.targets ?? [])
      .filter((t) => t.expr !== undefined)
      .map((t) => ({ panel: `${p.title} [${t.refId}]`, expr: t.expr! })),
  );
}

export async function alertRules(): Promise<{ alert: string; expr: string }[]> {
  const doc = parse(await readFile(repoPath('observability/prometheus/alerts.yml'), 'utf8')) as {
    groups: { rules: { alert?: string; record?: string; expr: string }[] }[];
  };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ alert: r.alert ?? r.record ?? '?', expr: String(r.expr) })));
}

export type SavedObject = {
  type: string;
  id: string;
  attributes: Record<string, unknown>;
  references?: { name: string; type: string; id: string }[];
};

export async function readSavedObjects(): Promise<SavedObject[]> {
  const text = await readFile(repoPath('observability/kibana/saved-objects.ndjson'), 'utf8');
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line) as SavedObject;
      } catch (err) {
        throw new Error(`saved-objects.ndjson line ${i + 1} is not JSON: ${String(err)}`);
      }
    });
}
