import type { Knex } from 'knex';
import pg from 'pg';
import { errors } from '@workemon/service-kit';
import { ACTION_CLARIFY, type Action, type Channel } from '@workemon/contracts';
import { runPrepared, withGenericPlan, type PreparedStatement } from './database.js';
import type { Decision, DecisionContext, DecisionRecordedHook } from './decision.js';
import type { SenderKeys, SenderRow } from './directory-repository.js';
import type { LlmCallRecord } from './llm-provenance.js';
import { classificationColumns, classificationFromRow } from './classification.js';
import type { SenderTrust } from './sender-trust.js';
import { MAX_REQUEST_CHARS } from './analyzer.js';
import { createBudgetDrawer, type RateLimitEntry, type RateLimitVerdict } from './rate-limits/rate-limit-store.js';

// The write path of the history: the idempotent claim of an inbound message and the outcome of its analysis.
// The read model (GET /conversations, /stats, what the action hooks read) is history-read-model.ts.
//
// Clocks: every time comparison of the history uses the DATABASE clock (`now()` of the statement), never the
// app's: `claimed_at` and `updated_at` are written with `now()`, and the lease (ANALYSIS_LEASE) and the
// clarification window (CLARIFICATION_TTL) are compared against `now()` in SQL. Replicas whose clocks disagree
// therefore agree on which attempt is stale and which question is still open.
//
// Round trips of one analysed request (issue 14, "at most four"; test/round-trips.test.ts counts them):
//   1. lookupRequest: the sender (employee + department), the message_id seen before (and its stored answer),
//      the conversation it continues with its pending question, the rules' version, the company domains, and
//      beside it, on another connection at the same time, the draw from the caller's /analyze-request rate limits
//      (rate-limit-store.ts createBudgetDrawer; draws that arrive together share one call);
//   2. claim: conversation, message and pending analysis inserted in one statement (a failed attempt retried:
//      its take-over, also one statement);
//   3. recordDecision: the LLM calls' provenance, the analysis, the answer, the message's and the
//      conversation's state in one statement — no BEGIN/COMMIT unless a hook (an action's outbox row, matched
//      rules) writes in the same transaction;
//   (4. the routing rules, only when another process changed them since this one last read them.)
// Each is a named prepared statement (database.ts runPrepared).

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
  /**
   * The namespace of the caller's conversations: the client key's `Principal.keyId` for a client key; undefined
   * (the shared namespace) for service and admin keys and keyless loopback callers. Only a conversation of the
   * same namespace is continued, and only there is a message_id the caller's own (docs/secretary.md).
   */
  clientKeyId?: string;
  /** A pending question older than this (database clock) no longer catches the sender's next message. */
  clarificationTtlMs: number;
  /**
   * A `pending` attempt whose heartbeat (`claimed_at`, renewed by `renewClaim` while it runs) is older than this
   * (database clock) is presumed dead (its process crashed, or it could not record its outcome) and may be taken
   * over.
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

/** What the database held about a message before it was claimed (lookupRequest). */
export type PriorState = {
  /** The message with the same (channel, message_id) in the caller's namespace, when it was seen before. */
  existing?: {
    id: number;
    conversationId: number;
    state: string;
    attempts: number;
    /** Its heartbeat is older than the lease (database clock). */
    stale: boolean;
    /**
     * Its conversation is the caller's: with the same (normalised) sender or the same thread_key (a mail thread
     * is shared by design). Otherwise the message_id is another sender's in the caller's own namespace and
     * `claim` refuses it (403). (The namespace itself always matches: a message_id is looked up in the caller's
     * namespace only, and a message's `message_namespace` is its conversation's client key.)
     */
    own: boolean;
    /** The stored decision, when it was answered. */
    answered?: Decision;
  };
  /**
   * The conversation this message continues, in the caller's namespace: same thread_key, or a question still open
   * (database clock).
   */
  continued?: { id: number; status: ConversationStatus; clarificationRounds: number };
  /** The continued conversation's earlier request and the question that waits for an answer. */
  pending?: { request: string; question: string };
};

