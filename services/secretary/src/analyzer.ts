import { ACTION_CLARIFY, isAction, type Channel } from '@workemon/contracts';
import { AppError, backoffMs, errors, retry, sleep as pause, type Logger } from '@workemon/service-kit';
import type { AnalystAnswer, AnalystClient } from './analyst-client.js';
import { isDatabaseUnavailable, toDatabaseError } from './database.js';
import {
  channelReplyAction,
  keepProposal,
  proposeDecision,
  type DecideStep,
  type Decision,
  type DecisionContext,
  type DecisionRecordedHook,
} from './decision.js';
import { senderKeys, toResolvedEmployee, type ResolvedEmployee } from './directory-repository.js';
import type { GuesserClient } from './guesser-client.js';
import type { LlmUsage } from './llm-service-response.js';
import type {
  AnalysisFacts,
  ClaimInput,
  ConversationStatus,
  HistoryWriteRepository,
  OwnedAttempt,
  PriorState,
  RequestLookup,
} from './history-write-repository.js';
import type { UnknownUserPolicy } from './config.js';
import { classificationOf, noReplyDecision, skippedLogFields } from './classification.js';
import { assessSenderTrust, type SenderClaims, type SenderTrust } from './sender-trust.js';
import type { AnalyzeBudget } from './rate-limits/analyze-limits.js';

export type AnalyzeInput = {
  channel: Channel;
  username: string;
  request: string;
  messageId?: string;
  threadKey?: string;
  /**
   * The client key that owns the conversation (its `Principal.keyId`): set for client keys only. Its thread_keys,
   * open questions and message_ids are its own; undefined: the shared namespace of service and admin keys and of
   * keyless loopback callers (ClaimInput.clientKeyId).
   */
  clientKeyId?: string;
  /** The mail's Subject (email channel): rules match it, it is not part of the request text. */
  subject?: string;
  /** Who called and what they claim about the sender (see sender-trust.ts); absent: nothing is vouched for. */
  claims?: SenderClaims;
  /**
   * The rate-limit budgets this request draws from (rate-limits/analyze-limits.ts), taken in the request's first
   * statement; refused → its 429 is thrown before anything about the request is stored. Absent: no limit.
   */
  budget?: AnalyzeBudget;
};

/** What a dry run computed: the final decision, what it was decided on, and the LLM calls' facts. */
export type DryRunCapture = { decision?: Decision; context?: DecisionContext; facts?: AnalysisFacts };

