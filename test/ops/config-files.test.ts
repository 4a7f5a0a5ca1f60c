// Static checks of the deployment files: the compose file parses (Debian's docker-compose) and is complete,
// .env.example lists every key the code reads, and the Grafana and Kibana files parse with every reference
// resolving.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { commonEnvSchema, logIndexTemplate, LOG_DATA_STREAM, readApiKeys } from '@workemon/service-kit';
import { llmEnvSchema } from '@workemon/llm';
import { allPanels, readDashboard, readSavedObjects, repoPath, type SavedObject } from './observability-files.js';

const run = promisify(execFile);
const APP_SERVICES = ['secretary', 'guesser', 'system-analyst', 'communicator'];
// Read by the code but set by the runtime, not by an operator: npm's INIT_CWD (where `npm run` was invoked).
const RUNTIME_KEYS = new Set(['INIT_CWD']);

type ComposeService = {
  image?: string;
  build?: unknown;
  environment?: Record<string, string | null>;
  healthcheck?: { test?: string[] | string; disable?: boolean };
  depends_on?: Record<string, { condition: string }>;
  volumes?: (string | { source?: string; target: string })[];
  command?: string[] | string;
  ports?: (string | { host_ip?: string; published?: string | number; target: number })[];
};

/** A service's published ports as `host_ip:published:target` (docker-compose 1.x prints strings, 2.x objects). */
function publishedPorts(service: ComposeService): string[] {
  return (service.ports ?? []).map((p) =>
    typeof p === 'string'
      ? p.replace(/\/tcp$/, '')
      : `${p.host_ip ?? '0.0.0.0'}:${String(p.published)}:${String(p.target)}`,
  );
}

/** The compose file as docker-compose resolves it (anchors, merges, defaults), with no .env in effect. */
async function resolvedCompose(
  env: Record<string, string> = {},
): Promise<{ services: Record<string, ComposeService> }> {
  const { stdout } = await run('docker-compose', ['-f', repoPath('docker-compose.yml'), 'config'], {
    cwd: repoPath('.'),
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
  });
  return parse(stdout) as { services: Record<string, ComposeService> };
}

async function filesUnder(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
}

/** Every environment key the code reads: schema entries in the sources, the shared schemas, and what each
 * service's loadConfig asks of the environment it is given (dynamic keys such as DEEPSEEK_API_KEY included). */
