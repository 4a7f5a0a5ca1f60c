import {
  ACTION_CLARIFY,
  ACTION_MAILING_LIST,
  ACTION_REPLY_EMAIL,
  ACTION_REPLY_MESSAGE,
  isAction,
  type Action,
  type Channel,
} from '@workemon/contracts';
import { AppError, errors, type Logger } from '@workemon/service-kit';
import type { AnalystClient } from './analyst-client.js';
import { toDatabaseError } from './database.js';
import {
  keepProposal,
  type DecideStep,
  type Decision,
  type DecisionContext,
  type DecisionRecordedHook,
} from './decision.js';
import type { DirectoryRepository, ResolvedEmployee } from './directory-repository.js';
import type { GuesserClient } from './guesser-client.js';
import type { AnalysisFacts, ConversationStatus, HistoryRepository, OwnedAttempt } from './history-repository.js';
import type { UnknownUserPolicy } from './config.js';

export type AnalyzeInput = {
  channel: Channel;
  username: string;
  request: string;
  messageId?: string;
  threadKey?: string;
};

export type AnalyzerOptions = {
  guesser: GuesserClient;
  analyst: AnalystClient;
  history: HistoryRepository;
  directory: DirectoryRepository;
  logger: Logger;
  unknownUserPolicy: UnknownUserPolicy;
  clarificationTtlMs: number;
  maxClarifications: number;
  /**
   * How long an attempt may stay `pending` before a duplicate takes it over (its owner presumably died), and
   * how long a duplicate waits for the first attempt's outcome. Cover both upstream deadlines.
   */
  attemptLeaseMs: number;
  /** The seam after the analyst where routing rules may change the decision. */
  decide?: DecideStep;
  /** Runs in the transaction that stores the decision (an outbox row for the action, matched rules). */
  onDecisionRecorded?: DecisionRecordedHook;
  /** Called once per fresh decision (not for replays of a stored one), for metrics. */
  onDecided?: (channel: Channel, decision: Decision) => void;
  sleep?: (ms: number) => Promise<void>;
};

/**
 * The longest text the secretary decides on: the contract's cap on `request` (secretary.yaml), which also bounds a
 * follow-up (the earlier request, the question and the answer joined). The LLM services' default
 * LLM_MAX_INPUT_CHARS (32,000) holds this plus the other fields and the guesser's context; see docs/secretary.md.
 */
export const MAX_REQUEST_CHARS = 20_000;

const UNKNOWN = 'unknown';
const DUPLICATE_POLL_MS = 50;
// Recorded on an attempt whose decision was discarded because another attempt owns the message now.
const SUPERSEDED = new AppError('attempt_superseded', 409, 'Another attempt took this message over');

/** The reply action that fits the channel: an email is answered in its thread, anything else by a message. */
export function channelReplyAction(channel: Channel): Action {
  return channel === 'email' ? ACTION_REPLY_EMAIL : ACTION_REPLY_MESSAGE;
}

function escalationText(department: ResolvedEmployee['departmentRecord'] | undefined): string {
  const where = department ? `в рассылку департамента «${department.name}»` : 'в рассылку департамента';
  return (
    `Мне не удалось достаточно уточнить ваш запрос, поэтому я передал его ${where}. ` +
    'Сотрудники департамента свяжутся с вами.'
  );
}

/**
 * The analyze use case: resolve the sender, store the request, ask the guesser whether the request is clear,
 * then the system analyst what to do; clarifying rounds continue one conversation until MAX_CLARIFICATIONS,
 * after which the request goes to the department. A message_id makes the whole thing idempotent.
 */
