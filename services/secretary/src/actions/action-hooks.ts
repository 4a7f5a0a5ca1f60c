import type { Knex } from 'knex';
import {
  ACTION_REPLY_EMAIL,
  ACTION_REPLY_MESSAGE,
  type Action,
  type AnalysisResponse,
  type Channel,
  type Employee,
} from '@workemon/contracts';
import type { Logger } from '@workemon/service-kit';
import { createHistoryReadModel } from '../history-read-model.js';
import { createRuleCache } from '../rules/rule-cache.js';
import { createRuleRepository } from '../rules/rule-repository.js';
import { evaluateRules, ruleClassificationContext, type RuleOutcome } from '../rules/rules.js';
import { withheldReason, type SenderTrust } from '../sender-trust.js';
import {
  ACTION_MAILING_LIST,
  ACTION_TELEGRAM_EMPLOYEE,
  isExecutableAction,
  type ActionPolicy,
} from './action-policy.js';
import { createExecutionRepository, type ExecutionPlan } from './execution-repository.js';
import type { DepartmentTarget, ExecutionTarget, ReplyTarget } from './executors.js';

// What the hooks read of the secretary's decision: the contract's AnalysisResponse fields (the decision the
// client gets), and of its context (decision.ts), so this module and its tests stand alone.
export type DecisionLike = Pick<
  AnalysisResponse,
  'is_enough' | 'request' | 'action' | 'question' | 'response' | 'category' | 'confidence' | 'no_reply'
>;
export type DecisionContextLike = {
  channel: Channel;
  sender: string;
  employee:
    | {
        employee: Pick<Employee, 'username' | 'department'> & Partial<Pick<Employee, 'telegram_id'>>;
        departmentRecord: DepartmentTarget | null;
      }
    | undefined;
  conversationId: number;
  analysisId: number;
  context: string;
  /** The mail's Subject, for rules' subject_pattern. */
  subject?: string;
  /** The request goes to the department after the last clarifying round. */
  escalated?: boolean;
  /** The sender's trust (sender-trust.ts); absent: trusted (the feature's own tests, callers without a sender). */
  trust?: SenderTrust;
  /** The routing rules' version the request saw at its start (rules/rule-cache.ts); absent: read afresh. */
  rulesVersion?: number;
};

// Said instead of "I passed it to the department's list" when that escalation was held back.
const ESCALATION_WITHHELD =
  'Мне не удалось достаточно уточнить ваш запрос. Пожалуйста, обратитесь в ответственный департамент напрямую.';

/** The reply that fits the channel (mirrors the analyzer's channelReplyAction). */
const replyActionFor = (channel: Channel): Action => (channel === 'email' ? ACTION_REPLY_EMAIL : ACTION_REPLY_MESSAGE);

export type ActionHooksDeps = {
  db: Knex;
  policy: ActionPolicy;
  jira: { configured: boolean; defaultProjectKey?: string };
  /** A department by name, for rules that route elsewhere (the directory's getDepartment). */
  resolveDepartment: (name: string) => Promise<DepartmentTarget | undefined>;
  /** Told after the decision commits, so the action runs now rather than at the next poll. */
  worker?: { nudge(): void };
  /**
   * Where the requester hears the outcome; default: the sender on their channel. The secretary passes
   * `replyTargetFor`, which reads the conversation and message tables.
   */
  replyTarget?: (trx: Knex.Transaction, ctx: DecisionContextLike) => Promise<ReplyTarget>;
  logger?: Logger;
  /** ACTION_MIN_CONFIDENCE (ActionSettings.minConfidence); default 0: no action is held for its confidence. */
  minConfidence?: number;
};

/**
 * `outcome` with `requireApproval` set when its action has a side effect that the analyst proposed (no matching
 * rule set the action: one that only picks a project or a department does not count) and the request was
 * classified (`category`) with a confidence below `minConfidence`, or with none: the workflow engine's threshold for
 * processing without a person (its "Low Confidence Review" flagged such mail for a person; before, a Jira task was
 * created at confidence 0.2, s35 parity review). A rule's own `min_confidence` is the operator's choice for the
 * actions it sets. A request with no classification at all (a guesser without categories) is not held for it.
 */
