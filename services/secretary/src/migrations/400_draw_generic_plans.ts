import type { Knex } from 'knex';
import { DRAW_BUDGET_FUNCTION } from './390_rate_limit_draw.js';

// The draw function plans its statements once (issue 14, docs/operations.md "The rate-limit draw and the lookup's
// plan"). PL/pgSQL keeps each statement of a function in the plan cache of the session, as a prepared statement,
// and decides per call between a plan made for that call's values (custom) and one made once (generic): after
// five custom plans it keeps the generic one only when its estimated cost is no higher than theirs (PostgreSQL
// documentation, PREPARE, "plan_cache_mode"). For `key = any($1)` the planner estimates a custom plan from the
// array it is given (two keys) and a generic one from a default of ten elements, so every statement of
// `workemon_draw_budget` was planned anew on every call: under `npm run bench`'s chain a perf profile put
// PostgreSQL's planner, called from inside the function, at about 6 % of PostgreSQL's CPU and 37 % of the
// function's. The plans do not depend on the values (the primary key of a table of one row per active budget),
// so the function is told to use the generic ones: `plan_cache_mode` set on the function applies to its own
// statements for the duration of each call (PostgreSQL documentation, CREATE FUNCTION, "SET").
//
// A catalogue change of the function alone, safe while older replicas serve (they call it the same way).
export const drawGenericPlansMigration = { name: '400_draw_generic_plans', up, down };

/** The signature `alter function` names (migration 390_rate_limit_draw). */
const DRAW_BUDGET_SIGNATURE = `${DRAW_BUDGET_FUNCTION}(text[], float8[], float8[], integer)`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter function ${DRAW_BUDGET_SIGNATURE} set plan_cache_mode = force_generic_plan`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`alter function ${DRAW_BUDGET_SIGNATURE} reset plan_cache_mode`);
}