/** lookupRequest's answer: the prior state, and what the request path needs besides, read in the same statement. */
export type RequestLookup = {
  prior: PriorState;
  /** The sender's directory row (with the department's columns); undefined: not in the directory. */
  sender?: SenderRow;
  /** routing_rules_version.version (rules/rule-cache.ts). */
  rulesVersion?: number;
  /** The distinct domains of the directory's email addresses, when asked for. */
  emailDomains?: string[];
  /** The draw from `LookupInput.budget`'s budgets (nothing taken when refused); absent when none was asked. */
  rateLimit?: RateLimitVerdict;
};

export type LookupInput = Pick<
  ClaimInput,
  'channel' | 'sender' | 'messageId' | 'threadKey' | 'clarificationTtlMs' | 'leaseMs' | 'clientKeyId'
> & {
  /** The sender's keys; a preferred match (a Telegram id the communicator vouches for) wins over the rest. */
  senderKeys?: SenderKeys;
  preferredSenderKeys?: SenderKeys;
  withEmailDomains?: boolean;
  /** Rate-limit budgets to draw one unit from, all or nothing, beside the lookup (rate-limit-store.ts). */
  budget?: readonly RateLimitEntry[];
};

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

const normalizeSender = (sender: string) => sender.trim().toLowerCase();

// $1 channel, $2 message_id, $3 lease ms, $4 thread_key, $5 normalised sender, $6 clarification TTL ms,
// $7–$10 the preferred sender keys, $11–$14 the sender keys (email, username, telegram username, telegram id),
// $15 whether to list the email domains, $16 the action whose analysis holds a pending question (ACTION_CLARIFY),
// $17 the caller's namespace (ClaimInput.clientKeyId; null: the shared one, stored as '' in
// messages.message_namespace).
// A message_id is looked up in the caller's namespace only (migration 340_message_namespace): another namespace's
// use of the same id is neither found nor refused. Its parameters are opaque to the planner (withGenericPlan), so
// the server keeps one generic plan rather than planning each lookup for its mostly-null values.
const LOOKUP_REQUEST: PreparedStatement = {
  name: 'workemon_lookup_request',
  text: withGenericPlan(`
with msg as (
  select m.id, m.conversation_id, m.state, m.attempts,
         m.claimed_at < now() - cast($3 as float8) * interval '1 millisecond' as stale,
         (c.client_key_id is not distinct from cast($17 as text)
          and (c.sender = cast($5 as text) or c.thread_key = cast($4 as text))) is true as own
    from messages m join conversations c on c.id = m.conversation_id
   where m.channel = cast($1 as text) and m.message_namespace = coalesce(cast($17 as text), '')
     and m.message_id = cast($2 as text)
), answered as (
  select a.is_enough, a.request, a.action, a.question, a.response, a.category, a.confidence, a.no_reply
    from analyses a join msg on msg.id = a.message_id and msg.state = 'answered'
   where a.outcome = 'succeeded' order by a.id desc limit 1
), conv as (
  select id, status, clarification_rounds from (
    (select id, status, clarification_rounds, 0 as rank from conversations
      where channel = cast($1 as text) and thread_key = cast($4 as text)
        and client_key_id is not distinct from cast($17 as text) order by id desc limit 1)
    union all
    (select id, status, clarification_rounds, 1 as rank from conversations
      where channel = cast($1 as text) and sender = cast($5 as text) and status = 'awaiting_clarification'
        and client_key_id is not distinct from cast($17 as text)
        and updated_at > now() - cast($6 as float8) * interval '1 millisecond'
      order by id desc limit 1)
  ) found order by rank limit 1
), pending as (
  select a.request, a.question
    from analyses a join conv on conv.id = a.conversation_id and conv.status = 'awaiting_clarification'
   where a.outcome = 'succeeded' and a.action = cast($16 as text) order by a.id desc limit 1
), emp as (
  select e.id, e.username, e.full_name, e.email, e.telegram_username, e.telegram_id, e.position,
         e.created_at::text as created_at, e.updated_at::text as updated_at, d.name as department,
         d.mailing_list, d.jira_project_key, d.telegram_contact, d.persona, d.persona_sha256,
         d.created_at::text as department_created_at, d.updated_at::text as department_updated_at
    from employees e left join departments d on d.id = e.department_id
   where e.email = cast($7 as text) or e.username = cast($8 as text)
      or e.telegram_username = cast($9 as text) or e.telegram_id = cast($10 as text)
      or e.email = cast($11 as text) or e.username = cast($12 as text)
      or e.telegram_username = cast($13 as text) or e.telegram_id = cast($14 as text)
   order by (e.email = cast($7 as text) or e.username = cast($8 as text)
             or e.telegram_username = cast($9 as text) or e.telegram_id = cast($10 as text)) is true desc
   limit 1
)
select case when msg.id is not null or conv.id is not null
            then json_build_object('msg', row_to_json(msg), 'answered', row_to_json(answered),
                                   'conv', row_to_json(conv), 'pending', row_to_json(pending)) end as prior,
       case when emp.id is not null then row_to_json(emp) end as sender,
       (select version from routing_rules_version where id = 1)::float8 as rules_version,
       case when cast($15 as boolean)
            then array(select distinct split_part(email, '@', 2) from employees where email is not null) end
         as email_domains
  from (select 1) as one
  left join msg on true left join answered on true left join conv on true left join pending on true
  left join emp on true`),
};

