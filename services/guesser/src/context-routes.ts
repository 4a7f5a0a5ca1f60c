import type { Express } from 'express';
import { z } from 'zod';
import { validated, type Logger, type OpenApi } from '@workemon/service-kit';
import type { LlmClient } from '@workemon/llm';
import type { ContextResponse } from '@workemon/contracts';

export const contextSchema = z.object({
  is_enough: z.boolean(),
  response: z.string().trim().min(1),
});

type ContextQuery = { username: string; department: string; position: string; request: string };

/** GET /get-context: the fixed prompt + the user's attributes and request (as data) → {is_enough, response}. */
export function mountContextRoutes(
  app: Express,
  deps: { openapi: OpenApi; llm: LlmClient; prompt: string; logger: Logger },
): void {
  app.get('/get-context', deps.openapi.validate('getContext'), async (_req, res) => {
    const { username, department, position, request } = validated<{ query: ContextQuery }>(res).query;
    const result = await deps.llm.complete({
      system: deps.prompt,
      // JSON keeps the fields apart and the request quoted, whatever the user typed.
      userContent: JSON.stringify({ username, department, position, request }, null, 2),
      schema: contextSchema,
      schemaName: 'context_response',
    });
    deps.logger.info('context decided', {
      llm: { provider: result.provider, model: result.model, latency_ms: result.latencyMs, usage: result.usage },
      decision: { is_enough: result.data.is_enough },
    });
    const body: ContextResponse = { is_enough: result.data.is_enough, response: result.data.response };
    res.json(body);
  });
}
