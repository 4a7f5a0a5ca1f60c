import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { getFreePort } from '@workemon/testkit';
import { importDirectoryFile } from '../src/directory-import.js';
import { createDirectoryRepository } from '../src/directory-repository.js';
import { migrateDatabase, openDatabase } from '../src/database.js';
import { MIGRATION_NAMES } from '../src/migrations.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

let db: { url: string; drop: () => Promise<void> };
let secretary: Secretary;
const dir = mkdtempSync(join(tmpdir(), 'secretary-directory-'));

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_directory');
  // The directory needs no LLM service: point them at a closed port.
  const nowhere = `http://127.0.0.1:${await getFreePort()}`;
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: nowhere, analystUrl: nowhere });
});

afterAll(async () => {
  await secretary?.close();
  await db?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const api = () => keyed(secretary.url);
const checked = (operationId: string, res: request.Response) => {
  expect(openapi.responseProblems(operationId, res.status, res.body)).toEqual([]);
  return res;
};

describe('employees', () => {
  it('PUT creates (201) then replaces (200); GET one and the list; DELETE; 404 afterwards', async () => {
    const created = checked(
      'putEmployee',
      await api().put('/employees/SmirnovAnton').send({
        full_name: 'Антон Смирнов',
        email: 'Anton.Smirnov@Example.test',
        telegram_username: '@Smirnov_A',
        telegram_id: '12345',
        department: 'Департамент клиентского сервиса',
        position: 'младший аналитик',
      }),
    );
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      username: 'smirnovanton',
      email: 'anton.smirnov@example.test',
      telegram_username: 'smirnov_a',
      telegram_id: '12345',
      department: 'Департамент клиентского сервиса',
    });
    // The department an employee names is created on the fly.
    const dept = checked(
      'getDepartment',
      await api().get(`/departments/${encodeURIComponent('Департамент клиентского сервиса')}`),
    );
    expect(dept.status).toBe(200);

    const replaced = checked('putEmployee', await api().put('/employees/smirnovanton').send({ position: 'аналитик' }));
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ position: 'аналитик', email: null, department: null });

    const one = checked('getEmployee', await api().get('/employees/SMIRNOVANTON'));
    expect(one.body.username).toBe('smirnovanton');
    const list = checked('listEmployees', await api().get('/employees'));
    expect(list.body.employees.map((e: { username: string }) => e.username)).toContain('smirnovanton');

    expect((await api().delete('/employees/smirnovanton')).status).toBe(204);
    expect(checked('getEmployee', await api().get('/employees/smirnovanton')).status).toBe(404);
    expect(checked('deleteEmployee', await api().delete('/employees/smirnovanton')).status).toBe(404);
  });

  it('400 for a bad field, 409 when another employee has the same email', async () => {
    const bad = checked('putEmployee', await api().put('/employees/x').send({ email: 'not-an-address' }));
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe("Parameter 'email' has an invalid format");
    const unknown = checked('putEmployee', await api().put('/employees/x').send({ salary: 1 }));
    expect(unknown.body.message).toBe("Parameter 'salary' is not allowed");
    expect((await api().get('/employees/x')).status).toBe(404);

    await api().put('/employees/first').send({ email: 'shared@example.test' });
    const clash = checked('putEmployee', await api().put('/employees/second').send({ email: 'SHARED@example.test' }));
    expect(clash.status).toBe(409);
    expect(clash.body).toEqual({
      error: 'Conflict',
      message: 'Another employee already has this email',
      statusCode: 409,
    });
  });

  it('a 409 changes nothing: the department the refused employee named is not created', async () => {
    await api().put('/employees/holder').send({ email: 'taken@example.test' });
    const clash = checked(
      'putEmployee',
      await api().put('/employees/latecomer').send({ email: 'taken@example.test', department: 'Отдел-призрак' }),
    );
    expect(clash.status).toBe(409);
    expect(checked('getDepartment', await api().get('/departments/Отдел-призрак')).status).toBe(404);
  });
});