/** The lookup's row: six columns, the prior state and the sender each one JSON value (null when absent). */
type LookupRow = {
  prior: {
    msg: {
      id: number;
      conversation_id: number;
      state: string;
      attempts: number;
      stale: boolean | null;
      own: boolean;
    } | null;
    answered: {
      is_enough: boolean | null;
      request: string;
      action: Action;
      question: string;
      response: string;
      category: string | null;
      confidence: number | null;
      no_reply: boolean;
    } | null;
    conv: { id: number; status: ConversationStatus; clarification_rounds: number } | null;
    pending: { request: string | null; question: string } | null;
  } | null;
  /** The sender's directory row; its timestamps as PostgreSQL's text (read back by readSenderRow). */
  sender: (Omit<SenderRow, SenderTimestamp> & Record<SenderTimestamp, string>) | null;
  rules_version: number | null;
  email_domains: string[] | null;
};

type SenderTimestamp = 'created_at' | 'updated_at' | 'department_created_at' | 'department_updated_at';

const NO_KEYS: SenderKeys = { email: null, username: null, telegramUsername: null, telegramId: null };
const keyValues = (k: SenderKeys) => [k.email, k.username, k.telegramUsername, k.telegramId];
// pg's own parser of timestamptz text: the sender's timestamps read as a separate column would have been.
const parseTimestamptz = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, 'text') as (text: string) => Date;

/**
 * The sender's row out of the lookup's JSON (row_to_json of the directory row): its timestamps, sent as
 * PostgreSQL's text output, become the Dates pg makes of a timestamptz column; a department's are null without one.
 */
function readSenderRow(json: NonNullable<LookupRow['sender']>): SenderRow {
  const at = (text: string | null) => (text === null ? text : parseTimestamptz(text));
  return {
    ...json,
    created_at: at(json.created_at)!,
    updated_at: at(json.updated_at)!,
    department_created_at: at(json.department_created_at)!,
    department_updated_at: at(json.department_updated_at)!,
  };
}

function storedDecision(answered: NonNullable<LookupRow['prior']>['answered']): Decision | undefined {
  if (!answered || answered.is_enough === null) return undefined;
  return {
    is_enough: answered.is_enough,
    request: answered.request,
    action: answered.action,
    question: answered.question,
    response: answered.response,
    ...classificationFromRow(answered),
  };
}

/** The PriorState of a lookup's `prior` column (null: neither a message nor a conversation was found). */
function toPriorState(prior: LookupRow['prior']): PriorState {
  if (!prior) return {};
  const { msg, conv, pending } = prior;
  return {
    ...(msg
      ? {
          existing: {
            id: msg.id,
            conversationId: msg.conversation_id,
            state: msg.state,
            attempts: msg.attempts,
            stale: msg.stale === true,
            own: msg.own === true,
            answered: storedDecision(prior.answered),
          },
        }
      : {}),
    ...(conv
      ? { continued: { id: conv.id, status: conv.status, clarificationRounds: conv.clarification_rounds } }
      : {}),
    ...(pending && pending.request !== null
      ? { pending: { request: pending.request, question: pending.question } }
      : {}),
  };
}

