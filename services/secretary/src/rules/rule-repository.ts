import type { Knex } from 'knex';
import type { RoutingRuleStats, SecretaryApi } from '@workemon/contracts';
import { errors } from '@workemon/service-kit';
import { patternProblems, type RoutingRule } from './rules.js';

const TABLE = 'routing_rules';

type RuleRow = RoutingRule & { created_at: Date; updated_at: Date };

/** A rule as the API shows it: the contract's `RoutingRule` (timestamps as ISO 8601 instants). */
export type RuleView = SecretaryApi.components['schemas']['RoutingRule'];

/**
 * The API's view of a stored row; `pattern_problems` only when a stored pattern cannot be compiled (the rule
 * never matches until it is fixed: rules.ts `patternProblems`).
 */
export function toApi(row: RuleRow): RuleView {
  const problems = patternProblems(row.conditions);
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
    ...(Object.keys(problems).length > 0 ? { pattern_problems: problems } : {}),
  };
}

const columns = (rule: Omit<RoutingRule, 'id'>) => ({
  name: rule.name,
  priority: rule.priority,
  enabled: rule.enabled,
  stop_on_match: rule.stop_on_match,
  conditions: JSON.stringify(rule.conditions),
  effects: JSON.stringify(rule.effects),
});

/** The row a write returned, as the API shows it; 404 `not_found` when the statement touched no rule `id`. */
function returnedRule(rows: RuleRow[], id: number): RuleView {
  const [row] = rows;
  if (!row) throw errors.notFound(`Rule ${id} not found`);
  return toApi(row);
}

export type RuleRepository = ReturnType<typeof createRuleRepository>;

/**
 * The routing rules (`routing_rules`) and their matches (`rule_matches`) over knex. `db` may be a transaction:
 * the action hooks read the active rules and record matches inside the decision's. Missing ids are 404
 * `not_found` (AppError).
 */
export function createRuleRepository(db: Knex | Knex.Transaction) {
  return {
    /** Every rule in evaluation order (priority ascending, then id), optionally only the enabled or disabled. */
    async listRules(filter: { enabled?: boolean } = {}): Promise<RuleView[]> {
      const q = db<RuleRow>(TABLE)
        .select('*')
        .orderBy([{ column: 'priority' }, { column: 'id' }]);
      if (filter.enabled !== undefined) q.where('enabled', filter.enabled);
      return ((await q) as RuleRow[]).map(toApi);
    },

    /** The enabled rules in evaluation order; for `evaluateRules` inside the decision transaction. */
    async listActiveRules(): Promise<RoutingRule[]> {
      return (await db<RuleRow>(TABLE)
        .select('id', 'name', 'priority', 'enabled', 'stop_on_match', 'conditions', 'effects')
        .where('enabled', true)
        .orderBy([{ column: 'priority' }, { column: 'id' }])) as RoutingRule[];
    },

    async getRule(id: number): Promise<RuleView> {
      return returnedRule((await db<RuleRow>(TABLE).where('id', id).limit(1)) as RuleRow[], id);
    },

    async createRule(rule: Omit<RoutingRule, 'id'>): Promise<RuleView> {
      const [row] = (await db(TABLE).insert(columns(rule)).returning('*')) as RuleRow[];
      return toApi(row!);
    },

    async replaceRule(id: number, rule: Omit<RoutingRule, 'id'>): Promise<RuleView> {
      const changes = { ...columns(rule), updated_at: db.fn.now() };
      return returnedRule((await db(TABLE).where('id', id).update(changes).returning('*')) as RuleRow[], id);
    },

    async toggleRule(id: number): Promise<RuleView> {
      const changes = { enabled: db.raw('NOT enabled'), updated_at: db.fn.now() };
      return returnedRule((await db(TABLE).where('id', id).update(changes).returning('*')) as RuleRow[], id);
    },

    async deleteRule(id: number): Promise<void> {
      const deleted = await db(TABLE).where('id', id).delete();
      if (!deleted) throw errors.notFound(`Rule ${id} not found`);
    },

    /** Records which rules an analysis matched (call in the decision transaction, after enqueueing the action). */
    async recordRuleMatches(
      analysisId: number,
      ruleIds: readonly number[],
      executionId?: number | null,
    ): Promise<void> {
      if (ruleIds.length === 0) return;
      await db('rule_matches').insert(
        ruleIds.map((ruleId) => ({ analysis_id: analysisId, rule_id: ruleId, execution_id: executionId ?? null })),
      );
    },

    /** Per-rule statistics (see `ruleStats`). */
    ruleStats: (options: RuleStatsOptions = {}) => ruleStats(db as Knex, options),
  };
}

export type RuleStatsPeriod = NonNullable<RoutingRuleStats['periods']>[number];
/** The counts of one rule in one window: the contract's period without its start. */
type Counts = Omit<RuleStatsPeriod, 'start'>;

/**
 * The contract's RoutingRuleStats with `last_matched_at` and `last_run_at` (when the newest execution counted
 * here started, or was created) always present; `periods` only with `?period=`.
 */
export type RuleStats = RoutingRuleStats & Pick<Required<RoutingRuleStats>, 'last_matched_at' | 'last_run_at'>;

export const STATS_PERIODS = ['day', 'week', 'month'] as const;
export type StatsPeriod = (typeof STATS_PERIODS)[number];

