import type { Knex } from 'knex';
import {
  ACTION_CLARIFY,
  ACTION_MAILING_LIST,
  ACTION_REPLY_EMAIL,
  ACTION_REPLY_MESSAGE,
  isAction,
  type Action,
  type AnalysisResponse,
  type Channel,
} from '@workemon/contracts';
import type { ResolvedEmployee } from './directory-repository.js';
import type { SenderTrust } from './sender-trust.js';

/**
 * What the user is answered: the contract's AnalysisResponse without the seed's alias `context-response` (added
 * when the answer is sent); classification fields: classification.ts.
 */
export type Decision = Omit<AnalysisResponse, 'context-response'>;

/** Everything known when a decision is taken: the inputs rules can match on. */
export type DecisionContext = {
  channel: Channel;
  sender: string;
  employee: ResolvedEmployee | undefined;
  conversationId: number;
  analysisId: number;
  /** The guesser's description of the context (empty when it asked a question). */
  context: string;
  /** What the system analyst proposed before any adjustment (undefined when it was not asked). */
  proposedAction: Action | undefined;
  /** Whether this decision hands the request to a human after the last clarifying round. */
  escalated: boolean;
  /** The mail's Subject (email channel), for rules' subject_pattern. */
  subject?: string;
  /** How far the sender is trusted: side-effect actions run only for known, authenticated senders. */
  trust?: SenderTrust;
  /** The routing rules' version read at the request's start (rules/rule-cache.ts); absent: rules read afresh. */
  rulesVersion?: number;
};

/**
 * The step after the analyst and before anything is stored: gets the proposed decision and returns the final
 * one. Routing rules plug in here (change the action, the department, require approval); the default keeps
 * the proposal.
 */
export type DecideStep = (proposal: Decision, context: DecisionContext) => Promise<Decision> | Decision;

/**
 * Runs inside the transaction that stores the decision, after the analysis row is final: whatever it writes
 * (an action execution row for an outbox worker, matched rules) commits or rolls back together with it.
 */
export type DecisionRecordedHook = ((
  trx: Knex.Transaction,
  recorded: { decision: Decision; context: DecisionContext },
) => Promise<void>) & {
  /**
   * Whether the hook writes anything for this decision. False lets the decision be stored in one statement
   * without a transaction (a round trip per request matters at hundreds per second); absent: assumed to write.
   */
  writes?: (recorded: { decision: Decision; context: DecisionContext }) => boolean;
  /**
   * Audit rows (docs/audit.md) stored by the statement that records the decision itself, so they commit with
   * it at no extra round trip; computed before the write. Shape: audit-repository.ts `auditRowOf`.
   */
  auditRows?: (recorded: { decision: Decision; context: DecisionContext }) => Record<string, unknown>[];
  /** Called once the decision (and its audit rows) are committed, whether or not the hook itself ran. */
  afterRecorded?: (recorded: { decision: Decision; context: DecisionContext }) => void;
};

export const keepProposal: DecideStep = (proposal) => proposal;

/** The reply action that fits the channel: an email is answered in its thread, anything else by a message. */
export function channelReplyAction(channel: Channel): Action {
  return channel === 'email' ? ACTION_REPLY_EMAIL : ACTION_REPLY_MESSAGE;
}

/** The analyst's action when it is one of the contract's; a reply always fits the channel it goes back on. */
export function chooseAction(channel: Channel, proposed: Action | undefined): Action {
  if (!proposed || proposed === ACTION_REPLY_EMAIL || proposed === ACTION_REPLY_MESSAGE)
    return channelReplyAction(channel);
  return proposed;
}

/** What the user is told when clarifying rounds ran out and the request went to the department's list. */
export function escalationText(departmentName: string | undefined): string {
  const where = departmentName ? `в рассылку департамента «${departmentName}»` : 'в рассылку департамента';
  return (
    `Мне не удалось достаточно уточнить ваш запрос, поэтому я передал его ${where}. ` +
    'Сотрудники департамента свяжутся с вами.'
  );
}

/** The inputs of the proposal: the two LLM services' answers and where the conversation stands. */
export type ProposalInput = {
  channel: Channel;
  /** The full text decided on (for a follow-up: earlier request, question, answer). */
  request: string;
  guess: { is_enough: boolean; response: string };
  /** The analyst's answer; undefined when it was not asked (the guesser asked a question). */
  analysis?: { is_enough: boolean; response: string; action?: string };
  /** Clarifying questions already asked in this conversation. */
  clarificationRounds: number;
  /** MAX_CLARIFICATIONS: a further question escalates to the department instead. */
  maxClarifications: number;
  departmentName?: string;
};

/**
 * The secretary's decision from the guesser's and the analyst's answers, before routing rules (pure: no I/O).
 * Guesser not enough → its question; analyst not enough or proposing `уточнить` → the analyst's question;
 * otherwise the analyst's action (a reply fits the channel). A question past MAX_CLARIFICATIONS rounds becomes
 * `написать в рассылку департамента` (escalated). `npm run eval` calls this too, so its figures mirror the service.
 */
export function proposeDecision(input: ProposalInput): {
  proposal: Decision;
  proposedAction: Action | undefined;
  askedQuestion: boolean;
  escalated: boolean;
} {
  const { guess, analysis, request } = input;
  const proposedAction = analysis && isAction(analysis.action) ? analysis.action : undefined;
  let proposal: Decision;
  let askedQuestion = false;
  if (!guess.is_enough || !analysis) {
    askedQuestion = true;
    // The guesser's answer is both the question and the explanation of what is missing (the seed's example).
    proposal = {
      is_enough: false,
      request,
      action: ACTION_CLARIFY,
      question: guess.response,
      response: guess.response,
    };
  } else if (!analysis.is_enough || proposedAction === ACTION_CLARIFY) {
    // The analyst needs more to go on: its answer is the clarifying question, and the explanation (`response`,
    // as in the seed's example of is_enough=false).
    askedQuestion = true;
    proposal = {
      is_enough: false,
      request,
      action: ACTION_CLARIFY,
      question: analysis.response,
      response: analysis.response,
    };
  } else {
    proposal = {
      is_enough: true,
      request,
      action: chooseAction(input.channel, proposedAction),
      question: '',
      response: analysis.response,
    };
  }
  let escalated = false;
  if (askedQuestion && input.clarificationRounds >= input.maxClarifications) {
    escalated = true;
    proposal = {
      is_enough: false,
      request,
      action: ACTION_MAILING_LIST,
      question: '',
      response: escalationText(input.departmentName),
    };
  }
  return { proposal, proposedAction, askedQuestion, escalated };
}
