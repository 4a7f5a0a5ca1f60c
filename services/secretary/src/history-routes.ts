import { Router, type RequestHandler } from 'express';
import type { Channel } from '@workemon/contracts';
import { errors, validated, type OpenApi } from '@workemon/service-kit';
import type { HistoryReadModel } from './history-read-model.js';
import type { AuditStats, AuditStatsOptions } from './audit/audit-repository.js';

/** History for operators: GET /conversations, GET /conversations/{id}, GET /stats. */
export function createHistoryRoutes(deps: {
  openapi: OpenApi;
  auth: RequestHandler;
  history: HistoryReadModel;
  /** The audit log's counts per channel and period for /stats' `audit` (docs/audit.md); absent: left out. */
  auditStats?: (options: AuditStatsOptions) => Promise<AuditStats>;
}): Router {
  const router = Router();
  const { openapi, auth, history } = deps;

  router.get('/conversations', auth, openapi.validate('listConversations'), async (_req, res) => {
    const { query } = validated<{ query: { username?: string; channel?: Channel; limit?: number } }>(res);
    res.json({
      conversations: await history.listConversations({
        username: query.username,
        channel: query.channel,
        limit: query.limit ?? 50,
      }),
    });
  });
  router.get('/conversations/:id', auth, openapi.validate('getConversation'), async (_req, res) => {
    const id = validated<{ params: { id: number } }>(res).params.id;
    const conversation = await history.getConversation(id);
    if (!conversation) throw errors.notFound(`No conversation ${id}`);
    res.json(conversation);
  });
  router.get('/stats', auth, openapi.validate('getStats'), async (_req, res) => {
    const { query } = validated<{ query: AuditStatsOptions }>(res);
    if (query.from && query.to && new Date(query.from) >= new Date(query.to))
      throw errors.invalidParameter('to', "must be later than 'from'");
    const stats = await history.stats();
    res.json(deps.auditStats ? { ...stats, audit: await deps.auditStats(query) } : stats);
  });
  return router;
}
