import { isAction, type Action, type Channel } from '@workemon/contracts';
import { errors } from '@workemon/service-kit';
import { isExecutableAction } from '../actions/action-policy.js';

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
  /** The guesser's category (the workflow engine's `classification_trigger`). */
  category?: string;
  /**
   * The least confidence of the classification (0–1). Default DEFAULT_MIN_CONFIDENCE (0.70, the workflow
   * engine's `confidence_threshold`) when `category` is set; no threshold otherwise. A decision without a
   * confidence never passes a threshold.
   */
  min_confidence?: number;
  /** Regex (case-insensitive) on the mail's Subject; a request without one (Telegram, REST) never matches. */
  subject_pattern?: string;
  /**
   * The rule applies while the request is unclear (is_enough false) too. Without it a rule never replaces the
   * clarifying question. Even with it, an action with a side effect never runs on an empty context.
   */
  when_unclear?: boolean;
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
  /** The mail's Subject, when the request came with one. */
  subject?: string;
  category?: string;
  confidence?: number;
  /** The guesser's description of the context; empty when it asked a question. Default: empty. */
  context?: string;
  /** The category gets no reply: no rule applies. */
  noReply?: boolean;
};

export type RuleOutcome = {
  action: Action;
  department?: string;
  jiraProject?: string;
  requireApproval: boolean;
  matchedRuleIds: number[];
};

/** The workflow engine's default `confidence_threshold`. */
export const DEFAULT_MIN_CONFIDENCE = 0.7;
/** The guesser's category names (CATEGORIES in docs/llm.md). */
export const CATEGORY_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/** The parts of a RuleContext added for the workflow engine's conditions, from a decision and its context. */
export function ruleClassificationContext(
  decision: { category?: string; confidence?: number; no_reply?: boolean },
  ctx: { subject?: string; context: string },
): Pick<RuleContext, 'subject' | 'category' | 'confidence' | 'context' | 'noReply'> {
  return {
    subject: ctx.subject,
    category: decision.category,
    confidence: decision.confidence,
    context: ctx.context,
    noReply: decision.no_reply === true,
  };
}

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
  if (conditions.subject_pattern !== undefined) {
    if (typeof conditions.subject_pattern !== 'string' || !conditions.subject_pattern)
      throw errors.invalidParameter('conditions.subject_pattern', 'must be a non-empty regular expression');
    compilePattern('conditions.subject_pattern', conditions.subject_pattern);
  }
  if (
    conditions.category !== undefined &&
    (typeof conditions.category !== 'string' || !CATEGORY_NAME.test(conditions.category))
  )
    throw errors.invalidParameter('conditions.category', 'must be a category name such as payments (see CATEGORIES)');
  if (
    conditions.min_confidence !== undefined &&
    (typeof conditions.min_confidence !== 'number' ||
      !(conditions.min_confidence >= 0 && conditions.min_confidence <= 1))
  )
    throw errors.invalidParameter('conditions.min_confidence', 'must be a number from 0 to 1');
  if (conditions.when_unclear !== undefined && typeof conditions.when_unclear !== 'boolean')
    throw errors.invalidParameter('conditions.when_unclear', 'must be true or false');
  if (conditions.is_enough === false && conditions.when_unclear !== true)
    throw errors.invalidParameter(
      'conditions.when_unclear',
      'must be true for a rule on unclear requests (conditions.is_enough false): rules leave clarifying questions alone unless they opt in',
    );
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
  if (!ctx.isEnough && c.when_unclear !== true) return false;
  if (c.channel !== undefined && c.channel !== ctx.channel) return false;
  if (c.category !== undefined && c.category !== ctx.category) return false;
  const threshold = c.min_confidence ?? (c.category !== undefined ? DEFAULT_MIN_CONFIDENCE : undefined);
  if (threshold !== undefined && !(ctx.confidence !== undefined && ctx.confidence >= threshold)) return false;
  if (
    c.subject_pattern !== undefined &&
    (ctx.subject === undefined || !cachedPattern(c.subject_pattern)?.test(ctx.subject.slice(0, MATCH_INPUT_MAX_CHARS)))
  )
    return false;
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
 * override it); `require_approval` is true when any matching rule asks for it. No match: the analyst's action
 * stands.
 *
 * - While the request is unclear (`isEnough` false) only rules with `when_unclear: true` are considered, so the
 *   answer stays the clarifying question; a request whose category gets no reply meets no rule at all.
 * - A rule whose action has a side effect (Jira, Telegram, mailing list) is not taken on an empty context: it
 *   counts as not matched, and the evaluation goes on.
 * - `stop_on_match` ends the evaluation after that rule, as the workflow engine's did "if successful": a rule
 *   stops only when it was taken; one passed over for an empty context lets later rules run.
 */
export function evaluateRules(rules: readonly RoutingRule[], ctx: RuleContext): RuleOutcome {
  const ordered = rules.filter((r) => r.enabled).sort((a, b) => a.priority - b.priority || a.id - b.id);
  const outcome: RuleOutcome = { action: ctx.action, requireApproval: false, matchedRuleIds: [] };
  if (ctx.noReply) return outcome;
  const emptyContext = !(ctx.context ?? '').trim();
  let actionSet = false;
  for (const rule of ordered) {
    if (!matches(rule.conditions, ctx)) continue;
    const e = rule.effects;
    if (e.action !== undefined && isExecutableAction(e.action) && emptyContext) continue;
    outcome.matchedRuleIds.push(rule.id);
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