async function keysTheCodeReads(): Promise<Map<string, string>> {
  const keys = new Map<string, string>();
  const dirs = [
    ...APP_SERVICES.map((s) => repoPath(`services/${s}/src`)),
    ...['contracts', 'service-kit', 'llm'].map((l) => repoPath(`libs/${l}/src`)),
  ];
  for (const dir of dirs) {
    for (const file of await filesUnder(dir)) {
      const text = await readFile(file, 'utf8');
      if (!/parseEnv|env\.\w+\(|commonEnvSchema|EnvSchema/.test(text)) continue;
      for (const m of text.matchAll(/^\s*([A-Z][A-Z0-9_]{2,}):\s*(?:env\.|z\b|\w+EnvSchema)/gm))
        keys.set(m[1]!, file.replace(repoPath('.'), ''));
    }
  }
  for (const k of Object.keys(commonEnvSchema)) keys.set(k, 'commonEnvSchema');
  for (const k of Object.keys(llmEnvSchema)) keys.set(k, 'llmEnvSchema');
  for (const service of APP_SERVICES) {
    const config = repoPath(`services/${service}/src/config.ts`);
    if (!existsSync(config)) continue;
    const mod = (await import(config)) as { loadConfig?: (env: Record<string, string | undefined>) => unknown };
    if (!mod.loadConfig) continue;
    const env = new Proxy({} as Record<string, string | undefined>, {
      get(_t, key) {
        if (typeof key === 'string' && /^[A-Z][A-Z0-9_]+$/.test(key) && !RUNTIME_KEYS.has(key))
          keys.set(key, `${service} loadConfig`);
        return undefined;
      },
    });
    try {
      mod.loadConfig(env);
    } catch {
      // Keys a service requires are still read (and recorded) before it refuses to start.
    }
  }
  return keys;
}

async function envExampleKeys(): Promise<Set<string>> {
  const text = await readFile(repoPath('.env.example'), 'utf8');
  // A key commented out (`# JIRA_API_TOKEN=…`) is documented too: copying the file must switch nothing on.
  return new Set([...text.matchAll(/^(?:# )?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!));
}

describe('docker-compose.yml', () => {
  it('parses with docker-compose; every service has a healthcheck and depends on existing services by condition', async () => {
    const compose = await resolvedCompose();
    const names = Object.keys(compose.services);
    for (const required of [
      ...APP_SERVICES,
      'postgres',
      'elasticsearch',
      'kibana',
      'kibana-setup',
      'prometheus',
      'grafana',
      'ollama',
      'ollama-pull',
      'keygen',
    ])
      expect(names).toContain(required);
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.healthcheck?.test, `${name} has a healthcheck`).toBeTruthy();
      expect(service.healthcheck?.disable, `${name} healthcheck enabled`).not.toBe(true);
      for (const [dep, cond] of Object.entries(service.depends_on ?? {})) {
        expect(names, `${name} depends on ${dep}`).toContain(dep);
        expect(['service_started', 'service_healthy', 'service_completed_successfully']).toContain(cond.condition);
      }
    }
    for (const app of APP_SERVICES) {
      expect(compose.services[app]!.build, `${app} is built from the Dockerfile`).toBeTruthy();
      expect(Object.keys(compose.services[app]!.depends_on ?? {}).length, `${app} waits for something`).toBeGreaterThan(
        0,
      );
    }
    expect(compose.services['secretary']!.depends_on?.['postgres']?.condition).toBe('service_healthy');
    expect(compose.services['kibana-setup']!.depends_on?.['kibana']?.condition).toBe('service_healthy');
    expect(compose.services['guesser']!.depends_on?.['ollama-pull']?.condition).toBe('service_completed_successfully');
    expect(compose.services['ollama-pull']!.environment?.['OLLAMA_MODEL']).toBe('qwen3:0.6b');
  });

  it('the app services get only keys the code reads, and the LLM services default to the local Ollama', async () => {
    const compose = await resolvedCompose();
    const known = await keysTheCodeReads();
    for (const app of APP_SERVICES) {
      if (!existsSync(repoPath(`services/${app}/src/config.ts`))) continue; // its author has not written it yet
      const unknown = Object.keys(compose.services[app]!.environment ?? {}).filter((k) => !known.has(k));
      expect(unknown, `${app}: environment keys no code reads`).toEqual([]);
    }
    for (const llmService of ['guesser', 'system-analyst']) {
      const environment = compose.services[llmService]!.environment!;
      expect(environment['LLM_PROVIDER']).toBe('ollama');
      expect(environment['OLLAMA_BASE_URL']).toBe('http://ollama:11434');
      expect(environment['OLLAMA_MODEL']).toBe('qwen3:0.6b');
    }
  });

  it('.env.example lists every key the code reads and every variable the compose file uses', async () => {
    const documented = await envExampleKeys();
    const known = await keysTheCodeReads();
    expect(known.size).toBeGreaterThan(40);
    const missing = [...known].filter(([k]) => !documented.has(k)).map(([k, where]) => `${k} (${where})`);
    expect(missing).toEqual([]);
    const composeText = await readFile(repoPath('docker-compose.yml'), 'utf8');
    const variables = new Set([...composeText.matchAll(/(?<!\$)\$\{([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!));
    expect([...variables].filter((v) => !documented.has(v))).toEqual([]);
    // Every variable has a default: `docker compose up` works with no .env.
    expect([...composeText.matchAll(/(?<!\$)\$\{[A-Z][A-Z0-9_]*\}/g)].map((m) => m[0])).toEqual([]);
  });
});

describe('docker-compose.yml: network exposure and API keys', () => {
  it('publishes only the secretary among the app services, on 127.0.0.1 by default; infrastructure on 127.0.0.1', async () => {
    const compose = await resolvedCompose();
    expect(publishedPorts(compose.services['secretary']!)).toEqual(['127.0.0.1:8000:8000']);
    for (const internal of ['guesser', 'system-analyst', 'communicator'])
      expect(publishedPorts(compose.services[internal]!), `${internal} is not published`).toEqual([]);
    const published = Object.entries(compose.services).flatMap(([name, s]) =>
      publishedPorts(s).map((p) => ({ name, p })),
    );
    expect(published.length).toBeGreaterThan(5);
    for (const { name, p } of published) expect(p, `${name} publishes ${p}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('PUBLISH_ADDRESS moves the secretary, and only the secretary, to another address', async () => {
    const compose = await resolvedCompose({ PUBLISH_ADDRESS: '0.0.0.0' });
    expect(publishedPorts(compose.services['secretary']!)).toEqual(['0.0.0.0:8000:8000']);
    const others = Object.entries(compose.services)
      .filter(([name]) => name !== 'secretary')
      .flatMap(([, s]) => publishedPorts(s));
    for (const p of others) expect(p).toMatch(/^127\.0\.0\.1:/);
  });

  it('the app services listen beyond loopback and read the keys keygen generates, after it has run', async () => {
    const compose = await resolvedCompose();
    const keygen = compose.services['keygen']!;
    expect(JSON.stringify(keygen.command)).toContain('compose-keygen.mjs');
    const mounts = (service: ComposeService) =>
      (service.volumes ?? []).map((v) => {
        const [source, target] = (typeof v === 'string' ? v : `${v.source}:${v.target}`).split(':');
        return { source: source!, target: target! };
      });
    /** `<volume>/<file>` that a service's variable names, through that service's own mounts. */
    const volumeFile = (service: ComposeService, variable: string) => {
      const path = service.environment?.[variable] ?? '';
      const mount = mounts(service).find((m) => path === m.target || path.startsWith(`${m.target}/`));
      return mount ? `${mount.source}${path.slice(mount.target.length)}` : `${variable} (${path}) is on no volume`;
    };
    expect(volumeFile(keygen, 'KEYS_DIR')).toBe('api-keys');
    expect(volumeFile(keygen, 'LLM_KEYS_DIR')).toBe('llm-service-keys');
    const files: Record<string, Record<string, string>> = {
      secretary: {
        API_KEYS_FILE: 'api-keys/client.keys',
        ADMIN_API_KEYS_FILE: 'api-keys/admin.keys',
        SERVICE_API_KEYS_FILE: 'api-keys/service.keys',
        // What it sends the LLM services: the very file they accept.
        GUESSER_API_KEY_FILE: 'llm-service-keys/llm.keys',
        SYSTEM_ANALYST_API_KEY_FILE: 'llm-service-keys/llm.keys',
      },
      guesser: { SERVICE_API_KEYS_FILE: 'llm-service-keys/llm.keys' },
      'system-analyst': { SERVICE_API_KEYS_FILE: 'llm-service-keys/llm.keys' },
      communicator: { SERVICE_API_KEYS_FILE: 'api-keys/service.keys' },
    };
    for (const app of APP_SERVICES) {
      const service = compose.services[app]!;
      expect(service.environment?.['HOST'], app).toBe('0.0.0.0');
      expect(service.depends_on?.['keygen']?.condition, app).toBe('service_completed_successfully');
      for (const [variable, file] of Object.entries(files[app]!))
        expect(volumeFile(service, variable), `${app} ${variable}`).toBe(file);
    }
    // The LLM services hold no key the secretary or the communicator accepts: they do not even mount those files.
    for (const app of ['guesser', 'system-analyst'])
      expect(
        mounts(compose.services[app]!).map((m) => m.source),
        app,
      ).not.toContain('api-keys');
  });

  it('keys set in .env: the LLM services take their own, never the shared SERVICE_API_KEYS', async () => {
    const compose = await resolvedCompose({
      SERVICE_API_KEYS: 'stack:shared-key-0123456789abcdef',
      GUESSER_API_KEY: 'guesser-key-0123456789abcdef',
    });
    const env = (app: string) => compose.services[app]!.environment ?? {};
    expect(env('guesser')['SERVICE_API_KEYS']).toBe('guesser-key-0123456789abcdef');
    expect(env('system-analyst')['SERVICE_API_KEYS'] ?? '').toBe('');
    expect(env('secretary')['GUESSER_API_KEY']).toBe('guesser-key-0123456789abcdef');
    for (const app of ['secretary', 'communicator'])
      expect(env(app)['SERVICE_API_KEYS'], app).toBe('stack:shared-key-0123456789abcdef');
  });

  it('keygen generates each class once, prints the client and admin keys once, and keeps them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'keygen-'));
    const llmDir = join(dir, 'llm');
    try {
      const runKeygen = () =>
        run(process.execPath, [repoPath('scripts/compose-keygen.mjs')], {
          env: {
            PATH: process.env['PATH'] ?? '/usr/bin:/bin',
            KEYS_DIR: dir,
            LLM_KEYS_DIR: llmDir,
            KEYS_OWNER: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
          },
        });
      const first = await runKeygen();
      // The LLM services' own key, in its own directory (their volume): a key of no other class.
      const llmKeys = readApiKeys({ SERVICE_API_KEYS_FILE: join(llmDir, 'llm.keys') }).service;
      expect(llmKeys).toEqual([{ name: 'llm-services', key: expect.stringMatching(/^[\w-]{43}$/) }]);
      expect(first.stdout).not.toContain(llmKeys[0]!.key);
      expect((await stat(join(llmDir, 'llm.keys'))).mode & 0o077).toBe(0);
      expect(await readdir(llmDir)).toEqual(['llm.keys']);
      const keys = readApiKeys({
        API_KEYS_FILE: join(dir, 'client.keys'),
        ADMIN_API_KEYS_FILE: join(dir, 'admin.keys'),
        SERVICE_API_KEYS_FILE: join(dir, 'service.keys'),
      });
      expect(keys.client).toEqual([{ name: 'client', key: expect.stringMatching(/^[\w-]{43}$/) }]);
      expect(keys.admin[0]!.name).toBe('admin');
      expect(first.stdout).toContain(keys.client[0]!.key);
      expect(first.stdout).toContain(keys.admin[0]!.key);
      expect(first.stdout).not.toContain(keys.service[0]!.key);
      expect((await stat(join(dir, 'admin.keys'))).mode & 0o077).toBe(0);
      const second = await runKeygen();
      for (const k of [keys.client[0]!.key, keys.admin[0]!.key]) expect(second.stdout).not.toContain(k);
      expect(await readFile(join(dir, 'client.keys'), 'utf8')).toBe(`client:${keys.client[0]!.key}\n`);
      expect(readApiKeys({ SERVICE_API_KEYS_FILE: join(llmDir, 'llm.keys') }).service).toEqual(llmKeys);
      expect(llmKeys[0]!.key).not.toBe(keys.service[0]!.key);
      // A volume made before llm.keys existed gets it on the next start; the other keys are kept.
      await rm(join(llmDir, 'llm.keys'));
      const third = await runKeygen();
      expect(third.stdout).toContain(join(llmDir, 'llm.keys'));
      expect(readApiKeys({ SERVICE_API_KEYS_FILE: join(llmDir, 'llm.keys') }).service[0]!.key).not.toBe(
        llmKeys[0]!.key,
      );
      expect(await readFile(join(dir, 'client.keys'), 'utf8')).toBe(`client:${keys.client[0]!.key}\n`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('Grafana files', () => {
  it('the dashboard parses and every data source it names is provisioned, with matching types', async () => {
    const provisioning = parse(
      await readFile(repoPath('observability/grafana/provisioning/datasources/datasources.yaml'), 'utf8'),
    ) as { datasources: { uid: string; type: string; jsonData?: { index?: string } }[] };
    const types = new Map(provisioning.datasources.map((d) => [d.uid, d.type]));
    expect(types.get('prom')).toBe('prometheus');
    expect(types.get('es-logs')).toBe('elasticsearch');
    const esIndex = provisioning.datasources.find((d) => d.uid === 'es-logs')!.jsonData!.index!;
    expect(LOG_DATA_STREAM).toMatch(globToRegExp(esIndex));

    const dashboard = await readDashboard();
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{8,40}$/);
    const refs = allPanels(dashboard).flatMap((p) => [
      ...(p.datasource ? [{ where: p.title, ds: p.datasource }] : []),
      ...(p.targets ?? []).map((t) => ({ where: `${p.title} [${t.refId}]`, ds: t.datasource ?? p.datasource })),
    ]);
    expect(refs.length).toBeGreaterThan(10);
    for (const { where, ds } of refs) {
      expect(ds, `${where} names a data source`).toBeDefined();
      expect(types.get(ds!.uid), `${where}: data source uid ${ds!.uid}`).toBe(ds!.type);
    }
    const ids = allPanels(dashboard).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('the dashboards provider reads the directory compose mounts the dashboards into', async () => {
    const provider = parse(
      await readFile(repoPath('observability/grafana/provisioning/dashboards/dashboards.yaml'), 'utf8'),
    ) as { providers: { options: { path: string } }[] };
    const compose = await resolvedCompose();
    // docker-compose 1.x prints `source:target[:mode]`, 2.x objects.
    const mounts = (compose.services['grafana']!.volumes ?? []).map((v) =>
      typeof v === 'string' ? v.split(':')[1]! : v.target,
    );
    for (const p of provider.providers) expect(mounts.some((m) => m.endsWith(p.options.path))).toBe(true);
  });
});

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}

describe('Kibana saved objects', () => {
  it('parse, have unique ids, and every reference resolves to an object of the right type', async () => {
    const objects = await readSavedObjects();
    const byKey = new Map(objects.map((o) => [`${o.type}:${o.id}`, o]));
    expect(byKey.size).toBe(objects.length);
    for (const o of objects)
      for (const ref of o.references ?? [])
        expect(byKey.has(`${ref.type}:${ref.id}`), `${o.type}:${o.id} → ${ref.type}:${ref.id}`).toBe(true);

    const dataView = objects.find((o) => o.type === 'index-pattern')!;
    expect(dataView.attributes['title']).toBe('logs-workemon-*');
    expect(dataView.attributes['timeFieldName']).toBe('@timestamp');
    expect(LOG_DATA_STREAM).toMatch(globToRegExp(String(dataView.attributes['title'])));
    expect(logIndexTemplate.index_patterns.some((p) => LOG_DATA_STREAM.match(globToRegExp(p)))).toBe(true);
  });

  it('searches and visualizations point at the data view and use fields our index template maps', async () => {
    const objects = await readSavedObjects();
    const keywordFields = new Set(['@timestamp', 'service.name', 'log.level', 'trace.id']);
    const searches = objects.filter((o) => o.type === 'search');
    expect(searches.map((s) => s.attributes['title'])).toEqual(
      expect.arrayContaining([expect.stringMatching(/error/i), expect.stringMatching(/request/i)]),
    );
    expect(searches.some((s) => searchSource(s).query.query.includes('trace.id'))).toBe(true);
    for (const o of objects.filter((x) => x.type === 'search' || x.type === 'visualization')) {
      const source = searchSource(o);
      const ref = (o.references ?? []).find((r) => r.name === source.indexRefName);
      expect(ref, `${o.id}: indexRefName resolves`).toMatchObject({ type: 'index-pattern', id: 'logs-workemon' });
    }
    for (const vis of objects.filter((o) => o.type === 'visualization')) {
      const state = JSON.parse(String(vis.attributes['visState'])) as { aggs: { params: { field?: string } }[] };
      for (const agg of state.aggs) if (agg.params.field) expect(keywordFields).toContain(agg.params.field);
    }
    const mapped = logIndexTemplate.template.mappings.properties;
    expect(mapped.service.properties.name.type).toBe('keyword');
    expect(mapped.log.properties.level.type).toBe('keyword');
    expect(mapped.trace.properties.id.type).toBe('keyword');
  });

  it('the dashboard shows log volume by service and by level, each panel resolving to a reference', async () => {
    const objects = await readSavedObjects();
    const dashboard = objects.find((o) => o.type === 'dashboard')!;
    const panels = JSON.parse(String(dashboard.attributes['panelsJSON'])) as {
      panelIndex: string;
      panelRefName: string;
      type: string;
    }[];
    expect(panels.length).toBeGreaterThanOrEqual(2);
    for (const p of panels) {
      const ref = dashboard.references!.find((r) => r.name === `${p.panelIndex}:${p.panelRefName}`);
      expect(ref, `panel ${p.panelIndex}`).toBeDefined();
      expect(ref!.type).toBe(p.type);
    }
    const visFields = dashboard
      .references!.filter((r) => r.type === 'visualization')
      .map((r) => objects.find((o) => o.type === 'visualization' && o.id === r.id)!)
      .flatMap((v) =>
        (JSON.parse(String(v.attributes['visState'])) as { aggs: { params: { field?: string } }[] }).aggs.map(
          (a) => a.params.field,
        ),
      );
    expect(visFields).toEqual(expect.arrayContaining(['service.name', 'log.level']));
  });

  it('are imported by the one-shot kibana-setup container through the saved objects API', async () => {
    const compose = await resolvedCompose();
    const setup = compose.services['kibana-setup']!;
    expect(JSON.stringify(setup.command)).toContain('import-saved-objects.mjs');
    const mounts = (setup.volumes ?? []).map((v) => (typeof v === 'string' ? v : `${v.source}:${v.target}`));
    expect(mounts.some((m) => m.includes('observability/kibana'))).toBe(true);
    const script = await readFile(repoPath('observability/kibana/import-saved-objects.mjs'), 'utf8');
    expect(script).toContain('/api/saved_objects/_import');
    expect(script).toContain('kbn-xsrf');
  });
});

function searchSource(o: SavedObject): { query: { query: string }; indexRefName: string } {
  const meta = o.attributes['kibanaSavedObjectMeta'] as { searchSourceJSON: string };
  return JSON.parse(meta.searchSourceJSON) as { query: { query: string }; indexRefName: string };
}