// The message, the pending analysis and the conversation (created, or touched when continued), in one statement.
// When a concurrent duplicate holds the message_id in the same namespace (the conversation's client key; '' for
// the shared one), the message insert does nothing, and so does the analysis.
const claimTail = `
, m as (
  insert into messages (conversation_id, channel, role, text, message_id, state, claimed_at, message_namespace)
  select id, cast($1 as text), 'user', cast($2 as text), cast($3 as text), 'pending', now(),
         coalesce(client_key_id, '') from c
  on conflict (channel, message_namespace, message_id) do nothing
  returning id, conversation_id
), a as (
  insert into analyses (conversation_id, message_id, channel, request, department, position)
  select conversation_id, id, cast($1 as text), cast($4 as text), cast($5 as text), cast($6 as text) from m
  returning id
)
select (select id from c) as conversation_id, (select id from m) as message_row_id, (select id from a) as analysis_id`;
// $1 channel, $2 text, $3 message_id, $4 request, $5 department, $6 position, $7 sender, $8 employee id,
// $9 thread_key, $10 the client key's namespace (ClaimInput.clientKeyId; null: shared).
const CLAIM_NEW: PreparedStatement = {
  name: 'workemon_claim_new',
  text: `with c as (
  insert into conversations (channel, sender, employee_id, thread_key, client_key_id)
  values (cast($1 as text), cast($7 as text), cast($8 as integer), cast($9 as text), cast($10 as text))
  returning id, client_key_id
)${claimTail}`,
};
// $7 the conversation's id, $8 whether it awaits a clarification (keeps its rounds), $9 thread_key (kept if null).
const CLAIM_CONTINUED: PreparedStatement = {
  name: 'workemon_claim_continued',
  text: `with c as (
  update conversations
     set updated_at = now(),
         clarification_rounds = case when cast($8 as boolean) then clarification_rounds else 0 end,
         thread_key = coalesce(cast($9 as text), thread_key)
   where id = cast($7 as integer)
  returning id, client_key_id
)${claimTail}`,
};

// A failed (or abandoned) attempt is retried: this request takes the message over, atomically against others
// (the update is fenced by state and attempts), with a new pending analysis of the stored request, in one
// statement. $1 message row, $2 its state and $3 attempts as looked up, $4 channel, $5 the text (when no
// analysis was stored), $6 department, $7 position. No row: another request took it first.
const TAKE_OVER: PreparedStatement = {
  name: 'workemon_take_over',
  text: `
with m as (
  update messages set state = 'pending', claimed_at = now(), attempts = attempts + 1
   where id = cast($1 as integer) and state = cast($2 as text) and attempts = cast($3 as integer)
  returning id, conversation_id
), a as (
  insert into analyses (conversation_id, message_id, channel, request, department, position)
  select m.conversation_id, m.id, cast($4 as text),
         coalesce((select request from analyses where message_id = m.id order by id desc limit 1), cast($5 as text)),
         cast($6 as text), cast($7 as text)
    from m
  returning id, request
)
select a.id as analysis_id, a.request,
       (select clarification_rounds from conversations c join m on c.id = m.conversation_id) as clarification_rounds
  from a`,
};

// The LLM calls' provenance rows, from a JSON array (`$n`): written whatever else the statement does, once. An
// attempt writes all the calls of its analysis in one statement, so an analysis that has provenance rows already
// got them from an earlier run of the same statement whose COMMIT's answer was lost (the connection dropped after
// it, DATABASE_QUERY_TIMEOUT): the retry adds no second copy (`analysis_llm_calls (analysis_id)` is indexed).
const insertLlmCalls = (param: string) => `
  insert into analysis_llm_calls (analysis_id, service, provider, model, prompt_name, prompt_sha256, persona_sha256,
                                  settings, input_tokens, output_tokens, latency_ms, duration_ms)
  select analysis_id, service, provider, model, prompt_name, prompt_sha256, persona_sha256,
         settings, input_tokens, output_tokens, latency_ms, duration_ms
    from jsonb_to_recordset(cast(${param} as jsonb)) as x(analysis_id integer, service text, provider text,
         model text, prompt_name text, prompt_sha256 text, persona_sha256 text, settings jsonb,
         input_tokens integer, output_tokens integer, latency_ms integer, duration_ms integer)
   where not exists (select 1 from analysis_llm_calls p where p.analysis_id = x.analysis_id)
  returning id`;

