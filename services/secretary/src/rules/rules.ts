import { isAction, type Action, type Channel } from '@workemon/contracts';
import { errors } from '@workemon/service-kit';

export type RuleConditions = {
  channel?: Channel;
  /** The requester's department (case-insensitive). */
  department?: string;
  /** Regex (case-insensitive) on the sender: email address, Telegram username or id, or directory username. */
  sender_pattern?: string;
  /** Regex (case-insensitive) on the request text. */
  request_pattern?: string;
  /** The guesser's decision: was the request clear enough. */
  is_enough?: boolean;
  /** The action the analyst proposed (before any rule's effect). */
  action?: Action;
};

export type RuleEffects = {
  action?: Action;
  department?: string;
  jira_project?: string;
  require_approval?: boolean;
};

export type RuleInput = {
  name: string;
  priority?: number;
  enabled?: boolean;
  stop_on_match?: boolean;
  conditions?: RuleConditions;
  effects?: RuleEffects;
};

export type RoutingRule = {
  id: number;
  name: string;
  priority: number;
  enabled: boolean;
  stop_on_match: boolean;
  conditions: RuleConditions;
  effects: RuleEffects;
};

export type RuleContext = {
  channel: Channel;
  department?: string | null;
  sender: string;
  request: string;
  isEnough: boolean;
  /** The analyst's proposal. */
  action: Action;
};

export type RuleOutcome = {
  action: Action;
  department?: string;
  jiraProject?: string;
  requireApproval: boolean;
  matchedRuleIds: number[];
};

export const PATTERN_MAX_CHARS = 300;
// Patterns run against at most this much text: a bound on the work one request can cause.
export const MATCH_INPUT_MAX_CHARS = 10_000;

// A quantified group that itself contains a quantifier, e.g. (a+)+ or (\w*\s?){2,}: the classic shape of
// catastrophic backtracking. A heuristic (nested groups escape it), backed by the length and input caps.
function hasNestedQuantifier(pattern: string): boolean {
  const groups = /\(([^()]*)\)\s*(?:[*+]|\{\d)/g;
  for (let m = groups.exec(pattern); m; m = groups.exec(pattern)) {
    if (/[*+]|\{\d/.test(m[1]!.replace(/\\./g, ''))) return true;
  }
  return false;
}

export function compilePattern(field: string, pattern: string): RegExp {
  if (pattern.length > PATTERN_MAX_CHARS)
    throw errors.invalidParameter(field, `must be at most ${PATTERN_MAX_CHARS} characters`);
  let re: RegExp;
  try {
    re = new RegExp(pattern, 'iu');
  } catch (err) {
    throw errors.invalidParameter(field, `is not a valid regular expression: ${(err as Error).message}`);
  }
  if (hasNestedQuantifier(pattern))
    throw errors.invalidParameter(field, 'has a quantified group containing a quantifier (catastrophic backtracking)');
  return re;
}

const CHANNELS = ['email', 'tg', 'direct'];
const JIRA_KEY = /^[A-Z][A-Z0-9_]{0,49}$/;

/**
 * Checks a rule as an API client sends it (the OpenAPI document checks types and enums first; this repeats
 * what matters for code paths without it) and fills defaults. Errors name the field: `conditions.sender_pattern`.
 */
export function validateRule(input: RuleInput): Omit<RoutingRule, 'id'> {
  if (typeof input.name !== 'string' || !input.name.trim()) throw errors.invalidParameter('name', 'must not be empty');
  const conditions = input.conditions ?? {};
  const effects = input.effects ?? {};
  if (conditions.channel !== undefined && !CHANNELS.includes(conditions.channel))
    throw errors.invalidParameter('conditions.channel', `must be one of: ${CHANNELS.join(', ')}`);
  if (conditions.action !== undefined && !isAction(conditions.action))
    throw errors.invalidParameter('conditions.action', 'is not a known action');
  if (effects.action !== undefined && !isAction(effects.action))
    throw errors.invalidParameter('effects.action', 'is not a known action');
  if (effects.jira_project !== undefined && !JIRA_KEY.test(effects.jira_project))
    throw errors.invalidParameter('effects.jira_project', 'must be a Jira project key (e.g. OPS)');
  if (conditions.sender_pattern !== undefined) compilePattern('conditions.sender_pattern', conditions.sender_pattern);
  if (conditions.request_pattern !== undefined)
    compilePattern('conditions.request_pattern', conditions.request_pattern);
  const priority = input.priority ?? 100;
  if (!Number.isInteger(priority)) throw errors.invalidParameter('priority', 'must be a whole number');
  return {
    name: input.name.trim(),
    priority,
    enabled: input.enabled ?? true,
    stop_on_match: input.stop_on_match ?? false,
    conditions,
    effects,
  };
}

const compiled = new Map<string, RegExp | null>();
function cachedPattern(pattern: string): RegExp | null {
  let re = compiled.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern, 'iu');
    } catch {
      re = null; // stored before validation existed: never matches
    }
    if (compiled.size > 1000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

function matches(c: RuleConditions, ctx: RuleContext): boolean {
  if (c.channel !== undefined && c.channel !== ctx.channel) return false;
  if (c.department !== undefined && c.department.toLowerCase() !== (ctx.department ?? '').toLowerCase()) return false;
  if (c.is_enough !== undefined && c.is_enough !== ctx.isEnough) return false;
  if (c.action !== undefined && c.action !== ctx.action) return false;
  if (
    c.sender_pattern !== undefined &&
    !cachedPattern(c.sender_pattern)?.test(ctx.sender.slice(0, MATCH_INPUT_MAX_CHARS))
  )
    return false;
  if (
    c.request_pattern !== undefined &&
    !cachedPattern(c.request_pattern)?.test(ctx.request.slice(0, MATCH_INPUT_MAX_CHARS))
  )
    return false;
  return true;
}

/**
 * Runs the enabled rules in order (priority ascending, then id) against a decision. Every matching rule is
 * recorded; an effect is taken from the first matching rule that sets it (a later, lower-priority rule cannot
 * override it); `require_approval` is true when any matching rule asks for it; a matching rule with
 * `stop_on_match` ends the evaluation. No match: the analyst's action stands.
 */
export function evaluateRules(rules: readonly RoutingRule[], ctx: RuleContext): RuleOutcome {
  const ordered = rules.filter((r) => r.enabled).sort((a, b) => a.priority - b.priority || a.id - b.id);
  const outcome: RuleOutcome = { action: ctx.action, requireApproval: false, matchedRuleIds: [] };
  let actionSet = false;
  for (const rule of ordered) {
    if (!matches(rule.conditions, ctx)) continue;
    outcome.matchedRuleIds.push(rule.id);
    const e = rule.effects;
    if (e.action !== undefined && !actionSet) {
      outcome.action = e.action;
      actionSet = true;
    }
    if (e.department !== undefined && outcome.department === undefined) outcome.department = e.department;
    if (e.jira_project !== undefined && outcome.jiraProject === undefined) outcome.jiraProject = e.jira_project;
    if (e.require_approval) outcome.requireApproval = true;
    if (rule.stop_on_match) break;
  }
  return outcome;
}
