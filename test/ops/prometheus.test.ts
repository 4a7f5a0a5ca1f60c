// A real Prometheus (Debian's package) scrapes the services with the committed scrape and alert configuration;
// every PromQL expression of the Grafana dashboard and of the alert rules must evaluate, and the dashboard's
// expressions must return series once the services had some traffic.
import { bearer } from '@workemon/testkit/api-keys';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { waitFor } from '@workemon/testkit';
import { SERVICES, startStack, type ServiceName, type Stack } from './stack.js';
import { alertRules, dashboardExpressions, repoPath } from './observability-files.js';
import { startPrometheus, type PrometheusServer } from './processes.js';

const run = promisify(execFile);
const PROMTOOL = process.env['PROMTOOL_BIN'] ?? '/usr/bin/promtool';

// Metrics only the communicator exports, and only for a configured channel that has seen traffic: their
// expressions must evaluate here but cannot be asked for data (no mailbox or bot in this stack).
const CHANNEL_METRICS =
  /workemon_(channel_last_success_timestamp_seconds|messages_received_total|replies_sent_total|messages_skipped_total)/;

type QueryResult = { status: string; error?: string; data?: { resultType: string; result: unknown[] } };

let stack: Stack;
let prometheus: PrometheusServer;
let promUrl: string;
let dir: string;

