import type { Knex } from 'knex';
import type { Logger } from '@workemon/service-kit';
import { runPrepared, type PreparedStatement } from '../database.js';
import { createRuleRepository } from './rule-repository.js';
import { patternProblems, type RoutingRule } from './rules.js';

// The enabled rules in evaluation order and the version they are at, read in one snapshot (one statement).
const ACTIVE_RULES: PreparedStatement = {
  name: 'workemon_active_rules',
  text: `select (select version from routing_rules_version where id = 1)::float8 as version,
                coalesce((select json_agg(json_build_object(
                            'id', r.id, 'name', r.name, 'priority', r.priority, 'enabled', r.enabled,
                            'stop_on_match', r.stop_on_match, 'conditions', r.conditions, 'effects', r.effects)
                          order by r.priority, r.id)
                          from routing_rules r where r.enabled), '[]'::json) as rules`,
};

/**
 * The version of the routing rules a request saw in its first statement (`routing_rules_version`, migration
 * 285, bumped by a trigger on every change of `routing_rules`); undefined when the caller did not read it.
 */
export type RulesVersion = number | undefined;

export type RuleCache = ReturnType<typeof createRuleCache>;

/** Where the cache warns about enabled rules whose patterns cannot be compiled. */
export type RuleCacheOptions = { logger?: Pick<Logger, 'warn'> };

/**
 * Without a logger, the warning goes to stderr as one JSON line in the ECS shape the service's logger writes
 * (`@timestamp`, `log.level`, `message`, `service.name`), as libs/service-kit's logger does for its own trouble:
 * an unusable rule must be seen by an operator even where no logger was passed in.
 */
function stderrWarn(message: string, fields: Record<string, unknown>): void {
  const line = { '@timestamp': new Date().toISOString(), 'log.level': 'warn', message, service: { name: 'secretary' } };
  process.stderr.write(`${JSON.stringify({ ...line, ...fields })}\n`);
}

/**
 * Warns once per loaded version about each enabled rule with a pattern that cannot be compiled (a lookbehind or a
 * backreference stored before the linear-time engine checked patterns on save): it never matches, so the rule
 * is silently dead until an admin fixes it (GET /rules shows it in `pattern_problems`).
 */
function warnUnusablePatterns(rules: readonly RoutingRule[], options: RuleCacheOptions): void {
  for (const rule of rules) {
    const problems = patternProblems(rule.conditions);
    if (Object.keys(problems).length === 0) continue;
    const message = `routing rule ${rule.id} (${rule.name}) never matches: a pattern cannot be compiled; fix it with PUT /rules/${rule.id}`;
    const fields = { rule: { id: rule.id, name: rule.name, pattern_problems: problems } };
    if (options.logger) options.logger.warn(message, fields);
    else stderrWarn(message, fields);
  }
}

/**
 * The enabled routing rules, kept in memory per secretary process and reloaded when a request has seen a newer
 * version than the copy. Staleness bound (every replica, PostgreSQL or PGlite alike): a rule change committed
 * before a request's first database statement applies to that request; one committed while its LLM calls run
 * applies from the next request. Without a version (a caller that did not read one) the rules are read afresh
 * (listActiveRules), as before the cache. Each newly loaded version warns about enabled rules whose patterns cannot
 * be compiled (`warnUnusablePatterns`; evaluation treats them as never matching).
 */
export function createRuleCache(options: RuleCacheOptions = {}) {
  let cached: { version: number; rules: RoutingRule[] } | undefined;
  let loading: Promise<{ version: number; rules: RoutingRule[] }> | undefined;

  async function load(db: Knex | Knex.Transaction) {
    const [row] = await runPrepared<{ version: number | null; rules: RoutingRule[] | string }>(db, ACTIVE_RULES, []);
    const rules = typeof row!.rules === 'string' ? (JSON.parse(row!.rules) as RoutingRule[]) : row!.rules;
    const fresh = { version: row!.version ?? 0, rules };
    if (!cached || fresh.version > cached.version) warnUnusablePatterns(rules, options);
    if (!cached || fresh.version >= cached.version) cached = fresh;
    return fresh;
  }

  return {
    /** The enabled rules at `seen` or later (priority ascending, then id); reads the database when stale. */
    async activeRules(db: Knex | Knex.Transaction, seen: RulesVersion): Promise<RoutingRule[]> {
      if (seen !== undefined && cached && cached.version >= seen) return cached.rules;
      // The actions feature's own tests run without migration 285: no version, no version table needed.
      if (seen === undefined) return createRuleRepository(db).listActiveRules();
      // Concurrent requests that found the copy stale share one read.
      loading ??= load(db).finally(() => (loading = undefined));
      const fresh = await loading;
      return fresh.version >= seen ? fresh.rules : (await load(db)).rules;
    },
  };
}
