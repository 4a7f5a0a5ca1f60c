import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { errors } from './errors.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * `Authorization: Bearer <key>` against a list of accepted keys. With no keys configured every call passes
 * (the documented default for a trusted network). Comparison is constant-time over digests.
 */
export function requireApiKey(keys: readonly string[]): RequestHandler {
  const accepted = keys.filter(Boolean).map(digest);
  return (req, _res, next) => {
    if (accepted.length === 0) return next();
    const header = req.get('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) throw errors.unauthorized();
    const given = digest(match[1]!);
    if (!accepted.some((k) => timingSafeEqual(k, given))) throw errors.unauthorized('Invalid API key');
    next();
  };
}