export function heldForConfidence(
  outcome: RuleOutcome,
  classification: { category?: string; confidence?: number },
  minConfidence = 0,
): RuleOutcome {
  if (outcome.requireApproval || !isExecutableAction(outcome.action) || outcome.actionFromRule) return outcome;
  const { category, confidence } = classification;
  if (minConfidence <= 0 || category === undefined || (confidence !== undefined && confidence >= minConfidence))
    return outcome;
  return { ...outcome, requireApproval: true };
}

/**
 * Where the requester hears the outcome. Telegram bots cannot write to a user by @username, only to a chat id:
 * the communicator's thread key (`tg:<chat>` or `tg:<chat>:<user>` in groups) names the chat, else the
 * directory's telegram_id. An email outcome answers in the thread of the mail the request came in.
 */
/** RFC 5322 §3.6.4 msg-id as POST /send takes `in_reply_to` (communicator.yaml): `<left@right>`, \p{Cc} excluded. */
const MESSAGE_ID = /^<[^<>@\s\p{Cc}]+@[^<>@\s\p{Cc}]+>$/u;

export async function replyTargetFor(trx: Knex | Knex.Transaction, ctx: DecisionContextLike): Promise<ReplyTarget> {
  // History is read through its read model only (history-read-model.ts), inside the decision's transaction.
  const history = createHistoryReadModel(trx);
  if (ctx.channel === 'tg') {
    const chat = /^tg:(-?\d+)(:|$)/.exec((await history.threadKeyOf(ctx.conversationId)) ?? '')?.[1];
    if (chat) return { to: chat };
    const id = ctx.employee?.employee.telegram_id ?? (/^\d+$/.test(ctx.sender) ? ctx.sender : undefined);
    return { to: id ?? `@${ctx.sender.replace(/^@/, '')}` };
  }
  if (ctx.channel === 'email') {
    const messageId = await history.inboundMessageIdOf(ctx.analysisId);
    // Only a Message-ID of RFC 5322 §3.6.4's form (`<left@right>`, no white space or control character): the
    // communicator's POST /send refuses any other.
    const inReplyTo = messageId && MESSAGE_ID.test(messageId) ? messageId : undefined;
    return { to: ctx.sender, ...(inReplyTo ? { in_reply_to: inReplyTo } : {}) };
  }
  return { to: ctx.sender };
}

/** What `decide` planned for a decision, for a dry run's `would_execute` (nothing of it was written). */
export type ActionPreview = {
  /** The action after routing rules (before a held-back one falls back to a reply). */
  action: Action;
  /** Routing rules that matched, in evaluation order. */
  matchedRuleIds: number[];
  /** For a side-effect action: whether it would run now, wait for approval, or be skipped (and why). */
  plan: { status: ExecutionPlan['status']; target: ExecutionTarget | null; reason: string | null } | null;
};

type Routed = {
  outcome: RuleOutcome;
  department: DepartmentTarget | null;
  plan: ExecutionPlan | null;
  withheld?: { reason: NonNullable<ReturnType<typeof withheldReason>>; detail: string };
};

/**
 * The two steps the analyzer offers (see decision.ts): `decide` runs the routing rules on the proposal (the
 * action may change) and adds one sentence about the action to the answer; `onDecisionRecorded` writes the
 * action's outbox row and the matched rules inside the decision's transaction.
 */
