import { Router, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { addAccessLogFields, errors, validated } from '@workemon/service-kit';
import { llmAnswerMetadata, withPersona, type LlmRouteDeps } from '@workemon/llm';
import { ACTIONS, isAction, type AnalyticsRequest, type AnalyticsResponse } from '@workemon/contracts';

export const analyticsSchema = z.object({
  is_enough: z.boolean(),
  response: z.string().trim().min(1),
  // Models sometimes write null for "no action", or an action that is not the contract's ("позвонить"): both mean
  // the same as leaving it out, and the secretary then answers with the channel's reply action (docs/secretary.md)
  // instead of the whole answer being refused. (preprocess rather than nullish()/catch(): the JSON Schema sent to
  // providers stays a plain optional enum.)
  action: z.preprocess(
    (value) => (typeof value === 'string' && isAction(value.trim()) ? value.trim() : undefined),
    z.enum(ACTIONS).optional(),
  ),
});

/** The validated query or body of /prepare-analytics (the contract's `AnalyticsRequest`; `persona` is operator text). */
type AnalyticsInput = AnalyticsRequest;

/**
 * GET and POST /prepare-analititcs (the contract's spelling) and /prepare-analytics (alias): the fixed prompt +
 * context and request (as data) → {is_enough, response, action?, llm}. GET is the seed's contract (query string);
 * POST takes the same fields as a JSON body, for texts too long for a URL.
 */
export function createAnalyticsRoutes(deps: LlmRouteDeps): Router {
  const router = Router();
  const analyse = async ({ context, request, persona }: AnalyticsInput, res: Response): Promise<AnalyticsResponse> => {
    const result = await deps.llm.complete({
      // The persona is operator text: a delimited section of the system message, never mixed with the user's data.
      system: withPersona(deps.prompt, persona),
      userContent: JSON.stringify({ context, request }, null, 2),
      schema: analyticsSchema,
      schemaName: 'analytics_response',
    });
    const llm = llmAnswerMetadata(result, deps, persona);
    // On the request's one access-log line (no second line per request).
    addAccessLogFields(res, {
      llm: { provider: llm.provider, model: llm.model, latency_ms: llm.latency_ms, usage: result.usage },
      decision: { is_enough: result.data.is_enough, action: result.data.action },
    });
    const body: AnalyticsResponse = { is_enough: result.data.is_enough, response: result.data.response };
    if (result.data.action) body.action = result.data.action;
    body.llm = llm;
    return body;
  };
  // The seed's contract names the query parameter `preparedcontext`; `context` is ours. Either does, `context` wins.
  const fromQuery: RequestHandler = async (_req, res) => {
    const query = validated<{ query: Partial<AnalyticsInput> & { preparedcontext?: string } }>(res).query;
    const context = query.context ?? query.preparedcontext;
    if (!context) throw errors.missingParameter('context');
    if (!query.request) throw errors.missingParameter('request');
    res.json(await analyse({ context, request: query.request }, res));
  };
  const fromBody: RequestHandler = async (_req, res) => {
    res.json(await analyse(validated<{ body: AnalyticsInput }>(res).body, res));
  };
  // Only the secretary calls it: a service key.
  const serviceKey = deps.auth.require(['service']);
  router.get('/prepare-analititcs', serviceKey, deps.openapi.validate('prepareAnalytics'), fromQuery);
  router.get('/prepare-analytics', serviceKey, deps.openapi.validate('prepareAnalyticsAlias'), fromQuery);
  router.post('/prepare-analititcs', serviceKey, deps.openapi.validate('prepareAnalyticsPost'), fromBody);
  router.post('/prepare-analytics', serviceKey, deps.openapi.validate('prepareAnalyticsAliasPost'), fromBody);
  return router;
}
