import type { Knex } from 'knex';
import type {
  Channel,
  Department as ContractDepartment,
  DepartmentInput as ContractDepartmentInput,
  Employee as ContractEmployee,
  EmployeeInput as ContractEmployeeInput,
  SecretaryApi,
} from '@workemon/contracts';
import { createHash } from 'node:crypto';
import { errors } from '@workemon/service-kit';
import { addrSpecOf } from './email-address.js';

/**
 * The contract's Department, as this repository always returns it: `persona` (operator instructions added to both
 * prompts; null: none) and `persona_sha256` (SHA-256 hex of persona, its version in provenance) always present.
 */
export type Department = ContractDepartment & Required<Pick<ContractDepartment, 'persona' | 'persona_sha256'>>;
export type DepartmentInput = ContractDepartmentInput;

export type Employee = ContractEmployee;
export type EmployeeInput = ContractEmployeeInput;

/** A resolved sender: the directory entry with its department, or nothing when the sender is unknown. */
export type ResolvedEmployee = { id: number; employee: Employee; departmentRecord: Department | null };

export type DirectoryRepository = ReturnType<typeof createDirectoryRepository>;

/** Usernames are case-insensitive identifiers; they are stored trimmed and lower-case. */
export const normalizeUsername = (username: string) => username.trim().toLowerCase();
// "Name <addr@host>" as some mail clients present the sender; never a `<…>` inside a quoted local part.
const normalizeEmail = (email: string) => addrSpecOf(email).toLowerCase();
const normalizeTelegram = (name: string) => name.trim().replace(/^@/, '').toLowerCase();
const emptyToNull = (value: string | null | undefined) =>
  value === undefined || value === null || value.trim() === '' ? null : value.trim();

const iso = (value: unknown) => (value instanceof Date ? value.toISOString() : String(value));

/** The directory columns a sender is looked up by, normalised as they are stored; null: not looked up by it. */
export type SenderKeys = {
  email: string | null;
  username: string | null;
  telegramUsername: string | null;
  telegramId: string | null;
};

/**
 * How a sender is found in the directory: email senders by address, Telegram users by username or numeric id,
 * direct callers by directory username.
 */
export function senderKeys(channel: Channel, sender: string): SenderKeys {
  const keys: SenderKeys = { email: null, username: null, telegramUsername: null, telegramId: null };
  if (channel === 'email') keys.email = normalizeEmail(sender);
  else if (channel === 'tg') {
    keys.telegramUsername = normalizeTelegram(sender);
    if (/^-?\d+$/.test(keys.telegramUsername)) keys.telegramId = keys.telegramUsername;
  } else keys.username = normalizeUsername(sender);
  return keys;
}

/** An employee row joined with its department's columns, as the sender lookups select it. */
export type SenderRow = EmployeeRow &
  Pick<Department, 'mailing_list' | 'jira_project_key' | 'telegram_contact' | 'persona' | 'persona_sha256'> & {
    department_created_at: Date | string;
    department_updated_at: Date | string;
  };

/** The resolved sender of a SenderRow (its department record only when it names one). */
export function toResolvedEmployee(row: SenderRow): ResolvedEmployee {
  const department = row.department
    ? {
        id: 0,
        name: row.department,
        mailing_list: row.mailing_list,
        jira_project_key: row.jira_project_key,
        telegram_contact: row.telegram_contact,
        persona: row.persona,
        persona_sha256: row.persona_sha256,
        created_at: row.department_created_at,
        updated_at: row.department_updated_at,
      }
    : undefined;
  return { id: row.id, employee: toEmployee(row), departmentRecord: department ? toDepartment(department) : null };
}

type EmployeeRow = {
  id: number;
  username: string;
  full_name: string | null;
  email: string | null;
  telegram_username: string | null;
  telegram_id: string | null;
  position: string | null;
  department: string | null;
  created_at: Date | string;
  updated_at: Date | string;
};
type DepartmentRow = Omit<Department, 'created_at' | 'updated_at' | 'persona' | 'persona_sha256'> & {
  persona?: string | null;
  persona_sha256?: string | null;
  id: number;
  created_at: Date | string;
  updated_at: Date | string;
};