/** The window and grouping of /rules/stats: ISO 8601 instants, `from` inclusive and `to` exclusive. */
export type RuleStatsOptions = { from?: string; to?: string; period?: StatsPeriod };

const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);

function counts(r: Record<string, unknown> | undefined): Counts {
  const n = (k: string) => Number(r?.[k] ?? 0);
  const succeeded = n('succeeded');
  const failed = n('failed');
  return {
    matches: n('matches'),
    executions: n('executions'),
    succeeded,
    failed,
    skipped: n('skipped'),
    in_progress: n('in_progress'),
    success_rate: succeeded + failed > 0 ? succeeded / (succeeded + failed) : null,
  };
}

// The execution counts of one group; `rid` is a rule among the execution's matched rules.
const EXECUTION_COUNTS = `count(*) AS executions,
  count(*) FILTER (WHERE status = 'succeeded') AS succeeded,
  count(*) FILTER (WHERE status = 'failed') AS failed,
  count(*) FILTER (WHERE status = 'skipped') AS skipped,
  count(*) FILTER (WHERE status IN ('pending', 'awaiting_approval')) AS in_progress`;
const IN_WINDOW = (column: string) =>
  `${column} >= coalesce(cast(? as timestamptz), '-infinity'::timestamptz)
   AND ${column} < coalesce(cast(? as timestamptz), 'infinity'::timestamptz)`;

/**
 * Per rule, as the workflow engine's statistics had them: how many analyses it matched, how many actions ran
 * with it among their matched rules, how those ended, the success rate and the last run. `success_rate` =
 * succeeded / (succeeded + failed); null until one finished either way (skipped and unfinished actions are not
 * counted against a rule). `from`/`to` limit the window (matches by `matched_at`, executions by `created_at`);
 * `period` adds the same counts per UTC calendar day, ISO week (from Monday) or month.
 */
async function ruleStats(db: Knex, options: RuleStatsOptions = {}): Promise<RuleStats[]> {
  const window = [options.from ?? null, options.to ?? null];
  const { rows } = await db.raw<{ rows: Record<string, unknown>[] }>(
    `
    SELECT r.id, r.name, r.enabled, r.priority,
           coalesce(m.matches, 0) AS matches, m.last_matched_at,
           coalesce(e.executions, 0) AS executions, coalesce(e.succeeded, 0) AS succeeded,
           coalesce(e.failed, 0) AS failed, coalesce(e.skipped, 0) AS skipped,
           coalesce(e.in_progress, 0) AS in_progress, e.last_run_at
    FROM routing_rules r
    LEFT JOIN (SELECT rule_id, count(*) AS matches, max(matched_at) AS last_matched_at
               FROM rule_matches WHERE ${IN_WINDOW('matched_at')} GROUP BY rule_id) m ON m.rule_id = r.id
    LEFT JOIN (SELECT rid, ${EXECUTION_COUNTS}, max(coalesce(started_at, created_at)) AS last_run_at
               FROM action_executions, unnest(matched_rule_ids) AS rid
               WHERE ${IN_WINDOW('created_at')} GROUP BY rid) e ON e.rid = r.id
    ORDER BY r.priority, r.id`,
    [...window, ...window],
  );
  const periods = options.period ? await statsByPeriod(db, options.period, window) : undefined;
  return rows.map((r) => {
    const id = Number(r['id']);
    return {
      rule_id: id,
      name: String(r['name']),
      enabled: Boolean(r['enabled']),
      priority: Number(r['priority']),
      ...counts(r),
      last_matched_at: iso(r['last_matched_at']),
      last_run_at: iso(r['last_run_at']),
      ...(periods ? { periods: periods.get(id) ?? [] } : {}),
    };
  });
}

async function statsByPeriod(
  db: Knex,
  period: StatsPeriod,
  window: (string | null)[],
): Promise<Map<number, RuleStatsPeriod[]>> {
  const bucket = (column: string) => `(date_trunc('${period}', ${column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;
  const { rows } = await db.raw<{ rows: Record<string, unknown>[] }>(
    `
    SELECT coalesce(m.rule_id, e.rid) AS rule_id, coalesce(m.start, e.start) AS start,
           coalesce(m.matches, 0) AS matches, coalesce(e.executions, 0) AS executions,
           coalesce(e.succeeded, 0) AS succeeded, coalesce(e.failed, 0) AS failed,
           coalesce(e.skipped, 0) AS skipped, coalesce(e.in_progress, 0) AS in_progress
    FROM (SELECT rule_id, ${bucket('matched_at')} AS start, count(*) AS matches
          FROM rule_matches WHERE ${IN_WINDOW('matched_at')} GROUP BY 1, 2) m
    FULL JOIN (SELECT rid, ${bucket('created_at')} AS start, ${EXECUTION_COUNTS}
               FROM action_executions, unnest(matched_rule_ids) AS rid
               WHERE ${IN_WINDOW('created_at')} GROUP BY 1, 2) e
      ON e.rid = m.rule_id AND e.start = m.start
    ORDER BY 2 DESC`,
    [...window, ...window],
  );
  const byRule = new Map<number, RuleStatsPeriod[]>();
  for (const r of rows) {
    const id = Number(r['rule_id']);
    const list = byRule.get(id) ?? [];
    list.push({ start: iso(r['start'])!, ...counts(r) });
    byRule.set(id, list);
  }
  return byRule;
}
