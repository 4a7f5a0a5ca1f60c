import { Router, type RequestHandler } from 'express';
import type { OpenApi } from '@workemon/service-kit';
import type { DirectoryRepository } from './directory-repository.js';

type PromptSource = { promptInfo?(): Promise<Record<string, unknown>> };

/** The service's GET /prompt answer, or `{error}` naming why it could not be had (never throws). */
async function askPrompt(source: PromptSource): Promise<Record<string, unknown>> {
  if (!source.promptInfo) return { error: 'this client cannot ask for the prompt' };
  try {
    return await source.promptInfo();
  } catch (err) {
    return { error: err instanceof Error ? err.message : 'unreachable' };
  }
}

/**
 * GET /prompts: the prompt versions in force. The LLM services own their prompts (PROMPT_FILE is theirs), so the
 * secretary asks each one's GET /prompt rather than guess; a service that does not answer is shown with the
 * reason instead of failing the whole page. Department personas come from the directory (`directory.listPersonas`:
 * name, version, when set).
 */
export function createPromptsRoutes(deps: {
  openapi: OpenApi;
  auth: RequestHandler;
  directory: Pick<DirectoryRepository, 'listPersonas'>;
  guesser: PromptSource;
  analyst: PromptSource;
}): Router {
  const router = Router();
  router.get('/prompts', deps.auth, deps.openapi.validate('getPrompts'), async (_req, res) => {
    const [guesser, analyst, personas] = await Promise.all([
      askPrompt(deps.guesser),
      askPrompt(deps.analyst),
      deps.directory.listPersonas(),
    ]);
    res.json({
      guesser,
      'system-analyst': analyst,
      personas,
    });
  });
  return router;
}
