import { Router, type RequestHandler, type Response } from 'express';
import type { AnalysisResponse, AnalyzeRequest } from '@workemon/contracts';
import { errors, principalOf, validated, type KeyClass, type OpenApi, type Principal } from '@workemon/service-kit';
import type { AnalyzeInput, createAnalyzer } from './analyzer.js';
import type { Decision } from './decision.js';
import { seesDirectory, type createDryRun } from './dry-run.js';
import { analyzeBudget, enforceDryRunLimits, type AnalyzeLimits } from './rate-limits/analyze-limits.js';
import type { RateLimitStore } from './rate-limits/rate-limit-store.js';
import { capDecision } from './response-length.js';

type Analyzer = ReturnType<typeof createAnalyzer>;

/** The contract's AnalysisResponse: the decision plus `context-response`, the seed's name of `response`. */
function toAnalysisResponse(decision: Decision): AnalysisResponse {
  return { ...decision, 'context-response': decision.response };
}

/**
 * The namespace of a caller's conversations: a client key's `keyId` (its SHA-256 prefix, never the key), so that
 * its thread_keys, open questions and message_ids are its own. Another client key naming the same thread_key gets
 * a fresh conversation of its own rather than a 403: a 403 would tell it that the thread exists (and so that
 * another application talks to that person). Likewise the same message_id in another namespace is another message
 * (migration 340_message_namespace), so no caller can block another namespace's message_id by posting it first. Service keys (the communicator: mail and Telegram threads, whose
 * keys come from the messages themselves), admin keys and anonymous callers of the keyless loopback mode share
 * one namespace (undefined), as before. docs/secretary.md, "Conversations belong to their client key".
 */
/** Control characters (Unicode Cc: C0 with the line breaks, DEL, C1): never part of an id or key. */
const CONTROL_CHARACTER = /\p{Cc}/u;

export function clientKeyIdOf(principal: Principal | undefined): string | undefined {
  return principal?.keyClass === 'client' && !principal.anonymous ? principal.keyId : undefined;
}

/**
 * Whether the caller asked for the client's view of a dry run (`dry_run_view: "client"`, only with `dry_run: true`):
 * the communicator's POST /test does when its own caller has a client key, since it asks with its service key.
 */
function asksClientView(fields: AnalyzeRequest): boolean {
  if (fields.dry_run_view === undefined) return false;
  if (fields.dry_run !== true) throw errors.invalidParameter('dry_run_view', 'is only for dry runs (dry_run: true)');
  return fields.dry_run_view === 'client';
}

/**
 * The analyzer's input from the validated fields; `principal` is the caller's (principalOf). A dry run in the
 * client's view (`asksClientView`) is decided as a client key's would be: the sender claims count for nothing.
 */
function toInput(fields: AnalyzeRequest, principal: Principal | undefined): AnalyzeInput {
  // The schema allows any non-empty string; whitespace alone is no request either.
  if (fields.request.trim() === '') throw errors.invalidParameter('request', 'must not be empty');
  if (fields.username.trim() === '') throw errors.invalidParameter('username', 'must not be empty');
  // Keys, not text: a line break or other control character can never be part of a Message-ID (RFC 5322 §3.6.4) or a
  // chat key, and refusing it here keeps it from being stored and from reaching a header later.
  for (const [name, value] of [
    ['message_id', fields.message_id],
    ['thread_key', fields.thread_key],
  ] as const)
    if (value !== undefined && CONTROL_CHARACTER.test(value))
      throw errors.invalidParameter(name, 'must not contain line breaks or other control characters');
  return {
    channel: fields.channel,
    username: fields.username.trim(),
    request: fields.request,
    messageId: fields.message_id,
    threadKey: fields.thread_key,
    clientKeyId: clientKeyIdOf(principal),
    subject: fields.subject,
    // Weighed in sender-trust.ts: the sender claims count only from a service principal, and an open class
    // (loopback, no keys: an anonymous caller) vouches for nothing.
    // The client's view is decided for a client key: no sender claim counts, whoever relayed them.
    claims: asksClientView(fields)
      ? // A client key asking for its own view keeps its name: its CLIENT_KEY_USERNAMES binding applies.
        { principal: 'client', ...(clientKeyIdOf(principal) && { keyName: principal!.name }) }
      : {
          principal: principal?.anonymous ? undefined : principal?.keyClass,
          ...(principal && !principal.anonymous && { keyName: principal.name }),
          senderAuthentication: fields.sender_authentication,
          telegramUserId: fields.telegram_user_id,
        },
  };
}

export type AnalyzeRouteDeps = {
  openapi: OpenApi;
  auth: RequestHandler;
  analyzer: Analyzer;
  /** Per-username and per-key limits (rate-limits/analyze-limits.ts); absent: none. */
  limits?: { store: RateLimitStore; settings: AnalyzeLimits };
  /** Answers `dry_run: true` requests (dry-run.ts). */
  dryRun: ReturnType<typeof createDryRun>;
  /** MAX_RESPONSE_LENGTH; absent or 0: answers are not cut. */
  maxResponseChars?: number;
  /** The authenticator's open classes (keyless loopback): what an anonymous caller's dry run may show. */
  openClasses?: readonly KeyClass[];
};

/**
 * A dry run: one unit taken from the caller's per-key budget, the username's only checked (enforceDryRunLimits), the
 * whole decision answered, nothing stored (dry-run.ts); a client
 * key, and any caller asking for the client's view (`clientView`: `dry_run_view: "client"`), sees the plan without
 * directory data (`seesDirectory`, `redactForClient`).
 */
async function answerDryRun(deps: AnalyzeRouteDeps, input: AnalyzeInput, res: Response, clientView: boolean) {
  if (deps.limits)
    await enforceDryRunLimits(deps.limits.store, deps.limits.settings, {
      principal: principalOf(res),
      username: input.username,
    });
  const view = !clientView && seesDirectory(principalOf(res), deps.openClasses ?? []) ? 'full' : 'client';
  const { decision, wouldExecute } = await deps.dryRun(input, view);
  res.json({
    ...toAnalysisResponse(capDecision(decision, deps.maxResponseChars)),
    dry_run: true,
    would_execute: wouldExecute,
  });
}

/** GET (query) and POST (JSON body, for long texts) /analyze-request: the same use case. */
export function createAnalyzeRoutes(deps: AnalyzeRouteDeps): Router {
  const router = Router();
  async function handle(fields: AnalyzeRequest, res: Response) {
    const principal = principalOf(res);
    const input = toInput(fields, principal);
    if (fields.dry_run === true) {
      await answerDryRun(deps, input, res, asksClientView(fields));
      return;
    }
    // Drawn beside the analyzer's first statement, before anything about the request is stored: a refused request
    // leaves no trace but the 429, and the limits add no wait to the request's sequence of statements.
    if (deps.limits) input.budget = analyzeBudget(deps.limits.settings, { principal, username: input.username });
    const decision = await deps.analyzer.analyze(input);
    if (input.budget) deps.limits?.store.cleanupSoon();
    res.json(toAnalysisResponse(capDecision(decision, deps.maxResponseChars)));
  }
  router.get('/analyze-request', deps.auth, deps.openapi.validate('analyzeRequestGet'), async (_req, res) => {
    const { query } = validated<{ query: AnalyzeRequest }>(res);
    await handle(query, res);
  });
  router.post('/analyze-request', deps.auth, deps.openapi.validate('analyzeRequestPost'), async (_req, res) => {
    const { body } = validated<{ body: AnalyzeRequest }>(res);
    await handle(body, res);
  });
  return router;
}