const toEmployee = (row: EmployeeRow): Employee => ({
  username: row.username,
  full_name: row.full_name,
  email: row.email,
  telegram_username: row.telegram_username,
  telegram_id: row.telegram_id,
  department: row.department,
  position: row.position,
  created_at: iso(row.created_at),
  updated_at: iso(row.updated_at),
});
const toDepartment = (row: DepartmentRow): Department => ({
  name: row.name,
  mailing_list: row.mailing_list,
  jira_project_key: row.jira_project_key,
  telegram_contact: row.telegram_contact,
  persona: row.persona ?? null,
  persona_sha256: row.persona_sha256 ?? null,
  created_at: iso(row.created_at),
  updated_at: iso(row.updated_at),
});

/**
 * A department's persona version as GET /prompts lists it (the contract's `Prompts.personas` item): department
 * name, `sha256` (hex SHA-256 of the persona text) and `updated_at` (ISO 8601; null: set before it was recorded).
 */
export type PersonaVersion = SecretaryApi.components['schemas']['Prompts']['personas'][number];

type PersonaRow = { name: string; persona_sha256: string; persona_updated_at: Date | string | null };

const toPersonaVersion = (row: PersonaRow): PersonaVersion => ({
  department: row.name,
  sha256: row.persona_sha256,
  updated_at: row.persona_updated_at instanceof Date ? row.persona_updated_at.toISOString() : row.persona_updated_at,
});

// The same version the LLM services report as `persona_sha256` (hex SHA-256 of the trimmed UTF-8 text).
const sha256Hex = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The persona columns for a (trimmed) persona text: the text and its SHA-256 version. */
function personaColumns(persona: string | null) {
  return { persona, persona_sha256: persona ? sha256Hex(persona) : null };
}

/** Keeps every persona text ever set (by hash), so a version named in provenance can be read back and replayed. */
async function recordPersonaVersion(db: Knex | Knex.Transaction, department: string, persona: string) {
  await db('persona_versions')
    .insert({ sha256: sha256Hex(persona), text: persona, department })
    .onConflict('sha256')
    .ignore();
}