// Every part but the provenance waits on `m`, the message still pending under this attempt.
// $1 message row, $2 attempt, $3 analysis, $4 conversation, $5 channel, $6 answer text, $7 status,
// $8 clarification rounds, $9 the analysis columns as JSON, $10 the LLM calls as JSON, $11 the decision's audit
// rows as JSON (audit-repository.ts auditRowOf).
const RECORD_DECISION: PreparedStatement = {
  name: 'workemon_record_decision',
  text: `
with calls as (${insertLlmCalls('$10')}
), m as (
  update messages set state = 'answered'
   where id = cast($1 as integer) and state = 'pending' and attempts = cast($2 as integer)
  returning id
), f as (
  select * from jsonb_to_record(cast($9 as jsonb)) as x(is_enough boolean, action text, question text,
    response text, escalated boolean, category text, confidence float8, no_reply boolean,
    guesser_is_enough boolean, context text, analyst_is_enough boolean, analyst_response text,
    proposed_action text, provider text, model text, prompt_tokens integer, completion_tokens integer,
    guesser_ms integer, analyst_ms integer, duration_ms integer, sender_trust jsonb)
), a as (
  update analyses set outcome = 'succeeded', is_enough = f.is_enough, action = f.action, question = f.question,
         response = f.response, escalated = f.escalated, category = f.category, confidence = f.confidence,
         no_reply = f.no_reply, guesser_is_enough = f.guesser_is_enough, context = f.context,
         analyst_is_enough = f.analyst_is_enough, analyst_response = f.analyst_response,
         proposed_action = f.proposed_action, provider = f.provider, model = f.model,
         prompt_tokens = f.prompt_tokens, completion_tokens = f.completion_tokens, guesser_ms = f.guesser_ms,
         analyst_ms = f.analyst_ms, duration_ms = f.duration_ms,
         sender_trust = coalesce(f.sender_trust, analyses.sender_trust), completed_at = now()
    from f
   where analyses.id = cast($3 as integer) and exists (select 1 from m)
  returning analyses.id
), r as (
  insert into messages (conversation_id, channel, role, text, message_namespace)
  select cast($4 as integer), cast($5 as text), 'assistant', cast($6 as text),
         coalesce((select client_key_id from conversations where id = cast($4 as integer)), '')
    from m
  returning id
), audit as (
  insert into audit_events (event_id, channel, direction, outcome, reason, message_id, request_id,
    conversation_id, sender, recipient, subject, detail, dry_run, occurred_at, event_provider)
  select x.event_id, x.channel, x.direction, x.outcome, x.reason, x.message_id, x.request_id, x.conversation_id,
         x.sender, x.recipient, x.subject, x.detail, coalesce(x.dry_run, false), coalesce(x.occurred_at, now()),
         x.event_provider
    from jsonb_to_recordset(cast($11 as jsonb)) as x(event_id text, channel text, direction text, outcome text,
      reason text, message_id text, request_id text, conversation_id integer, sender text, recipient text,
      subject text, detail text, dry_run boolean, occurred_at timestamptz, event_provider text)
   where exists (select 1 from m)
  on conflict (event_id) do nothing
  returning id
)
update conversations set status = cast($7 as text), clarification_rounds = cast($8 as integer), updated_at = now()
 where id = cast($4 as integer) and exists (select 1 from m)
returning id`,
};

// $1 analysis, $2 message row, $3 attempt, $4 the failure's columns as JSON, $5 the LLM calls as JSON.
const RECORD_FAILURE: PreparedStatement = {
  name: 'workemon_record_failure',
  text: `
with calls as (${insertLlmCalls('$5')}
), f as (
  select * from jsonb_to_record(cast($4 as jsonb)) as x(error_code text, error_message text,
    guesser_is_enough boolean, context text, provider text, model text, prompt_tokens integer,
    completion_tokens integer, guesser_ms integer, analyst_ms integer, duration_ms integer)
), a as (
  update analyses set outcome = 'failed', error_code = f.error_code, error_message = f.error_message,
         guesser_is_enough = f.guesser_is_enough, context = f.context, provider = f.provider, model = f.model,
         prompt_tokens = f.prompt_tokens, completion_tokens = f.completion_tokens, guesser_ms = f.guesser_ms,
         analyst_ms = f.analyst_ms, duration_ms = f.duration_ms, completed_at = now()
    from f
   where analyses.id = cast($1 as integer) and analyses.outcome is distinct from 'succeeded'
  returning analyses.id
)
update messages set state = 'failed'
 where id = cast($2 as integer) and state = 'pending' and attempts = cast($3 as integer)
returning id`,
};

