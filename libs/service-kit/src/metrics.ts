import client, { Registry, Histogram, Gauge, Counter } from 'prom-client';

export type Metrics = {
  registry: Registry;
  httpRequestDuration: Histogram<'method' | 'route' | 'status_code'>;
  upstreamRequestDuration: Histogram<'target' | 'outcome'>;
  dependencyUp: Gauge<'dependency'>;
  /**
   * `workemon_http_requests_in_flight`: requests being served now, operational paths (`/health`, `/metrics`)
   * excluded. The load signal for autoscaling on requests rather than CPU (a service waiting on an LLM is busy
   * with almost no CPU); see deploy/kubernetes/base/autoscalers.yaml.
   */
  httpRequestsInFlight: Gauge<never>;
  /** Creates (or returns) a counter on this registry. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L>;
  gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L>;
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets?: number[]): Histogram<L>;
};

/** Buckets for calls that may take up to a minute (LLMs, upstream services that call LLMs). */
export const SLOW_CALL_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120];

/**
 * One registry per service instance (never the global one: tests build many apps in one process), with the
 * default process metrics and the metrics every Workemon service exposes.
 */
export function createMetrics(service: string): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  client.collectDefaultMetrics({ register: registry });

  function existing<T>(name: string): T | undefined {
    return registry.getSingleMetric(name) as T | undefined;
  }
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    existing<Counter<L>>(name) ?? new Counter<L>({ name, help, labelNames: [...labelNames], registers: [registry] });
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    existing<Gauge<L>>(name) ?? new Gauge<L>({ name, help, labelNames: [...labelNames], registers: [registry] });
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets?: number[]) =>
    existing<Histogram<L>>(name) ??
    new Histogram<L>({
      name,
      help,
      labelNames: [...labelNames],
      registers: [registry],
      ...(buckets ? { buckets } : {}),
    });

  return {
    registry,
    httpRequestDuration: histogram(
      'http_request_duration_seconds',
      'Duration of HTTP requests served, by route template',
      ['method', 'route', 'status_code'],
      SLOW_CALL_BUCKETS,
    ),
    upstreamRequestDuration: histogram(
      'workemon_upstream_request_duration_seconds',
      'Duration of calls to other services and external APIs, by target and outcome',
      ['target', 'outcome'],
      SLOW_CALL_BUCKETS,
    ),
    dependencyUp: gauge(
      'workemon_dependency_up',
      'Whether a dependency answered its last health check (1) or not (0)',
      ['dependency'],
    ),
    httpRequestsInFlight: gauge(
      'workemon_http_requests_in_flight',
      'HTTP requests being served now (operational paths excluded)',
      [],
    ),
    counter,
    gauge,
    histogram,
  };
}
