import type { Express, RequestHandler } from 'express';
import { z } from 'zod';
import { validated, type Authenticator, type Logger, type OpenApi } from '@workemon/service-kit';
import { llmCallMetadata, type LlmClient } from '@workemon/llm';
import type { ContextResponse } from '@workemon/contracts';

export const contextSchema = z.object({
  is_enough: z.boolean(),
  response: z.string().trim().min(1),
});

type ContextInput = { username: string; department: string; position: string; request: string };

/**
 * GET and POST /get-context: the fixed prompt + the user's attributes and request (as data) → {is_enough,
 * response, llm}. GET is the seed's contract (query string); POST takes the same fields as a JSON body, for
 * texts too long for a URL.
 */
export function mountContextRoutes(
  app: Express,
  deps: { openapi: OpenApi; llm: LlmClient; prompt: string; logger: Logger; auth: Authenticator },
): void {
  const decide = async (input: ContextInput): Promise<ContextResponse> => {
    const { username, department, position, request } = input;
    const result = await deps.llm.complete({
      system: deps.prompt,
      // JSON keeps the fields apart and the request quoted, whatever the user typed.
      userContent: JSON.stringify({ username, department, position, request }, null, 2),
      schema: contextSchema,
      schemaName: 'context_response',
    });
    const llm = llmCallMetadata(result);
    deps.logger.info('context decided', {
      llm: { provider: llm.provider, model: llm.model, latency_ms: llm.latency_ms, usage: result.usage },
      decision: { is_enough: result.data.is_enough },
    });
    return { is_enough: result.data.is_enough, response: result.data.response, llm };
  };
  const fromQuery: RequestHandler = async (_req, res) => {
    res.json(await decide(validated<{ query: ContextInput }>(res).query));
  };
  const fromBody: RequestHandler = async (_req, res) => {
    res.json(await decide(validated<{ body: ContextInput }>(res).body));
  };
  // Only the secretary calls it: a service key.
  const serviceKey = deps.auth.require(['service']);
  app.get('/get-context', serviceKey, deps.openapi.validate('getContext'), fromQuery);
  app.post('/get-context', serviceKey, deps.openapi.validate('getContextPost'), fromBody);
}
