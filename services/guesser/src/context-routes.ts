import type { Express, RequestHandler } from 'express';
import { z } from 'zod';
import { validated } from '@workemon/service-kit';
import { llmCallMetadata, sha256Hex, withPersona, type LlmRouteDeps } from '@workemon/llm';
import type { ContextResponse } from '@workemon/contracts';

export const contextSchema = z.object({
  is_enough: z.boolean(),
  response: z.string().trim().min(1),
});

type ContextInput = {
  username: string;
  department: string;
  position: string;
  request: string;
  /** The department's custom instructions (operator text, from the secretary's directory); optional. */
  persona?: string;
};

/**
 * GET and POST /get-context: the fixed prompt (+ the department's persona, when sent) + the user's attributes and
 * request (as data) → {is_enough, response, llm}; `llm` names the provider, model, prompt and persona versions,
 * settings, tokens and latency behind the answer. GET is the seed's contract (query string); POST takes the same fields as a JSON body, for
 * texts too long for a URL.
 */
export function mountContextRoutes(app: Express, deps: LlmRouteDeps): void {
  const decide = async (input: ContextInput): Promise<ContextResponse> => {
    const { username, department, position, request, persona } = input;
    const result = await deps.llm.complete({
      // The persona is operator text: a delimited section of the system message, never mixed with the user's data.
      system: withPersona(deps.prompt, persona),
      // JSON keeps the fields apart and the request quoted, whatever the user typed.
      userContent: JSON.stringify({ username, department, position, request }, null, 2),
      schema: contextSchema,
      schemaName: 'context_response',
    });
    const llm = {
      ...llmCallMetadata(result),
      prompt: deps.promptVersion,
      ...(persona?.trim() ? { persona_sha256: sha256Hex(persona.trim()) } : {}),
      settings: deps.settings,
    };
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
  app.get('/get-context', deps.openapi.validate('getContext'), fromQuery);
  app.post('/get-context', deps.openapi.validate('getContextPost'), fromBody);
}
