import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { migrateDatabase, openDatabase } from '../src/database.js';

describe('migrations on embedded PGlite (DATABASE_URL unset)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secretary-pglite-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates every table, persists on disk, and is a no-op the second time', async () => {
    const first = openDatabase({ pgliteDir: dir });
    expect(first.kind).toBe('pglite');
    expect(await migrateDatabase(first)).toEqual(['001_directory_and_history']);
    const tables = await first.knex('information_schema.tables').where({ table_schema: 'public' }).pluck('table_name');
    expect(tables).toEqual(
      expect.arrayContaining(['employees', 'departments', 'conversations', 'messages', 'analyses', 'knex_migrations']),
    );
    await first.knex('departments').insert({ name: 'Платежи', mailing_list: 'pay@example.test' });
    await first.close();

    const second = openDatabase({ pgliteDir: dir });
    expect(await migrateDatabase(second)).toEqual([]);
    expect(await second.knex('departments').pluck('mailing_list')).toEqual(['pay@example.test']);
    await second.close();
  });
});
