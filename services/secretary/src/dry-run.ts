import type { Knex } from 'knex';
import { ACTION_CLARIFY, type WouldExecute } from '@workemon/contracts';
import type { KeyClass, Principal } from '@workemon/service-kit';
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

/**
 * How a client key sees a side-effect target: its kind, by the role a person would recognise, never the directory's
 * data (a Jira project key, a mailing-list address, a colleague's Telegram id).
 */
const TARGET_ROLE: Record<ExecutionTarget['system'], string> = {
  jira: 'Jira project',
  mailing_list: 'department mailing list',
  telegram: 'responsible colleague (Telegram)',
};

/** What a client key reads instead of the operator's reason for a skipped action (which names directory data). */
export const CLIENT_SKIP_REASON = 'it would not be carried out; a dry run with an admin key shows why';

/**
 * Whether a caller may see the directory's data in a dry run: admin and service keys do; a client key does not
 * (ARCHITECTURE "Secure by default": reading the directory and the rules is an admin's right). A keyless caller on
 * loopback sees what the open classes may read: everything when the admin class is open too (it could read the
 * directory itself), the client's view otherwise. `open`: the authenticator's open classes.
 */
export function seesDirectory(principal: Principal | undefined, open: readonly KeyClass[]): boolean {
  if (!principal) return false;
  if (principal.anonymous) return open.includes('admin');
  return principal.keyClass !== 'client';
}

/**
 * The client's view of `would_execute`: each entry keeps its action and status; a side-effect target becomes its
 * role (`TARGET_ROLE`), matched rules are left out, and a skip reason becomes `CLIENT_SKIP_REASON`. The reply's
 * target is the caller's own input (the sender or chat it named) and stays.
 */
export function redactForClient(
  entries: readonly WouldExecute[],
  targets: readonly (ExecutionTarget | null | undefined)[],
): WouldExecute[] {
  return entries.map((entry, i): WouldExecute => {
    const target = targets[i];
    return {
      ...entry,
      rules: [],
      target: target === undefined ? entry.target : target === null ? null : TARGET_ROLE[target.system],
      reason: entry.reason === null ? null : CLIENT_SKIP_REASON,
    };
  });
}

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
 * it counts in no statistic and no later request continues it (docs/secretary.md, "Dry runs"). With
 * `view: 'client'` the plan is shown as `redactForClient` makes it: the action and the kind of target, no directory
 * data (docs/secretary.md, "Dry runs and client keys").
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

  return async function dryRun(
    input: AnalyzeInput,
    view: 'full' | 'client' = 'full',
  ): Promise<{ decision: Decision; wouldExecute: WouldExecute[] }> {
    const { decision, context } = await deps.analyzer.dryRun(input);
    const preview = deps.preview?.(context);
    const names = await ruleNames(preview?.matchedRuleIds ?? []);
    const rules = (preview?.matchedRuleIds ?? []).map((id) => ({ id, name: names.get(id) ?? '' }));
    const wouldExecute: WouldExecute[] = [];
    // The side-effect target of each entry (undefined: the reply, whose target is the caller's own input).
    const targets: (ExecutionTarget | null | undefined)[] = [];
    if (preview?.plan) {
      targets.push(preview.plan.target);
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
    return {
      decision,
      wouldExecute: view === 'client' ? redactForClient(wouldExecute, targets) : wouldExecute,
    };
  };
}