// Whether RECORD_DECISION of this attempt committed: its analysis succeeded and the message is answered under it.
// $1 message row, $2 attempt, $3 analysis.
const DECISION_RECORDED: PreparedStatement = {
  name: 'workemon_decision_recorded',
  text: `select 1 from messages, analyses
          where messages.id = cast($1 as integer) and messages.state = 'answered'
            and messages.attempts = cast($2 as integer)
            and analyses.id = cast($3 as integer) and analyses.outcome = 'succeeded'`,
};

const RENEW_CLAIM: PreparedStatement = {
  name: 'workemon_renew_claim',
  text: `update messages set claimed_at = now()
          where id = cast($1 as integer) and state = 'pending' and attempts = cast($2 as integer)
         returning id`,
};

/** Pairs of a camelCase field and its snake_case column (`promptSha256` → `prompt_sha256`), computed once. */
function columnsFor<K extends string>(fields: readonly K[]): readonly (readonly [K, string])[] {
  return fields.map((field) => [field, field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] as const);
}

/** Sets on `row` each field of `source` under its column, a missing value as null; answers `row`. */
function assignColumns<K extends string>(
  row: Record<string, unknown>,
  source: Partial<Record<K, unknown>>,
  columns: readonly (readonly [K, string])[],
): Record<string, unknown> {
  for (const [field, column] of columns) row[column] = source[field] ?? null;
  return row;
}

// The columns of analysis_llm_calls the statements above take from an LlmCallRecord.
const LLM_CALL_COLUMNS = columnsFor<keyof LlmCallRecord>([
  'service',
  'provider',
  'model',
  'promptName',
  'promptSha256',
  'personaSha256',
  'settings',
  'inputTokens',
  'outputTokens',
  'latencyMs',
  'durationMs',
]);
// The LLM-side columns an analysis keeps whatever its outcome.
const FACT_COLUMNS = columnsFor<keyof AnalysisFacts>([
  'guesserIsEnough',
  'context',
  'provider',
  'model',
  'promptTokens',
  'completionTokens',
  'guesserMs',
  'analystMs',
  'durationMs',
]);
// The analyst's columns, kept only with a decision.
const ANALYST_COLUMNS = columnsFor<keyof AnalysisFacts>([
  'analystIsEnough',
  'analystResponse',
  'proposedAction',
  'senderTrust',
]);

/** The provenance rows of an analysis as the statements above take them (a JSON array). */
function llmCallsJson(analysisId: number, calls: readonly LlmCallRecord[]): string {
  if (calls.length === 0) return '[]';
  return JSON.stringify(calls.map((c) => assignColumns({ analysis_id: analysisId }, c, LLM_CALL_COLUMNS)));
}

/** The analysis columns a decision sets, as the record statement's JSON parameter ($9). */
function decisionColumnsJson(decision: Decision, facts: AnalysisFacts, context: DecisionContext): string {
  const row = assignColumns(
    {
      is_enough: decision.is_enough,
      action: decision.action,
      question: decision.question,
      response: decision.response,
      escalated: context.escalated,
      ...classificationColumns(decision),
    },
    facts,
    FACT_COLUMNS,
  );
  return JSON.stringify(assignColumns(row, facts, ANALYST_COLUMNS));
}

export type HistoryWriteRepository = ReturnType<typeof createHistoryWriteRepository>;

/**
 * The write path of conversations, messages and analyses: the idempotent claim of a message before any LLM is
 * called, its heartbeat, and its outcome. Every statement of the request path, a take-over of a failed attempt
 * included, is a prepared statement; only the clean-up after a lost race uses knex.
 */