export function createAnalyzer(options: AnalyzerOptions) {
  const decide = options.decide ?? keepProposal;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  async function resolveSender(input: AnalyzeInput): Promise<ResolvedEmployee | undefined> {
    const resolved = await options.directory.resolveSender(input.channel, input.username);
    if (!resolved && options.unknownUserPolicy === 'reject') {
      throw new AppError(
        'unknown_user',
        403,
        'Извините, я не нашёл вас в справочнике сотрудников и не могу обработать запрос. ' +
          'Обратитесь, пожалуйста, к администратору Workemon.',
      );
    }
    return resolved;
  }

  async function decideFor(
    input: AnalyzeInput,
    attempt: OwnedAttempt,
    employee: ResolvedEmployee | undefined,
    facts: AnalysisFacts,
    identity: { department: string; position: string },
    started: number,
  ): Promise<Decision | undefined> {
    if (attempt.request.length > MAX_REQUEST_CHARS) {
      // Only a follow-up gets here (a single request is capped by the contract): recorded, no LLM call.
      throw new AppError(
        'request_too_long',
        413,
        `The request together with the earlier question is too long: ${attempt.request.length} characters, ` +
          `the limit is ${MAX_REQUEST_CHARS}; please shorten it`,
        { retryable: false },
      );
    }
    const guesserStarted = performance.now();
    const guess = await options.guesser.getContext({
      username: employee?.employee.username ?? input.username,
      department: identity.department,
      position: identity.position,
      request: attempt.request,
    });
    facts.guesserMs = Math.round(performance.now() - guesserStarted);
    facts.guesserIsEnough = guess.is_enough;
    Object.assign(facts, pickUsage(guess.usage));

    let proposal: Decision;
    let askedQuestion = false;
    let escalated = false;
    if (guess.is_enough) {
      facts.context = guess.response;
      const analystStarted = performance.now();
      const analysis = await options.analyst.prepareAnalytics({ context: guess.response, request: attempt.request });
      facts.analystMs = Math.round(performance.now() - analystStarted);
      facts.analystIsEnough = analysis.is_enough;
      facts.analystResponse = analysis.response;
      facts.proposedAction = isAction(analysis.action) ? analysis.action : undefined;
      mergeUsage(facts, analysis.usage);
      if (!analysis.is_enough || facts.proposedAction === ACTION_CLARIFY) {
        // The analyst needs more to go on: its answer is the clarifying question, and the explanation (`response`,
        // as in the seed's example of is_enough=false).
        askedQuestion = true;
        proposal = {
          is_enough: false,
          request: attempt.request,
          action: ACTION_CLARIFY,
          question: analysis.response,
          response: analysis.response,
        };
      } else {
        proposal = {
          is_enough: true,
          request: attempt.request,
          action: chooseAction(input.channel, facts.proposedAction),
          question: '',
          response: analysis.response,
        };
      }
    } else {
      // The guesser's answer is both the question and the explanation of what is missing (the seed's example).
      askedQuestion = true;
      proposal = {
        is_enough: false,
        request: attempt.request,
        action: ACTION_CLARIFY,
        question: guess.response,
        response: guess.response,
      };
    }
    if (askedQuestion && attempt.clarificationRounds >= options.maxClarifications) {
      escalated = true;
      proposal = {
        is_enough: false,
        request: attempt.request,
        action: ACTION_MAILING_LIST,
        question: '',
        response: escalationText(employee?.departmentRecord),
      };
    }

    const context: DecisionContext = {
      channel: input.channel,
      sender: input.username,
      employee,
      conversationId: attempt.conversationId,
      analysisId: attempt.analysisId,
      context: facts.context ?? '',
      proposedAction: facts.proposedAction,
      escalated,
    };
    const decision = await decide(proposal, context);
    facts.durationMs = Math.round(performance.now() - started);
    const clarifying = decision.action === ACTION_CLARIFY;
    const status: ConversationStatus = clarifying ? 'awaiting_clarification' : escalated ? 'escalated' : 'answered';
    const recorded = await options.history.recordDecision(
      attempt,
      decision,
      facts,
      { status, clarificationRounds: attempt.clarificationRounds + (clarifying ? 1 : 0) },
      context,
      options.onDecisionRecorded,
    );
    return recorded ? decision : undefined;
  }

  return {
    async analyze(input: AnalyzeInput): Promise<Decision> {
      const started = performance.now();
      try {
        const employee = await resolveSender(input);
        const identity = {
          department: employee?.employee.department ?? UNKNOWN,
          position: employee?.employee.position ?? UNKNOWN,
        };
        const waitUntil = Date.now() + options.attemptLeaseMs;
        for (;;) {
          const claim = await options.history.claim({
            channel: input.channel,
            sender: input.username,
            employeeId: employee?.id,
            department: identity.department,
            position: identity.position,
            text: input.request,
            messageId: input.messageId,
            threadKey: input.threadKey,
            clarificationTtlMs: options.clarificationTtlMs,
            leaseMs: options.attemptLeaseMs,
          });
          if (claim.kind === 'answered') return claim.decision;
          if (claim.kind === 'owner') {
            const facts: AnalysisFacts = { durationMs: 0 };
            try {
              const decision = await decideFor(input, claim, employee, facts, identity, started);
              if (decision) {
                options.onDecided?.(input.channel, decision);
                return decision;
              }
            } catch (err) {
              await recordFailure(claim, err, facts, started);
              throw err;
            }
            // Our lease ran out and another request took the message over: its outcome is the answer.
            await recordFailure(claim, SUPERSEDED, facts, started);
            continue;
          }
          // A duplicate is being analysed by another request: wait for its outcome rather than call the LLMs twice.
          if (Date.now() >= waitUntil)
            throw new AppError('duplicate_in_progress', 503, 'The same message is still being analysed; retry later', {
              headers: { 'Retry-After': '5' },
            });
          await sleep(DUPLICATE_POLL_MS);
        }
      } catch (err) {
        throw toDatabaseError(err);
      }
    },
  };

  async function recordFailure(attempt: OwnedAttempt, err: unknown, facts: AnalysisFacts, started: number) {
    const mapped = toDatabaseError(err);
    const appError = mapped instanceof AppError ? mapped : errors.internal(err);
    facts.durationMs = Math.round(performance.now() - started);
    try {
      await options.history.recordFailure(attempt, { code: appError.code, message: appError.message }, facts);
    } catch (recordErr) {
      // The database itself is gone: the attempt stays pending until its lease runs out, then a retry takes over.
      options.logger.warn('could not record the failed analysis', {
        error: { code: appError.code },
        err: recordErr instanceof Error ? recordErr : undefined,
      });
    }
  }
}

/** The analyst's action when it is one of the contract's; a reply always fits the channel it goes back on. */
function chooseAction(channel: Channel, proposed: Action | undefined): Action {
  if (!proposed || proposed === ACTION_REPLY_EMAIL || proposed === ACTION_REPLY_MESSAGE)
    return channelReplyAction(channel);
  return proposed;
}

function pickUsage(usage: { provider?: string; model?: string; promptTokens?: number; completionTokens?: number }) {
  return {
    provider: usage.provider,
    model: usage.model,
    promptTokens: usage.promptTokens,
    completionTokens: usage.completionTokens,
  };
}

// The analyst's model is the one that produced the answer the user gets; tokens are the sum of both calls.
function mergeUsage(
  facts: AnalysisFacts,
  usage: { provider?: string; model?: string; promptTokens?: number; completionTokens?: number },
) {
  facts.provider = usage.provider ?? facts.provider;
  facts.model = usage.model ?? facts.model;
  if (usage.promptTokens !== undefined) facts.promptTokens = (facts.promptTokens ?? 0) + usage.promptTokens;
  if (usage.completionTokens !== undefined)
    facts.completionTokens = (facts.completionTokens ?? 0) + usage.completionTokens;
}
