import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { parse as parseCsv } from 'csv-parse/sync';
import { parse as parseYaml } from 'yaml';
import type { Knex } from 'knex';
import type { DepartmentInput, DirectoryRepository, EmployeeInput } from './directory-repository.js';

export type DirectoryFile = {
  departments: (DepartmentInput & { name: string })[];
  employees: (EmployeeInput & { username: string })[];
};

/** A problem our own checks found in a directory file; its message names a position, never a value. */
export class DirectoryFileError extends Error {
  override name = 'DirectoryFileError';
}

const EMPLOYEE_FIELDS = ['full_name', 'email', 'telegram_username', 'telegram_id', 'department', 'position'] as const;
const DEPARTMENT_FIELDS = ['mailing_list', 'jira_project_key', 'telegram_contact'] as const;

const text = (value: unknown): string | undefined =>
  value === undefined || value === null || value === '' ? undefined : String(value);

function toEmployee(raw: Record<string, unknown>, where: string): DirectoryFile['employees'][number] {
  const username = text(raw['username']);
  if (!username) throw new DirectoryFileError(`${where}: 'username' is required`);
  const out: DirectoryFile['employees'][number] = { username };
  for (const field of EMPLOYEE_FIELDS) out[field] = text(raw[field]);
  // `telegram` is accepted as a shorter spelling of telegram_username.
  out.telegram_username ??= text(raw['telegram']);
  return out;
}

function toDepartment(raw: Record<string, unknown>, where: string): DirectoryFile['departments'][number] {
  const name = text(raw['name']);
  if (!name) throw new DirectoryFileError(`${where}: 'name' is required`);
  const out: DirectoryFile['departments'][number] = { name };
  for (const field of DEPARTMENT_FIELDS) out[field] = text(raw[field]);
  return out;
}

/**
 * Parses a directory file. YAML: `{departments: [...], employees: [...]}` or a bare list of employees.
 * CSV: one employee per row with a header; optional `department_mailing_list`, `department_jira_project_key`
 * and `department_telegram_contact` columns describe the row's department.
 */
export function parseDirectoryFile(content: string, format: 'yaml' | 'csv'): DirectoryFile {
  if (format === 'csv') {
    const rows = parseCsv(content, { columns: true, skip_empty_lines: true, trim: true, bom: true }) as Record<
      string,
      string
    >[];
    const departments = new Map<string, DirectoryFile['departments'][number]>();
    const employees = rows.map((row, i) => {
      const employee = toEmployee(row, `row ${i + 2}`);
      const dept = employee.department;
      if (dept && DEPARTMENT_FIELDS.some((f) => text(row[`department_${f}`]))) {
        const entry = departments.get(dept) ?? { name: dept };
        for (const f of DEPARTMENT_FIELDS) entry[f] = text(row[`department_${f}`]) ?? entry[f];
        departments.set(dept, entry);
      }
      return employee;
    });
    return { departments: [...departments.values()], employees };
  }
  const doc = parseYaml(content) as unknown;
  if (Array.isArray(doc))
    return {
      departments: [],
      employees: doc.map((e, i) => toEmployee(e as Record<string, unknown>, `employee ${i + 1}`)),
    };
  if (!doc || typeof doc !== 'object')
    throw new DirectoryFileError('expected a list of employees or {departments, employees}');
  const { departments = [], employees = [] } = doc as { departments?: unknown[]; employees?: unknown[] };
  if (!Array.isArray(departments) || !Array.isArray(employees))
    throw new DirectoryFileError("'departments' and 'employees' must be lists");
  return {
    departments: departments.map((d, i) => toDepartment(d as Record<string, unknown>, `department ${i + 1}`)),
    employees: employees.map((e, i) => toEmployee(e as Record<string, unknown>, `employee ${i + 1}`)),
  };
}

/**
 * What a directory file's problem is, without any of its content: our own checks (`employee 3: 'username' is
 * required`), YAML's error code and line/column, csv-parse's code and line, or a file system error code.
 */
export function describeParseError(err: unknown): string {
  const e = err as {
    name?: string;
    code?: unknown;
    linePos?: { line: number; col: number }[];
    lines?: unknown;
  } | null;
  if (err instanceof DirectoryFileError) return err.message;
  if (e && (e.name === 'YAMLParseError' || e.name === 'YAMLWarning')) {
    const pos = e.linePos?.[0];
    return `YAML error ${String(e.code)}${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}`;
  }
  // csv-parse's CsvError keeps `name: 'Error'`; its codes all start with CSV_ (its `raw` field holds content).
  if (e && typeof e.code === 'string' && e.code.startsWith('CSV_')) {
    return `CSV error ${String(e.code)}${typeof e.lines === 'number' ? ` at line ${e.lines}` : ''}`;
  }
  if (e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return `cannot read the file (${e.code})`;
  return 'the file could not be parsed';
}

/** Reads EMPLOYEES_FILE and upserts everything in it in one transaction (a bad file changes nothing). */
export async function importDirectoryFile(
  knex: Knex,
  directory: DirectoryRepository,
  path: string,
): Promise<{ departments: number; employees: number }> {
  const format = /\.csv$/i.test(extname(path)) ? 'csv' : 'yaml';
  let parsed: DirectoryFile;
  try {
    parsed = parseDirectoryFile(await readFile(path, 'utf8'), format);
  } catch (err) {
    // No `cause`: a parser's message quotes the file (YAML prints the offending lines), and the file holds
    // people's addresses and maybe more. The log gets the file name and the parser's position only.
    throw new DirectoryFileError(`EMPLOYEES_FILE ${path}: ${describeParseError(err)}`);
  }
  await knex.transaction(async (trx) => {
    // Employees first: a department's Telegram contact may be the @username of one of them (resolved to their
    // telegram_id on save); the departments they name exist bare until their own row fills them in.
    for (const e of parsed.employees) await directory.upsertEmployee(e.username, e, trx);
    for (const d of parsed.departments) await directory.upsertDepartment(d.name, d, trx);
  });
  return { departments: parsed.departments.length, employees: parsed.employees.length };
}
