import type { Metrics } from './metrics.js';
import { startDeadline, untilAborted } from './resilience.js';

export type CheckStatus = 'ok' | 'degraded' | 'down' | 'disabled';
export type CheckResult = { status: CheckStatus; detail?: string };

export type HealthCheck = {
  /** The dependency's name, as it appears under `checks` and in `workemon_dependency_up{dependency}`. */
  name: string;
  /** A critical dependency that is down makes the service `down` (503): it cannot do its job. */
  critical: boolean;
  /** Deadline of this check; a check that takes longer counts as down. Default 2000 ms. */
  timeoutMs?: number;
  /** Resolves with the status, or throws (= down, with the error's message as detail). */
  run: () => Promise<CheckResult>;
};

export type HealthReport = {
  status: 'ok' | 'degraded' | 'down';
  service: string;
  version: string;
  uptime_s: number;
  checks: Record<string, { status: CheckStatus; latency_ms: number; detail?: string }>;
};

/**
 * Runs one check under its deadline (`timeoutMs`, default 2000 ms; resilience `startDeadline`, its timer cleared
 * when the check ends). A check that throws is `down` with its message; one that passes its deadline is `down`
 * with "no answer within … ms". `latency_ms` is the time waited either way.
 */
async function runOne(check: HealthCheck): Promise<{ status: CheckStatus; latency_ms: number; detail?: string }> {
  const started = performance.now();
  const timeoutMs = check.timeoutMs ?? 2000;
  const deadline = startDeadline(timeoutMs);
  try {
    const result = await untilAborted(check.run(), deadline.signal);
    return { ...result, latency_ms: Math.round(performance.now() - started) };
  } catch (err) {
    return {
      status: 'down',
      latency_ms: Math.round(performance.now() - started),
      detail: deadline.expired()
        ? `no answer within ${timeoutMs} ms`
        : err instanceof Error
          ? err.message
          : String(err),
    };
  } finally {
    deadline.clear();
  }
}

/** Runs every check concurrently, each under its own deadline, and refreshes `workemon_dependency_up`. */
export async function runHealthChecks(
  checks: readonly HealthCheck[],
  info: { service: string; version: string; startedAt: number; metrics?: Metrics },
): Promise<{ httpStatus: 200 | 503; report: HealthReport }> {
  const results = await Promise.all(checks.map(async (c) => [c, await runOne(c)] as const));
  let status: HealthReport['status'] = 'ok';
  const out: HealthReport['checks'] = {};
  for (const [check, result] of results) {
    out[check.name] = result;
    if (result.status === 'disabled') info.metrics?.dependencyUp.remove({ dependency: check.name });
    else info.metrics?.dependencyUp.set({ dependency: check.name }, result.status === 'down' ? 0 : 1);
    if (result.status === 'down' && check.critical) status = 'down';
    else if ((result.status === 'down' || result.status === 'degraded') && status === 'ok') status = 'degraded';
  }
  return {
    httpStatus: status === 'down' ? 503 : 200,
    report: {
      status,
      service: info.service,
      version: info.version,
      uptime_s: Math.round((Date.now() - info.startedAt) / 1000),
      checks: out,
    },
  };
}
