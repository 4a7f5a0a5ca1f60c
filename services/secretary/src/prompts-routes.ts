import { Router, type RequestHandler } from 'express';
import type { Knex } from 'knex';
import type { OpenApi } from '@workemon/service-kit';

type PromptSource = { promptInfo?(): Promise<Record<string, unknown>> };

/**
 * GET /prompts: the prompt versions in force. The LLM services own their prompts (PROMPT_FILE is theirs), so the
 * secretary asks each one's GET /prompt rather than guess; a service that does not answer is shown with the
 * reason instead of failing the whole page. Department personas come from the directory (name, version, when set).
 */
export function createPromptsRoutes(deps: {
  openapi: OpenApi;
  auth: RequestHandler;
  knex: Knex;
  guesser: PromptSource;
  analyst: PromptSource;
}): Router {
  const router = Router();
  const ask = async (source: PromptSource) => {
    if (!source.promptInfo) return { error: 'this client cannot ask for the prompt' };
    try {
      return await source.promptInfo();
    } catch (err) {
      return { error: err instanceof Error ? err.message : 'unreachable' };
    }
  };
  router.get('/prompts', deps.auth, deps.openapi.validate('getPrompts'), async (_req, res) => {
    const [guesser, analyst, personas] = await Promise.all([
      ask(deps.guesser),
      ask(deps.analyst),
      deps
        .knex('departments')
        .whereNotNull('persona_sha256')
        .orderBy('name')
        .select<{ name: string; persona_sha256: string; persona_updated_at: Date | string | null }[]>(
          'name',
          'persona_sha256',
          'persona_updated_at',
        ),
    ]);
    res.json({
      guesser,
      'system-analyst': analyst,
      personas: personas.map((p) => ({
        department: p.name,
        sha256: p.persona_sha256,
        updated_at: p.persona_updated_at instanceof Date ? p.persona_updated_at.toISOString() : p.persona_updated_at,
      })),
    });
  });
  return router;
}
