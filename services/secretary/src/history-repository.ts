import type { Knex } from 'knex';
import type { Action, Channel } from '@workemon/contracts';
import type { Decision, DecisionContext, DecisionRecordedHook } from './decision.js';
import type { LlmCallRecord } from './llm-provenance.js';
import { createProvenanceRepository } from './provenance-repository.js';
import { classificationColumns, classificationFromRow } from './classification.js';
import type { SenderTrust } from './sender-trust.js';
import { MAX_REQUEST_CHARS } from './analyzer.js';

export type ConversationStatus = 'open' | 'awaiting_clarification' | 'answered' | 'escalated';

export type ClaimInput = {
  channel: Channel;
  sender: string;
  employeeId: number | undefined;
  department: string;
  position: string;
  text: string;
  messageId: string | undefined;
  threadKey: string | undefined;
  /** A pending question older than this no longer catches the sender's next message. */
  clarificationTtlMs: number;
  /**
   * A `pending` attempt whose heartbeat (`claimed_at`, renewed by `renewClaim` while it runs) is older than this
   * is presumed dead (its process crashed, or it could not record its outcome) and may be taken over.
   */
  leaseMs: number;
};

/** The caller owns the attempt and must finish it with recordDecision or recordFailure. */
export type OwnedAttempt = {
  kind: 'owner';
  conversationId: number;
  clarificationRounds: number;
  messageRowId: number;
  /** The message's `attempts` when this attempt claimed it: its fencing token against a later take-over. */
  attempt: number;
  analysisId: number;
  /** The full text to decide on (for a follow-up: earlier request, question, answer). */
  request: string;
};
export type Claim =
  | OwnedAttempt
  | { kind: 'answered'; decision: Decision }
  /** Another request with the same message_id is being analysed right now. */
  | { kind: 'busy' };

export type AnalysisFacts = {
  guesserIsEnough?: boolean;
  context?: string;
  analystIsEnough?: boolean;
  analystResponse?: string;
  proposedAction?: Action;
  provider?: string;
  model?: string;
  promptTokens?: number;
  completionTokens?: number;
  guesserMs?: number;
  analystMs?: number;
  durationMs: number;
  /** Provenance of each LLM service call made for this analysis (stored in analysis_llm_calls). */
  llmCalls?: LlmCallRecord[];
  llmCallsRecorded?: boolean;
  /** The verdict on the sender (analyses.sender_trust). */
  senderTrust?: SenderTrust;
};

const CLASSIFICATION_COLUMNS = ['category', 'confidence', 'no_reply'];
type ClassificationRow = { category: string | null; confidence: number | null; no_reply: boolean };

/** Marks a clarifying question shortened to fit a follow-up into MAX_REQUEST_CHARS. */
export const QUESTION_CUT_MARKER = '[…]';

/**
 * The seed's follow-up text: earlier request, the question asked, the user's answer, joined by spaces. The question
 * is the model's text, not the sender's: when the whole would pass MAX_REQUEST_CHARS, the question is shortened
 * (marked) first, so only the sender's own long texts can make a follow-up too long (413).
 */
export function joinFollowUp(earlier: string, question: string, answer: string): string {
  const [e, q, a] = [earlier.trim(), question.trim(), answer.trim()];
  const joined = `${e} ${q} ${a}`;
  if (joined.length <= MAX_REQUEST_CHARS) return joined;
  const room = MAX_REQUEST_CHARS - e.length - a.length - 2 - QUESTION_CUT_MARKER.length;
  if (room <= 0) return joined;
  return `${e} ${q.slice(0, room).trimEnd()}${QUESTION_CUT_MARKER} ${a}`;
}

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

export type HistoryRepository = ReturnType<typeof createHistoryRepository>;

