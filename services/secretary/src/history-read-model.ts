import type { Knex } from 'knex';
import type { Channel } from '@workemon/contracts';
import { createProvenanceRepository } from './provenance-repository.js';

// The read model of the history: what operators see (GET /conversations, GET /conversations/{id}, GET /stats)
// and what the action hooks read about a conversation. The write path (claim, outcome) is
// history-write-repository.ts. No time comparisons here: timestamps are only reported (ISO 8601, UTC).

const iso = (value: unknown) => (value instanceof Date ? value.toISOString() : value === null ? null : String(value));
// What a conversation looks like in GET /conversations and GET /conversations/{id}.
const CONVERSATION_COLUMNS = [
  'c.id',
  'c.channel',
  'c.sender',
  'e.username as employee',
  'c.thread_key',
  'c.status',
  'c.clarification_rounds',
  'c.created_at',
  'c.updated_at',
];
const normalizeSender = (sender: string) => sender.trim().toLowerCase();

export type HistoryReadModel = ReturnType<typeof createHistoryReadModel>;

/**
 * Conversations, messages and analyses as read back: lists, one conversation with its messages, analyses and
 * LLM calls, statistics, and the two facts the action hooks need (a conversation's thread key, the inbound
 * Message-ID behind an analysis). `knex` may be a transaction (the hooks read inside the decision's).
 */
export function createHistoryReadModel(knex: Knex | Knex.Transaction) {
  const provenance = createProvenanceRepository(knex as Knex);
  return {
    /** The conversation's thread key (`tg:<chat>[:<user>]`, a mail thread), or null. */
    async threadKeyOf(conversationId: number): Promise<string | null> {
      const row = (await knex('conversations').where({ id: conversationId }).first('thread_key')) as
        { thread_key: string | null } | undefined;
      return row?.thread_key ?? null;
    },

    /** The message_id (for mail: the Message-ID) of the inbound message an analysis answers, or null. */
    async inboundMessageIdOf(analysisId: number): Promise<string | null> {
      const row = (await knex('analyses as a')
        .join('messages as m', 'm.id', 'a.message_id')
        .where('a.id', analysisId)
        .first('m.message_id')) as { message_id: string | null } | undefined;
      return row?.message_id ?? null;
    },

    async listConversations(filter: { username?: string; channel?: Channel; limit: number }) {
      const query = knex('conversations as c')
        .leftJoin('employees as e', 'e.id', 'c.employee_id')
        .select(CONVERSATION_COLUMNS)
        .orderBy('c.id', 'desc')
        .limit(filter.limit);
      if (filter.channel) query.where('c.channel', filter.channel);
      if (filter.username) {
        const name = normalizeSender(filter.username);
        query.where((q) => q.where('c.sender', name).orWhere('e.username', name));
      }
      const rows = (await query) as Record<string, unknown>[];
      return rows.map((r) => ({ ...r, created_at: iso(r['created_at']), updated_at: iso(r['updated_at']) }));
    },

    async getConversation(id: number) {
      const [conversation] = (await knex('conversations as c')
        .leftJoin('employees as e', 'e.id', 'c.employee_id')
        .where('c.id', id)
        .select(CONVERSATION_COLUMNS)) as Record<string, unknown>[];
      if (!conversation) return undefined;
      const messages = (await knex('messages')
        .where({ conversation_id: id })
        .orderBy('id')
        .select('id', 'role', 'text', 'message_id', 'state', 'created_at')) as Record<string, unknown>[];
      const analyses = (await knex('analyses')
        .where({ conversation_id: id })
        .orderBy('id')
        .select(
          'id',
          'message_id as message',
          'outcome',
          'error_code',
          'request',
          'department',
          'position',
          'guesser_is_enough',
          'context',
          'analyst_is_enough',
          'proposed_action',
          'is_enough',
          'action',
          'question',
          'response',
          'category',
          'confidence',
          'escalated',
          'provider',
          'model',
          'prompt_tokens',
          'completion_tokens',
          'guesser_ms',
          'analyst_ms',
          'duration_ms',
          'created_at',
          'completed_at',
        )) as Record<string, unknown>[];
      const llmCalls = await provenance.llmCallsOf(analyses.map((a) => Number(a['id'])));
      return {
        ...conversation,
        created_at: iso(conversation['created_at']),
        updated_at: iso(conversation['updated_at']),
        messages: messages.map((m) => ({ ...m, created_at: iso(m['created_at']) })),
        analyses: analyses.map((a) => ({
          ...a,
          llm_calls: llmCalls.get(Number(a['id'])) ?? [],
          created_at: iso(a['created_at']),
          completed_at: iso(a['completed_at']),
        })),
      };
    },

    /** Counts by channel, action and decision, failures by code, and latency of succeeded analyses. */
    async stats() {
      const grouped = async (column: string, where: Record<string, unknown>) =>
        Object.fromEntries(
          (
            (await knex('analyses')
              .where(where)
              .whereNotNull(column)
              .select(column)
              .count<{ n: number }[]>('* as n')
              .groupBy(column)) as Record<string, unknown>[]
          ).map((r) => [String(r[column]), Number(r['n'])]),
        );
      const outcomes = await grouped('outcome', {});
      const byChannel = await grouped('channel', { outcome: 'succeeded' });
      const byAction = await grouped('action', { outcome: 'succeeded' });
      const byDecision = await grouped('is_enough', { outcome: 'succeeded' });
      const failures = await grouped('error_code', { outcome: 'failed' });
      const latency = (
        await knex.raw(
          `select count(*)::int as n,
                  coalesce(avg(duration_ms), 0)::float8 as avg_ms,
                  coalesce(percentile_cont(0.5) within group (order by duration_ms), 0)::float8 as p50_ms,
                  coalesce(percentile_cont(0.95) within group (order by duration_ms), 0)::float8 as p95_ms,
                  coalesce(max(duration_ms), 0)::float8 as max_ms
             from analyses where outcome = 'succeeded'`,
        )
      ).rows[0] as { avg_ms: number; p50_ms: number; p95_ms: number; max_ms: number };
      return {
        analyses: {
          total: Object.values(outcomes).reduce((a, b) => a + b, 0),
          succeeded: outcomes['succeeded'] ?? 0,
          failed: outcomes['failed'] ?? 0,
          pending: outcomes['pending'] ?? 0,
        },
        by_channel: byChannel,
        by_action: byAction,
        by_decision: { enough: byDecision['true'] ?? 0, not_enough: byDecision['false'] ?? 0 },
        failures_by_code: failures,
        latency_ms: {
          avg: Math.round(latency.avg_ms),
          p50: Math.round(latency.p50_ms),
          p95: Math.round(latency.p95_ms),
          max: Math.round(latency.max_ms),
        },
      };
    },
  };
}
