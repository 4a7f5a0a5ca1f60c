import type { Knex } from 'knex';
import { runPrepared, type PreparedStatement } from '../database.js';
import { createRuleRepository } from './rule-repository.js';
import type { RoutingRule } from './rules.js';

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

/**
 * The enabled routing rules, kept in memory per secretary process and reloaded when a request has seen a newer
 * version than the copy. Staleness bound (every replica, PostgreSQL or PGlite alike): a rule change committed
 * before a request's first database statement applies to that request; one committed while its LLM calls run
 * applies from the next request. Without a version (a caller that did not read one) the rules are read afresh
 * (listActiveRules), as before the cache.
 */
export function createRuleCache() {
  let cached: { version: number; rules: RoutingRule[] } | undefined;
  let loading: Promise<{ version: number; rules: RoutingRule[] }> | undefined;

  async function load(db: Knex | Knex.Transaction) {
    const [row] = await runPrepared<{ version: number | null; rules: RoutingRule[] | string }>(db, ACTIVE_RULES, []);
    const rules = typeof row!.rules === 'string' ? (JSON.parse(row!.rules) as RoutingRule[]) : row!.rules;
    const fresh = { version: row!.version ?? 0, rules };
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