/** Conversations, messages and analyses in Postgres: the idempotent claim of a message, its outcome, history. */
export function createHistoryRepository(knex: Knex) {
  const provenance = createProvenanceRepository(knex);
  async function storedDecision(db: Knex | Knex.Transaction, messageRowId: number): Promise<Decision | undefined> {
    const row = await db('analyses')
      .where({ message_id: messageRowId, outcome: 'succeeded' })
      .orderBy('id', 'desc')
      .first<
        { is_enough: boolean; request: string; action: Action; question: string; response: string } & ClassificationRow
      >('is_enough', 'request', 'action', 'question', 'response', ...CLASSIFICATION_COLUMNS);
    if (!row) return undefined;
    const { category, confidence, no_reply, ...decision } = row;
    return { ...decision, ...classificationFromRow({ category, confidence, no_reply }) };
  }

  /** The earlier request and the question still waiting for an answer in a conversation, if any. */
  async function pendingQuestion(trx: Knex, conversationId: number) {
    return trx('analyses')
      .where({ conversation_id: conversationId, outcome: 'succeeded', action: 'уточнить' })
      .orderBy('id', 'desc')
      .first<{ request: string; question: string } | undefined>('request', 'question');
  }

  async function claimExisting(
    trx: Knex.Transaction,
    existing: { id: number; conversation_id: number; state: string; claimed_at: Date | string; attempts: number },
    input: ClaimInput,
  ): Promise<Claim> {
    if (existing.state === 'answered') {
      const decision = await storedDecision(trx, existing.id);
      if (decision) return { kind: 'answered', decision };
    }
    const stale = new Date(existing.claimed_at).getTime() < Date.now() - input.leaseMs;
    if (existing.state === 'pending' && !stale) return { kind: 'busy' };
    // A failed (or abandoned) attempt is retried: this request takes it over, atomically against others.
    const taken = await trx('messages')
      .where({ id: existing.id, state: existing.state, attempts: existing.attempts })
      .update({ state: 'pending', claimed_at: trx.fn.now(), attempts: existing.attempts + 1 });
    if (taken === 0) return { kind: 'busy' };
    const previous = await trx('analyses')
      .where({ message_id: existing.id })
      .orderBy('id', 'desc')
      .first<{ request: string }>('request');
    const conversation = await trx('conversations')
      .where({ id: existing.conversation_id })
      .first<{ clarification_rounds: number }>('clarification_rounds');
    const request = previous?.request ?? input.text;
    const [analysis] = await trx('analyses')
      .insert({
        conversation_id: existing.conversation_id,
        message_id: existing.id,
        channel: input.channel,
        request,
        department: input.department,
        position: input.position,
      })
      .returning<{ id: number }[]>('id');
    return {
      kind: 'owner',
      conversationId: existing.conversation_id,
      clarificationRounds: conversation?.clarification_rounds ?? 0,
      messageRowId: existing.id,
      attempt: existing.attempts + 1,
      analysisId: analysis!.id,
      request,
    };
  }

  /** Finds the conversation this message continues: same thread_key, or a fresh pending question. */
  async function findContinued(trx: Knex, input: ClaimInput, sender: string) {
    type Row = { id: number; status: ConversationStatus; clarification_rounds: number };
    if (input.threadKey) {
      const byThread = await trx('conversations')
        .where({ channel: input.channel, thread_key: input.threadKey })
        .orderBy('id', 'desc')
        .first<Row | undefined>('id', 'status', 'clarification_rounds');
      if (byThread) return byThread;
    }
    return trx('conversations')
      .where({ channel: input.channel, sender, status: 'awaiting_clarification' })
      .where('updated_at', '>', new Date(Date.now() - input.clarificationTtlMs))
      .orderBy('id', 'desc')
      .first<Row | undefined>('id', 'status', 'clarification_rounds');
  }

  /**
   * Stores a new message in one statement (conversation created or touched, message, pending analysis): a
   * round trip per request matters at hundreds of requests per second. When a concurrent duplicate holds the
   * message_id, the message insert does nothing, and so does the analysis insert.
   */
  async function claimNew(db: Knex, input: ClaimInput): Promise<Claim> {
    const sender = normalizeSender(input.sender);
    const continued = await findContinued(db, input, sender);
    let rounds = 0;
    let request = input.text;
    if (continued?.status === 'awaiting_clarification') {
      rounds = continued.clarification_rounds;
      const pending = await pendingQuestion(db, continued.id);
      // The seed's second example: earlier request, the question asked, the user's answer.
      if (pending) request = joinFollowUp(pending.request, pending.question, input.text);
    }
    const conversation = continued
      ? db('conversations')
          .where({ id: continued.id })
          .update({
            updated_at: db.fn.now(),
            ...(continued.status === 'awaiting_clarification' ? {} : { clarification_rounds: 0 }),
            ...(input.threadKey ? { thread_key: input.threadKey } : {}),
          })
          .returning('id')
      : db('conversations')
          .insert({
            channel: input.channel,
            sender,
            employee_id: input.employeeId ?? null,
            thread_key: input.threadKey ?? null,
          })
          .returning('id');
    const result = (await db
      .with('c', conversation)
      .with(
        'm',
        db.raw(
          `insert into messages (conversation_id, channel, role, text, message_id, state, claimed_at)
           select id, cast(? as text), 'user', cast(? as text), cast(? as text), 'pending', now() from c
           on conflict (channel, message_id) do nothing
           returning id, conversation_id`,
          [input.channel, input.text, input.messageId ?? null],
        ),
      )
      .with(
        'a',
        db.raw(
          `insert into analyses (conversation_id, message_id, channel, request, department, position)
           select conversation_id, id, cast(? as text), cast(? as text), cast(? as text), cast(? as text) from m
           returning id`,
          [input.channel, request, input.department, input.position],
        ),
      )
      .select(
        db.raw('(select id from c) as conversation_id'),
        db.raw('(select id from m) as message_row_id'),
        db.raw('(select id from a) as analysis_id'),
      )) as { conversation_id: number; message_row_id: number | null; analysis_id: number | null }[];
    const row = result[0]!;
    if (row.message_row_id === null || row.analysis_id === null) {
      // Lost the race for this message_id: drop the conversation this statement created for it.
      if (!continued) {
        await db('conversations')
          .where({ id: row.conversation_id })
          .whereNotExists(db('messages').where('conversation_id', row.conversation_id))
          .delete();
      }
      return { kind: 'busy' };
    }
    return {
      kind: 'owner',
      conversationId: row.conversation_id,
      clarificationRounds: rounds,
      messageRowId: row.message_row_id,
      // The column's default: the first attempt.
      attempt: 1,
      analysisId: row.analysis_id,
      request,
    };
  }

  return {
    ...provenance,

    /**
     * Stores an inbound message (and the pending analysis of it) before any LLM is called, or finds it when
     * its message_id was seen before: answered → the stored decision; failed or abandoned → taken over for a
     * retry; being analysed → busy. The unique (channel, message_id) index settles concurrent duplicates.
     */
    async claim(input: ClaimInput): Promise<Claim> {
      if (input.messageId) {
        const existing = await knex('messages')
          .where({ channel: input.channel, message_id: input.messageId })
          .first<
            | { id: number; conversation_id: number; state: string; claimed_at: Date | string; attempts: number }
            | undefined
          >('id', 'conversation_id', 'state', 'claimed_at', 'attempts');
        if (existing) return knex.transaction((trx) => claimExisting(trx, existing, input));
      }
      return claimNew(knex, input);
    },

    /**
     * The owner's heartbeat: moves the message's `claimed_at` to now while the attempt still owns it (state
     * `pending`, same `attempts`). False when another attempt took it over.
     */
    async renewClaim(attempt: OwnedAttempt): Promise<boolean> {
      const renewed = await knex('messages')
        .where({ id: attempt.messageRowId, state: 'pending', attempts: attempt.attempt })
        .update({ claimed_at: knex.fn.now() });
      return renewed > 0;
    },

    /**
     * Finishes an attempt: the analysis, the answer as a message, the conversation's state, atomically. False
     * (and nothing written) when the attempt no longer owns the message: its lease ran out and another took over.
     */
    async recordDecision(
      attempt: OwnedAttempt,
      decision: Decision,
      facts: AnalysisFacts,
      conversation: { status: ConversationStatus; clarificationRounds: number },
      context: DecisionContext,
      onRecorded?: DecisionRecordedHook,
    ): Promise<boolean> {
      const write = async (db: Knex): Promise<boolean> => {
        // One statement: the analysis, the message's state, the answer as a message and the conversation's state
        // (a round trip per request matters at hundreds of requests per second). Every part waits on `m`, the
        // message still pending under this attempt.
        const owned = db.select(1).from('m');
        const updated = await db
          .with(
            'm',
            db('messages')
              .where({ id: attempt.messageRowId, state: 'pending', attempts: attempt.attempt })
              .update({ state: 'answered' })
              .returning('id'),
          )
          .with(
            'a',
            db('analyses')
              .where({ id: attempt.analysisId })
              .whereExists(owned)
              .update({
                outcome: 'succeeded',
                is_enough: decision.is_enough,
                action: decision.action,
                question: decision.question,
                response: decision.response,
                escalated: context.escalated,
                ...classificationColumns(decision),
                guesser_is_enough: facts.guesserIsEnough ?? null,
                context: facts.context ?? null,
                analyst_is_enough: facts.analystIsEnough ?? null,
                analyst_response: facts.analystResponse ?? null,
                proposed_action: facts.proposedAction ?? null,
                provider: facts.provider ?? null,
                model: facts.model ?? null,
                prompt_tokens: facts.promptTokens ?? null,
                completion_tokens: facts.completionTokens ?? null,
                guesser_ms: facts.guesserMs ?? null,
                analyst_ms: facts.analystMs ?? null,
                duration_ms: facts.durationMs,
                ...(facts.senderTrust ? { sender_trust: JSON.stringify(facts.senderTrust) } : {}),
                completed_at: db.fn.now(),
              })
              .returning('id'),
          )
          .with(
            'r',
            db.raw(
              `insert into messages (conversation_id, channel, role, text)
               select cast(? as integer), cast(? as text), 'assistant', cast(? as text) from m
               returning id`,
              [attempt.conversationId, context.channel, decision.question || decision.response],
            ),
          )
          .table('conversations')
          .where({ id: attempt.conversationId })
          .whereExists(owned)
          .update({
            status: conversation.status,
            clarification_rounds: conversation.clarificationRounds,
            updated_at: db.fn.now(),
          });
        return updated > 0;
      };
      if (!onRecorded) return write(knex);
      return knex.transaction(async (trx) => {
        if (!(await write(trx))) return false;
        await onRecorded(trx, { decision, context });
        return true;
      });
    },

    /** Marks an attempt failed with its error code; the message stays retryable with the same message_id. */
    async recordFailure(
      attempt: OwnedAttempt,
      failure: { code: string; message: string },
      facts: AnalysisFacts,
    ): Promise<void> {
      await knex.transaction(async (trx) => {
        await trx('analyses')
          .where({ id: attempt.analysisId })
          .update({
            outcome: 'failed',
            error_code: failure.code,
            error_message: failure.message.slice(0, 500),
            guesser_is_enough: facts.guesserIsEnough ?? null,
            context: facts.context ?? null,
            // The guesser's tokens were spent even when the analyst then failed.
            provider: facts.provider ?? null,
            model: facts.model ?? null,
            prompt_tokens: facts.promptTokens ?? null,
            completion_tokens: facts.completionTokens ?? null,
            guesser_ms: facts.guesserMs ?? null,
            analyst_ms: facts.analystMs ?? null,
            duration_ms: facts.durationMs,
            completed_at: trx.fn.now(),
          });
        // Only while still the owner: a superseded attempt must not hand the message to yet another attempt.
        await trx('messages')
          .where({ id: attempt.messageRowId, state: 'pending', attempts: attempt.attempt })
          .update({ state: 'failed' });
      });
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
