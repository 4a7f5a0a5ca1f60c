import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { Request, RequestHandler, Response } from 'express';
import type { OpenApiDocument } from '@workemon/contracts';
import { errors } from './errors.js';
import { takeDeferredBodyError } from './json-body.js';
import { JsonTooDeepError, sanitizeDeep, sanitizeText } from './text-sanitizing.js';

// Both are CommonJS modules whose real export is `default`; under NodeNext they arrive wrapped.
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

type Parameter = {
  name: string;
  in: 'query' | 'path' | 'header' | 'cookie';
  required?: boolean;
  schema?: Record<string, unknown>;
};
type Operation = {
  operationId?: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content?: Record<string, { schema?: Record<string, unknown> }> };
  responses?: Record<string, { content?: Record<string, { schema?: Record<string, unknown> }>; $ref?: string }>;
};

const DOC_ID = 'openapi.json';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'] as const;

function rewriteRefs(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = k === '$ref' && typeof v === 'string' && v.startsWith('#/') ? `${DOC_ID}${v}` : rewriteRefs(v);
    }
    return out;
  }
  return value;
}

function describeType(schema: Record<string, unknown> | undefined): string {
  const t = schema?.['type'];
  if (t === 'integer') return 'a whole number';
  if (t === 'number') return 'a number';
  if (t === 'boolean') return 'true or false';
  if (t === 'array') return 'a list';
  if (t === 'object') return 'an object';
  return 'a string';
}