export function createActionHooks(deps: ActionHooksDeps) {
  const routed = new WeakMap<object, Routed>();
  // The enabled rules in memory, reloaded when a request saw a newer version (staleness bound: rule-cache.ts).
  const rules = createRuleCache({ logger: deps.logger });

  async function route(db: Knex | Knex.Transaction, proposal: DecisionLike, ctx: DecisionContextLike): Promise<Routed> {
    const active = await rules.activeRules(db, ctx.rulesVersion);
    const ruled = evaluateRules(active, {
      channel: ctx.channel,
      department: ctx.employee?.employee.department ?? null,
      sender: ctx.sender,
      request: proposal.request,
      isEnough: proposal.is_enough,
      action: proposal.action,
      ...ruleClassificationContext(proposal, ctx),
    });
    const outcome = heldForConfidence(ruled, proposal, deps.minConfidence);
    const department = outcome.department
      ? ((await deps.resolveDepartment(outcome.department)) ?? { name: outcome.department })
      : (ctx.employee?.departmentRecord ?? null);
    const reason =
      ctx.trust && isExecutableAction(outcome.action)
        ? withheldReason(ctx.trust, {
            reachesPeople: outcome.action === ACTION_MAILING_LIST || outcome.action === ACTION_TELEGRAM_EMPLOYEE,
          })
        : undefined;
    const withheld = reason ? { reason, detail: ctx.trust!.detail } : undefined;
    const plan = isExecutableAction(outcome.action)
      ? createExecutionRepository(db).planExecution({
          action: outcome.action,
          channel: ctx.channel,
          policy: deps.policy,
          jira: deps.jira,
          requireApproval: outcome.requireApproval,
          analysisId: ctx.analysisId,
          payload: { department, jira_project: outcome.jiraProject ?? null },
          withheld,
        })
      : null;
    return { outcome, department, plan, withheld };
  }

  /** Who asked: the directory username (else the sender), and on `direct` the key that vouched for them. */
  function requesterOf(context: DecisionContextLike): { requester: string; vouchedBy?: string } {
    const requester = context.employee?.employee.username ?? context.sender;
    return context.trust?.vouchedBy ? { requester, vouchedBy: context.trust.vouchedBy } : { requester };
  }

  async function onDecisionRecorded(
    trx: Knex.Transaction,
    recorded: { decision: DecisionLike; context: DecisionContextLike },
  ): Promise<void> {
    const { decision, context } = recorded;
    const r = routed.get(context) ?? (await route(trx, decision, context));
    const enqueued = await createExecutionRepository(trx).enqueue({
      analysisId: context.analysisId,
      conversationId: context.conversationId,
      ...requesterOf(context),
      channel: context.channel,
      // A held-back action is logged under the action that was proposed, though the answer is a reply.
      action: r.plan?.withheldReason ? r.outcome.action : decision.action,
      request: decision.request,
      context: context.context,
      analysis: decision.response,
      department: r.department,
      jiraProject: r.outcome.jiraProject ?? null,
      reply:
        deps.replyTarget && isExecutableAction(decision.action)
          ? await deps.replyTarget(trx, context)
          : { to: context.sender },
      requireApproval: r.outcome.requireApproval,
      matchedRuleIds: r.outcome.matchedRuleIds,
      policy: deps.policy,
      jira: deps.jira,
      withheld: r.withheld,
    });
    await createRuleRepository(trx).recordRuleMatches(
      context.analysisId,
      r.outcome.matchedRuleIds,
      enqueued?.execution.id,
    );
    if (enqueued?.execution.status === 'pending' || enqueued?.execution.status === 'awaiting_approval') {
      trx.executionPromise.then(
        () => deps.worker?.nudge(),
        () => undefined,
      );
    }
  }

  /**
   * Whether onDecisionRecorded writes for this decision: an action's outbox row (also one held back) or matched
   * rules. Without a routing from decide() it cannot tell, and says so (true).
   */
  function writes(recorded: { decision: DecisionLike; context: DecisionContextLike }): boolean {
    const r = routed.get(recorded.context);
    if (!r) return true;
    const action = r.plan?.withheldReason ? r.outcome.action : recorded.decision.action;
    return isExecutableAction(action) || r.outcome.matchedRuleIds.length > 0;
  }

  return {
    async decide<D extends DecisionLike>(proposal: D, ctx: DecisionContextLike): Promise<D> {
      const r = await route(deps.db, proposal, ctx);
      routed.set(ctx, r);
      const notice = r.plan?.notice;
      // A held-back action leaves a reply only; an escalation that was held back must not claim it happened.
      const replyOnly = r.plan?.status === 'skipped' && !!r.plan.withheldReason;
      const response = replyOnly && ctx.escalated ? ESCALATION_WITHHELD : proposal.response;
      return {
        ...proposal,
        action: replyOnly ? replyActionFor(ctx.channel) : r.outcome.action,
        response: notice ? (response ? `${response}\n\n${notice}` : notice) : response,
      };
    },

    /** What `decide` planned for `ctx` (undefined when it did not run for it); reads and writes nothing. */
    preview(ctx: DecisionContextLike): ActionPreview | undefined {
      const r = routed.get(ctx);
      if (!r) return undefined;
      return {
        action: r.outcome.action,
        matchedRuleIds: [...r.outcome.matchedRuleIds],
        plan: r.plan ? { status: r.plan.status, target: r.plan.target, reason: r.plan.error } : null,
      };
    },

    onDecisionRecorded: Object.assign(onDecisionRecorded, { writes }),
  };
}
