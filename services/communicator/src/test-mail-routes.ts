import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { AppError, errors, principalOf, validated, type Authenticator, type OpenApi } from '@workemon/service-kit';
import { channelNotConfigured } from './outbound-sender.js';
import { rateLimitKey } from './sender-rate-limit.js';
import type { DryRunInput, DryRunView, MailDryRun } from './email/mail-dry-run.js';

/** What POST /test needs. */
export type TestMailRoutesDeps = {
  openapi: OpenApi;
  auth: Authenticator;
  /** The dry run of the mail pipeline (email/mail-dry-run.ts); undefined when the email channel is off (501). */
  dryRun?: MailDryRun;
  /** Largest raw mail taken, in bytes (MAX_MAIL_BYTES); bigger: 413. */
  maxMailBytes: number;
};

/**
 * What the caller of POST /test may see: the whole pass with an admin key; a client key the client's view
 * (mail-dry-run.ts), as the secretary's own dry run shows a client key (its `seesDirectory`). A keyless caller on
 * loopback (an open class) sees everything only when the admin class is open too: it could read it all anyway.
 */
export function dryRunViewOf(res: Response, open: readonly string[]): DryRunView {
  const principal = principalOf(res);
  if (!principal) return 'client';
  if (principal.anonymous) return open.includes('admin') ? 'full' : 'client';
  return principal.keyClass === 'admin' ? 'full' : 'client';
}

/**
 * The dry run's options for this caller: its view (`dryRunViewOf`) and the budget a decided mail draws from
 * (`rateLimitKey.testKey` of the caller's key: class and name, or `anonymous` on a keyless loopback install).
 */
function dryRunOptionsOf(res: Response, deps: TestMailRoutesDeps): { view: DryRunView; caller: string } {
  return { view: dryRunViewOf(res, deps.auth.open), caller: rateLimitKey.testKey(principalOf(res)) };
}

/**
 * `POST /test` (operation `testMail`): a dry run of the mail pipeline for client and admin keys, each in its view
 * (`dryRunViewOf`). The body is a
 * raw mail (`message/rfc822`) or JSON `{from, subject, text}` (validated against the contract); any other
 * type is 415, an empty body 400, and 501 while the email channel is not configured; 429 past the caller's key's
 * TEST_RATE_LIMIT_PER_KEY_PER_MINUTE (only a mail that reaches the secretary's decision counts). Nothing is sent.
 */
export function createTestMailRoutes(deps: TestMailRoutesDeps): Router {
  const router = Router();
  router.post(
    '/test',
    deps.auth.require(['client', 'admin']),
    // An undeclared query parameter is a 400 for a raw mail too, which is run before `validate` (docs/DEVELOPING.md).
    deps.openapi.validateQuery('testMail'),
    express.raw({ type: 'message/rfc822', limit: deps.maxMailBytes }),
    async (req, res, next) => testRawMail(deps, req, res, next),
    deps.openapi.validate('testMail'),
    async (_req, res) => {
      if (!deps.dryRun) throw channelNotConfigured('email');
      res.json(
        await deps.dryRun(validated(res).body as Exclude<DryRunInput, { raw: Buffer }>, dryRunOptionsOf(res, deps)),
      );
    },
  );
  return router;
}

/** A raw mail (`message/rfc822`) is run here; JSON goes on to the contract check (`next()`); other types are refused. */
async function testRawMail(deps: TestMailRoutesDeps, req: Request, res: Response, next: NextFunction) {
  const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'message/rfc822') {
    if (type === 'application/json') return next();
    if (!type)
      throw errors.badRequest('Request body is required: a raw mail (message/rfc822) or JSON {from, subject, text}');
    throw new AppError(
      'unsupported_media_type',
      415,
      'POST /test takes message/rfc822 (a raw mail) or application/json ({from, subject, text})',
    );
  }
  if (!Buffer.isBuffer(req.body) || !(req.body as Buffer).length)
    throw errors.badRequest('The message/rfc822 body is empty');
  if (!deps.dryRun) throw channelNotConfigured('email');
  res.json(await deps.dryRun({ raw: req.body as Buffer }, dryRunOptionsOf(res, deps)));
}