describe('departments', () => {
  it('PUT, GET, list, DELETE; employees of a deleted department keep no department', async () => {
    const put = checked(
      'putDepartment',
      await api().put('/departments/Платежи').send({
        mailing_list: 'payments@example.test',
        jira_project_key: 'PAY',
        telegram_contact: '-1001234567890',
      }),
    );
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({
      name: 'Платежи',
      mailing_list: 'payments@example.test',
      jira_project_key: 'PAY',
      telegram_contact: '-1001234567890',
    });
    await api().put('/employees/payer').send({ department: 'Платежи' });
    const list = checked('listDepartments', await api().get('/departments'));
    expect(list.body.departments.map((d: { name: string }) => d.name)).toContain('Платежи');
    const badKey = checked('putDepartment', await api().put('/departments/X').send({ jira_project_key: 'lower' }));
    expect(badKey.status).toBe(400);
    expect(badKey.body.message).toBe("Parameter 'jira_project_key' has an invalid format");

    expect((await api().delete('/departments/Платежи')).status).toBe(204);
    expect((await api().get('/departments/Платежи')).status).toBe(404);
    expect((await api().get('/employees/payer')).body.department).toBeNull();
  });
});

describe('Telegram contacts', () => {
  it('a numeric chat id is kept; an @username is resolved to the telegram_id of the employee who has it', async () => {
    const kept = checked(
      'putDepartment',
      await api().put('/departments/Связь').send({ telegram_contact: '123456789' }),
    );
    expect(kept.status).toBe(201);
    expect(kept.body.telegram_contact).toBe('123456789');
    await api().put('/employees/lead').send({ telegram_username: '@Payments_Lead', telegram_id: '424242' });
    const resolved = checked(
      'putDepartment',
      await api().put('/departments/Связь').send({ telegram_contact: '@payments_lead' }),
    );
    expect(resolved.status).toBe(200);
    expect(resolved.body.telegram_contact).toBe('424242');
  });

  it('an @username the directory cannot resolve is refused with 400 naming the field, and nothing changes', async () => {
    await api().put('/departments/Охрана').send({ telegram_contact: '777' });
    // An employee with that username but no telegram_id cannot be messaged either.
    await api().put('/employees/noid').send({ telegram_username: 'guard_chief' });
    for (const contact of ['@guard_chief', '@nobody_here', 'guard chief']) {
      const res = checked('putDepartment', await api().put('/departments/Охрана').send({ telegram_contact: contact }));
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/^Parameter 'telegram_contact' /);
    }
    const res = await api().put('/departments/Охрана').send({ telegram_contact: '@nobody_here' });
    expect(res.body.message).toContain('the Telegram Bot API cannot message a person by username');
    expect((await api().get('/departments/Охрана')).body.telegram_contact).toBe('777');
  });
});

