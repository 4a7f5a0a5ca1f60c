import { Router, type RequestHandler, type Response } from 'express';
import { z } from 'zod';
import { addAccessLogFields, validated } from '@workemon/service-kit';
import { llmAnswerMetadata, withPersona, type LlmRouteDeps, type LlmServiceConfig } from '@workemon/llm';
import type { ContextRequest, ContextResponse } from '@workemon/contracts';
import { categoriesPromptSection, loadCategories, type Category } from './categories.js';
import { DEFAULT_NO_REPLY_MIN_CONFIDENCE } from './config.js';

/** The seed's answer alone (no classification): kept for callers that validate just the decision. */
export const contextSchema = z.object({
  is_enough: z.boolean(),
  response: z.string().trim().min(1),
});

/**
 * The structured output asked of the model: the decision plus `category` (one of the configured names) and
 * `confidence` (0–1). Both are optional so a model that leaves them out still gives a valid decision; a value
 * outside the list or the range is a schema violation like any other (one repair request, then 502).
 */
export function classifiedContextSchema(categories: readonly Category[]) {
  const names = categories.map((c) => c.name) as [string, ...string[]];
  return contextSchema.extend({
    category: z.enum(names).optional().describe('the request category, exactly one name from the list'),
    confidence: z.number().min(0).max(1).optional().describe('confidence in the category, 0 to 1'),
  });
}

/** The validated query or body of /get-context (the contract's `ContextRequest`; `persona` is operator text). */
type ContextInput = ContextRequest;

/** The categories of a guesser config; the shipped default for an LLM service config without them. */
function categoriesOf(config: LlmServiceConfig): Category[] {
  const own = (config as LlmServiceConfig & { categories?: Category[] }).categories;
  return own ?? loadCategories({}).categories;
}

/**
 * GET and POST /get-context: the fixed prompt with the category list (+ the department's persona, when sent) +
 * the user's attributes and request (as data) → {is_enough, response, category?, confidence?, no_reply?, llm};
 * `llm` names the provider, model, prompt and persona versions, settings, tokens and latency behind the answer.
 * GET is the seed's contract (query string); POST takes the same fields as a JSON body, for texts too long for a
 * URL.
 */
export function createContextRoutes(deps: LlmRouteDeps): Router {
  const router = Router();
  const categories = categoriesOf(deps.config);
  const byName = new Map(categories.map((c) => [c.name, c]));
  const noReplyMinConfidence =
    (deps.config as LlmServiceConfig & { noReplyMinConfidence?: number }).noReplyMinConfidence ??
    DEFAULT_NO_REPLY_MIN_CONFIDENCE;
  // Built once per app: the LLM client caches the JSON Schema per schema object.
  const schema = classifiedContextSchema(categories);
  const prompt = `${deps.prompt}\n\n${categoriesPromptSection(categories)}`;
  const decide = async (input: ContextInput, res: Response): Promise<ContextResponse> => {
    const { username, department, position, request, persona } = input;
    const result = await deps.llm.complete({
      // The persona is operator text: a delimited section of the system message, never mixed with the user's data.
      system: withPersona(prompt, persona),
      // JSON keeps the fields apart and the request quoted, whatever the user typed.
      userContent: JSON.stringify({ username, department, position, request }, null, 2),
      schema,
      schemaName: 'context_response',
    });
    const llm = llmAnswerMetadata(result, deps, persona);
    const { category, confidence } = result.data;
    // Only a confident classification drops a request (NO_REPLY_MIN_CONFIDENCE): a real request the model filed
    // under `marketing` at 0.05 is answered, not skipped in silence (s35 parity review).
    const noReply =
      category !== undefined &&
      byName.get(category)?.noReply === true &&
      confidence !== undefined &&
      confidence >= noReplyMinConfidence;
    // On the request's one access-log line (no second line per request).
    addAccessLogFields(res, {
      llm: { provider: llm.provider, model: llm.model, latency_ms: llm.latency_ms, usage: result.usage },
      decision: { is_enough: result.data.is_enough, category, confidence, no_reply: noReply },
    });
    // Fields set one by one in the contract's order (spreads after the first key copy through a slow path).
    const body: ContextResponse = { is_enough: result.data.is_enough, response: result.data.response };
    if (category !== undefined) body.category = category;
    if (confidence !== undefined) body.confidence = confidence;
    if (noReply) body.no_reply = true;
    body.llm = llm;
    return body;
  };
  const fromQuery: RequestHandler = async (_req, res) => {
    res.json(await decide(validated<{ query: ContextInput }>(res).query, res));
  };
  const fromBody: RequestHandler = async (_req, res) => {
    res.json(await decide(validated<{ body: ContextInput }>(res).body, res));
  };
  // Only the secretary calls it: a service key.
  const serviceKey = deps.auth.require(['service']);
  router.get('/get-context', serviceKey, deps.openapi.validate('getContext'), fromQuery);
  router.post('/get-context', serviceKey, deps.openapi.validate('getContextPost'), fromBody);
  return router;
}
