import type { Express, RequestHandler } from 'express';
import { z } from 'zod';
import { errors, validated, type Logger, type OpenApi } from '@workemon/service-kit';
import { llmCallMetadata, type LlmClient } from '@workemon/llm';
import { ACTIONS, type AnalyticsResponse } from '@workemon/contracts';

export const analyticsSchema = z.object({
  is_enough: z.boolean(),
  response: z.string().trim().min(1),
  // Models sometimes write null for "no action"; that means the same as leaving it out. (preprocess rather than
  // nullish(): the JSON Schema sent to providers stays a plain optional enum.)
  action: z.preprocess((value) => value ?? undefined, z.enum(ACTIONS).optional()),
});

type AnalyticsInput = { context: string; request: string };

/**
 * GET and POST /prepare-analititcs (the contract's spelling) and /prepare-analytics (alias): the fixed prompt +
 * context and request (as data) → {is_enough, response, action?, llm}. GET is the seed's contract (query string);
 * POST takes the same fields as a JSON body, for texts too long for a URL.
 */
export function mountAnalyticsRoutes(
  app: Express,
  deps: { openapi: OpenApi; llm: LlmClient; prompt: string; logger: Logger },
): void {
  const analyse = async ({ context, request }: AnalyticsInput): Promise<AnalyticsResponse> => {
    const result = await deps.llm.complete({
      system: deps.prompt,
      userContent: JSON.stringify({ context, request }, null, 2),
      schema: analyticsSchema,
      schemaName: 'analytics_response',
    });
    const llm = llmCallMetadata(result);
    deps.logger.info('analysis prepared', {
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
    res.json(await analyse({ context, request: query.request }));
  };
  const fromBody: RequestHandler = async (_req, res) => {
    res.json(await analyse(validated<{ body: AnalyticsInput }>(res).body));
  };
  app.get('/prepare-analititcs', deps.openapi.validate('prepareAnalytics'), fromQuery);
  app.get('/prepare-analytics', deps.openapi.validate('prepareAnalyticsAlias'), fromQuery);
  app.post('/prepare-analititcs', deps.openapi.validate('prepareAnalyticsPost'), fromBody);
  app.post('/prepare-analytics', deps.openapi.validate('prepareAnalyticsAliasPost'), fromBody);
}
