import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ACTIONS, CHANNELS, SERVICE_NAMES, loadOpenApiDocument } from '@workemon/contracts';

const contractsDir = fileURLToPath(new URL('..', import.meta.url));

describe('contracts', () => {
  it('generated TypeScript types match the OpenAPI documents', () => {
    // Exits non-zero (and the call throws) when a committed file is stale.
    const out = execFileSync(process.execPath, ['scripts-generate.mjs', '--check'], {
      cwd: contractsDir,
      encoding: 'utf8',
    });
    expect(out).toBe('');
  });

  it('every document shares one error and health schema', () => {
    const docs = SERVICE_NAMES.map((s) => loadOpenApiDocument(s));
    const schemas = docs.map((d) => d.components?.['schemas'] as Record<string, unknown>);
    for (const s of schemas) {
      expect(s['ErrorResponse']).toEqual(schemas[0]!['ErrorResponse']);
      expect(s['Health']).toEqual(schemas[0]!['Health']);
    }
    for (const d of docs) expect(d.paths['/health']).toBeDefined();
  });

  it('keeps the action enum exactly as the seed contract spells it', () => {
    const secretary = loadOpenApiDocument('secretary');
    const analyst = loadOpenApiDocument('system-analyst');
    const enumOf = (d: typeof secretary) =>
      (d.components?.['schemas'] as Record<string, { enum: string[] }>)['Action']!.enum;
    expect(enumOf(secretary)).toEqual([...ACTIONS]);
    expect(enumOf(analyst)).toEqual([...ACTIONS]);
    expect(ACTIONS).toEqual([
      'уточнить',
      'ответить сообщением',
      'создать jira-task',
      'написать в telegram сотруднику',
      'ответить на письмо',
      'написать в рассылку департамента',
    ]);
    const channel = (secretary.components?.['schemas'] as Record<string, { enum: string[] }>)['Channel']!.enum;
    expect(channel).toEqual([...CHANNELS]);
  });

  it("hands out copies, so one caller cannot change another caller's document", () => {
    const a = loadOpenApiDocument('guesser');
    a.info.title = 'changed';
    expect(loadOpenApiDocument('guesser').info.title).toBe('Workemon guesser');
  });

  it('builds JSON documents equal to the parsed YAML sources', () => {
    const out = mkdtempSync(join(tmpdir(), 'contracts-json-'));
    try {
      execFileSync(process.execPath, ['scripts-build-json.mjs', out], { cwd: contractsDir });
      for (const service of SERVICE_NAMES) {
        const yaml = parse(readFileSync(join(contractsDir, 'openapi', `${service}.yaml`), 'utf8'), { merge: true });
        const json: unknown = JSON.parse(readFileSync(join(out, `${service}.json`), 'utf8'));
        expect(json, service).toEqual(yaml);
        // Running from src/ (tests, tsx) the loader reads the YAML: the same document.
        expect(loadOpenApiDocument(service), service).toEqual(json);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('a built package reads its JSON document and never loads the YAML parser', () => {
    // A copy of the loader with an openapi/ JSON beside it, as dist/ has after `npm run build`.
    const pkg = mkdtempSync(join(tmpdir(), 'contracts-built-'));
    try {
      mkdirSync(join(pkg, 'src', 'openapi'), { recursive: true });
      writeFileSync(join(pkg, 'package.json'), JSON.stringify({ type: 'module' }));
      copyFileSync(join(contractsDir, 'src', 'index.ts'), join(pkg, 'src', 'index.ts'));
      const document = { openapi: '3.0.3', info: { title: 'from the built JSON', version: '1' }, paths: {} };
      writeFileSync(join(pkg, 'src', 'openapi', 'guesser.json'), JSON.stringify(document));
      const probe = `
        import { createRequire } from 'node:module';
        const { loadOpenApiDocument } = await import(${JSON.stringify(join(pkg, 'src', 'index.ts'))});
        const loaded = loadOpenApiDocument('guesser');
        const yamlLoaded = Object.keys(createRequire(import.meta.url).cache).some((f) => f.includes('/node_modules/yaml/'));
        console.log(JSON.stringify({ loaded, yamlLoaded }));`;
      const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
        cwd: contractsDir,
        encoding: 'utf8',
      });
      expect(JSON.parse(out)).toEqual({ loaded: document, yamlLoaded: false });
    } finally {
      rmSync(pkg, { recursive: true, force: true });
    }
  });
});