export function createHistoryWriteRepository(knex: Knex) {
  const drawer = createBudgetDrawer(knex);
  async function claimExisting(existing: NonNullable<PriorState['existing']>, input: ClaimInput): Promise<Claim> {
    const [row] = await runPrepared<{ analysis_id: number; request: string; clarification_rounds: number | null }>(
      knex,
      TAKE_OVER,
      [existing.id, existing.state, existing.attempts, input.channel, input.text, input.department, input.position],
    );
    if (!row) return { kind: 'busy' };
    return {
      kind: 'owner',
      conversationId: existing.conversationId,
      clarificationRounds: row.clarification_rounds ?? 0,
      messageRowId: existing.id,
      attempt: existing.attempts + 1,
      analysisId: row.analysis_id,
      request: row.request,
    };
  }

  async function claimNew(input: ClaimInput, prior: PriorState): Promise<Claim> {
    const { continued, pending } = prior;
    const awaiting = continued?.status === 'awaiting_clarification';
    // The seed's second example: earlier request, the question asked, the user's answer.
    const request = awaiting && pending ? joinFollowUp(pending.request, pending.question, input.text) : input.text;
    const values = [
      input.channel,
      input.text,
      input.messageId ?? null,
      request,
      input.department,
      input.position,
      ...(continued
        ? [continued.id, awaiting, input.threadKey ?? null]
        : [
            normalizeSender(input.sender),
            input.employeeId ?? null,
            input.threadKey ?? null,
            input.clientKeyId ?? null,
          ]),
    ];
    const [row] = await runPrepared<{
      conversation_id: number;
      message_row_id: number | null;
      analysis_id: number | null;
    }>(knex, continued ? CLAIM_CONTINUED : CLAIM_NEW, values);
    if (row!.message_row_id === null || row!.analysis_id === null) {
      // Lost the race for this message_id: drop the conversation this statement created for it.
      if (!continued) {
        await knex('conversations')
          .where({ id: row!.conversation_id })
          .whereNotExists(knex('messages').where('conversation_id', row!.conversation_id))
          .delete();
      }
      return { kind: 'busy' };
    }
    return {
      kind: 'owner',
      conversationId: row!.conversation_id,
      clarificationRounds: awaiting ? continued.clarificationRounds : 0,
      messageRowId: row!.message_row_id,
      // The column's default: the first attempt.
      attempt: 1,
      analysisId: row!.analysis_id,
      request,
    };
  }

  async function lookupRequest(input: LookupInput): Promise<RequestLookup> {
    const values = [
      input.channel,
      input.messageId ?? null,
      input.leaseMs,
      input.threadKey ?? null,
      normalizeSender(input.sender),
      input.clarificationTtlMs,
      ...keyValues(input.preferredSenderKeys ?? NO_KEYS),
      ...keyValues(input.senderKeys ?? NO_KEYS),
      input.withEmailDomains === true,
      ACTION_CLARIFY,
      input.clientKeyId ?? null,
    ];
    // The budget is drawn beside the read, on its own connection: the draw holds its rows' locks only for its own
    // short call, and a draw already running for the same budgets takes this one with it (createBudgetDrawer).
    const [[row], rateLimit] = await Promise.all([
      runPrepared<LookupRow>(knex, LOOKUP_REQUEST, values),
      input.budget?.length ? drawer.draw(input.budget) : undefined,
    ]);
    return {
      prior: toPriorState(row!.prior),
      ...(row!.sender ? { sender: readSenderRow(row!.sender) } : {}),
      ...(row!.rules_version !== null ? { rulesVersion: row!.rules_version } : {}),
      ...(row!.email_domains ? { emailDomains: row!.email_domains.filter(Boolean) } : {}),
      ...(rateLimit ? { rateLimit } : {}),
    };
  }

  return {
    /**
     * One statement at the start of a request: what the database holds about this message (PriorState), and
     * with it the sender's directory row, the routing rules' version and (when asked) the company's email
     * domains, so the request path needs no further reads.
     */
    lookupRequest,

    /**
     * Stores an inbound message (and the pending analysis of it) before any LLM is called, or finds it when
     * its message_id was seen before: answered → the stored decision; failed or abandoned → taken over for a
     * retry; being analysed → busy. Only a message_id of the caller's namespace (`clientKeyId`) counts: the unique
     * (channel, message_namespace, message_id) index settles concurrent duplicates within one namespace, and the
     * same id in another namespace is another message. An id of the caller's namespace whose conversation has
     * another sender (and another thread_key) is refused: 403.
     * `prior` is lookupRequest's answer for this message; without it, it is looked up first.
     */
    async claim(input: ClaimInput, prior?: PriorState): Promise<Claim> {
      const known = prior ?? (await lookupRequest(input)).prior;
      const existing = input.messageId ? known.existing : undefined;
      if (!existing) return claimNew(input, known);
      // An idempotency key is no read handle: another sender's message_id must not return that message's stored
      // answer (its request text and the expert answer) nor take over its attempt.
      if (!existing.own)
        throw errors.forbidden(
          `Parameter 'message_id' belongs to another sender's message; send a message_id of your own`,
        );
      if (existing.state === 'answered' && existing.answered) return { kind: 'answered', decision: existing.answered };
      if (existing.state === 'pending' && !existing.stale) return { kind: 'busy' };
      return claimExisting(existing, input);
    },

    /**
     * The owner's heartbeat: moves the message's `claimed_at` to now (database clock) while the attempt still
     * owns it (state `pending`, same `attempts`). False when another attempt took it over.
     */
    async renewClaim(attempt: OwnedAttempt): Promise<boolean> {
      const rows = await runPrepared(knex, RENEW_CLAIM, [attempt.messageRowId, attempt.attempt]);
      return rows.length > 0;
    },

    /**
     * Finishes an attempt: the LLM calls' provenance (`facts.llmCalls`, unless `facts.llmCallsRecorded`), the
     * analysis, the answer as a message, the conversation's state, atomically in one statement. False (and
     * nothing but the provenance written) when the attempt no longer owns the message: its lease ran out and
     * another took over. True when an earlier call for this attempt committed and its answer was lost (a retry). With a hook that writes (hook.writes), the statement and the hook share a transaction.
     */
    async recordDecision(
      attempt: OwnedAttempt,
      decision: Decision,
      facts: AnalysisFacts,
      conversation: { status: ConversationStatus; clarificationRounds: number },
      context: DecisionContext,
      onRecorded?: DecisionRecordedHook,
    ): Promise<boolean> {
      const values = [
        attempt.messageRowId,
        attempt.attempt,
        attempt.analysisId,
        attempt.conversationId,
        context.channel,
        decision.question || decision.response,
        conversation.status,
        conversation.clarificationRounds,
        decisionColumnsJson(decision, facts, context),
        llmCallsJson(attempt.analysisId, facts.llmCallsRecorded ? [] : (facts.llmCalls ?? [])),
        // The decision's audit rows (docs/audit.md), stored by the same statement: no extra round trip.
        JSON.stringify(onRecorded?.auditRows?.({ decision, context }) ?? []),
      ];
      const write = async (db: Knex | Knex.Transaction) => (await runPrepared(db, RECORD_DECISION, values)).length > 0;
      const recorded = { decision, context };
      const owned =
        (!onRecorded || onRecorded.writes?.(recorded) === false
          ? await write(knex)
          : await knex.transaction(async (trx) => {
              if (!(await write(trx))) return false;
              await onRecorded(trx, recorded);
              return true;
            })) ||
        // A retry after a lost answer (the connection dropped after COMMIT, DATABASE_QUERY_TIMEOUT): the first write
        // committed, so this attempt owns the answer. Asked only when the write found the message taken.
        (await runPrepared(knex, DECISION_RECORDED, [attempt.messageRowId, attempt.attempt, attempt.analysisId]))
          .length > 0;
      // Committed either way: the provenance is stored.
      facts.llmCallsRecorded = true;
      if (owned) onRecorded?.afterRecorded?.(recorded);
      return owned;
    },

    /**
     * Marks an attempt failed with its error code, with the LLM calls' provenance (unless already recorded), in
     * one statement; the message stays retryable with the same message_id. Only while still the owner does the
     * message change: a superseded attempt must not hand the message to yet another attempt.
     */
    async recordFailure(
      attempt: OwnedAttempt,
      failure: { code: string; message: string },
      facts: AnalysisFacts,
    ): Promise<void> {
      await runPrepared(knex, RECORD_FAILURE, [
        attempt.analysisId,
        attempt.messageRowId,
        attempt.attempt,
        // The guesser's tokens were spent even when the analyst then failed.
        JSON.stringify(
          assignColumns(
            { error_code: failure.code, error_message: failure.message.slice(0, 500) },
            facts,
            FACT_COLUMNS,
          ),
        ),
        llmCallsJson(attempt.analysisId, facts.llmCallsRecorded ? [] : (facts.llmCalls ?? [])),
      ]);
      facts.llmCallsRecorded = true;
    },
  };
}
