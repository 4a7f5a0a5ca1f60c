import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';
import { startLlmServices } from '@workemon/testkit/llm-stack';
import { migrateDatabase, openDatabase } from '../src/database.js';
import { MIGRATION_NAMES } from '../src/migrations.js';
import { keyed, openapi, startSecretary } from './secretary-harness.js';

describe('migrations on embedded PGlite (DATABASE_URL unset)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secretary-pglite-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates every table, persists on disk, and is a no-op the second time', async () => {
    const first = openDatabase({ pgliteDir: dir });
    expect(first.kind).toBe('pglite');
    expect(await migrateDatabase(first)).toEqual([...MIGRATION_NAMES]);
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

describe('the secretary on embedded PGlite (what `npm start` runs)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secretary-pglite-app-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('clarifies, continues the conversation and replays a message_id on its single connection', async () => {
    const llm = await startLlmServices();
    const secretary = await startSecretary({ pgliteDir: dir, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl });
    try {
      const ask = async (text: string, message_id: string) => {
        const res = await keyed(secretary.url)
          .post('/analyze-request')
          .send({ channel: 'tg', username: '@pglite_user', request: text, message_id });
        expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
        return res;
      };
      const first = await ask('Нужна аналитика', 'u1');
      expect(first.body).toMatchObject({ is_enough: false, action: 'уточнить' });
      const second = await ask('Операции авторизации кошельков за прошлый месяц по всем клиентам', 'u2');
      expect(second.body).toMatchObject({ is_enough: true, action: 'ответить сообщением' });
      expect(second.body.request).toBe(
        `Нужна аналитика ${first.body.question} Операции авторизации кошельков за прошлый месяц по всем клиентам`,
      );
      const calls = llm.guesserLlm.requests.length;
      const replay = await Promise.all([ask('x', 'u2'), ask('x', 'u2')]);
      for (const r of replay) expect(r.body).toEqual(second.body);
      expect(llm.guesserLlm.requests.length).toBe(calls);
      expect(await secretary.db.knex('conversations')).toMatchObject([{ status: 'answered', clarification_rounds: 1 }]);
    } finally {
      await secretary.close();
      await llm.close();
    }
  });
});
