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

/** The employee directory: GET /employees, GET/PUT/DELETE /employees/{username}, the same for departments. */
export function createDirectoryRoutes(deps: {
  openapi: OpenApi;
  auth: RequestHandler;
  directory: DirectoryRepository;
}): Router {
  const router = Router();
  const { openapi, auth, directory } = deps;

  router.get('/employees', auth, openapi.validate('listEmployees'), async (_req, res) => {
    res.json({ employees: await directory.listEmployees() });
  });
  router.get('/employees/:username', auth, openapi.validate('getEmployee'), async (_req, res) => {
    const username = validated<Params>(res).params.username!;
    const employee = await directory.getEmployee(username);
    if (!employee) throw errors.notFound(`No employee '${username}'`);
    res.json(employee);
  });
  router.put('/employees/:username', auth, openapi.validate('putEmployee'), async (_req, res) => {
    const { params, body } = validated<Params & { body: EmployeeInput }>(res);
    const result = await directory.upsertEmployee(params.username!, body).catch((err: unknown) => {
      throw conflictFrom(err);
    });
    res.status(result.created ? 201 : 200).json(result.employee);
  });
  router.delete('/employees/:username', auth, openapi.validate('deleteEmployee'), async (_req, res) => {
    const username = validated<Params>(res).params.username!;
    if (!(await directory.deleteEmployee(username))) throw errors.notFound(`No employee '${username}'`);
    res.status(204).end();
  });

  router.get('/departments', auth, openapi.validate('listDepartments'), async (_req, res) => {
    res.json({ departments: await directory.listDepartments() });
  });
  router.get('/departments/:name', auth, openapi.validate('getDepartment'), async (_req, res) => {
    const name = validated<Params>(res).params.name!;
    const department = await directory.getDepartment(name);
    if (!department) throw errors.notFound(`No department '${name}'`);
    res.json(department);
  });
  router.put('/departments/:name', auth, openapi.validate('putDepartment'), async (_req, res) => {
    const { params, body } = validated<Params & { body: DepartmentInput }>(res);
    if (params.name!.trim() === '') throw errors.invalidParameter('name', 'must not be empty');
    const result = await directory.upsertDepartment(params.name!, body);
    res.status(result.created ? 201 : 200).json(result.department);
  });
  router.delete('/departments/:name', auth, openapi.validate('deleteDepartment'), async (_req, res) => {
    const name = validated<Params>(res).params.name!;
    if (!(await directory.deleteDepartment(name))) throw errors.notFound(`No department '${name}'`);
    res.status(204).end();
  });
  return router;
}
