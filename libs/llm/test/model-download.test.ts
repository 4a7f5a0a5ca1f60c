import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseEnv } from '@workemon/service-kit';
import {
  ModelDownloadError,
  createLocalWire,
  downloadHubFile,
  jsonSchemaOf,
  llmEnvSchema,
  llmSettingsFromEnv,
  parseHubModelRef,
  pickGgufFile,
  resolveHubFile,
  type DownloadProgress,
  type LocalWire,
} from '@workemon/llm';
import { startFakeModelHub, type FakeModelHub } from '@workemon/testkit/fake-model-hub';
import { getFreePort } from '@workemon/testkit/ports';
import { tinyGguf } from '@workemon/testkit/tiny-gguf';

// The "hub" is a local HTTP server speaking the Hugging Face Hub's wire format and serving the tiny model the
// repository writes itself: nothing is downloaded from the internet.
const model = tinyGguf({ style: 'terse' });
const FILE = 'tiny-Q8_0.gguf';
let hub: FakeModelHub;
let dir: string;
beforeAll(async () => {
  hub = await startFakeModelHub({
    owner: 'workemon',
    repo: 'tiny-GGUF',
    files: { [FILE]: model, 'tiny-F32.gguf': model.subarray(0, 1000), 'README.md': Buffer.from('# tiny') },
  });
});
afterAll(async () => {
  await hub.close();
});
const wires: LocalWire[] = [];
afterEach(async () => {
  await Promise.all(wires.splice(0).map((w) => w.close()));
  hub.requests.length = 0;
  hub.cutNextAfterBytes = undefined;
  hub.listedSha256 = undefined;
  hub.chunkDelayMs = 0;
  hub.chunkBytes = 16 * 1024;
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'workemon-models-'));
});

const ref = { owner: 'workemon', repo: 'tiny-GGUF', quant: 'Q8_0' };

describe('model references and file choice', () => {
  it('parses hf:<owner>/<repo>[:<quant>] and leaves file paths alone', () => {
    expect(parseHubModelRef('hf:Qwen/Qwen3-0.6B-GGUF')).toEqual({ owner: 'Qwen', repo: 'Qwen3-0.6B-GGUF' });
    expect(parseHubModelRef('hf:Qwen/Qwen3-0.6B-GGUF:Q8_0')).toEqual({
      owner: 'Qwen',
      repo: 'Qwen3-0.6B-GGUF',
      quant: 'Q8_0',
    });
    expect(parseHubModelRef('./data/models/x.gguf')).toBeUndefined();
    expect(parseHubModelRef('/models/hf:x.gguf')).toBeUndefined();
  });

  it('picks the quantisation asked for, else Q4_K_M, else Q8_0, else the smallest; never projectors or split parts', () => {
    const files = [
      { path: 'm-Q8_0.gguf', size: 8 },
      { path: 'm-Q4_K_M.gguf', size: 4 },
      { path: 'm-Q2_K.gguf', size: 2 },
      { path: 'mmproj-m-f16.gguf', size: 1 },
      { path: 'm-Q3_K-00001-of-00002.gguf', size: 1 },
    ];
    expect(pickGgufFile(files, 'q8_0')?.path).toBe('m-Q8_0.gguf');
    expect(pickGgufFile(files)?.path).toBe('m-Q4_K_M.gguf');
    expect(pickGgufFile(files.filter((f) => f.size !== 4))?.path).toBe('m-Q8_0.gguf');
    expect(pickGgufFile([files[2]!, { path: 'm-Q6_K.gguf', size: 6 }])?.path).toBe('m-Q2_K.gguf');
    expect(pickGgufFile(files, 'Q5_K_M')).toBeUndefined();
  });
});

