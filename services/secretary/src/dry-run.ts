import type { Knex } from 'knex';
import { ACTION_CLARIFY, type WouldExecute } from '@workemon/contracts';
import type { ActionPreview } from './actions/action-hooks.js';
import type { ExecutionTarget } from './actions/executors.js';
import type { AnalyzeInput, createAnalyzer } from './analyzer.js';
import { channelReplyAction, type Decision, type DecisionContext } from './decision.js';
import { capDecision } from './response-length.js';

/** One thing a real request would do (the contract's `WouldExecute`). */
export type { WouldExecute };

/** The routing step's plan for a context (the action hooks' `preview`); absent: no rules or actions wired. */
export type PreviewActions = (context: DecisionContext) => ActionPreview | undefined;

const targetName = (target: ExecutionTarget | null): string | null =>
  target === null ? null : target.system === 'jira' ? target.project : target.to;

/** Where the sender's answer would go: a Telegram chat from the thread key (`tg:<chat>[:<user>]`), else the sender. */
function replyTargetOf(input: AnalyzeInput): string {
  if (input.channel === 'tg') {
    const chat = /^tg:(-?\d+)(:|$)/.exec(input.threadKey ?? '')?.[1];
    return chat ?? input.claims?.telegramUserId ?? input.username;
  }
  return input.username;
}

/**
 * Dry runs of /analyze-request (`"dry_run": true`): the analyzer's whole decision (guesser, analyst, rules,
 * trust) with nothing stored, no action run, no outbox row and no rate-limit budget taken, returned with
 * `dry_run: true` and `would_execute`: the side-effect action the rules planned (with its target, or why it
 * would be skipped) and the reply the sender would get (none for a no_reply category). Not stored at all, so
 * it counts in no statistic and no later request continues it (docs/secretary.md, "Dry runs").
 */
export function createDryRun(deps: {
  analyzer: ReturnType<typeof createAnalyzer>;
  knex: Knex;
  preview?: PreviewActions;
  /** MAX_RESPONSE_LENGTH, applied to the reply text as to real answers; undefined or 0: not cut. */
  maxResponseChars?: number;
}) {
  async function ruleNames(ids: readonly number[]): Promise<Map<number, string>> {
    if (ids.length === 0) return new Map();
    const rows = (await deps.knex('routing_rules').whereIn('id', ids).select('id', 'name')) as {
      id: number;
      name: string;
    }[];
    return new Map(rows.map((r) => [Number(r.id), r.name]));
  }

  return async function dryRun(input: AnalyzeInput): Promise<{ decision: Decision; wouldExecute: WouldExecute[] }> {
    const { decision, context } = await deps.analyzer.dryRun(input);
    const preview = deps.preview?.(context);
    const names = await ruleNames(preview?.matchedRuleIds ?? []);
    const rules = (preview?.matchedRuleIds ?? []).map((id) => ({ id, name: names.get(id) ?? '' }));
    const wouldExecute: WouldExecute[] = [];
    if (preview?.plan) {
      wouldExecute.push({
        action: preview.action,
        status: preview.plan.status,
        rules,
        target: targetName(preview.plan.target),
        reason: preview.plan.reason,
        text: null,
      });
    }
    if (!decision.no_reply) {
      const shown = capDecision(decision, deps.maxResponseChars);
      const replyText = shown.question || shown.response;
      wouldExecute.push({
        action: decision.action === ACTION_CLARIFY ? ACTION_CLARIFY : channelReplyAction(input.channel),
        status: 'pending',
        rules: preview?.plan ? [] : rules,
        target: replyTargetOf(input),
        reason: null,
        text: replyText,
      });
    }
    return { decision, wouldExecute };
  };
}
