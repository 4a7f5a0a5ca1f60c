import type { Knex } from 'knex';
import { errors } from '@workemon/service-kit';
import type { RoutingRule } from './rules.js';

const TABLE = 'routing_rules';

type RuleRow = RoutingRule & { created_at: Date; updated_at: Date };

export function toApi(row: RuleRow) {
  return {
    id: row.id,
    name: row.name,
    priority: row.priority,
    enabled: row.enabled,
    stop_on_match: row.stop_on_match,
    conditions: row.conditions,
    effects: row.effects,
    created_at: new Date(row.created_at).toISOString(),
    updated_at: new Date(row.updated_at).toISOString(),
  };
}
export type RuleView = ReturnType<typeof toApi>;

const columns = (rule: Omit<RoutingRule, 'id'>) => ({
  name: rule.name,
  priority: rule.priority,
  enabled: rule.enabled,
  stop_on_match: rule.stop_on_match,
  conditions: JSON.stringify(rule.conditions),
  effects: JSON.stringify(rule.effects),
});

export async function listRules(db: Knex, filter: { enabled?: boolean } = {}): Promise<RuleView[]> {
  const q = db<RuleRow>(TABLE)
    .select('*')
    .orderBy([{ column: 'priority' }, { column: 'id' }]);
  if (filter.enabled !== undefined) q.where('enabled', filter.enabled);
  return ((await q) as RuleRow[]).map(toApi);
}

/** The enabled rules in evaluation order; for `evaluateRules` inside the decision transaction. */
export async function listActiveRules(db: Knex | Knex.Transaction): Promise<RoutingRule[]> {
  return (await db<RuleRow>(TABLE)
    .select('id', 'name', 'priority', 'enabled', 'stop_on_match', 'conditions', 'effects')
    .where('enabled', true)
    .orderBy([{ column: 'priority' }, { column: 'id' }])) as RoutingRule[];
}

export async function getRule(db: Knex, id: number): Promise<RuleView> {
  const row = (await db<RuleRow>(TABLE).where('id', id).first()) as RuleRow | undefined;
  if (!row) throw errors.notFound(`Rule ${id} not found`);
  return toApi(row);
}

export async function createRule(db: Knex, rule: Omit<RoutingRule, 'id'>): Promise<RuleView> {
  const [row] = (await db(TABLE).insert(columns(rule)).returning('*')) as RuleRow[];
  return toApi(row!);
}

export async function replaceRule(db: Knex, id: number, rule: Omit<RoutingRule, 'id'>): Promise<RuleView> {
  const [row] = (await db(TABLE)
    .where('id', id)
    .update({ ...columns(rule), updated_at: db.fn.now() })
    .returning('*')) as RuleRow[];
  if (!row) throw errors.notFound(`Rule ${id} not found`);
  return toApi(row);
}

export async function toggleRule(db: Knex, id: number): Promise<RuleView> {
  const [row] = (await db(TABLE)
    .where('id', id)
    .update({ enabled: db.raw('NOT enabled'), updated_at: db.fn.now() })
    .returning('*')) as RuleRow[];
  if (!row) throw errors.notFound(`Rule ${id} not found`);
  return toApi(row);
}

export async function deleteRule(db: Knex, id: number): Promise<void> {
  const deleted = await db(TABLE).where('id', id).delete();
  if (!deleted) throw errors.notFound(`Rule ${id} not found`);
}

/** Records which rules an analysis matched (call in the decision transaction, after enqueueing the action). */
export async function recordRuleMatches(
  trx: Knex | Knex.Transaction,
  analysisId: number,
  ruleIds: readonly number[],
  executionId?: number | null,
): Promise<void> {
  if (ruleIds.length === 0) return;
  await trx('rule_matches').insert(
    ruleIds.map((ruleId) => ({ analysis_id: analysisId, rule_id: ruleId, execution_id: executionId ?? null })),
  );
}

export type RuleStats = {
  rule_id: number;
  name: string;
  enabled: boolean;
  priority: number;
  matches: number;
  last_matched_at: string | null;
  executions: number;
  succeeded: number;
  failed: number;
  skipped: number;
  in_progress: number;
  success_rate: number | null;
};

/**
 * Per rule: how many analyses it matched, how many actions ran with it among their matched rules, and how
 * those ended. `success_rate` = succeeded / (succeeded + failed); null until one finished either way (skipped
 * and unfinished actions are not counted against a rule).
 */
export async function ruleStats(db: Knex): Promise<RuleStats[]> {
  const { rows } = await db.raw<{ rows: Record<string, unknown>[] }>(`
    SELECT r.id, r.name, r.enabled, r.priority,
           coalesce(m.matches, 0) AS matches, m.last_matched_at,
           coalesce(e.executions, 0) AS executions, coalesce(e.succeeded, 0) AS succeeded,
           coalesce(e.failed, 0) AS failed, coalesce(e.skipped, 0) AS skipped,
           coalesce(e.in_progress, 0) AS in_progress
    FROM routing_rules r
    LEFT JOIN (SELECT rule_id, count(*) AS matches, max(matched_at) AS last_matched_at
               FROM rule_matches GROUP BY rule_id) m ON m.rule_id = r.id
    LEFT JOIN (SELECT rid, count(*) AS executions,
                      count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
                      count(*) FILTER (WHERE status = 'failed') AS failed,
                      count(*) FILTER (WHERE status = 'skipped') AS skipped,
                      count(*) FILTER (WHERE status IN ('pending', 'awaiting_approval')) AS in_progress
               FROM action_executions, unnest(matched_rule_ids) AS rid GROUP BY rid) e ON e.rid = r.id
    ORDER BY r.priority, r.id`);
  return rows.map((r) => {
    const succeeded = Number(r['succeeded']);
    const failed = Number(r['failed']);
    return {
      rule_id: Number(r['id']),
      name: String(r['name']),
      enabled: Boolean(r['enabled']),
      priority: Number(r['priority']),
      matches: Number(r['matches']),
      last_matched_at: r['last_matched_at'] ? new Date(r['last_matched_at'] as string).toISOString() : null,
      executions: Number(r['executions']),
      succeeded,
      failed,
      skipped: Number(r['skipped']),
      in_progress: Number(r['in_progress']),
      success_rate: succeeded + failed > 0 ? succeeded / (succeeded + failed) : null,
    };
  });
}
