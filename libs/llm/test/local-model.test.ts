import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { type AppError, createMetrics, isAppError, parseEnv } from '@workemon/service-kit';
import {
  createLocalWire,
  createLlmClient,
  grammarSchemaOf,
  jsonSchemaOf,
  llmEnvSchema,
  llmSettingsFromEnv,
  type LlmClient,
} from '@workemon/llm';
import { writeTinyGguf } from '@workemon/testkit/tiny-gguf';

// The tiny models are written by the repository itself (libs/testkit/src/tiny-gguf.ts): no download anywhere.
let dir: string;
let terse: string;
let endless: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'workemon-local-'));
  terse = writeTinyGguf(join(dir, 'tiny-terse.gguf'), { style: 'terse' });
  endless = writeTinyGguf(join(dir, 'tiny-endless.gguf'), { style: 'endless' });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

function settingsFor(env: Record<string, string>) {
  return llmSettingsFromEnv(
    parseEnv(z.object(llmEnvSchema), {
      LLM_PROVIDER: 'local',
      LLM_MAX_RETRIES: '0',
      LLM_CONTEXT_SIZE: '4096',
      LLM_THREADS: '1',
      ...env,
    }),
  );
}

function clientFor(env: Record<string, string>): { client: LlmClient } {
  const client = createLlmClient(settingsFor(env), { metrics: createMetrics('t') });
  closers.push(() => client.close!());
  return { client };
}

const decision = z.object({ is_enough: z.boolean(), response: z.string().trim().min(1) });
const action = z.object({
  is_enough: z.boolean(),
  response: z.string().trim().min(1),
  action: z.enum(['reply', 'create_jira_task']).optional(),
  tags: z.array(z.string().max(20)).max(3),
});

async function expectAppError(promise: Promise<unknown>, code: string, status: number): Promise<AppError | undefined> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isAppError(err), `expected ${code}, got ${String(err)}`).toBe(true);
  if (!isAppError(err)) return undefined;
  expect(err.code).toBe(code);
  expect(err.status).toBe(status);
  return err;
}