describe('downloading a model over HTTP', () => {
  it('lists the repository, downloads the file with progress, and verifies size and SHA-256', async () => {
    const file = await resolveHubFile(hub.url, ref);
    expect(file).toMatchObject({
      path: FILE,
      size: model.length,
      url: `${hub.url}/workemon/tiny-GGUF/resolve/main/${FILE}`,
    });
    expect(file.sha256).toMatch(/^[0-9a-f]{64}$/);
    const progress: DownloadProgress[] = [];
    hub.chunkBytes = 16 * 1024;
    hub.chunkDelayMs = 5;
    const dest = join(dir, FILE);
    await downloadHubFile(file, dest, { onProgress: (p) => progress.push(p) });
    expect(readFileSync(dest).equals(model)).toBe(true);
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect(progress.length).toBeGreaterThan(3);
    expect(progress.at(-1)).toEqual({ receivedBytes: model.length, totalBytes: model.length });
    const received = progress.map((p) => p.receivedBytes);
    expect([...received].sort((a, b) => a - b)).toEqual(received);
    expect(hub.requests.filter((r) => r.path.includes('/resolve/'))).toEqual([
      { method: 'GET', path: `/workemon/tiny-GGUF/resolve/main/${FILE}`, range: undefined },
    ]);
  });

  it('resumes after a cut connection with a Range request, keeping the bytes it had', async () => {
    const file = await resolveHubFile(hub.url, ref);
    const dest = join(dir, FILE);
    hub.cutNextAfterBytes = 50_000;
    const cut = await downloadHubFile(file, dest).catch((e: unknown) => e);
    expect(cut).toBeInstanceOf(ModelDownloadError);
    expect((cut as ModelDownloadError).kind).toBe('network');
    expect((cut as Error).message).toContain('resumes from there');
    expect(existsSync(dest)).toBe(false);
    expect(statSync(`${dest}.part`).size).toBe(50_000);

    await downloadHubFile(file, dest);
    expect(readFileSync(dest).equals(model)).toBe(true);
    const downloads = hub.requests.filter((r) => r.path.includes('/resolve/'));
    expect(downloads.map((r) => r.range)).toEqual([undefined, 'bytes=50000-']);
  });

  it('rejects a file whose checksum does not match the hub, and deletes it', async () => {
    hub.listedSha256 = 'ab'.repeat(32);
    const file = await resolveHubFile(hub.url, ref);
    const dest = join(dir, FILE);
    const err = await downloadHubFile(file, dest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelDownloadError);
    expect((err as ModelDownloadError).kind).toBe('checksum');
    expect((err as Error).message).toContain(`its SHA-256 is not ${'ab'.repeat(32)}`);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('names a repository or quantisation the hub does not have', async () => {
    const missing = await resolveHubFile(hub.url, { owner: 'nobody', repo: 'nothing' }).catch((e: unknown) => e);
    expect((missing as ModelDownloadError).kind).toBe('not-found');
    const noQuant = await resolveHubFile(hub.url, { ...ref, quant: 'Q5_K_M' }).catch((e: unknown) => e);
    expect((noQuant as Error).message).toBe('workemon/tiny-GGUF has no single-file GGUF model in quantisation Q5_K_M');
  });
});

function settingsFor(env: Record<string, string>) {
  return llmSettingsFromEnv(
    parseEnv(z.object(llmEnvSchema), {
      LLM_PROVIDER: 'local',
      LLM_CONTEXT_SIZE: '4096',
      LLM_THREADS: '1',
      LLM_MODELS_DIR: dir,
      ...env,
    }),
  );
}

function wireFor(env: Record<string, string>): LocalWire {
  const settings = settingsFor(env);
  const wire = createLocalWire(settings.primary, settings);
  wires.push(wire);
  return wire;
}

describe('the local provider on first start', () => {
  it('downloads an hf: model once into LLM_MODELS_DIR, reports progress in health, then answers; the next start reuses it', async () => {
    hub.chunkBytes = 8 * 1024;
    hub.chunkDelayMs = 40;
    const wire = wireFor({ LLM_MODEL: 'hf:workemon/tiny-GGUF:Q8_0', LLM_MODEL_BASE_URL: hub.url });
    let seen: { status: string; detail?: string } | undefined;
    for (let i = 0; i < 200 && !seen; i += 1) {
      const check = await wire.checkHealth(1000);
      if (check.detail?.includes('downloading')) seen = check;
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(seen?.status).toBe('degraded');
    expect(seen?.detail).toMatch(/^local: downloading \d+ % of tiny-Q8_0\.gguf \(\d+ KB of \d+ KB\) into /);
    // Generating while the download runs: 503 saying so, with Retry-After.
    const early = await wire
      .generate({
        messages: [{ role: 'user', content: 'u' }],
        jsonSchema: jsonSchemaOf(z.object({ ok: z.boolean() })),
        schemaName: 'r',
        timeoutMs: 1000,
        maxOutputTokens: 50,
        temperature: 0,
      })
      .catch((e: unknown) => e);
    expect(early).toMatchObject({ code: 'llm_model_unavailable', status: 503, headers: { 'Retry-After': '30' } });
    expect((early as Error).message).toMatch(/^The local model is still downloading \(\d+ % of tiny-Q8_0\.gguf\)/);

    expect(await wire.whenSettled()).toEqual({ phase: 'ready', file: join(dir, 'workemon', 'tiny-GGUF', FILE) });
    expect(readFileSync(join(dir, 'workemon', 'tiny-GGUF', FILE)).equals(model)).toBe(true);
    const answer = await wire.generate({
      messages: [{ role: 'user', content: 'ответь' }],
      jsonSchema: jsonSchemaOf(z.object({ ok: z.boolean() })),
      schemaName: 'r',
      timeoutMs: 20_000,
      maxOutputTokens: 50,
      temperature: 0,
    });
    expect(z.object({ ok: z.boolean() }).safeParse(JSON.parse(answer.text)).success).toBe(true);

    const before = hub.requests.length;
    const again = wireFor({ LLM_MODEL: 'hf:workemon/tiny-GGUF:Q8_0', LLM_MODEL_BASE_URL: hub.url });
    expect((await again.whenSettled()).phase).toBe('ready');
    expect(hub.requests.length).toBe(before);
  });

  it('resumes a download whose connection broke off by itself (Range), then loads the model', async () => {
    hub.cutNextAfterBytes = 60_000;
    const wire = wireFor({ LLM_MODEL: 'hf:workemon/tiny-GGUF:Q8_0', LLM_MODEL_BASE_URL: hub.url });
    expect((await wire.whenSettled()).phase).toBe('ready');
    expect(hub.requests.filter((r) => r.path.includes('/resolve/')).map((r) => r.range)).toEqual([
      undefined,
      'bytes=60000-',
    ]);
    expect(readFileSync(join(dir, 'workemon', 'tiny-GGUF', FILE)).equals(model)).toBe(true);
  });

  it('two processes sharing the directory download the file once', async () => {
    hub.chunkDelayMs = 5;
    const env = { LLM_MODEL: 'hf:workemon/tiny-GGUF:Q8_0', LLM_MODEL_BASE_URL: hub.url };
    const [a, b] = [wireFor(env), wireFor(env)];
    const [pa, pb] = await Promise.all([a.whenSettled(), b.whenSettled()]);
    expect(pa.phase).toBe('ready');
    expect(pb.phase).toBe('ready');
    expect(hub.requests.filter((r) => r.path.includes('/resolve/'))).toHaveLength(1);
  });

  it('with no network: fails naming the file to download and where to put it', async () => {
    const closedPort = await getFreePort();
    const base = `http://127.0.0.1:${closedPort}`;
    const wire = wireFor({ LLM_MODEL: 'hf:Qwen/Qwen3-0.6B-GGUF:Q8_0', LLM_MODEL_BASE_URL: base });
    const phase = await wire.whenSettled();
    expect(phase.phase).toBe('failed');
    const problem = phase.phase === 'failed' ? phase.problem : '';
    expect(problem).toContain(`cannot reach ${base}`);
    expect(problem).toContain(
      `download ${base}/Qwen/Qwen3-0.6B-GGUF/resolve/main/Qwen3-0.6B-Q8_0.gguf and put it at ${join(dir, 'Qwen', 'Qwen3-0.6B-GGUF', 'Qwen3-0.6B-Q8_0.gguf')}`,
    );
    const health = await wire.checkHealth(1000);
    expect(health.status).toBe('down');
    expect(health.detail).toContain('Qwen3-0.6B-Q8_0.gguf');
  });

  it('a download that fails its checksum leaves the provider down, saying the file was corrupt', async () => {
    hub.listedSha256 = 'cd'.repeat(32);
    const wire = wireFor({ LLM_MODEL: 'hf:workemon/tiny-GGUF:Q8_0', LLM_MODEL_BASE_URL: hub.url });
    const phase = await wire.whenSettled();
    expect(phase).toMatchObject({ phase: 'failed' });
    expect(phase.phase === 'failed' && phase.problem).toContain('the downloaded tiny-Q8_0.gguf is corrupt');
    expect(existsSync(join(dir, 'workemon', 'tiny-GGUF', FILE))).toBe(false);
  });
});
