// The workflow engine's trigger conditions as routing rules (issue 16): each condition matched and not matched,
// the unclear-request guard, the empty-context guard and stop_on_match "if successful"; and validation naming
// the bad field over HTTP.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Action } from '@workemon/contracts';
import { ACTION_JIRA, ACTION_MAILING_LIST } from '../../src/actions/action-policy.js';
import { evaluateRules, type RoutingRule, type RuleConditions, type RuleContext } from '../../src/rules/rules.js';
import {
  buildActionsApp,
  createActionsDatabase,
  expectContract,
  keyedApp,
  type TestDatabase,
} from '../actions/actions-harness.js';

const REPLY: Action = 'ответить сообщением';
const CLARIFY: Action = 'уточнить';

const rule = (id: number, conditions: RuleConditions, overrides: Partial<RoutingRule> = {}): RoutingRule => ({
  id,
  name: `r${id}`,
  priority: 100,
  enabled: true,
  stop_on_match: false,
  conditions,
  effects: { action: ACTION_JIRA },
  ...overrides,
});

const mail = (overrides: Partial<RuleContext> = {}): RuleContext => ({
  channel: 'email',
  department: 'Finance',
  sender: 'anna@corp.test',
  request: 'Не проходит платёж по счёту 42, нужна помощь',
  isEnough: true,
  action: REPLY,
  subject: '[Платежи] счёт 42',
  category: 'payments',
  confidence: 0.82,
  context: 'Сотрудник финансов: платёж по счёту не проходит',
  ...overrides,
});

const matched = (r: RoutingRule, ctx: RuleContext) => evaluateRules([r], ctx).matchedRuleIds.includes(r.id);

describe('rule conditions, each matched and not matched', () => {
  const cases: Array<[string, RuleConditions, Partial<RuleContext>, Partial<RuleContext>]> = [
    ['category', { category: 'payments' }, {}, { category: 'cards' }],
    ['category without a classification', { category: 'payments' }, {}, { category: undefined, confidence: undefined }],
    [
      'default min_confidence 0.70 with a category',
      { category: 'payments' },
      { confidence: 0.7 },
      { confidence: 0.69 },
    ],
    ['category with no confidence given', { category: 'payments' }, { confidence: 0.9 }, { confidence: undefined }],
    [
      'explicit min_confidence',
      { category: 'payments', min_confidence: 0.9 },
      { confidence: 0.95 },
      { confidence: 0.85 },
    ],
    ['min_confidence alone', { min_confidence: 0.5 }, { confidence: 0.5 }, { confidence: 0.3 }],
    ['subject_pattern', { subject_pattern: '^\\[платежи\\]' }, {}, { subject: 'Re: вопрос' }],
    ['subject_pattern without a subject', { subject_pattern: 'счёт' }, {}, { subject: undefined, channel: 'tg' }],
    ['sender_pattern', { sender_pattern: '@corp\\.test$' }, {}, { sender: 'anna@vendor.test' }],
    ['request_pattern', { request_pattern: 'счёт[уа]?\\s+\\d+' }, {}, { request: 'Вопрос про карту' }],
    ['channel', { channel: 'email' }, {}, { channel: 'tg' }],
    ['department (case-insensitive)', { department: 'FINANCE' }, {}, { department: 'Sales' }],
    ['department of an unknown sender', { department: 'Finance' }, {}, { department: null }],
    ['action the analyst proposed', { action: REPLY }, {}, { action: ACTION_MAILING_LIST }],
    ['is_enough true', { is_enough: true }, {}, { isEnough: false, action: CLARIFY }],
    [
      'all conditions together',
      { category: 'payments', channel: 'email', subject_pattern: 'счёт' },
      {},
      { channel: 'direct' },
    ],
  ];
  for (const [name, conditions, yes, no] of cases) {
    it(name, () => {
      const r = rule(1, conditions);
      expect(matched(r, mail(yes)), 'should match').toBe(true);
      expect(evaluateRules([r], mail(yes)).action).toBe(ACTION_JIRA);
      expect(matched(r, mail(no)), 'should not match').toBe(false);
      expect(evaluateRules([r], mail(no)).action).toBe(mail(no).action);
    });
  }
});

