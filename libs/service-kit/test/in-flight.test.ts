// workemon_http_requests_in_flight: the autoscaling signal of deploy/kubernetes (requests being served now).
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger, createMetrics, createServiceApp } from '@workemon/service-kit';
import { loadOpenApiDocument } from '@workemon/contracts';
import type { Server } from 'node:http';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  server = undefined;
});

async function inFlight(base: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('workemon_http_requests_in_flight'));
  if (!line) throw new Error('workemon_http_requests_in_flight not exposed');
  return Number(line.split(' ').at(-1));
}

describe('workemon_http_requests_in_flight', () => {
  it('counts requests being served, not /health or /metrics, and drops when they finish or are aborted', async () => {
    const release: (() => void)[] = [];
    const metrics = createMetrics('kit-test');
    const app = createServiceApp(
      {
        service: 'kit-test',
        version: '1.0.0',
        logger: createLogger({ service: 'kit-test', level: 'error' }),
        metrics,
        openapi: loadOpenApiDocument('guesser'),
        healthChecks: [],
      },
      (a) => {
        a.get('/hold', async (_req, res) => {
          await new Promise<void>((r) => release.push(r));
          res.json({ ok: true });
        });
      },
    );
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    expect(await inFlight(base)).toBe(0);
    const finished = [fetch(`${base}/hold`), fetch(`${base}/hold`)];
    const aborted = new AbortController();
    const abortedCall = fetch(`${base}/hold`, { signal: aborted.signal }).catch((e: unknown) => e);
    while (release.length < 3) await new Promise((r) => setTimeout(r, 5));
    await fetch(`${base}/health`);
    expect(await inFlight(base)).toBe(3);

    aborted.abort();
    await abortedCall;
    while ((await inFlight(base)) !== 2) await new Promise((r) => setTimeout(r, 5));
    release.splice(0).forEach((r) => r());
    await Promise.all(finished);
    expect(await inFlight(base)).toBe(0);
  });
});
