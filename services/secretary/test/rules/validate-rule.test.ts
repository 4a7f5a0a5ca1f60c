import { describe, expect, it } from 'vitest';
import { ACTION_JIRA } from '@workemon/contracts';
import { isAppError } from '@workemon/service-kit';
import { validateRule, type RuleInput } from '../../src/rules/rules.js';

// validateRule without the OpenAPI validator in front (code paths that call it directly): each refusal is a
// 400 invalid_parameter naming the field, with the message the API documents.
function refusal(input: unknown): { status: number; message: string; parameter: unknown } {
  try {
    validateRule(input as RuleInput);
  } catch (err) {
    if (!isAppError(err)) throw err;
    return { status: err.status, message: err.message, parameter: err.details?.['parameter'] };
  }
  throw new Error('validateRule accepted the rule');
}

describe('validateRule on its own', () => {
  it('fills the defaults and trims the name, keeping conditions and effects as given', () => {
    const conditions = { channel: 'email' as const, category: 'payments', min_confidence: 0.9 };
    expect(validateRule({ name: '  Payments ', conditions, effects: { action: ACTION_JIRA } })).toEqual({
      name: 'Payments',
      priority: 100,
      enabled: true,
      stop_on_match: false,
      conditions,
      effects: { action: ACTION_JIRA },
    });
  });

  it.each([
    [{ name: '   ' }, 'name', /must not be empty/],
    [{ name: 'x', conditions: { channel: 'slack' } }, 'conditions.channel', /must be one of: email, tg, direct/],
    [{ name: 'x', conditions: { action: 'позвонить' } }, 'conditions.action', /is not a known action/],
    [{ name: 'x', effects: { action: 'nope' } }, 'effects.action', /is not a known action/],
    [{ name: 'x', effects: { jira_project: 'fin-1' } }, 'effects.jira_project', /must be a Jira project key/],
    [{ name: 'x', conditions: { subject_pattern: '' } }, 'conditions.subject_pattern', /non-empty regular/],
    [{ name: 'x', conditions: { category: 'Платежи' } }, 'conditions.category', /must be a category name/],
    [{ name: 'x', conditions: { min_confidence: 1.5 } }, 'conditions.min_confidence', /from 0 to 1/],
    [{ name: 'x', conditions: { min_confidence: 'high' } }, 'conditions.min_confidence', /from 0 to 1/],
    [{ name: 'x', conditions: { when_unclear: 'yes' } }, 'conditions.when_unclear', /must be true or false/],
    [{ name: 'x', conditions: { is_enough: false } }, 'conditions.when_unclear', /must be true for a rule on unclear/],
    [{ name: 'x', conditions: { sender_pattern: '([a-z' } }, 'conditions.sender_pattern', /not a valid regular/],
    [{ name: 'x', conditions: { request_pattern: '(a)\\1' } }, 'conditions.request_pattern', /backreferences/],
    [{ name: 'x', priority: 1.5 }, 'priority', /must be a whole number/],
  ])('400 naming the field: %j', (input, parameter, message) => {
    const got = refusal(input);
    expect(got.status).toBe(400);
    expect(got.parameter).toBe(parameter);
    expect(got.message.startsWith(`Parameter '${parameter}' `)).toBe(true);
    expect(got.message).toMatch(message);
  });
});
