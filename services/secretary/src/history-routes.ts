import type { Express, RequestHandler } from 'express';
import type { Channel } from '@workemon/contracts';
import { errors, validated, type OpenApi } from '@workemon/service-kit';
import type { HistoryReadModel } from './history-read-model.js';

/** History for operators: GET /conversations, GET /conversations/{id}, GET /stats. */
export function mountHistoryRoutes(
  app: Express,
  deps: { openapi: OpenApi; auth: RequestHandler; history: HistoryReadModel },
) {
  const { openapi, auth, history } = deps;

  app.get('/conversations', auth, openapi.validate('listConversations'), async (_req, res) => {
    const { query } = validated<{ query: { username?: string; channel?: Channel; limit?: number } }>(res);
    res.json({
      conversations: await history.listConversations({
        username: query.username,
        channel: query.channel,
        limit: query.limit ?? 50,
      }),
    });
  });
  app.get('/conversations/:id', auth, openapi.validate('getConversation'), async (_req, res) => {
    const id = validated<{ params: { id: number } }>(res).params.id;
    const conversation = await history.getConversation(id);
    if (!conversation) throw errors.notFound(`No conversation ${id}`);
    res.json(conversation);
  });
  app.get('/stats', auth, openapi.validate('getStats'), async (_req, res) => {
    res.json(await history.stats());
  });
}
