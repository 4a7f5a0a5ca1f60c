import type { Knex } from 'knex';
import { type Action, type Channel } from '@workemon/contracts';
import type { Logger } from '@workemon/service-kit';
import { listActiveRules, recordRuleMatches } from '../rules/rule-repository.js';
import { evaluateRules, type RuleOutcome } from '../rules/rules.js';
import { isExecutableAction, type ActionPolicy } from './action-policy.js';
import { enqueueActionExecution, planExecution, type ExecutionPlan } from './execution-repository.js';
import type { DepartmentTarget } from './executors.js';

// Structural mirrors of the secretary's Decision / DecisionContext (decision.ts), so this module and its tests
// stand alone; the analyzer's own types are assignable to these.
export type DecisionLike = { is_enough: boolean; request: string; action: Action; question: string; response: string };
export type DecisionContextLike = {
  channel: Channel;
  sender: string;
  employee:
    | { employee: { username: string; department: string | null }; departmentRecord: DepartmentTarget | null }
    | undefined;
  conversationId: number;
  analysisId: number;
  context: string;
};

export type ActionHooksDeps = {
  db: Knex;
  policy: ActionPolicy;
  jira: { configured: boolean; defaultProjectKey?: string };
  /** A department by name, for rules that route elsewhere (the directory's getDepartment). */
  resolveDepartment: (name: string) => Promise<DepartmentTarget | undefined>;
  /** Told after the decision commits, so the action runs now rather than at the next poll. */
  worker?: { nudge(): void };
  logger?: Logger;
};

type Routed = { outcome: RuleOutcome; department: DepartmentTarget | null; plan: ExecutionPlan | null };

/**
 * The two steps the analyzer offers (see decision.ts): `decide` runs the routing rules on the proposal (the
 * action may change) and adds one sentence about the action to the answer; `onDecisionRecorded` writes the
 * action's outbox row and the matched rules inside the decision's transaction.
 */
export function createActionHooks(deps: ActionHooksDeps) {
  const routed = new WeakMap<object, Routed>();

  async function route(db: Knex | Knex.Transaction, proposal: DecisionLike, ctx: DecisionContextLike): Promise<Routed> {
    const rules = await listActiveRules(db);
    const outcome = evaluateRules(rules, {
      channel: ctx.channel,
      department: ctx.employee?.employee.department ?? null,
      sender: ctx.sender,
      request: proposal.request,
      isEnough: proposal.is_enough,
      action: proposal.action,
    });
    const department = outcome.department
      ? ((await deps.resolveDepartment(outcome.department)) ?? { name: outcome.department })
      : (ctx.employee?.departmentRecord ?? null);
    const plan = isExecutableAction(outcome.action)
      ? planExecution({
          action: outcome.action,
          channel: ctx.channel,
          policy: deps.policy,
          jira: deps.jira,
          requireApproval: outcome.requireApproval,
          analysisId: ctx.analysisId,
          payload: { department, jira_project: outcome.jiraProject ?? null },
        })
      : null;
    return { outcome, department, plan };
  }

  return {
    async decide<D extends DecisionLike>(proposal: D, ctx: DecisionContextLike): Promise<D> {
      const r = await route(deps.db, proposal, ctx);
      routed.set(ctx, r);
      const notice = r.plan?.notice;
      return {
        ...proposal,
        action: r.outcome.action,
        response: notice ? (proposal.response ? `${proposal.response}\n\n${notice}` : notice) : proposal.response,
      };
    },

    async onDecisionRecorded(
      trx: Knex.Transaction,
      recorded: { decision: DecisionLike; context: DecisionContextLike },
    ): Promise<void> {
      const { decision, context } = recorded;
      const r = routed.get(context) ?? (await route(trx, decision, context));
      const enqueued = await enqueueActionExecution(trx, {
        analysisId: context.analysisId,
        conversationId: context.conversationId,
        requester: context.employee?.employee.username ?? context.sender,
        channel: context.channel,
        action: decision.action,
        request: decision.request,
        context: context.context,
        analysis: decision.response,
        department: r.department,
        jiraProject: r.outcome.jiraProject ?? null,
        reply: { to: context.sender },
        requireApproval: r.outcome.requireApproval,
        matchedRuleIds: r.outcome.matchedRuleIds,
        policy: deps.policy,
        jira: deps.jira,
      });
      await recordRuleMatches(trx, context.analysisId, r.outcome.matchedRuleIds, enqueued?.execution.id);
      if (enqueued?.execution.status === 'pending' || enqueued?.execution.status === 'awaiting_approval') {
        trx.executionPromise.then(
          () => deps.worker?.nudge(),
          () => undefined,
        );
      }
    },
  };
}
