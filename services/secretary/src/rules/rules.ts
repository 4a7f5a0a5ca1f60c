import { z } from 'zod';
import { CHANNELS, isAction, type Action, type Channel, type SecretaryApi } from '@workemon/contracts';
import { errors } from '@workemon/service-kit';
import { isExecutableAction } from '../actions/action-policy.js';
import { compileRulePattern, isPatternProblem, rulePattern, type RulePattern } from './rule-patterns.js';

type RuleSchemas = SecretaryApi.components['schemas'];

/**
 * A rule's conditions: the contract's `RuleConditions` (openapi/secretary.yaml). All given conditions must hold;
 * none given matches every decision. Patterns are regexes (JavaScript syntax, case-insensitive, Unicode; matched
 * in linear time by RE2: rule-patterns.ts); `min_confidence` defaults to
 * DEFAULT_MIN_CONFIDENCE when `category` is set.
 */
export type RuleConditions = RuleSchemas['RuleConditions'];

/** A rule's effects: the contract's `RuleEffects` (action, department, Jira project, approval). */
export type RuleEffects = RuleSchemas['RuleEffects'];

/** A rule as an API client sends it: the contract's `RoutingRuleInput`. */
export type RuleInput = RuleSchemas['RoutingRuleInput'];

/** A stored rule as evaluation needs it: the contract's `RoutingRule` without its timestamps. */
export type RoutingRule = Omit<RuleSchemas['RoutingRule'], 'created_at' | 'updated_at'>;

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
  /** A matching rule set `action` (its `effects.action`); false: the analyst's action stands. */
  actionFromRule?: boolean;
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

export { MATCH_INPUT_MAX_CHARS, PATTERN_MAX_CHARS } from './rule-patterns.js';

/**
 * Checks a rule's pattern (rule-patterns.ts: at most PATTERN_MAX_CHARS, valid JavaScript with `iu`, and runnable by
 * the linear-time engine, RE2) and returns its matcher. A refused pattern is a 400 `invalid_parameter` naming
 * `field` (`conditions.request_pattern`), e.g. for a lookbehind or a backreference.
 */
export function compilePattern(field: string, pattern: string): RulePattern {
  const compiled = compileRulePattern(pattern);
  if (isPatternProblem(compiled)) throw errors.invalidParameter(field, compiled.message);
  return compiled;
}

/** The pattern conditions of a rule, each matched by `patternAllows`. */
export const PATTERN_FIELDS = ['sender_pattern', 'subject_pattern', 'request_pattern'] as const;

/**
 * The patterns of `conditions` that cannot be compiled, by their field (`conditions.request_pattern`) with the
 * reason; empty for a rule saved through the API. Only a rule stored before a check existed (or before RE2
 * replaced JavaScript's backtracking engine: a lookbehind, a backreference) has any. Such a pattern never
 * matches, so the rule never applies (docs/actions.md, "Patterns of routing rules").
 */
export function patternProblems(conditions: RuleConditions): Record<string, string> {
  const problems: Record<string, string> = {};
  for (const field of PATTERN_FIELDS) {
    const pattern = conditions[field];
    if (pattern === undefined) continue;
    const compiled = rulePattern(pattern);
    if (isPatternProblem(compiled)) problems[`conditions.${field}`] = compiled.message;
  }
  return problems;
}

const JIRA_KEY = /^[A-Z][A-Z0-9_]{0,49}$/;

const ACTION_ERROR = { error: 'is not a known action' };
const CATEGORY_ERROR = { error: 'must be a category name such as payments (see CATEGORIES)' };
const CONFIDENCE_ERROR = { error: 'must be a number from 0 to 1' };
const SUBJECT_ERROR = { error: 'must be a non-empty regular expression' };
const PATTERN_ERROR = { error: 'must be a regular expression' };

