import { Router, type RequestHandler } from 'express';
import { AppError, errors, validated, type OpenApi } from '@workemon/service-kit';
import type { DepartmentInput, DirectoryRepository, EmployeeInput } from './directory-repository.js';

type Params = { params: { username?: string; name?: string } };

// A unique index other than the key itself (another employee already has this email or Telegram account).
function conflictFrom(err: unknown): unknown {
  const e = err as { code?: string; constraint?: string } | undefined;
  if (e?.code !== '23505') return err;
  const field = /email|telegram_username|telegram_id/.exec(e.constraint ?? '')?.[0] ?? 'a unique field';
  return new AppError('conflict', 409, `Another employee already has this ${field}`, { cause: err });
}

/**
 * The collections of the directory. Each has `GET /<noun>s` (the list under `<noun>s`), `GET` and `DELETE
 * /<noun>s/:<param>` (404 `No <noun> '<key>'` when absent), checked by the OpenAPI operations `list<Noun>s`,
 * `get<Noun>`, `delete<Noun>`, and served by the repository methods of the same names.
 */
const COLLECTIONS = [
  { noun: 'Employee', param: 'username' },
  { noun: 'Department', param: 'name' },
] as const;

/** Mounts the list, get and delete routes of one collection (see COLLECTIONS). */
function mountCollection(
  router: Router,
  deps: { openapi: OpenApi; auth: RequestHandler; directory: DirectoryRepository },
  c: (typeof COLLECTIONS)[number],
): void {
  const { openapi, auth, directory } = deps;
  const noun = c.noun.toLowerCase();
  const keyOf = (res: Parameters<RequestHandler>[1]) => validated<Params>(res).params[c.param]!;
  router.get(`/${noun}s`, auth, openapi.validate(`list${c.noun}s`), async (_req, res) => {
    res.json({ [`${noun}s`]: await directory[`list${c.noun}s`]() });
  });
  router.get(`/${noun}s/:${c.param}`, auth, openapi.validate(`get${c.noun}`), async (_req, res) => {
    const key = keyOf(res);
    const found = await directory[`get${c.noun}`](key);
    if (!found) throw errors.notFound(`No ${noun} '${key}'`);
    res.json(found);
  });
  router.delete(`/${noun}s/:${c.param}`, auth, openapi.validate(`delete${c.noun}`), async (_req, res) => {
    const key = keyOf(res);
    if (!(await directory[`delete${c.noun}`](key))) throw errors.notFound(`No ${noun} '${key}'`);
    res.status(204).end();
  });
}

/** The employee directory: GET /employees, GET/PUT/DELETE /employees/{username}, the same for departments. */
export function createDirectoryRoutes(deps: {
  openapi: OpenApi;
  auth: RequestHandler;
  directory: DirectoryRepository;
}): Router {
  const router = Router();
  const { openapi, auth, directory } = deps;

  for (const collection of COLLECTIONS) mountCollection(router, deps, collection);
  router.put('/employees/:username', auth, openapi.validate('putEmployee'), async (_req, res) => {
    const { params, body } = validated<Params & { body: EmployeeInput }>(res);
    const result = await directory.upsertEmployee(params.username!, body).catch((err: unknown) => {
      throw conflictFrom(err);
    });
    res.status(result.created ? 201 : 200).json(result.employee);
  });

  router.put('/departments/:name', auth, openapi.validate('putDepartment'), async (_req, res) => {
    const { params, body } = validated<Params & { body: DepartmentInput }>(res);
    if (params.name!.trim() === '') throw errors.invalidParameter('name', 'must not be empty');
    const result = await directory.upsertDepartment(params.name!, body);
    res.status(result.created ? 201 : 200).json(result.department);
  });
  return router;
}