async function query(expr: string): Promise<QueryResult> {
  const res = await fetch(`${promUrl}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query: expr }),
  });
  return (await res.json()) as QueryResult;
}

async function series(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await query(expr);
  if (r.status !== 'success') throw new Error(`${expr}: ${r.error}`);
  return r.data!.result as { metric: Record<string, string>; value: [number, string] }[];
}

/** The committed prometheus.yml with the targets pointed at this test's ports and 1 s intervals. */
async function testConfig(): Promise<string> {
  const config = parse(await readFile(repoPath('observability/prometheus/prometheus.yml'), 'utf8'));
  config.global = { ...config.global, scrape_interval: '1s', evaluation_interval: '1s' };
  config.rule_files = [repoPath('observability/prometheus/alerts.yml')];
  const job = config.scrape_configs.find((j: { job_name: string }) => j.job_name === 'workemon');
  const scraped = job.static_configs as { targets: string[]; labels: { service: string } }[];
  job.static_configs = scraped
    .filter((sc) => sc.labels.service in stack.services)
    .map((sc) => ({ ...sc, targets: [`127.0.0.1:${stack.services[sc.labels.service as ServiceName].port}`] }));
  config.scrape_configs = [job];
  return stringify(config);
}

beforeAll(async () => {
  stack = await startStack({ postgresUrl: inject('postgresUrl') });
  dir = await mkdtemp(join(tmpdir(), 'workemon-prometheus-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, await testConfig());
  prometheus = await startPrometheus(configFile, dir);
  promUrl = prometheus.url;
});

afterAll(async () => {
  await prometheus?.stop();
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('Prometheus with the committed configuration', () => {
  it('promtool accepts the committed scrape config and alert rules', async () => {
    const config = await run(PROMTOOL, ['check', 'config', repoPath('observability/prometheus/prometheus.yml')]);
    expect(config.stdout + config.stderr).toMatch(/SUCCESS/);
    const rules = await run(PROMTOOL, ['check', 'rules', repoPath('observability/prometheus/alerts.yml')]);
    expect(rules.stdout + rules.stderr).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('scrapes the four services at their compose addresses', async () => {
    const config = parse(await readFile(repoPath('observability/prometheus/prometheus.yml'), 'utf8'));
    const job = config.scrape_configs.find((j: { job_name: string }) => j.job_name === 'workemon');
    const targets = Object.fromEntries(
      (job.static_configs as { targets: string[]; labels: { service: string } }[]).map((sc) => [
        sc.labels.service,
        sc.targets,
      ]),
    );
    expect(targets).toEqual({
      secretary: ['secretary:8000'],
      guesser: ['guesser:8001'],
      'system-analyst': ['system-analyst:8002'],
      communicator: ['communicator:8003'],
    });
    for (const service of SERVICES) expect(targets).toHaveProperty(service);
  });

  it('scrapes every service: all targets up', async () => {
    const targets = await waitFor(
      async () => {
        const body = (await (await fetch(`${promUrl}/api/v1/targets`)).json()) as {
          data: { activeTargets: { labels: Record<string, string>; health: string; lastError: string }[] };
        };
        const active = body.data.activeTargets.filter((t) => t.labels['job'] === 'workemon');
        return active.length === SERVICES.length && active.every((t) => t.health === 'up') ? active : undefined;
      },
      { timeoutMs: 20_000, what: 'every target up', intervalMs: 250 },
    );
    expect(targets.map((t) => t.labels['service']).sort()).toEqual([...SERVICES].sort());
    expect((await series('up{job="workemon"} == 1')).length).toBe(SERVICES.length);
  });

  it('every dashboard and alert expression evaluates, and the dashboard has data after traffic', async () => {
    const { secretary, guesser } = stack.services;
    for (const s of Object.values(stack.services)) expect((await fetch(`${s.url}/health`)).status).toBe(200);
    const ask = (channel: string, request: string) =>
      fetch(`${secretary.url}/analyze-request?${new URLSearchParams({ channel, username: 'ivan.petrov', request })}`, {
        headers: bearer('client'),
      });
    for (const channel of ['direct', 'tg', 'email']) {
      expect((await ask(channel, 'Как выгрузить отчёт по продажам за прошлый месяц в Excel?')).status).toBe(200);
      expect((await ask(channel, 'отчёт')).status).toBe(200); // too short: a clarifying question
    }
    expect((await fetch(`${guesser.url}/no-such-route`)).status).toBe(404);
    // One LLM failure: guesser answers 5xx, the secretary too, and the LLM error panels get a series.
    stack.guesserLlm.failNext(1, { status: 500, body: { error: { message: 'boom', type: 'server_error' } } });
    expect((await ask('direct', 'Нужен доступ к базе клиентов для квартального отчёта')).status).toBeGreaterThanOrEqual(
      500,
    );

    await waitFor(
      async () => {
        const decided = await series('sum(workemon_analyze_requests_total{job="workemon"})');
        const failed = await series('sum(workemon_llm_request_duration_seconds_count{outcome!="ok"})');
        return Number(decided[0]?.value[1] ?? 0) >= 6 && Number(failed[0]?.value[1] ?? 0) >= 1;
      },
      { timeoutMs: 20_000, what: 'the traffic scraped', intervalMs: 250 },
    );
    await new Promise((resolve) => setTimeout(resolve, 2500)); // a few more scrapes, so rate() has two samples

    const problems: string[] = [];
    const dashboard = await dashboardExpressions();
    expect(dashboard.length).toBeGreaterThan(10);
    for (const { panel, expr } of dashboard) {
      const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$__interval', '15s');
      const result = await query(promql);
      if (result.status !== 'success') problems.push(`${panel}: ${result.error}`);
      else if (!CHANNEL_METRICS.test(expr) && result.data!.result.length === 0)
        problems.push(`${panel}: no data (${expr})`);
    }
    const rules = await alertRules();
    expect(rules.length).toBeGreaterThan(5);
    for (const rule of rules) {
      const result = await query(rule.expr);
      if (result.status !== 'success') problems.push(`alert ${rule.alert}: ${result.error}`);
    }
    expect(problems).toEqual([]);

    // The rules Prometheus loaded are the committed ones, and none is broken.
    const loaded = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
    };
    const loadedRules = loaded.data.groups.flatMap((g) => g.rules);
    expect(loadedRules.map((r) => r.name).sort()).toEqual(rules.map((r) => r.alert).sort());
    expect(loadedRules.filter((r) => r.health === 'err')).toEqual([]);
  });

  it('the service-down alert expression finds a stopped service', async () => {
    const down = alertRules().then((rules) => rules.find((r) => r.alert === 'WorkemonServiceDown')!.expr);
    const expr = await down;
    expect(await series(expr)).toEqual([]);
    await stack.services['system-analyst'].close();
    const found = await waitFor(async () => ((await series(expr)).length ? series(expr) : undefined), {
      timeoutMs: 15_000,
      what: 'system-analyst reported down',
      intervalMs: 250,
    });
    expect(found.map((s) => s.metric['service'])).toEqual(['system-analyst']);
  });
});