/**
 * The shape of a rule (RoutingRuleInput in openapi/secretary.yaml), for code paths that do not pass the OpenAPI
 * validator. Fields the contract does not check further pass through as given; each message names what is
 * wrong with the field the issue's path names (`conditions.category`).
 */
const RULE_INPUT_SCHEMA = z.looseObject({
  name: z.string({ error: 'must not be empty' }).trim().min(1, { error: 'must not be empty' }),
  conditions: z
    .looseObject({
      channel: z.enum(CHANNELS, { error: `must be one of: ${CHANNELS.join(', ')}` }).optional(),
      action: z.custom<Action>(isAction, ACTION_ERROR).optional(),
      sender_pattern: z.string(PATTERN_ERROR).optional(),
      subject_pattern: z.string(SUBJECT_ERROR).min(1, SUBJECT_ERROR).optional(),
      category: z.string(CATEGORY_ERROR).regex(CATEGORY_NAME, CATEGORY_ERROR).optional(),
      min_confidence: z.number(CONFIDENCE_ERROR).min(0, CONFIDENCE_ERROR).max(1, CONFIDENCE_ERROR).optional(),
      when_unclear: z.boolean({ error: 'must be true or false' }).optional(),
      request_pattern: z.string(PATTERN_ERROR).optional(),
    })
    .optional(),
  effects: z
    .looseObject({
      action: z.custom<Action>(isAction, ACTION_ERROR).optional(),
      jira_project: z.string().regex(JIRA_KEY, { error: 'must be a Jira project key (e.g. OPS)' }).optional(),
    })
    .optional(),
  priority: z.number({ error: 'must be a whole number' }).int({ error: 'must be a whole number' }).optional(),
});

/** Throws the 400 `invalid_parameter` of the first field RULE_INPUT_SCHEMA refuses (its dotted path). */
function checkRuleShape(input: RuleInput): void {
  const parsed = RULE_INPUT_SCHEMA.safeParse(input);
  if (parsed.success) return;
  const [issue] = parsed.error.issues;
  throw errors.invalidParameter(issue!.path.join('.') || 'body', issue!.message);
}

/** Compiles each pattern of the conditions (compilePattern: length, JavaScript syntax, what RE2 runs). */
function checkPatterns(conditions: RuleConditions): void {
  for (const field of PATTERN_FIELDS) {
    const pattern = conditions[field];
    if (pattern !== undefined) compilePattern(`conditions.${field}`, pattern);
  }
}

/** A rule on unclear requests (`is_enough: false`) must opt in with `when_unclear: true` (docs/actions.md). */
function checkUnclearOptIn(conditions: RuleConditions): void {
  if (conditions.is_enough === false && conditions.when_unclear !== true)
    throw errors.invalidParameter(
      'conditions.when_unclear',
      'must be true for a rule on unclear requests (conditions.is_enough false): rules leave clarifying questions alone unless they opt in',
    );
}

/**
 * Checks a rule as an API client sends it (the OpenAPI document checks types and enums first; this repeats
 * what matters for code paths without it) and fills defaults. Errors are 400 `invalid_parameter` naming the
 * field: `conditions.sender_pattern`.
 */
export function validateRule(input: RuleInput): Omit<RoutingRule, 'id'> {
  checkRuleShape(input);
  const conditions = input.conditions ?? {};
  checkPatterns(conditions);
  checkUnclearOptIn(conditions);
  return {
    name: input.name.trim(),
    priority: input.priority ?? 100,
    enabled: input.enabled ?? true,
    stop_on_match: input.stop_on_match ?? false,
    conditions,
    effects: input.effects ?? {},
  };
}

/**
 * Whether `pattern` (unset: no condition) finds a match in the first MATCH_INPUT_MAX_CHARS of `text`, in time
 * linear in the text (rule-patterns.ts). A pattern that cannot be compiled (stored before RE2 checked it) never
 * matches: it does not throw, so one bad rule cannot fail every request (`patternProblems` lists it).
 */