/** Turns ajv's first error into the contract's message: "Parameter 'channel' must be one of: email, tg, direct". */
function messageFor(err: ErrorObject, prefix: string): { name: string; text: string } {
  const path = err.instancePath
    .split('/')
    .filter(Boolean)
    .map((p: string) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const name = (missing: string | undefined) =>
    [prefix, ...path, ...(missing ? [missing] : [])].filter(Boolean).join('.');
  const params = err.params as Record<string, unknown>;
  switch (err.keyword) {
    case 'required':
      return { name: name(String(params['missingProperty'])), text: 'is required' };
    case 'enum':
      return { name: name(undefined), text: `must be one of: ${(params['allowedValues'] as unknown[]).join(', ')}` };
    case 'type':
      return { name: name(undefined), text: `must be ${describeType({ type: params['type'] })}` };
    case 'minLength':
      return {
        name: name(undefined),
        text:
          Number(params['limit']) === 1
            ? 'must not be empty'
            : `must be at least ${String(params['limit'])} characters`,
      };
    case 'maxLength':
      return { name: name(undefined), text: `must be at most ${String(params['limit'])} characters` };
    case 'additionalProperties':
      return { name: name(String(params['additionalProperty'])), text: 'is not allowed' };
    case 'minimum':
    case 'maximum':
      return {
        name: name(undefined),
        text: `must be ${err.keyword === 'minimum' ? '>=' : '<='} ${String(params['limit'])}`,
      };
    case 'format':
      return { name: name(undefined), text: `must be a valid ${String(params['format'])}` };
    case 'pattern':
      return { name: name(undefined), text: 'has an invalid format' };
    default:
      return { name: name(undefined), text: err.message ?? 'is invalid' };
  }
}

export type ValidatedRequest = { query: Record<string, unknown>; params: Record<string, unknown>; body: unknown };

/** The validated, type-coerced inputs of the current request (set by `openapi.validate(operationId)`). */
export function validated<T extends Partial<ValidatedRequest> = ValidatedRequest>(res: Response): T {
  return res.locals['validated'] as T;
}

export type OpenApi = {
  document: OpenApiDocument;
  /**
   * Express middleware validating query, path parameters and JSON body against the operation: a query parameter
   * the operation does not declare, a bad value, a bad body are each a 400 in the contract's shape.
   */
  validate(operationId: string): RequestHandler;
  /**
   * The query half of `validate`, for a route that reads a body that is not JSON (a raw mail) before `validate`
   * would run: undeclared or bad query parameters are a 400 before anything is read or done. Sets nothing.
   */
  validateQuery(operationId: string): RequestHandler;
  /** Problems of a response against the document (empty when it matches); for tests. */
  responseProblems(operationId: string, status: number, body: unknown): string[];
  operation(operationId: string): { method: string; path: string };
};

/**
 * What `validate(operationId)` compiled once, at start, for one operation: the ajv validators of its query
 * parameters, path parameters and JSON body, and what the query check needs (known names, declared types).
 */
type RequestPlan = {
  query: ValidateFunction;
  path: ValidateFunction;
  body?: ValidateFunction;
  bodyRequired: boolean;
  queryNames: ReadonlySet<string>;
  /** Each query parameter's declared JSON Schema `type` (an array parameter may repeat). */
  queryTypes: ReadonlyMap<string, unknown>;
  /** The 400 message's tail for an unknown query parameter, naming the known ones (`validatedQuery`). */
  unknownQueryText: string;
};

/** The JSON Schema of an operation's query or path parameters, as one object (path parameters always required). */
function paramSchema(op: Operation, location: 'query' | 'path'): Record<string, unknown> {
  const params = (op.parameters ?? []).filter((p) => p.in === location);
  return {
    type: 'object',
    properties: Object.fromEntries(params.map((p) => [p.name, rewriteRefs(p.schema ?? {})])),
    required: params.filter((p) => p.required || location === 'path').map((p) => p.name),
  };
}

/** Compiles an operation's validators and query rules once (never per request). */
function compileRequestPlan(
  op: Operation,
  ajv: InstanceType<typeof Ajv>,
  coercing: InstanceType<typeof Ajv>,
): RequestPlan {
  const bodySchema = op.requestBody?.content?.['application/json']?.schema;
  const queryParams = (op.parameters ?? []).filter((p) => p.in === 'query');
  const queryNames = new Set(queryParams.map((p) => p.name));
  return {
    query: coercing.compile(paramSchema(op, 'query')),
    path: coercing.compile(paramSchema(op, 'path')),
    body: bodySchema ? ajv.compile(rewriteRefs(bodySchema) as object) : undefined,
    bodyRequired: op.requestBody?.required ?? false,
    queryNames,
    queryTypes: new Map(queryParams.map((p) => [p.name, p.schema?.['type']])),
    unknownQueryText: queryNames.size
      ? `is not a parameter of this operation (known: ${[...queryNames].join(', ')})`
      : 'is not a parameter of this operation (it takes no query parameters)',
  };
}

/** Throws the contract's 400 for ajv's first error of a parameter validator. */
function throwParameterError(validate: ValidateFunction): never {
  const m = messageFor(validate.errors![0]!, '');
  throw errors.invalidParameter(m.name, m.text);
}

/**
 * The request's query parameters, cleaned and validated (a copy: Express 5's `req.query` is a getter, and
 * validation coerces in place). A name the operation does not declare is a 400 naming it, on every operation: a
 * misspelt `dry-run=true` ignored would run the real request and its action, a misspelt filter would answer every
 * row (OpenAPI 3.0 leaves undeclared parameters to the server; Workemon's contracts are closed, docs/DEVELOPING.md).
 * A repeated non-array parameter is a 400; an empty value counts as missing (`?request=` names it as required),
 * except for a boolean flag, where it is a 400 (`?dry_run` alone must not mean false).
 * Costs one Set lookup per parameter given: the names and messages are compiled at start (`compileRequestPlan`).
 */
function validatedQuery(raw: Record<string, unknown>, plan: RequestPlan): Record<string, unknown> {
  const q: Record<string, unknown> = {};
  for (const k in raw) {
    const v = raw[k];
    if (!plan.queryNames.has(k)) throw errors.invalidParameter(shownName(k), plan.unknownQueryText);
    if (Array.isArray(v) && plan.queryTypes.get(k) !== 'array') throw errors.invalidParameter(k, 'must be given once');
    // Hostile text is cleaned once, here at the edge, before validation (so NUL alone is an empty value).
    const clean = sanitizeOrRefuse(v, `Parameter '${k}'`);
    // A flag given with no value (`?dry_run`, `?dry_run=`) is neither true nor false: read as absent, a dry run
    // asked for that way would run for real.
    if (clean === '' && plan.queryTypes.get(k) === 'boolean')
      throw errors.invalidParameter(k, 'must be true or false (it was given with no value)');
    if (clean !== '') q[k] = clean;
  }
  if (!plan.query(q)) throwParameterError(plan.query);
  return q;
}

/** An unknown parameter's name as the 400 names it: cleaned like any input, at most 64 characters. */
function shownName(name: string): string {
  const clean = sanitizeText(name);
  return clean.length > 64 ? `${clean.slice(0, 64)}…` : clean;
}

/** The request's path parameters, cleaned and validated (a copy). */
function validatedPath(raw: Record<string, unknown>, plan: RequestPlan): Record<string, unknown> {
  const p = sanitizeDeep({ ...raw });
  if (!plan.path(p)) throwParameterError(plan.path);
  return p;
}

/** `sanitizeDeep`, with a value nested too deeply refused as a 400 naming `what` (never a 500). */
function sanitizeOrRefuse(value: unknown, what: string): unknown {
  try {
    return sanitizeDeep(value);
  } catch (err) {
    if (err instanceof JsonTooDeepError) throw errors.badRequest(`${what} is ${err.message}`);
    throw err;
  }
}

/**
 * The media type (parameters cut, at most 100 characters) of a request that carries a body the JSON parser left
 * alone (`curl -d` sends `application/x-www-form-urlencoded`), so its fields were never read: saying "body is
 * required" to someone who sent one misleads. `undefined` when there is no body or no Content-Type.
 */
function nonJsonBodyType(req: Request): string | undefined {
  const type = req.headers['content-type'];
  const hasEntity = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (!type || !hasEntity || req.is(['application/json', 'application/*+json'])) return undefined;
  return sanitizeText(type.split(';')[0]!.trim()).slice(0, 100);
}

/**
 * The request's JSON body, cleaned and validated against the operation's schema. An absent body (nothing
 * parsed, or `{}` from a request that was not JSON) is a 400 only when the operation requires one; a body that
 * is not an object is "Request body must be a JSON object".
 */
function validatedBody(req: Request, plan: RequestPlan): unknown {
  const b: unknown = sanitizeOrRefuse(req.body, 'Request body');
  if (!plan.body) return b;
  const hasBody =
    b !== undefined &&
    !(typeof b === 'object' && b !== null && Object.keys(b).length === 0 && !req.is('application/json'));
  if (!hasBody) {
    const sentType = nonJsonBodyType(req);
    if (sentType !== undefined) {
      throw errors.badRequest(
        `Request body must be JSON: send it with Content-Type: application/json (this request's Content-Type is '${sentType}')`,
      );
    }
    if (plan.bodyRequired) throw errors.badRequest('Request body is required (Content-Type: application/json)');
    return b;
  }
  if (!plan.body(b)) {
    const e = plan.body.errors![0]!;
    if (e.instancePath === '' && e.keyword === 'type') throw errors.badRequest('Request body must be a JSON object');
    throwParameterError(plan.body);
  }
  return b;
}

/**
 * Compiles request and response validators from an OpenAPI 3.0 document. Each `validate(operationId)` compiles its
 * operation's validators when the route is mounted (at start), never per request. The operation's contract is
 * closed: an undeclared query parameter is a 400 (`validatedQuery`).
 */
export function createOpenApi(document: OpenApiDocument): OpenApi {
  const ajv = new Ajv({ strict: false, allErrors: false, coerceTypes: false, useDefaults: true });
  addFormats(ajv);
  const coercing = new Ajv({ strict: false, allErrors: false, coerceTypes: 'array', useDefaults: true });
  addFormats(coercing);
  const docForRefs = { ...document, $id: DOC_ID } as Record<string, unknown>;
  ajv.addSchema(rewriteRefs(docForRefs) as object, DOC_ID);
  coercing.addSchema(rewriteRefs(docForRefs) as object, DOC_ID);

  const operations = new Map<string, { method: string; path: string; op: Operation }>();
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const op = item[method] as Operation | undefined;
      if (!op?.operationId) continue;
      // Parameters declared on the path item apply to each of its operations unless the operation redeclares
      // them (OpenAPI 3.0, Path Item Object `parameters`).
      const shared = ((item as { parameters?: Parameter[] }).parameters ?? []).filter(
        (p) => !(op.parameters ?? []).some((own) => own.name === p.name && own.in === p.in),
      );
      operations.set(op.operationId, {
        method,
        path,
        op: shared.length ? { ...op, parameters: [...shared, ...(op.parameters ?? [])] } : op,
      });
    }
  }
  const find = (operationId: string) => {
    const found = operations.get(operationId);
    if (!found) throw new Error(`OpenAPI document '${document.info.title}' has no operation '${operationId}'`);
    return found;
  };

  const responseValidators = new Map<string, ValidateFunction>();

  return {
    document,
    operation: (operationId) => {
      const { method, path } = find(operationId);
      return { method, path };
    },
    validate(operationId) {
      const plan = compileRequestPlan(find(operationId).op, ajv, coercing);
      return (req, res, next) => {
        // A body error kept for after the key check (json-body.ts deferBodyErrors), on a route without one.
        const bodyError = takeDeferredBodyError(req);
        if (bodyError !== undefined) return next(bodyError);
        const query = validatedQuery(req.query as Record<string, unknown>, plan);
        const params = validatedPath(req.params as Record<string, unknown>, plan);
        const body = validatedBody(req, plan);
        res.locals['validated'] = { query, params, body } satisfies ValidatedRequest;
        next();
      };
    },
    validateQuery(operationId) {
      const plan = compileRequestPlan(find(operationId).op, ajv, coercing);
      return (req, _res, next) => {
        validatedQuery(req.query as Record<string, unknown>, plan);
        next();
      };
    },
    responseProblems(operationId, status, responseBody) {
      const { op } = find(operationId);
      const key = `${operationId}:${status}`;
      let validate = responseValidators.get(key);
      if (!validate) {
        const response = op.responses?.[String(status)] ?? op.responses?.['default'];
        if (!response) return [`status ${status} is not documented for ${operationId}`];
        let resolved = response;
        if (response.$ref) {
          const name = response.$ref.split('/').pop()!;
          resolved = (document.components?.['responses'] as Record<string, typeof response>)[name]!;
        }
        const schema = resolved.content?.['application/json']?.schema;
        if (!schema) return [];
        validate = ajv.compile(rewriteRefs(schema) as object) as ValidateFunction;
        responseValidators.set(key, validate);
      }
      if (validate!(responseBody)) return [];
      return (validate!.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? 'is invalid'}`);
    },
  };
}