describe('local provider on a tiny generated GGUF model', () => {
  it('loads the model, reports it healthy, and answers JSON that parses against the schema (grammar-constrained)', async () => {
    const { client } = clientFor({ LLM_MODEL: terse });
    const [check] = client.healthChecks();
    // Health names the file while loading and once loaded.
    const first = await check!.run();
    expect(first.detail).toContain('local');
    const result = await client.complete({
      system: 'Реши, хватает ли контекста.',
      userContent: 'Привет',
      schema: decision,
    });
    expect(typeof result.data.is_enough).toBe('boolean');
    expect(result.data.response.trim().length).toBeGreaterThan(0);
    expect(result.provider).toBe('local');
    expect(result.model).toBe(terse);
    expect(result.usage.inputTokens).toBeGreaterThan(10);
    expect(result.usage.outputTokens).toBeGreaterThan(5);
    expect(await check!.run()).toEqual({ status: 'ok', detail: `primary local ${terse}: loaded` });
    expect(client.describe()).toEqual([
      { provider: 'local', model: terse, baseUrl: 'https://huggingface.co', configured: true },
    ]);

    // A richer schema: optional enum, bounded array and string lengths are all in the grammar.
    const rich = await client.complete({ system: 'Классифицируй.', userContent: 'Создай задачу', schema: action });
    expect(action.safeParse(rich.data).success).toBe(true);
  });

  it('keeps the grammar to the keywords its builder knows (anyOf → oneOf; pattern, minimum, $schema dropped)', () => {
    const schema = jsonSchemaOf(
      z.object({ a: z.string().regex(/x/), b: z.union([z.number().min(1), z.null()]), c: z.enum(['x', 'y']) }),
    );
    const grammar = grammarSchemaOf(schema) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(grammar.properties.a).toEqual({ type: 'string' });
    expect(grammar.properties.b.oneOf).toEqual([{ type: 'number' }, { type: 'null' }]);
    expect(grammar.properties.c).toEqual({ type: 'string', enum: ['x', 'y'] });
    expect(grammar.required).toEqual(['a', 'b', 'c']);
  });

  it('keeps a number bounded on both sides in range: its hundredths (numbers) or its values (integers)', () => {
    const schema = jsonSchemaOf(
      z.object({
        confidence: z.number().min(0).max(1).optional(),
        stars: z.number().int().min(1).max(5),
        huge: z.number().int().min(0).max(1_000_000),
        low: z.number().min(0),
      }),
    );
    const grammar = grammarSchemaOf(schema) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const confidence = grammar.properties.confidence.enum as number[];
    expect(confidence).toHaveLength(101);
    expect([confidence[0], confidence[7], confidence[100]]).toEqual([0, 0.07, 1]);
    expect(grammar.properties.stars.enum).toEqual([1, 2, 3, 4, 5]);
    // Too many values for a grammar, or open-ended: checked after parsing only.
    expect(grammar.properties.huge).toEqual({ type: 'integer' });
    expect(grammar.properties.low).toEqual({ type: 'number' });
  });

  it('runs one generation at a time by default and queues the rest; LLM_LOCAL_PARALLEL=2 runs two', async () => {
    for (const [parallel, peak] of [
      ['1', 1],
      ['2', 2],
    ] as const) {
      const settings = settingsFor({ LLM_MODEL: terse, LLM_LOCAL_PARALLEL: parallel });
      const wire = createLocalWire(settings.primary, settings);
      closers.push(() => wire.close());
      expect((await wire.whenSettled()).phase).toBe('ready');
      const jsonSchema = jsonSchemaOf(decision);
      const calls = Array.from({ length: 4 }, (_, i) =>
        wire.generate({
          messages: [
            { role: 'system', content: 'JSON' },
            { role: 'user', content: `запрос ${i}` },
          ],
          jsonSchema,
          schemaName: 'r',
          timeoutMs: 20_000,
          maxOutputTokens: 200,
          temperature: 0.2,
        }),
      );
      // While the first generations run, the others wait in line.
      await new Promise((r) => setImmediate(r));
      expect(wire.stats().waiting + wire.stats().active).toBeGreaterThan(0);
      const answers = await Promise.all(calls);
      for (const a of answers) expect(decision.safeParse(JSON.parse(a.text)).success).toBe(true);
      expect(wire.stats()).toEqual({ active: 0, waiting: 0, peakActive: peak });
    }
  });

  it('aborts a generation at its deadline (504), drops a call whose deadline passes in the line, and frees the model', async () => {
    const settings = settingsFor({ LLM_MODEL: endless, LLM_TIMEOUT_MS: '300', LLM_MAX_TOKENS: '3500' });
    const wire = createLocalWire(settings.primary, settings);
    closers.push(() => wire.close());
    expect((await wire.whenSettled()).phase).toBe('ready');
    const request = (timeoutMs: number) =>
      wire.generate({
        messages: [{ role: 'user', content: 'пиши' }],
        jsonSchema: jsonSchemaOf(decision),
        schemaName: 'r',
        timeoutMs,
        maxOutputTokens: 3500,
        temperature: 0.2,
      });
    const running = request(300);
    const queued = request(100); // waits for the one sequence; its deadline passes first
    await expectAppError(queued, 'llm_timeout', 504);
    expect(wire.stats().active).toBe(1);
    const err = await expectAppError(running, 'llm_timeout', 504);
    expect(err?.message).toBe("LLM provider 'local' did not answer within 300 ms");
    expect(wire.stats()).toEqual({ active: 0, waiting: 0, peakActive: 1 });
  });

  it('a missing model file: 503 naming the file, /health down naming it', async () => {
    const missing = join(dir, 'nowhere', 'model.gguf');
    const { client } = clientFor({ LLM_MODEL: missing });
    const err = await expectAppError(
      client.complete({ system: 's', userContent: 'u', schema: decision }),
      'llm_model_unavailable',
      503,
    );
    expect(err?.message).toContain(missing);
    expect(err?.message).toContain('does not exist');
    const check = await client.healthChecks()[0]!.run();
    expect(check.status).toBe('down');
    expect(check.detail).toContain(missing);
  });

  it('a corrupt model file: 503 naming the file and saying it cannot be loaded', async () => {
    const corrupt = join(dir, 'corrupt.gguf');
    writeFileSync(corrupt, Buffer.concat([Buffer.from('GGUF'), Buffer.alloc(2000, 7)]));
    const { client } = clientFor({ LLM_MODEL: corrupt });
    const err = await expectAppError(
      client.complete({ system: 's', userContent: 'u', schema: decision }),
      'llm_model_unavailable',
      503,
    );
    expect(err?.message).toContain(`model file ${corrupt} cannot be loaded`);
    const check = await client.healthChecks()[0]!.run();
    expect(check).toMatchObject({ status: 'down' });
    expect(check.detail).toContain(corrupt);
  });

  it('says so when node-llama-cpp cannot load, and names the fix', async () => {
    const settings = settingsFor({ LLM_MODEL: terse });
    const wire = createLocalWire(settings.primary, settings, {
      importBinding: () => Promise.reject(new Error("Cannot find package 'node-llama-cpp'")),
    });
    closers.push(() => wire.close());
    const phase = await wire.whenSettled();
    expect(phase).toMatchObject({ phase: 'failed' });
    expect(phase.phase === 'failed' && phase.problem).toContain('node-llama-cpp cannot load on this machine');
    expect((await wire.checkHealth(1000)).status).toBe('down');
  });
});
