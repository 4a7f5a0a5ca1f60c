import type { Express, RequestHandler } from 'express';
import { z } from 'zod';
import { validated, type Logger, type OpenApi } from '@workemon/service-kit';
import type { LlmClient } from '@workemon/llm';
import { ACTIONS, type AnalyticsResponse } from '@workemon/contracts';

export const analyticsSchema = z.object({
  is_enough: z.boolean(),
  response: z.string().trim().min(1),
  // Models sometimes write null for "no action"; that means the same as leaving it out. (preprocess rather than
  // nullish(): the JSON Schema sent to providers stays a plain optional enum.)
  action: z.preprocess((value) => value ?? undefined, z.enum(ACTIONS).optional()),
});

type AnalyticsQuery = { context: string; request: string };

/**
 * GET /prepare-analititcs (the contract's spelling) and /prepare-analytics (alias): the fixed prompt + context
 * and request (as data) → {is_enough, response, action?}.
 */
export function mountAnalyticsRoutes(
  app: Express,
  deps: { openapi: OpenApi; llm: LlmClient; prompt: string; logger: Logger },
): void {
  const handler: RequestHandler = async (_req, res) => {
    const { context, request } = validated<{ query: AnalyticsQuery }>(res).query;
    const result = await deps.llm.complete({
      system: deps.prompt,
      userContent: JSON.stringify({ context, request }, null, 2),
      schema: analyticsSchema,
      schemaName: 'analytics_response',
    });
    deps.logger.info('analysis prepared', {
      llm: { provider: result.provider, model: result.model, latency_ms: result.latencyMs, usage: result.usage },
      decision: { is_enough: result.data.is_enough, action: result.data.action },
    });
    const body: AnalyticsResponse = { is_enough: result.data.is_enough, response: result.data.response };
    if (result.data.action) body.action = result.data.action;
    res.json(body);
  };
  app.get('/prepare-analititcs', deps.openapi.validate('prepareAnalytics'), handler);
  app.get('/prepare-analytics', deps.openapi.validate('prepareAnalyticsAlias'), handler);
}
