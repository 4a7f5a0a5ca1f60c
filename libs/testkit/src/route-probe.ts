/**
 * Probes every operation of a service's OpenAPI document for authentication (issue 9): without a key, with an
 * unknown key, with a key of each class the operation does not take, and with a key of each class it does.
 * The classes come from the document's `security` (operation level, else document level): `clientKey`,
 * `adminKey`, `serviceKey`; `security: []` marks an open operation. Each answer must be in the contract's shape
 * and documented for its status. `undocumentedRoutes(app, document)` lists the app's routes the document lacks,
 * so a new route cannot escape the probe by being left out of the document.
 * An operation whose security names only other schemes (a provider's signature, e.g. the communicator's inbound
 * webhooks) is `providerAuthenticated`: Workemon keys must not open it — without a key and with every key it must
 * answer the same 4xx (or 501 when not configured), never 2xx.
 */
import type { Express } from 'express';
import request from 'supertest';
import type { OpenApiDocument } from '@workemon/contracts';

/** The service kit's key classes (libs/service-kit/src/auth.ts); the testkit depends on no other package. */
type KeyClass = 'client' | 'admin' | 'service';

const SCHEME_CLASS: Record<string, KeyClass> = { clientKey: 'client', adminKey: 'admin', serviceKey: 'service' };
const ALL: readonly KeyClass[] = ['client', 'admin', 'service'];
const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;
// Served by the service kit for every service, open by design, and not part of the documents' paths.
const KIT_ROUTES = new Set(['GET /metrics', 'GET /openapi.json']);

type Operation = {
  operationId: string;
  security?: Record<string, unknown>[];
  parameters?: { name: string; in: string; schema?: { type?: string } }[];
};

export type ProbedOperation = {
  operationId: string;
  method: string;
  path: string;
  allowed: KeyClass[];
  /** Secured only by schemes that are not Workemon key classes (a provider's signature or secret). */
  providerAuthenticated?: boolean;
};

/** Every operation of the document with the key classes it takes (empty: open). */
export function operationsOf(document: OpenApiDocument): ProbedOperation[] {
  const out: ProbedOperation[] = [];
  const fallback = (document['security'] as Record<string, unknown>[] | undefined) ?? [];
  for (const [path, item] of Object.entries(document.paths)) {
    const shared = (item['parameters'] as Operation['parameters']) ?? [];
    for (const method of METHODS) {
      const op = item[method] as Operation | undefined;
      if (!op) continue;
      const security = op.security ?? fallback;
      const schemes = security.flatMap((requirement) => Object.keys(requirement));
      const allowed = [...new Set(schemes.map((s) => SCHEME_CLASS[s]!))];
      const providerAuthenticated = schemes.length > 0 && schemes.every((s) => !(s in SCHEME_CLASS));
      const params = [...shared, ...(op.parameters ?? [])].filter((p) => p.in === 'path');
      const concrete = path.replace(/\{(\w+)\}/g, (_m, name: string) =>
        params.find((p) => p.name === name)?.schema?.type === 'integer' ? '999999' : 'probe',
      );
      out.push({
        operationId: op.operationId,
        method,
        path: concrete,
        allowed: ALL.filter((c) => allowed.includes(c)),
        ...(providerAuthenticated ? { providerAuthenticated } : {}),
      });
    }
  }
  return out;
}

/**
 * Probes each operation (see the module comment) and returns every problem found (empty: all protected as the
 * document says). `bodies` gives a JSON body per operationId for the probes (default `{}` for POST/PUT/PATCH).
 */
export async function probeEveryRoute(options: {
  target: Express | string;
  document: OpenApiDocument;
  keys: Record<KeyClass, string>;
  /** The document's response validator: the service kit's `createOpenApi(document)`. */
  contract: { responseProblems(operationId: string, status: number, body: unknown): string[] };
  bodies?: Record<string, object>;
}): Promise<{ problems: string[]; probed: ProbedOperation[] }> {
  const { target, document, keys, contract } = options;
  const problems: string[] = [];
  const operations = operationsOf(document);
  const call = (op: ProbedOperation, authorization?: string) => {
    let req = request(target)[op.method as 'get'](op.path);
    if (authorization) req = req.set('Authorization', authorization);
    return op.method === 'get' || op.method === 'delete' ? req : req.send(options.bodies?.[op.operationId] ?? {});
  };
  for (const op of operations) {
    const where = `${op.method.toUpperCase()} ${op.path} (${op.operationId})`;
    const check = (res: request.Response, what: string) => {
      for (const p of contract.responseProblems(op.operationId, res.status, res.body))
        problems.push(`${where} ${what}: ${p}`);
    };
    if (op.providerAuthenticated) {
      const answers: number[] = [];
      for (const authorization of [
        undefined,
        'Bearer not-a-configured-key-0000',
        ...ALL.map((c) => `Bearer ${keys[c]}`),
      ]) {
        const res = await call(op, authorization);
        check(res, authorization ? 'with a Workemon key' : 'without a key');
        answers.push(res.status);
      }
      if (answers.some((s) => s !== answers[0] || (s !== 501 && (s < 400 || s >= 500))))
        problems.push(
          `${where} is provider-authenticated but Workemon keys changed or opened it: ${answers.join(', ')}`,
        );
      continue;
    }
    if (op.allowed.length === 0) {
      const res = await call(op);
      if (res.status === 401 || res.status === 403)
        problems.push(`${where} is documented open but answered ${res.status}`);
      continue;
    }
    const none = await call(op);
    check(none, 'without a key');
    if (none.status !== 401 || none.headers['www-authenticate'] !== 'Bearer')
      problems.push(`${where} without a key answered ${none.status}, not 401 with WWW-Authenticate: Bearer`);
    const unknown = await call(op, 'Bearer not-a-configured-key-0000');
    check(unknown, 'with an unknown key');
    if (unknown.status !== 401) problems.push(`${where} with an unknown key answered ${unknown.status}, not 401`);
    for (const keyClass of ALL) {
      const res = await call(op, `Bearer ${keys[keyClass]}`);
      check(res, `with a ${keyClass} key`);
      if (op.allowed.includes(keyClass)) {
        if (res.status === 401 || res.status === 403)
          problems.push(`${where} refused a ${keyClass} key (${res.status}: ${String(res.body?.message)})`);
      } else if (res.status !== 403 || res.body?.statusCode !== 403) {
        problems.push(`${where} with a ${keyClass} key answered ${res.status}, not 403`);
      }
    }
  }
  return { problems, probed: operations };
}

type Layer = {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
};

/**
 * The routes an Express 5 app serves (`METHOD /path` with `{param}` placeholders) that are neither in the
 * document's paths nor the service kit's own (/metrics, /openapi.json). Routers mounted without a path prefix
 * are followed.
 */
export function undocumentedRoutes(app: Express, document: OpenApiDocument): string[] {
  const documented = new Set<string>(KIT_ROUTES);
  for (const [path, item] of Object.entries(document.paths))
    for (const method of METHODS) if (item[method]) documented.add(`${method.toUpperCase()} ${path}`);
  const found: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
        for (const path of paths)
          for (const method of Object.keys(layer.route.methods))
            found.push(`${method.toUpperCase()} ${path.replace(/:(\w+)/g, '{$1}')}`);
      } else if (layer.handle?.stack) walk(layer.handle.stack);
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return [...new Set(found)].filter((r) => !documented.has(r));
}
