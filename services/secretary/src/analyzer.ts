import { ACTION_CLARIFY, isAction, type Channel } from '@workemon/contracts';
import { AppError, backoffMs, errors, sleep as pause, type Logger } from '@workemon/service-kit';
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
import type { DirectoryRepository, ResolvedEmployee } from './directory-repository.js';
import type { GuesserClient } from './guesser-client.js';
import type { AnalysisFacts, ConversationStatus, HistoryRepository, OwnedAttempt } from './history-repository.js';
import type { UnknownUserPolicy } from './config.js';
import { classificationOf, noReplyDecision, skippedLogFields } from './classification.js';
import { assessSenderTrust, type SenderClaims, type SenderTrust } from './sender-trust.js';

export type AnalyzeInput = {
  channel: Channel;
  username: string;
  request: string;
  messageId?: string;
  threadKey?: string;
  /** The mail's Subject (email channel): rules match it, it is not part of the request text. */
  subject?: string;
  /** Who called and what they claim about the sender (see sender-trust.ts); absent: nothing is vouched for. */
  claims?: SenderClaims;
};

/** What a dry run computed: the final decision, what it was decided on, and the LLM calls' facts. */
export type DryRunCapture = { decision?: Decision; context?: DecisionContext; facts?: AnalysisFacts };

export type AnalyzerOptions = {
  guesser: GuesserClient;
  analyst: AnalystClient;
  history: HistoryRepository;
  directory: DirectoryRepository;
  logger: Logger;
  unknownUserPolicy: UnknownUserPolicy;
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

  async function resolveSender(input: AnalyzeInput): Promise<ResolvedEmployee | undefined> {
    // A Telegram user id from the communicator names the account for sure; the username is only a fallback.
    const telegramId = input.channel === 'tg' ? input.claims?.telegramUserId : undefined;
    const resolved =
      (telegramId && input.claims?.principal === 'service'
        ? await options.directory.resolveSender('tg', telegramId)
        : undefined) ?? (await options.directory.resolveSender(input.channel, input.username));
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
    trust: SenderTrust,
    dryRun?: DryRunCapture,
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
    Object.assign(facts, pickUsage(guess.usage));
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
      trust,
    };
    const decision = await decide(proposal, context);
    // A dry run stops here: the whole decision, nothing recorded (dry-run.ts).
    if (dryRun) return Object.assign(dryRun, { decision, context, facts }).decision;
    facts.durationMs = Math.round(performance.now() - started);
    const clarifying = decision.action === ACTION_CLARIFY;
    const status: ConversationStatus = clarifying ? 'awaiting_clarification' : escalated ? 'escalated' : 'answered';
    const recorded = await recordWithRetry(async () => {
      // Provenance first (a retry after a lost database writes it once), then the decision.
      if (!facts.llmCallsRecorded) {
        await options.history.recordLlmCalls(attempt.analysisId, facts.llmCalls ?? []);
        facts.llmCallsRecorded = true;
      }
      return options.history.recordDecision(
        attempt,
        decision,
        facts,
        { status, clarificationRounds: attempt.clarificationRounds + (clarifying ? 1 : 0) },
        context,
        options.onDecisionRecorded,
      );
    });
    return recorded ? decision : undefined;
  }

  /**
   * Records an outcome; while the database is unreachable, tries again (0.25 s doubling to 2 s) for up to
   * `recordRetryMs`, so a Postgres restart of a few seconds does not throw away an analysis the LLMs already
   * made. Other errors, and a longer outage, are thrown (the attempt is then taken over after its lease).
   */
  async function recordWithRetry<T>(write: () => Promise<T>): Promise<T> {
    const until = Date.now() + (options.recordRetryMs ?? 30_000);
    for (let n = 0; ; n += 1) {
      try {
        return await write();
      } catch (err) {
        const delay = backoffMs(n, { baseMs: 250, maxMs: 2000, jitter: 0 });
        if (!isDatabaseUnavailable(err) || Date.now() + delay > until) throw err;
        options.logger.warn(`could not record the analysis (database unavailable); retrying in ${delay} ms`);
        await sleep(delay);
      }
    }
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

  return {
    async analyze(input: AnalyzeInput): Promise<Decision> {
      const started = performance.now();
      try {
        const employee = await resolveSender(input);
        const trust = assessSenderTrust({
          channel: input.channel,
          sender: input.username,
          employee,
          claims: input.claims ?? {},
          unknownUserPolicy: options.unknownUserPolicy,
          companyDomains:
            input.channel !== 'email'
              ? []
              : options.companyDomains?.length
                ? options.companyDomains
                : await options.directory.emailDomains(),
        });
        const identity = {
          department: employee?.employee.department ?? UNKNOWN,
          position: employee?.employee.position ?? UNKNOWN,
        };
        const waitUntil = Date.now() + (options.duplicateWaitMs ?? options.attemptLeaseMs * 30);
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
            const facts: AnalysisFacts = { durationMs: 0, senderTrust: trust };
            const stopHeartbeat = startHeartbeat(claim);
            try {
              const decision = await decideFor(input, claim, employee, facts, identity, started, trust);
              if (decision) {
                options.onDecided?.(input.channel, decision);
                return decision;
              }
            } catch (err) {
              await recordFailure(claim, err, facts, started);
              throw err;
            } finally {
              stopHeartbeat();
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

    /**
     * The whole decision for `input` (sender, trust, guesser, analyst, routing rules) with nothing stored and no
     * action run: no conversation, message, analysis or outbox row, no metric. The request is decided on its own
     * (it continues no conversation, and its message_id is not looked up). See dry-run.ts.
     */
    async dryRun(input: AnalyzeInput): Promise<Required<DryRunCapture>> {
      try {
        const employee = await resolveSender(input);
        const trust = assessSenderTrust({
          channel: input.channel,
          sender: input.username,
          employee,
          claims: input.claims ?? {},
          unknownUserPolicy: options.unknownUserPolicy,
          companyDomains:
            input.channel !== 'email'
              ? []
              : options.companyDomains?.length
                ? options.companyDomains
                : await options.directory.emailDomains(),
        });
        const identity = {
          department: employee?.employee.department ?? UNKNOWN,
          position: employee?.employee.position ?? UNKNOWN,
        };
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
        const facts: AnalysisFacts = { durationMs: 0, senderTrust: trust };
        const capture: DryRunCapture = {};
        const started = performance.now();
        await decideFor(input, unstored, employee, facts, identity, started, trust, capture);
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
      if (!facts.llmCallsRecorded) await options.history.recordLlmCalls(attempt.analysisId, facts.llmCalls ?? []);
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
