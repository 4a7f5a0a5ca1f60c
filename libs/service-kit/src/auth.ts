import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { errors } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** The classes of API keys: clients of /analyze-request, operators, and the services calling each other. */
export type KeyClass = 'client' | 'admin' | 'service';
/** Who a request was authenticated as (set on `res.locals.principal` by `requireApiKey`). */
export type Principal = { keyClass: KeyClass; name: string };

/**
 * `Authorization: Bearer <key>` against a list of accepted keys. With no keys configured every call passes
 * (the documented default for a trusted network). Comparison is constant-time over digests. With `keyClass`,
 * a matched key sets `res.locals.principal = { keyClass, name }` (read it with `principalOf`).
 */
export function requireApiKey(keys: readonly string[], keyClass?: KeyClass): RequestHandler {
  const accepted = keys.filter(Boolean).map(digest);
  return (req, res, next) => {
    if (accepted.length === 0) return next();
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw errors.unauthorized();
    const given = digest(match[1]!);
    if (!accepted.some((k) => timingSafeEqual(k, given))) throw errors.unauthorized('Invalid API key');
    if (keyClass) res.locals['principal'] = { keyClass, name: 'key' } satisfies Principal;
    next();
  };
}

/** The authenticated principal of this request, or undefined (no key required, or none matched yet). */
export function principalOf(res: Response): Principal | undefined {
  return res.locals['principal'] as Principal | undefined;
}