/** Employees and departments in Postgres: CRUD for the directory API and the file import, and sender lookup. */
export function createDirectoryRepository(knex: Knex) {
  const employeeQuery = (db: Knex | Knex.Transaction) =>
    db('employees as e')
      .leftJoin('departments as d', 'd.id', 'e.department_id')
      .select<EmployeeRow[]>(
        'e.id',
        'e.username',
        'e.full_name',
        'e.email',
        'e.telegram_username',
        'e.telegram_id',
        'e.position',
        'd.name as department',
        'e.created_at',
        'e.updated_at',
      );

  /** The department's id, creating a bare department when an employee names one the directory lacks. */
  async function ensureDepartment(db: Knex | Knex.Transaction, name: string): Promise<number> {
    await db('departments').insert({ name }).onConflict('name').ignore();
    const row = await db('departments').where({ name }).first<{ id: number }>('id');
    return row!.id;
  }

  /**
   * A Telegram contact as the Bot API can reach it: a numeric chat id is kept; a `@username` is resolved at save
   * time to the `telegram_id` of the employee with that `telegram_username`. The Bot API's sendMessage takes
   * `@username` only for public channels and groups, never for a person (Bot API, sendMessage: chat_id), so a
   * username the directory cannot resolve is refused here (400 naming the field) rather than failing later.
   */
  async function resolveTelegramContact(
    db: Knex | Knex.Transaction,
    contact: string | null,
    field: string,
  ): Promise<string | null> {
    if (contact === null || /^-?\d+$/.test(contact)) return contact;
    if (!/^@?[A-Za-z0-9_]{4,32}$/.test(contact)) {
      throw errors.invalidParameter(field, 'must be a numeric Telegram chat id or an @username');
    }
    const employee = await db('employees')
      .where({ telegram_username: normalizeTelegram(contact) })
      .whereNotNull('telegram_id')
      .first<{ telegram_id: string } | undefined>('telegram_id');
    if (employee) return employee.telegram_id;
    throw errors.invalidParameter(
      field,
      `'${contact}' is not the telegram_username of an employee with a telegram_id: the Telegram Bot API cannot ` +
        'message a person by username; give the numeric chat id, or add the employee with telegram_id first',
    );
  }

  async function upsertDepartment(
    name: string,
    input: DepartmentInput,
    db: Knex | Knex.Transaction = knex,
  ): Promise<{ department: Department; created: boolean }> {
    // A persona is replaced only when the input names it (null or "" clears it): the EMPLOYEES_FILE import and
    // clients written before personas existed must not wipe one set through the API.
    const persona = input.persona === undefined ? undefined : emptyToNull(input.persona);
    const values = {
      mailing_list: emptyToNull(input.mailing_list),
      jira_project_key: emptyToNull(input.jira_project_key),
      telegram_contact: await resolveTelegramContact(db, emptyToNull(input.telegram_contact), 'telegram_contact'),
      ...(persona === undefined ? {} : personaColumns(persona)),
    };
    if (persona) await recordPersonaVersion(db, name.trim(), persona);
    const personaUpdatedAt =
      persona === undefined
        ? {}
        : {
            // Only a new version moves the timestamp: re-sending the same text changes nothing.
            persona_updated_at: db.raw(
              'case when departments.persona_sha256 is not distinct from excluded.persona_sha256 ' +
                'then departments.persona_updated_at else now() end',
            ),
          };
    const [row] = await db('departments')
      .insert({ name: name.trim(), ...values, ...(persona ? { persona_updated_at: db.fn.now() } : {}) })
      .onConflict('name')
      .merge({ ...values, ...personaUpdatedAt, updated_at: db.fn.now() })
      // xmax = 0 only for a freshly inserted row: tells an insert from an update in one statement.
      .returning<(DepartmentRow & { inserted: boolean })[]>(['*', db.raw('(xmax = 0) as inserted')]);
    return { department: toDepartment(row!), created: Boolean(row!.inserted) };
  }

  async function upsertEmployee(
    username: string,
    input: EmployeeInput,
    db?: Knex.Transaction,
  ): Promise<{ employee: Employee; created: boolean }> {
    // The department it names and the employee commit together: a refused employee (409) creates nothing.
    if (!db) return knex.transaction((trx) => upsertEmployee(username, input, trx));
    const departmentName = emptyToNull(input.department);
    const departmentId = departmentName ? await ensureDepartment(db, departmentName) : null;
    const email = emptyToNull(input.email);
    const telegramUsername = emptyToNull(input.telegram_username);
    const values = {
      full_name: emptyToNull(input.full_name),
      email: email ? normalizeEmail(email) : null,
      telegram_username: telegramUsername ? normalizeTelegram(telegramUsername) : null,
      telegram_id: emptyToNull(input.telegram_id),
      department_id: departmentId,
      position: emptyToNull(input.position),
    };
    const [row] = await db('employees')
      .insert({ username: normalizeUsername(username), ...values })
      .onConflict('username')
      .merge({ ...values, updated_at: db.fn.now() })
      .returning<{ id: number; inserted: boolean }[]>(['id', db.raw('(xmax = 0) as inserted')]);
    const employee = await employeeQuery(db).where('e.id', row!.id).first();
    return { employee: toEmployee(employee!), created: Boolean(row!.inserted) };
  }

  return {
    upsertDepartment,
    upsertEmployee,

    async listEmployees(): Promise<Employee[]> {
      return (await employeeQuery(knex).orderBy('e.username')).map(toEmployee);
    },
    async getEmployee(username: string): Promise<Employee | undefined> {
      const row = await employeeQuery(knex).where('e.username', normalizeUsername(username)).first();
      return row && toEmployee(row);
    },
    async deleteEmployee(username: string): Promise<boolean> {
      return (
        (await knex('employees')
          .where({ username: normalizeUsername(username) })
          .delete()) > 0
      );
    },

    async listDepartments(): Promise<Department[]> {
      return (await knex('departments').select<DepartmentRow[]>('*').orderBy('name')).map(toDepartment);
    },
    async getDepartment(name: string): Promise<Department | undefined> {
      const row = await knex('departments').where({ name: name.trim() }).first<DepartmentRow>();
      return row && toDepartment(row);
    },
    async deleteDepartment(name: string): Promise<boolean> {
      return (await knex('departments').where({ name: name.trim() }).delete()) > 0;
    },
    /** The departments that have a persona, by name: its SHA-256 version and when it last changed (GET /prompts). */
    async listPersonas(): Promise<PersonaVersion[]> {
      const rows = await knex('departments')
        .whereNotNull('persona_sha256')
        .orderBy('name')
        .select<PersonaRow[]>('name', 'persona_sha256', 'persona_updated_at');
      return rows.map(toPersonaVersion);
    },
  };
}
