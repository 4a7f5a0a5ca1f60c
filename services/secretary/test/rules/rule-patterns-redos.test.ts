// Security review s31, finding 1 (ReDoS in routing rules): patterns that passed the old nested-quantifier heuristic,
// `(\w|\d)+$` and `((a+))+$`, backtrack exponentially in JavaScript's engine (28 characters blocked the event loop
// ~13 s, doubling per character). Rules now run on RE2 (re2js: linear time), and what RE2 cannot run (lookarounds,
// backreferences) is refused on save; a rule stored before that never matches instead of failing requests.
// Without the fix the evaluations below never return within vitest's timeout.
import { afterAll, afterEach, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import type { Action } from '@workemon/contracts';
import { evaluateRules, validateRule, type RoutingRule, type RuleContext } from '../../src/rules/rules.js';
import { startLlmServices } from '../llm-services.js';
import { startWiredSecretary, type WiredSecretary } from '../request-path-harness.js';
import { keyed, openapi } from '../secretary-harness.js';

const REPLY: Action = 'ответить сообщением';
const CLARIFY: Action = 'уточнить';
/** 40 digits and a final non-word character: 2^40 ways for `(\w|\d)+` to split the digits before `$` fails. */
const DIGITS_ATTACK = `${'1'.repeat(40)}!`;
const LETTERS_ATTACK = `${'a'.repeat(40)}!`;

function rule(id: number, conditions: RoutingRule['conditions']): RoutingRule {
  return {
    id,
    name: `r${id}`,
    priority: id,
    enabled: true,
    stop_on_match: false,
    conditions: { when_unclear: true, ...conditions },
    effects: { action: CLARIFY },
  };
}

const context = (overrides: Partial<RuleContext> = {}): RuleContext => ({
  channel: 'email',
  sender: 'anna@corp.test',
  request: 'Нужен доступ к VPN',
  isEnough: true,
  action: REPLY,
  context: 'ИТ: доступы',
  ...overrides,
});

describe('rule patterns run in linear time (RE2)', () => {
  it('(\\w|\\d)+$ and ((a+))+$ over adversarial texts: the evaluation returns, no match', () => {
    const rules = [
      rule(1, { request_pattern: '(\\w|\\d)+$' }),
      rule(2, { sender_pattern: '((a+))+$' }),
      rule(3, { subject_pattern: '(\\d|\\w)*\\d$' }),
    ];
    const outcome = evaluateRules(
      rules,
      context({ request: DIGITS_ATTACK, sender: LETTERS_ATTACK, subject: DIGITS_ATTACK }),
    );
    expect(outcome).toEqual({ action: REPLY, requireApproval: false, matchedRuleIds: [] });
    // The longest text a pattern sees (MATCH_INPUT_MAX_CHARS), ending in the failing character.
    const long = `${'7'.repeat(9_999)}!`;
    expect(evaluateRules(rules, context({ request: long })).matchedRuleIds).toEqual([]);
  });

  it('the same patterns still match what they describe', () => {
    const rules = [rule(1, { request_pattern: '(\\w|\\d)+$' }), rule(2, { sender_pattern: '((a+))+@' })];
    expect(evaluateRules(rules, context({ request: 'заявка 12345', sender: 'aaa@corp.test' })).matchedRuleIds).toEqual([
      1, 2,
    ]);
  });

  it("keeps the documented meaning: case-insensitive across scripts, JavaScript's \\s and .", () => {
    const matched = (conditions: RoutingRule['conditions'], request: string) =>
      evaluateRules([rule(1, conditions)], context({ request })).matchedRuleIds.length === 1;
    expect(matched({ request_pattern: 'СЧЁТ-ФАКТУРА' }, 'пришёл счёт-фактура №7')).toBe(true);
    expect(matched({ request_pattern: 'invoice' }, 'INVOICE 7')).toBe(true);
    // Outlook's non-breaking space is white space in JavaScript (RE2's own \s is ASCII only).
    expect(matched({ request_pattern: 'счёт\\s+\\d+' }, 'счёт\u00a0123')).toBe(true);
    expect(matched({ request_pattern: 'счёт\\S' }, 'счёт\u00a0123')).toBe(false);
    // `.` stops at every line terminator, as in JavaScript (RE2's stops at \n only).
    expect(matched({ request_pattern: 'a.b' }, 'a\rb')).toBe(false);
    expect(matched({ request_pattern: '^.$' }, '😀')).toBe(true);
    expect(matched({ request_pattern: '\\u0416' }, 'ж')).toBe(true);
  });
});

describe('saving a rule', () => {
  it.each([
    ['a lookbehind', '(?<=счёт )\\d+'],
    ['a negative lookbehind', '(?<!не )срочно'],
    ['a lookahead', 'счёт(?=-фактура)'],
    ['a negative lookahead', 'счёт(?!-фактура)'],
    ['a numbered backreference', '(\\w)\\1'],
    ['a named backreference', '(?<w>\\w)\\k<w>'],
  ])('%s is refused with 400 naming the field', (_kind, pattern) => {
    expect(() => validateRule({ name: 'x', conditions: { request_pattern: pattern } })).toThrowError(
      /^Parameter 'conditions\.request_pattern' uses what the linear-time matcher \(RE2\) does not run/,
    );
  });

  it('a pattern that compiles too large, or a negated property, is refused with a reason', () => {
    // Nine counted repeats of an alternation (262 characters): 144,009 RE2 instructions, seconds per request.
    const huge = '(a|aa|aaa|aaaa|aaaaa){1,1000}'.repeat(9);
    expect(() => validateRule({ name: 'x', conditions: { request_pattern: huge } })).toThrow(
      /too large for the matcher/,
    );
    expect(() => validateRule({ name: 'x', conditions: { request_pattern: '^\\P{Lu}+$' } })).toThrow(/negated/);
    // A name RE2 lacks is said as such, not as a backreference.
    expect(() => validateRule({ name: 'x', conditions: { request_pattern: '\\p{Letter}+' } })).toThrow(/RE2:/);
    expect(validateRule({ name: 'x', conditions: { request_pattern: '[^\\p{Lu}]+' } }).conditions).toEqual({
      request_pattern: '[^\\p{Lu}]+',
    });
  });

  it('a pattern that only backtracking engines fear is accepted', () => {
    expect(validateRule({ name: 'x', conditions: { request_pattern: '(\\w|\\d)+$' } }).conditions).toEqual({
      request_pattern: '(\\w|\\d)+$',
    });
  });
});

describe('the request path, on the wired secretary (real PostgreSQL)', () => {
  let database: { url: string; drop: () => Promise<void> };
  let llm: LlmServices;
  let secretary: WiredSecretary;

  beforeAll(async () => {
    database = await createTestDatabase(inject('postgresUrl'), 'secretary_rule_redos');
    llm = await startLlmServices();
    secretary = await startWiredSecretary({
      databaseUrl: database.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
    });
  });

  afterAll(async () => {
    await secretary?.close();
    await llm?.close();
    await database?.drop();
  });

  afterEach(() => vi.restoreAllMocks());

  it('an admin saves (\\w|\\d)+$; a request from any sender ending in 40 digits and "!" is answered', async () => {
    const created = await keyed(secretary.url)
      .post('/rules')
      .send({ name: 'Ticket numbers', conditions: { request_pattern: '(\\w|\\d)+$', when_unclear: true } });
    expect(created.status).toBe(201);
    expect(openapi.responseProblems('createRule', created.status, created.body)).toEqual([]);

    const res = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'redos-sender', request: `Принтер не печатает ${DIGITS_ATTACK}` });
    expect(res.status).toBe(200);
    expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
  });

  it('a lookbehind on save is a 400 in the contract shape, on POST and PUT', async () => {
    const body = { name: 'Invoices', conditions: { request_pattern: '(?<=счёт )\\d+' } };
    const posted = await keyed(secretary.url).post('/rules').send(body);
    expect(posted.status).toBe(400);
    expect(openapi.responseProblems('createRule', posted.status, posted.body)).toEqual([]);
    expect(posted.body).toMatchObject({ error: 'Bad Request', statusCode: 400 });
    expect(posted.headers['x-workemon-error-code']).toBe('invalid_parameter');
    expect(posted.body.message).toMatch(/^Parameter 'conditions\.request_pattern' uses what the linear-time matcher/);

    const ok = await keyed(secretary.url).post('/rules').send({ name: 'Invoices', conditions: {} });
    const put = await keyed(secretary.url).put(`/rules/${ok.body.id}`).send(body);
    expect(put.status).toBe(400);
    expect(put.body.message).toMatch(/lookarounds/);
    expect((await keyed(secretary.url).get(`/rules/${ok.body.id}`)).body.conditions).toEqual({});
  });

  it('a rule stored before the check with a backreference: requests are answered, it never matches, GET /rules and a warning say why', async () => {
    const warn = vi.spyOn(secretary.logger, 'warn');
    const [stored] = await secretary.db
      .knex('routing_rules')
      .insert({
        name: 'Legacy doubled letters',
        priority: 1,
        conditions: JSON.stringify({ request_pattern: '(\\w)\\1', when_unclear: true }),
        effects: JSON.stringify({ action: CLARIFY }),
      })
      .returning('id');
    const id = (stored as { id: number }).id;

    const res = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'legacy-sender', request: 'Принтер не печатает, нужна помощь' });
    expect(res.status).toBe(200);
    const [matches] = await secretary.db.knex('rule_matches').where('rule_id', id).count({ n: '*' });
    expect(Number(matches!['n'])).toBe(0);

    const listed = await keyed(secretary.url).get('/rules');
    expect(openapi.responseProblems('listRules', listed.status, listed.body)).toEqual([]);
    const shown = (listed.body.rules as { id: number; pattern_problems?: Record<string, string> }[]).find(
      (r) => r.id === id,
    );
    expect(shown?.pattern_problems?.['conditions.request_pattern']).toMatch(/backreferences/);
    const others = (listed.body.rules as { id: number; pattern_problems?: unknown }[]).filter((r) => r.id !== id);
    expect(others.every((r) => r.pattern_problems === undefined)).toBe(true);

    // The secretary's own logger says so (action-hooks.ts gives the rule cache its logger).
    const warnings = (warn.mock.calls as unknown[][]).filter(([message]) =>
      String(message).includes(`routing rule ${id} `),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]![1]).toMatchObject({ rule: { id, name: 'Legacy doubled letters' } });
  });
});
