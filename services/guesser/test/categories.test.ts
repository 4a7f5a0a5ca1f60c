// Issue 16: the guesser classifies each request into one of CATEGORIES with a confidence, asked for in the
// prompt (the list) and in the structured-output schema, and validated before it is answered.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, createOpenApi } from '@workemon/service-kit';
import { loadOpenApiDocument } from '@workemon/contracts';
import { startFakeLlm, type FakeLlm } from '@workemon/testkit/fake-llm';
import { loadConfig, parseCategories } from '../src/index.js';
import { asService, envForFake, startGuesser, validQuery } from './start-guesser.js';

const openapi = createOpenApi(loadOpenApiDocument('guesser'));
const fakes: FakeLlm[] = [];
async function fake(): Promise<FakeLlm> {
  const f = await startFakeLlm({ wire: 'openai' });
  fakes.push(f);
  return f;
}
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.close()));
});

const ENOUGH = { is_enough: true, response: 'Аналитик ДКС: операции кошельков, домен b2c' };

describe('CATEGORIES', () => {
  it('ships a default for internal fintech support, with automatic and marketing marked no_reply', () => {
    const config = loadConfig({});
    expect(config.categoriesSource).toBe('built-in');
    expect(config.categories.map((c) => c.name)).toEqual([
      'analytics',
      'payments',
      'cards',
      'wallets',
      'access',
      'incidents',
      'data_exports',
      'other',
      'automatic',
      'marketing',
    ]);
    expect(config.categories.filter((c) => c.noReply).map((c) => c.name)).toEqual(['automatic', 'marketing']);
    expect(config.categories.every((c) => c.description.length > 10)).toBe(true);
  });

  it('reads `name: description` pairs separated by ; or newlines, (no_reply) after the name', () => {
    const config = loadConfig({ CATEGORIES: 'invoice: счета; spam (no_reply): реклама\n# comment\nother: прочее' });
    expect(config.categories).toEqual([
      { name: 'invoice', description: 'счета', noReply: false },
      { name: 'spam', description: 'реклама', noReply: true },
      { name: 'other', description: 'прочее', noReply: false },
    ]);
  });

  it('reads CATEGORIES_FILE in the same format', () => {
    const dir = mkdtempSync(join(tmpdir(), 'categories-'));
    const file = join(dir, 'categories.txt');
    writeFileSync(file, '# support categories\ncards: карты\nnewsletters (no_reply): рассылки\n');
    const config = loadConfig({ CATEGORIES_FILE: file });
    expect(config.categoriesSource).toBe(file);
    expect(config.categories.map((c) => [c.name, c.noReply])).toEqual([
      ['cards', false],
      ['newsletters', true],
    ]);
  });

  const bad: Array<[Record<string, string>, string]> = [
    [{ CATEGORIES: 'Платежи: платежи' }, "CATEGORIES: 'Платежи' must be lower-case latin letters"],
    [{ CATEGORIES: 'payments' }, "CATEGORIES: 'payments' must be 'name: description'"],
    [{ CATEGORIES: 'payments:' }, "CATEGORIES: 'payments' needs a description"],
    [{ CATEGORIES: 'a: x; a: y' }, "CATEGORIES: 'a' is listed twice"],
    [{ CATEGORIES: 'a (silent): x' }, "CATEGORIES: 'a': unknown flag '(silent)'"],
    [{ CATEGORIES: ' ; # only a comment' }, 'CATEGORIES: lists no category'],
    [{ CATEGORIES_FILE: '/nonexistent/categories.txt' }, 'CATEGORIES_FILE: cannot read /nonexistent/categories.txt'],
    [{ CATEGORIES: 'a: x', CATEGORIES_FILE: '/tmp/x' }, 'CATEGORIES_FILE: set either CATEGORIES or CATEGORIES_FILE'],
  ];
  for (const [env, problem] of bad) {
    it(`refuses to start: ${problem}`, () => {
      let error: unknown;
      try {
        loadConfig(env);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.some((p) => p.startsWith(problem))).toBe(true);
    });
  }

  it('names the bad LLM key and the bad CATEGORIES together', () => {
    expect(() => loadConfig({ LLM_PROVIDER: 'nope', CATEGORIES: 'x' })).toThrow(/LLM_PROVIDER[\s\S]*CATEGORIES/);
  });

  it('parses at most 50 categories', () => {
    const many = Array.from({ length: 51 }, (_, i) => `c${i}: d`).join(';');
    expect(parseCategories(many).problems).toEqual(['lists 51 categories; at most 50']);
  });
});