describe('EMPLOYEES_FILE import', () => {
  it('imports YAML (departments and employees) and upserts on a second run', async () => {
    const file = join(dir, 'employees.yaml');
    writeFileSync(
      file,
      [
        'departments:',
        '  - name: Казначейство',
        '    mailing_list: treasury@example.test',
        '    jira_project_key: TRS',
        '    telegram_contact: "@yaml_user"',
        'employees:',
        '  - username: yaml.user',
        '    full_name: Юлия Ямлова',
        '    email: yaml.user@example.test',
        '    telegram: "@yaml_user"',
        '    telegram_id: "5550001"',
        '    department: Казначейство',
        '    position: казначей',
      ].join('\n'),
    );
    const repo = createDirectoryRepository(secretary.db.knex);
    expect(await importDirectoryFile(secretary.db.knex, repo, file)).toEqual({ departments: 1, employees: 1 });
    expect(await importDirectoryFile(secretary.db.knex, repo, file)).toEqual({ departments: 1, employees: 1 });
    const employee = (await api().get('/employees/yaml.user')).body;
    expect(employee).toMatchObject({
      telegram_username: 'yaml_user',
      department: 'Казначейство',
      position: 'казначей',
    });
    // The department's contact named the employee's @username: stored as their chat id.
    expect((await api().get('/departments/Казначейство')).body).toMatchObject({
      jira_project_key: 'TRS',
      telegram_contact: '5550001',
    });
    expect(await secretary.db.knex('employees').where({ username: 'yaml.user' })).toHaveLength(1);
  });

  it('imports CSV with department columns; a bad file changes nothing', async () => {
    const file = join(dir, 'employees.csv');
    writeFileSync(
      file,
      'username,full_name,email,telegram_username,telegram_id,department,position,department_mailing_list\n' +
        'csv.one,Один,csv.one@example.test,,111,Риски,аналитик,risk@example.test\n' +
        'csv.two,Два,,csv_two,,Риски,инженер,\n',
    );
    const repo = createDirectoryRepository(secretary.db.knex);
    expect(await importDirectoryFile(secretary.db.knex, repo, file)).toEqual({ departments: 1, employees: 2 });
    expect((await api().get('/employees/csv.two')).body).toMatchObject({
      telegram_username: 'csv_two',
      department: 'Риски',
    });
    expect((await api().get('/departments/Риски')).body.mailing_list).toBe('risk@example.test');

    const broken = join(dir, 'broken.csv');
    writeFileSync(broken, 'username,email\ncsv.three,three@example.test\n,missing@example.test\n');
    await expect(importDirectoryFile(secretary.db.knex, repo, broken)).rejects.toThrow(/row 3: 'username' is required/);
    expect((await api().get('/employees/csv.three')).status).toBe(404);
  });

  it('a broken file reaches the log as its name and the parser’s position, never its content', async () => {
    const repo = createDirectoryRepository(secretary.db.knex);
    const yaml = join(dir, 'broken.yaml');
    // A YAML syntax error: the parser's own message would quote these lines (the password included).
    writeFileSync(yaml, 'employees:\n  - username: leaky.user\n    password: hunter2-in-file\n  bad: [unclosed\n');
    const err = (await importDirectoryFile(secretary.db.knex, repo, yaml).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/^EMPLOYEES_FILE .*broken\.yaml: YAML error \w+ at line \d+, column \d+$/);
    expect(err.message).not.toMatch(/hunter2|leaky|unclosed/);
    expect(err.cause).toBeUndefined();
    expect(err.stack).not.toMatch(/hunter2|leaky/);

    const csv = join(dir, 'broken-quotes.csv');
    writeFileSync(csv, 'username,email\n"secret.person,secret@example.test\n');
    const csvErr = (await importDirectoryFile(secretary.db.knex, repo, csv).catch((e: unknown) => e)) as Error;
    expect(csvErr.message).toMatch(/^EMPLOYEES_FILE .*broken-quotes\.csv: CSV error \w+/);
    expect(csvErr.message).not.toMatch(/secret\.person|secret@/);

    const missing = (await importDirectoryFile(secretary.db.knex, repo, join(dir, 'none.yaml')).catch(
      (e: unknown) => e,
    )) as Error;
    expect(missing.message).toMatch(/none\.yaml: cannot read the file \(ENOENT\)$/);
  });
});

it('concurrent starts on one database run each migration once (knex migration lock)', async () => {
  const fresh = await createTestDatabase(inject('postgresUrl'), 'secretary_migrate');
  const a = openDatabase({ url: fresh.url });
  const b = openDatabase({ url: fresh.url });
  try {
    // Both come up: the one that finds the lock taken waits for the other instead of failing.
    const [first, second] = await Promise.all([migrateDatabase(a), migrateDatabase(b)]);
    expect([...first, ...second]).toEqual([...MIGRATION_NAMES]);
    expect(await migrateDatabase(a)).toEqual([]);
    expect(await a.knex('knex_migrations').count('* as n')).toEqual([{ n: MIGRATION_NAMES.length }]);
  } finally {
    await a.close();
    await b.close();
    await fresh.drop();
  }
});
