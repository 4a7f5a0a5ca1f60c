import { describe, it, expect } from 'vitest';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
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
});