describe('classification in /get-context', () => {
  it('puts the list in the prompt, asks for category (enum) and confidence in the schema, answers both', async () => {
    const llm = await fake();
    llm.reply(() => ({ ...ENOUGH, category: 'wallets', confidence: 0.87 }));
    const { app } = startGuesser(envForFake('openai', llm));
    const res = await asService(app).get('/get-context').query(validQuery());
    expect(res.status).toBe(200);
    expect(openapi.responseProblems('getContext', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ ...ENOUGH, category: 'wallets', confidence: 0.87 });
    expect(res.body).not.toHaveProperty('no_reply');

    const sent = llm.requests[0]!;
    expect(sent.system).toContain('- wallets: электронные кошельки');
    expect(sent.system).toContain('- marketing: реклама и рассылки');
    expect(sent.system).toContain('"confidence"');
    const schema = sent.body.response_format.json_schema.schema;
    expect(schema.required).toEqual(['is_enough', 'response']);
    expect(schema.properties.category.enum).toHaveLength(10);
    expect(schema.properties.confidence).toMatchObject({ type: 'number', minimum: 0, maximum: 1 });
  });

  it('marks a no_reply category (POST too)', async () => {
    const llm = await fake();
    llm.reply(() => ({ is_enough: true, response: 'Рекламная рассылка', category: 'marketing', confidence: 0.99 }));
    const { app, logs } = startGuesser(envForFake('openai', llm));
    const res = await asService(app).post('/get-context').send(validQuery());
    expect(openapi.responseProblems('getContextPost', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ category: 'marketing', confidence: 0.99, no_reply: true });
    expect(logs.some((l) => l.includes('"no_reply":true') && l.includes('"category":"marketing"'))).toBe(true);
  });

  it('marks no_reply only at NO_REPLY_MIN_CONFIDENCE (0.7 by default) or above, or when it is set lower', async () => {
    const llm = await fake();
    let confidence = 0.5;
    llm.reply(() => ({ is_enough: true, response: 'Похоже на рассылку', category: 'marketing', confidence }));
    const { app } = startGuesser(envForFake('openai', llm));
    const unsure = await asService(app).get('/get-context').query(validQuery());
    expect(unsure.body).toMatchObject({ category: 'marketing', confidence: 0.5 });
    expect(unsure.body).not.toHaveProperty('no_reply');
    confidence = 0.7;
    expect((await asService(app).get('/get-context').query(validQuery())).body).toMatchObject({ no_reply: true });
    confidence = 0.5;
    const lower = startGuesser({ ...envForFake('openai', llm), NO_REPLY_MIN_CONFIDENCE: '0.4' });
    expect((await asService(lower.app).get('/get-context').query(validQuery())).body).toMatchObject({ no_reply: true });
  });

  it('refuses a NO_REPLY_MIN_CONFIDENCE outside 0–1, naming the key', () => {
    expect(loadConfig({}).noReplyMinConfidence).toBe(0.7);
    expect(loadConfig({ NO_REPLY_MIN_CONFIDENCE: '0.25' }).noReplyMinConfidence).toBe(0.25);
    for (const bad of ['1.5', '-0.1', 'high'])
      expect(() => loadConfig({ NO_REPLY_MIN_CONFIDENCE: bad })).toThrow(
        /NO_REPLY_MIN_CONFIDENCE: must be a number from 0 to 1/,
      );
  });

  it('uses the configured categories, also with PROMPT_FILE', async () => {
    const llm = await fake();
    llm.reply(() => ({ ...ENOUGH, category: 'invoice', confidence: 0.7 }));
    const dir = mkdtempSync(join(tmpdir(), 'prompt-'));
    writeFileSync(join(dir, 'prompt.txt'), 'PROMPT-FILE-MARKER: decide whether the request is clear.');
    const { app } = startGuesser({
      ...envForFake('openai', llm),
      PROMPT_FILE: join(dir, 'prompt.txt'),
      CATEGORIES: 'invoice: счета поставщиков; general: прочее',
    });
    const res = await asService(app).get('/get-context').query(validQuery());
    expect(res.body).toMatchObject({ category: 'invoice', confidence: 0.7 });
    expect(llm.requests[0]!.system).toMatch(
      /^PROMPT-FILE-MARKER[\s\S]*- invoice: счета поставщиков\n- general: прочее/,
    );
    expect(llm.requests[0]!.body.response_format.json_schema.schema.properties.category.enum).toEqual([
      'invoice',
      'general',
    ]);
  });

  it('answers without them when the model gives none', async () => {
    const llm = await fake();
    llm.reply(() => ENOUGH);
    const { app } = startGuesser(envForFake('openai', llm));
    const res = await asService(app).get('/get-context').query(validQuery());
    expect(res.status).toBe(200);
    expect(res.body).not.toHaveProperty('category');
    expect(res.body).not.toHaveProperty('confidence');
  });

  for (const [name, invalid] of [
    ['a category not in the list', { category: 'invoices' }],
    ['a confidence above 1', { category: 'cards', confidence: 1.7 }],
    ['a confidence that is not a number', { category: 'cards', confidence: 'high' }],
  ] as const) {
    it(`asks the model again after ${name}, and answers the repaired classification`, async () => {
      const llm = await fake();
      let calls = 0;
      llm.reply(() => (++calls === 1 ? { ...ENOUGH, ...invalid } : { ...ENOUGH, category: 'cards', confidence: 0.6 }));
      const { app } = startGuesser(envForFake('openai', llm));
      const res = await asService(app).get('/get-context').query(validQuery());
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ category: 'cards', confidence: 0.6 });
      expect(llm.requests).toHaveLength(2);
    });
  }

  it('502 when the model keeps answering a category outside the list', async () => {
    const llm = await fake();
    llm.reply(() => ({ ...ENOUGH, category: 'invoices', confidence: 0.9 }));
    const { app } = startGuesser(envForFake('openai', llm));
    const res = await asService(app).get('/get-context').query(validQuery());
    expect(res.status).toBe(502);
    expect(openapi.responseProblems('getContext', 502, res.body)).toEqual([]);
  });
});
