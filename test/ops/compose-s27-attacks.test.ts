// The compose stack's defaults attacked from a web page the operator has open (issue s27): Prometheus is published
// on 127.0.0.1 without a login, and a page may send it a "simple" cross-origin POST (no CORS preflight), as
// `fetch('http://127.0.0.1:9090/-/quit', {method: 'POST', mode: 'no-cors'})` does. There is no Docker daemon here:
// the real Prometheus of this machine runs with the flags of the Prometheus service as docker-compose resolves
// the compose file (its paths and address moved to a temporary directory and a free port).
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { repoPath } from './observability-files.js';
import { startPrometheus, type PrometheusServer } from './processes.js';

const run = promisify(execFile);

let prometheus: PrometheusServer;
let dir: string;
let url: string;
let flags: string[];

beforeAll(async () => {
  const { stdout } = await run('docker-compose', ['-f', repoPath('docker-compose.yml'), 'config'], {
    cwd: repoPath('.'),
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
  });
  const compose = parse(stdout) as { services: Record<string, { command?: string[] | string }> };
  const command = compose.services['prometheus']!.command!;
  flags = typeof command === 'string' ? command.split(/\s+/) : command;
  dir = await mkdtemp(join(tmpdir(), 'workemon-prometheus-s27-'));
  const configFile = join(dir, 'prometheus.yml');
  await writeFile(configFile, 'global:\n  scrape_interval: 1m\n');
  // The compose flags but its paths (inside the container) and the listen address.
  const kept = flags.filter((f) => !/^--(config\.file|storage\.tsdb\.path|web\.listen-address)=/.test(f));
  prometheus = await startPrometheus(configFile, dir, kept);
  url = prometheus.url;
});

afterAll(async () => {
  await prometheus?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("compose's Prometheus and a web page of another site (s27)", () => {
  it('cannot be stopped or reloaded by a cross-origin POST: the lifecycle API is off', async () => {
    // What a browser sends for a no-cors POST with no body from https://attacker.example.
    const browser = { Origin: 'https://attacker.example', 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors' };
    for (const path of ['/-/quit', '/-/reload']) {
      const res = await fetch(`${url}${path}`, { method: 'POST', headers: browser });
      expect(res.status, path).toBe(403);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(prometheus.process.exitCode).toBeNull();
    expect((await fetch(`${url}/-/ready`)).ok).toBe(true);
    expect(flags).not.toContain('--web.enable-lifecycle');
  });
});
