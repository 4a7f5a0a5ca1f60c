// The directory, rules, history and action repositories through the secretary's API, once on a PostgreSQL server
// and once on the embedded PGlite: DELETE of an existing row is 204 and of a missing one 404 on both, RETURNING
// tells an insert from an update on both, concurrent claims and unique keys behave the same.
import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getFreePort } from '@workemon/testkit';
import { createHistoryWriteRepository, type ClaimInput } from '../src/history-write-repository.js';
import { DATABASE_KINDS, createDatabaseOfKind, type TestDatabaseOfKind } from './database-kinds.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

const claimInput = (overrides: Partial<ClaimInput> = {}): ClaimInput => ({
  channel: 'tg',
  sender: 'racer',
  employeeId: undefined,
  department: 'unknown',
  position: 'unknown',
  text: 'Авторизации',
  messageId: 'update-1',
  threadKey: undefined,
  clarificationTtlMs: 3600_000,
  leaseMs: 60_000,
  ...overrides,
});

describe.each(DATABASE_KINDS)('repositories on %s', (kind) => {
  let database: TestDatabaseOfKind;
  let secretary: Secretary;
  beforeAll(async () => {
    database = await createDatabaseOfKind(kind, `secretary_repos_${kind}`);
    // No LLM service is needed here: they point at a closed port.
    const nowhere = `http://127.0.0.1:${await getFreePort()}`;
    secretary = await startSecretary({ ...database.location, guesserUrl: nowhere, analystUrl: nowhere });
  });
  afterAll(async () => {
    await secretary?.close();
    await database?.remove();
  });

  const api = () => keyed(secretary.url);
  const checked = (operationId: string, res: request.Response) => {
    expect(openapi.responseProblems(operationId, res.status, res.body)).toEqual([]);
    return res;
  };

  it('employees: PUT 201 then 200 (RETURNING), DELETE of an existing one 204, of a missing one 404', async () => {
    const body = { full_name: 'Анна Иванова', email: 'anna@example.test', department: 'IT Ops', position: 'инженер' };
    expect(checked('putEmployee', await api().put('/employees/anna').send(body)).status).toBe(201);
    expect(checked('putEmployee', await api().put('/employees/anna').send(body)).status).toBe(200);
    expect(checked('deleteEmployee', await api().delete('/employees/anna')).status).toBe(204);
    const again = checked('deleteEmployee', await api().delete('/employees/anna'));
    expect(again.status).toBe(404);
    expect(again.body).toEqual({ error: 'Not Found', message: "No employee 'anna'", statusCode: 404 });
    expect(checked('getEmployee', await api().get('/employees/anna')).status).toBe(404);
    expect(checked('deleteEmployee', await api().delete('/employees/never-was')).status).toBe(404);
  });

  it('departments: PUT 201 then 200, DELETE of an existing one 204, of a missing one 404', async () => {
    const path = `/departments/${encodeURIComponent('Бухгалтерия')}`;
    const body = { mailing_list: 'acc@example.test', jira_project_key: 'ACC', telegram_contact: '123456789' };
    expect(checked('putDepartment', await api().put(path).send(body)).status).toBe(201);
    expect(checked('putDepartment', await api().put(path).send(body)).status).toBe(200);
    expect(checked('deleteDepartment', await api().delete(path)).status).toBe(204);
    expect(checked('deleteDepartment', await api().delete(path)).status).toBe(404);
    expect(checked('deleteDepartment', await api().delete('/departments/nowhere')).status).toBe(404);
  });

  it('rules: DELETE of an existing rule 204, of a missing one 404; toggle and replace of a missing one 404', async () => {
    const rule = {
      name: 'Printers',
      priority: 20,
      stop_on_match: true,
      conditions: { request_pattern: 'принтер|printer' },
      effects: { action: 'написать в рассылку департамента', department: 'IT Ops' },
    };
    const created = checked('createRule', await api().post('/rules').send(rule));
    expect(created.status).toBe(201);
    const id = created.body.id as number;
    expect(checked('toggleRule', await api().post(`/rules/${id}/toggle`)).body.enabled).toBe(false);
    expect(checked('deleteRule', await api().delete(`/rules/${id}`)).status).toBe(204);
    const again = checked('deleteRule', await api().delete(`/rules/${id}`));
    expect(again.status).toBe(404);
    expect(again.body.message).toBe(`Rule ${id} not found`);
    expect(checked('deleteRule', await api().delete('/rules/999')).status).toBe(404);
    expect(checked('toggleRule', await api().post('/rules/999/toggle')).status).toBe(404);
    expect(checked('replaceRule', await api().put('/rules/999').send(rule)).status).toBe(404);
  });

  it('history: of many simultaneous claims of one message_id exactly one owns it; the losers leave no rows', async () => {
    const history = createHistoryWriteRepository(secretary.db.knex);
    const claims = await Promise.all(Array.from({ length: 12 }, () => history.claim(claimInput())));
    expect(claims.filter((c) => c.kind === 'owner')).toHaveLength(1);
    expect(claims.filter((c) => c.kind === 'busy')).toHaveLength(11);
    expect(await secretary.db.knex('conversations').where({ sender: 'racer' })).toHaveLength(1);
    expect(await secretary.db.knex('messages').where({ message_id: 'update-1' })).toHaveLength(1);
  });

  it('history: an attempt past its lease is taken over once; a fresh one is not', async () => {
    const history = createHistoryWriteRepository(secretary.db.knex);
    const input = claimInput({ messageId: 'update-2', sender: 'crashed' });
    expect((await history.claim(input)).kind).toBe('owner');
    expect((await history.claim(input)).kind).toBe('busy');
    const moved = await secretary.db
      .knex('messages')
      .where({ message_id: 'update-2' })
      .update({ claimed_at: new Date(Date.now() - 120_000) });
    // An UPDATE's row count, as pg reports it, on both.
    expect(moved).toBe(1);
    const [a, b] = await Promise.all([history.claim(input), history.claim(input)]);
    expect([a.kind, b.kind].sort()).toEqual(['busy', 'owner']);
    expect(await secretary.db.knex('messages').where({ message_id: 'update-2' }).first()).toMatchObject({
      state: 'pending',
      attempts: 2,
    });
  });

  it('row counts, RETURNING and constraint errors agree', async () => {
    const knex = secretary.db.knex;
    const inserted = await knex('departments').insert({ name: 'Counts' }).returning(['id', 'name']);
    expect(inserted).toEqual([{ id: expect.any(Number), name: 'Counts' }]);
    expect(await knex('departments').where({ name: 'Counts' }).update({ mailing_list: 'c@example.test' })).toBe(1);
    expect(await knex('departments').where({ name: 'None such' }).update({ mailing_list: 'x@example.test' })).toBe(0);
    // A unique violation arrives as the same SQLSTATE.
    const duplicate = await knex('departments')
      .insert({ name: 'Counts' })
      .then(
        () => undefined,
        (err: { code?: string }) => err.code,
      );
    expect(duplicate).toBe('23505');
    expect(await knex('departments').where({ name: 'Counts' }).delete()).toBe(1);
    expect(await knex('departments').where({ name: 'Counts' }).delete()).toBe(0);
  });
});
