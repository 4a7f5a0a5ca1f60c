import { Router, type RequestHandler, type Response } from 'express';
import type { AnalysisResponse, AnalyzeRequest } from '@workemon/contracts';
import { errors, principalOf, validated, type OpenApi } from '@workemon/service-kit';
import type { createAnalyzer } from './analyzer.js';
import type { Decision } from './decision.js';

type Analyzer = ReturnType<typeof createAnalyzer>;

/** The contract's AnalysisResponse: the decision plus `context-response`, the seed's name of `response`. */
function toAnalysisResponse(decision: Decision): AnalysisResponse {
  return { ...decision, 'context-response': decision.response };
}

function toInput(fields: AnalyzeRequest, res: Response) {
  // The schema allows any non-empty string; whitespace alone is no request either.
  if (fields.request.trim() === '') throw errors.invalidParameter('request', 'must not be empty');
  if (fields.username.trim() === '') throw errors.invalidParameter('username', 'must not be empty');
  return {
    channel: fields.channel,
    username: fields.username.trim(),
    request: fields.request,
    messageId: fields.message_id,
    threadKey: fields.thread_key,
    subject: fields.subject,
    // Weighed in sender-trust.ts: the sender claims count only from a service principal, and an open class
    // (loopback, no keys: an anonymous caller) vouches for nothing.
    claims: {
      principal: principalOf(res)?.anonymous ? undefined : principalOf(res)?.keyClass,
      senderAuthentication: fields.sender_authentication,
      telegramUserId: fields.telegram_user_id,
    },
  };
}

/** GET (query) and POST (JSON body, for long texts) /analyze-request: the same use case. */
export function createAnalyzeRoutes(deps: { openapi: OpenApi; auth: RequestHandler; analyzer: Analyzer }): Router {
  const router = Router();
  router.get('/analyze-request', deps.auth, deps.openapi.validate('analyzeRequestGet'), async (_req, res) => {
    const { query } = validated<{ query: AnalyzeRequest }>(res);
    res.json(toAnalysisResponse(await deps.analyzer.analyze(toInput(query, res))));
  });
  router.post('/analyze-request', deps.auth, deps.openapi.validate('analyzeRequestPost'), async (_req, res) => {
    const { body } = validated<{ body: AnalyzeRequest }>(res);
    res.json(toAnalysisResponse(await deps.analyzer.analyze(toInput(body, res))));
  });
  return router;
}