function patternAllows(pattern: string | undefined, text: string | undefined): boolean {
  if (pattern === undefined) return true;
  if (text === undefined) return false;
  const compiled = rulePattern(pattern);
  return !isPatternProblem(compiled) && compiled.test(text);
}

/** Whether a condition (unset: no condition) equals the context's value. */
function equalOrUnset<T>(condition: T | undefined, value: T | undefined): boolean {
  return condition === undefined || condition === value;
}

/** An unclear request meets only rules that opt in with `when_unclear: true`. */
function clarityAllows(c: RuleConditions, ctx: RuleContext): boolean {
  return ctx.isEnough || c.when_unclear === true;
}

/** The classification's confidence reaches `min_confidence` (default DEFAULT_MIN_CONFIDENCE with a category). */
function confidenceAllows(c: RuleConditions, ctx: RuleContext): boolean {
  const threshold = c.min_confidence ?? (c.category !== undefined ? DEFAULT_MIN_CONFIDENCE : undefined);
  return threshold === undefined || (ctx.confidence !== undefined && ctx.confidence >= threshold);
}

/** The requester's department, case-insensitive. */
function departmentAllows(c: RuleConditions, ctx: RuleContext): boolean {
  return c.department === undefined || c.department.toLowerCase() === (ctx.department ?? '').toLowerCase();
}

/** The conditions on exact values: channel, category, is_enough and the analyst's action. */
function valuesAllow(c: RuleConditions, ctx: RuleContext): boolean {
  return (
    equalOrUnset(c.channel, ctx.channel) &&
    equalOrUnset(c.category, ctx.category) &&
    equalOrUnset(c.is_enough, ctx.isEnough) &&
    equalOrUnset(c.action, ctx.action)
  );
}

/** The regex conditions: Subject, sender and request text. */
function patternsAllow(c: RuleConditions, ctx: RuleContext): boolean {
  return (
    patternAllows(c.subject_pattern, ctx.subject) &&
    patternAllows(c.sender_pattern, ctx.sender) &&
    patternAllows(c.request_pattern, ctx.request)
  );
}

/** The steps of `matches`, cheapest first: every one must hold. */
const CONDITION_CHECKS: ReadonlyArray<(c: RuleConditions, ctx: RuleContext) => boolean> = [
  clarityAllows,
  valuesAllow,
  confidenceAllows,
  departmentAllows,
  patternsAllow,
];

/** Whether every condition of a rule holds for the context (RuleConditions: none given matches everything). */
function matches(c: RuleConditions, ctx: RuleContext): boolean {
  return CONDITION_CHECKS.every((check) => check(c, ctx));
}

/** A matching rule is taken unless its action has a side effect and the context is empty. */
function isTaken(rule: RoutingRule, ctx: RuleContext, emptyContext: boolean): boolean {
  if (!matches(rule.conditions, ctx)) return false;
  const action = rule.effects.action;
  return !(action !== undefined && isExecutableAction(action) && emptyContext);
}

/**
 * Adds a taken rule's effects to the outcome: each effect from the first rule that sets it (`actionSet` says
 * whether a rule set the action already), approval when any asks. Returns the new `actionSet`.
 */
function applyEffects(outcome: RuleOutcome, rule: RoutingRule, actionSet: boolean): boolean {
  const e = rule.effects;
  outcome.matchedRuleIds.push(rule.id);
  if (e.action !== undefined && !actionSet) {
    outcome.action = e.action;
    outcome.actionFromRule = true;
  }
  if (e.department !== undefined) outcome.department ??= e.department;
  if (e.jira_project !== undefined) outcome.jiraProject ??= e.jira_project;
  if (e.require_approval) outcome.requireApproval = true;
  return actionSet || e.action !== undefined;
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
    if (!isTaken(rule, ctx, emptyContext)) continue;
    actionSet = applyEffects(outcome, rule, actionSet);
    if (rule.stop_on_match) break;
  }
  return outcome;
}
