import type { Knex } from 'knex';
import type { Action, Channel } from '@workemon/contracts';
import type { ResolvedEmployee } from './directory-repository.js';
import type { SenderTrust } from './sender-trust.js';

/** What the user is answered: the contract's AnalysisResponse. */
export type Decision = {
  is_enough: boolean;
  request: string;
  action: Action;
  question: string;
  response: string;
};

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
  /** How far the sender is trusted: side-effect actions run only for known, authenticated senders. */
  trust?: SenderTrust;
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
export type DecisionRecordedHook = (
  trx: Knex.Transaction,
  recorded: { decision: Decision; context: DecisionContext },
) => Promise<void>;

export const keepProposal: DecideStep = (proposal) => proposal;