describe('rules never hijack a clarification', () => {
  const unclear = mail({ isEnough: false, action: CLARIFY, context: '' });

  it('while the request is unclear, a rule without when_unclear does not apply, whatever it matches', () => {
    const everything = rule(1, {});
    const onCategory = rule(2, { category: 'payments' }, { effects: { action: REPLY } });
    const outcome = evaluateRules([everything, onCategory], unclear);
    expect(outcome).toEqual({ action: CLARIFY, requireApproval: false, matchedRuleIds: [] });
  });

  it('a when_unclear rule applies, but never runs a side-effect action on an empty context', () => {
    const jira = rule(1, { when_unclear: true });
    const approval = rule(2, { when_unclear: true, is_enough: false }, { effects: { require_approval: true } });
    const outcome = evaluateRules([jira, approval], unclear);
    expect(outcome.action).toBe(CLARIFY);
    expect(outcome.matchedRuleIds).toEqual([2]);
    // The guesser found the context (the analyst asked the question): the opted-in rule may act.
    const withContext = evaluateRules([jira], { ...unclear, context: 'Платежи: счёт 42 не проходит' });
    expect(withContext).toMatchObject({ action: ACTION_JIRA, matchedRuleIds: [1] });
  });

  it('a request whose category gets no reply meets no rule', () => {
    expect(
      evaluateRules([rule(1, {}), rule(2, { category: 'marketing' })], mail({ category: 'marketing', noReply: true })),
    ).toEqual({ action: REPLY, requireApproval: false, matchedRuleIds: [] });
  });
});

describe('stop_on_match stops after a rule that was taken', () => {
  it('stops after a taken rule; one passed over for an empty context lets the next rule run', () => {
    const first = rule(1, {}, { priority: 1, stop_on_match: true });
    const second = rule(2, {}, { priority: 2, effects: { action: REPLY, require_approval: true } });
    expect(evaluateRules([first, second], mail()).matchedRuleIds).toEqual([1]);
    const emptyContext = evaluateRules([first, second], mail({ context: '' }));
    expect(emptyContext).toMatchObject({ action: REPLY, requireApproval: true, matchedRuleIds: [2] });
  });
});

let db: TestDatabase;
beforeAll(async () => {
  db = await createActionsDatabase(inject('postgresUrl'));
});
afterAll(async () => {
  await db?.close();
});

describe('POST /rules with the new conditions', () => {
  it('stores category, min_confidence, subject_pattern and when_unclear', async () => {
    const app = buildActionsApp(db.knex);
    const conditions = {
      category: 'payments',
      min_confidence: 0.8,
      subject_pattern: '^\\[Платежи\\]',
      when_unclear: true,
    };
    const created = await keyedApp(app)
      .post('/rules')
      .send({ name: 'Payments', conditions, effects: { action: ACTION_JIRA } });
    expectContract('createRule', created);
    expect(created.status).toBe(201);
    expect(created.body.conditions).toEqual(conditions);
  });

  const bad: Array<[string, Record<string, unknown>, string]> = [
    ['category', { category: 'Платежи' }, 'conditions.category'],
    ['min_confidence above 1', { min_confidence: 1.5 }, 'conditions.min_confidence'],
    ['min_confidence as text', { min_confidence: 'high' }, 'conditions.min_confidence'],
    ['subject_pattern', { subject_pattern: '([a-z]' }, 'conditions.subject_pattern'],
    [
      'subject_pattern with a lookahead (RE2 runs none)',
      { subject_pattern: 'счёт(?!-фактура)' },
      'conditions.subject_pattern',
    ],
    ['when_unclear', { when_unclear: 'yes' }, 'conditions.when_unclear'],
    ['is_enough false without when_unclear', { is_enough: false }, 'conditions.when_unclear'],
  ];
  for (const [name, conditions, field] of bad) {
    it(`400 naming ${field}: ${name}`, async () => {
      const app = buildActionsApp(db.knex);
      const before = await db.knex('routing_rules').count({ n: '*' });
      const res = await keyedApp(app).post('/rules').send({ name: 'bad', conditions });
      expectContract('createRule', res);
      expect(res.status).toBe(400);
      expect(res.body.message).toContain(`'${field}'`);
      expect(await db.knex('routing_rules').count({ n: '*' })).toEqual(before);
    });
  }
});