export type AnalyzerOptions = {
  guesser: GuesserClient;
  analyst: AnalystClient;
  /** The history's write path; its lookupRequest also reads the sender and the rules' version. */
  history: HistoryWriteRepository;
  logger: Logger;
  unknownUserPolicy: UnknownUserPolicy;
  /** CLIENT_KEY_USERNAMES (sender-trust.ts); absent: every client key vouches for any username. */
  clientKeyUsernames?: ReadonlyMap<string, ReadonlySet<string> | '*'>;
  /** COMPANY_DOMAINS; empty: the domains of the directory employees' emails. */
  companyDomains?: readonly string[];
  clarificationTtlMs: number;
  maxClarifications: number;
  /**
   * How long an attempt's heartbeat may be silent before a duplicate takes it over (its owner died, or could not
   * record its outcome): seconds, not the upstream deadlines — the owner renews it every `attemptLeaseMs / 4`
   * while the LLM calls run (ANALYSIS_LEASE).
   */
  attemptLeaseMs: number;
  /** How often the owner renews its heartbeat (default `attemptLeaseMs / 4`). */
  attemptHeartbeatMs?: number;
  /**
   * How long a duplicate waits for a live attempt's outcome before answering 503 (default: `attemptLeaseMs`
   * × 30). Cover both upstream deadlines.
   */
  duplicateWaitMs?: number;
  /**
   * How long a decision that could not be recorded (the database briefly away) is retried by its own process
   * before the attempt is left to a take-over (default 30 s).
   */
  recordRetryMs?: number;
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

/** One request as the analyzer carries it between its steps. */
type RequestState = {
  input: AnalyzeInput;
  employee: ResolvedEmployee | undefined;
  trust: SenderTrust;
  identity: { department: string; position: string };
  /** performance.now() at the request's start. */
  started: number;
  /** The routing rules' version read by the lookup (DecisionContext.rulesVersion). */
  rulesVersion: number | undefined;
};

const UNKNOWN = 'unknown';
const DUPLICATE_POLL_MS = 50;
// Recorded on an attempt whose decision was discarded because another attempt owns the message now.
const SUPERSEDED = new AppError('attempt_superseded', 409, 'Another attempt took this message over');

export { channelReplyAction };

/**
 * The analyze use case: resolve the sender, store the request, ask the guesser whether the request is clear,
 * then the system analyst what to do; clarifying rounds continue one conversation until MAX_CLARIFICATIONS,
 * after which the request goes to the department. A message_id makes the whole thing idempotent.
 */
export function createAnalyzer(options: AnalyzerOptions) {
  const decide = options.decide ?? keepProposal;
  const sleep = options.sleep ?? (async (ms: number) => void (await pause(ms)));

  /**
   * The request's one read: the sender, the message's prior state, the rules' version and (for mail without
   * COMPANY_DOMAINS) the directory's email domains, in one statement (history-write-repository.ts).
   */
  function lookup(input: AnalyzeInput): Promise<RequestLookup> {
    // A Telegram user id from the communicator names the account for sure; the username is only a fallback.
    const vouchedTelegramId =
      input.channel === 'tg' && input.claims?.principal === 'service' ? input.claims.telegramUserId : undefined;
    return options.history.lookupRequest({
      channel: input.channel,
      sender: input.username,
      messageId: input.messageId,
      threadKey: input.threadKey,
      clientKeyId: input.clientKeyId,
      clarificationTtlMs: options.clarificationTtlMs,
      leaseMs: options.attemptLeaseMs,
      senderKeys: senderKeys(input.channel, input.username),
      preferredSenderKeys: vouchedTelegramId ? senderKeys('tg', vouchedTelegramId) : undefined,
      withEmailDomains: input.channel === 'email' && !options.companyDomains?.length,
      budget: input.budget?.entries,
    });
  }

  /** The lookup, refused with the budget's 429 when its draw was (nothing about the request is stored then). */
  async function lookupWithinBudget(input: AnalyzeInput): Promise<RequestLookup> {
    const found = await lookup(input);
    if (input.budget && found.rateLimit && !found.rateLimit.allowed) throw input.budget.refusal(found.rateLimit);
    return found;
  }

  /** The sender as the directory knows them; 403 under UNKNOWN_USER_POLICY=reject when it does not. */
  function acceptSender(found: RequestLookup['sender']): ResolvedEmployee | undefined {
    const resolved = found ? toResolvedEmployee(found) : undefined;
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

  /** Who is asking and how far they are trusted, from the lookup. */
  function requestOf(input: AnalyzeInput, found: RequestLookup, started: number): RequestState {
    const employee = acceptSender(found.sender);
    const companyDomains =
      input.channel !== 'email'
        ? []
        : options.companyDomains?.length
          ? options.companyDomains
          : (found.emailDomains ?? []);
    const trust = assessSenderTrust({
      channel: input.channel,
      sender: input.username,
      employee,
      claims: input.claims ?? {},
      unknownUserPolicy: options.unknownUserPolicy,
      companyDomains,
      clientKeyUsernames: options.clientKeyUsernames,
    });
    const identity = {
      department: employee?.employee.department ?? UNKNOWN,
      position: employee?.employee.position ?? UNKNOWN,
    };
    return { input, employee, trust, identity, started, rulesVersion: found.rulesVersion };
  }

  /** The guesser, then (when the request is clear and gets a reply) the analyst; their facts go to `facts`. */
  async function consultLlms(request: RequestState, attempt: OwnedAttempt, facts: AnalysisFacts) {
    const { input, employee, identity } = request;
    // The department's persona goes to both LLM services as its own field (operator text, not user data).
    const persona = employee?.departmentRecord?.persona ?? undefined;
    const guesserStarted = performance.now();
    const guess = await options.guesser.getContext({
      username: employee?.employee.username ?? input.username,
      department: identity.department,
      position: identity.position,
      request: attempt.request,
      ...(persona ? { persona } : {}),
    });
    facts.guesserMs = Math.round(performance.now() - guesserStarted);
    facts.guesserIsEnough = guess.is_enough;
    setUsage(facts, guess.usage);
    facts.llmCalls = [{ service: 'guesser', ...guess.provenance, durationMs: facts.guesserMs }];

    let analysis: AnalystAnswer | undefined;
    if (guess.no_reply) {
      // Automatic mail, marketing: no analyst call, no reply, no action; logged as skipped with the category.
      options.logger.info(
        'request skipped: its category gets no reply',
        skippedLogFields(input.channel, attempt.analysisId, guess),
      );
    } else if (guess.is_enough) {
      facts.context = guess.response;
      const analystStarted = performance.now();
      analysis = await options.analyst.prepareAnalytics({
        context: guess.response,
        request: attempt.request,
        ...(persona ? { persona } : {}),
      });
      facts.analystMs = Math.round(performance.now() - analystStarted);
      facts.analystIsEnough = analysis.is_enough;
      facts.analystResponse = analysis.response;
      facts.proposedAction = isAction(analysis.action) ? analysis.action : undefined;
      mergeUsage(facts, analysis.usage);
      facts.llmCalls.push({ service: 'system-analyst', ...analysis.provenance, durationMs: facts.analystMs });
    }
    return { guess, analysis };
  }

  async function decideFor(
    request: RequestState,
    attempt: OwnedAttempt,
    facts: AnalysisFacts,
    dryRun?: DryRunCapture,
  ): Promise<Decision | undefined> {
    const { input, employee } = request;
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
    const { guess, analysis } = await consultLlms(request, attempt, facts);
    const { proposal: proposed, escalated } = guess.no_reply
      ? { proposal: noReplyDecision(attempt.request, channelReplyAction(input.channel), guess), escalated: false }
      : proposeDecision({
          channel: input.channel,
          request: attempt.request,
          guess,
          analysis,
          clarificationRounds: attempt.clarificationRounds,
          maxClarifications: options.maxClarifications,
          departmentName: employee?.departmentRecord?.name,
        });

    const proposal: Decision = { ...proposed, ...classificationOf(guess) };

    const context: DecisionContext = {
      subject: input.subject,
      channel: input.channel,
      sender: input.username,
      employee,
      conversationId: attempt.conversationId,
      analysisId: attempt.analysisId,
      context: facts.context ?? '',
      proposedAction: facts.proposedAction,
      escalated,
      trust: request.trust,
      rulesVersion: request.rulesVersion,
    };
    const decision = await decide(proposal, context);
    // A dry run stops here: the whole decision, nothing recorded (dry-run.ts).
    if (dryRun) return Object.assign(dryRun, { decision, context, facts }).decision;
    facts.durationMs = Math.round(performance.now() - request.started);
    const clarifying = decision.action === ACTION_CLARIFY;
    const status: ConversationStatus = clarifying ? 'awaiting_clarification' : escalated ? 'escalated' : 'answered';
    // One statement: the LLM calls' provenance, then the decision (history-write-repository.ts).
    const recorded = await recordWithRetry(() =>
      options.history.recordDecision(
        attempt,
        decision,
        facts,
        { status, clarificationRounds: attempt.clarificationRounds + (clarifying ? 1 : 0) },
        context,
        options.onDecisionRecorded,
      ),
    );
    return recorded ? decision : undefined;
  }

  /**
   * Records an outcome; while the database is unreachable, tries again (0.25 s doubling to 2 s) for up to
   * `recordRetryMs`, so a Postgres restart of a few seconds does not throw away an analysis the LLMs already
   * made. Other errors, and a longer outage, are thrown (the attempt is then taken over after its lease).
   * Its deadline is a local duration, measured on the app's clock (as every timer here is).
   */
  function recordWithRetry<T>(write: () => Promise<T>): Promise<T> {
    const until = Date.now() + (options.recordRetryMs ?? 30_000);
    return retry(write, {
      maxRetries: Number.POSITIVE_INFINITY,
      delayMs: recordRetryDelayMs,
      shouldRetry: (err, n) => isDatabaseUnavailable(err) && Date.now() + recordRetryDelayMs(n) <= until,
      onRetry: (_err, _n, waitMs) =>
        options.logger.warn(`could not record the analysis (database unavailable); retrying in ${waitMs} ms`),
    });
  }

  /** Renews the attempt's heartbeat every quarter lease until `stop()`; failures are retried on the next beat. */
  function startHeartbeat(attempt: OwnedAttempt): () => void {
    const timer = setInterval(
      () =>
        void options.history.renewClaim(attempt).catch(() => {
          // The database is away: the next beat tries again; a long silence lets a duplicate take over.
        }),
      options.attemptHeartbeatMs ?? Math.max(50, Math.floor(options.attemptLeaseMs / 4)),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  /** Runs an owned attempt to its outcome; undefined when another attempt took the message over meanwhile. */
  async function runAttempt(request: RequestState, claim: OwnedAttempt): Promise<Decision | undefined> {
    const facts: AnalysisFacts = { durationMs: 0, senderTrust: request.trust };
    const stopHeartbeat = startHeartbeat(claim);
    try {
      const decision = await decideFor(request, claim, facts);
      if (decision) {
        options.onDecided?.(request.input.channel, decision);
        return decision;
      }
    } catch (err) {
      await recordFailure(claim, err, facts, request.started);
      throw err;
    } finally {
      stopHeartbeat();
    }
    // Our lease ran out and another request took the message over: its outcome is the answer.
    await recordFailure(claim, SUPERSEDED, facts, request.started);
    return undefined;
  }

  /**
   * Claims the message and decides on it; a duplicate being analysed elsewhere is waited for (its outcome is
   * the answer) rather than sent to the LLMs twice. The wait is a local duration (app clock); the first claim
   * uses the lookup's prior state, later ones look again.
   */
  async function claimAndDecide(request: RequestState, firstPrior: PriorState): Promise<Decision> {
    const { input, employee, identity } = request;
    const waitUntil = Date.now() + (options.duplicateWaitMs ?? options.attemptLeaseMs * 30);
    const claimInput: ClaimInput = {
      channel: input.channel,
      sender: input.username,
      employeeId: employee?.id,
      department: identity.department,
      position: identity.position,
      text: input.request,
      messageId: input.messageId,
      threadKey: input.threadKey,
      clientKeyId: input.clientKeyId,
      clarificationTtlMs: options.clarificationTtlMs,
      leaseMs: options.attemptLeaseMs,
    };
    for (let prior: PriorState | undefined = firstPrior; ; prior = undefined) {
      const claim = await options.history.claim(claimInput, prior);
      if (claim.kind === 'answered') return claim.decision;
      if (claim.kind === 'owner') {
        const decision = await runAttempt(request, claim);
        if (decision) return decision;
        continue;
      }
      if (Date.now() >= waitUntil)
        throw new AppError('duplicate_in_progress', 503, 'The same message is still being analysed; retry later', {
          headers: { 'Retry-After': '5' },
        });
      await sleep(DUPLICATE_POLL_MS);
    }
  }

  return {
    async analyze(input: AnalyzeInput): Promise<Decision> {
      const started = performance.now();
      try {
        const found = await lookupWithinBudget(input);
        return await claimAndDecide(requestOf(input, found, started), found.prior);
      } catch (err) {
        throw toDatabaseError(err);
      }
    },

    /**
     * The whole decision for `input` (sender, trust, guesser, analyst, routing rules) with nothing stored and no
     * action run: no conversation, message, analysis or outbox row, no metric. The request is decided on its own
     * (it continues no conversation, and its message_id is not looked up). See dry-run.ts.
     */
    async dryRun(input: AnalyzeInput): Promise<Required<DryRunCapture>> {
      const started = performance.now();
      try {
        // Decided on its own: no message_id or thread is looked up, so no conversation is continued.
        // Its budget is checked by the route (nothing is taken by a dry run).
        const own: AnalyzeInput = { ...input, messageId: undefined, threadKey: undefined, budget: undefined };
        const request = requestOf(own, await lookup(own), started);
        // Nothing is claimed: ids 0 name no stored row.
        const unstored: OwnedAttempt = {
          kind: 'owner',
          conversationId: 0,
          clarificationRounds: 0,
          messageRowId: 0,
          attempt: 0,
          analysisId: 0,
          request: input.request,
        };
        const facts: AnalysisFacts = { durationMs: 0, senderTrust: request.trust };
        const capture: DryRunCapture = {};
        await decideFor(request, unstored, facts, capture);
        facts.durationMs = Math.round(performance.now() - started);
        return capture as Required<DryRunCapture>;
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
      // The calls that did answer before the failure still cost tokens: their provenance is kept too.
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

/** The wait before re-recording an outcome after retry `n` (0-based): 0.25 s doubling to 2 s, no jitter. */
function recordRetryDelayMs(n: number): number {
  return backoffMs(n, { baseMs: 250, maxMs: 2000, jitter: 0 });
}

/** The guesser's usage as the analysis' first: provider, model and tokens (mergeUsage adds the analyst's). */
function setUsage(facts: AnalysisFacts, usage: LlmUsage) {
  facts.provider = usage.provider;
  facts.model = usage.model;
  facts.promptTokens = usage.promptTokens;
  facts.completionTokens = usage.completionTokens;
}

// The analyst's model is the one that produced the answer the user gets; tokens are the sum of both calls.
function mergeUsage(facts: AnalysisFacts, usage: LlmUsage) {
  facts.provider = usage.provider ?? facts.provider;
  facts.model = usage.model ?? facts.model;
  if (usage.promptTokens !== undefined) facts.promptTokens = (facts.promptTokens ?? 0) + usage.promptTokens;
  if (usage.completionTokens !== undefined)
    facts.completionTokens = (facts.completionTokens ?? 0) + usage.completionTokens;
}
