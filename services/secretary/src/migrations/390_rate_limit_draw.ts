import type { Knex } from 'knex';

// One draw of several units from a set of budgets, in one call and one short transaction (issue 14). Every
// /analyze-request of one client key and one username draws from the same two rows; drawn inside the request's
// larger lookup statement, each draw held those rows' locks for the rest of that statement, so under load the
// requests queued on them and PostgreSQL spent its time waking waiters and walking the rows' update chains. The
// secretary now gathers the draws that arrive while one is running (rate-limit-store.ts `createBudgetDrawer`) and
// takes them in one call of this function, which holds the locks only for its own few statements.
//
// GCRA (ITU-T I.371), as rate-limit-store.ts `gcra`, for `p_units` units at once: a key with theoretical arrival
// time `tat` may take k units when max(tat, now) + k × T − now ≤ window (T = window / limit, 1 µs of slack), so
// k = floor((window − (max(tat, now) − now) + slack) / T). The draw takes the smallest k over the keys (at most
// `p_units`) from every key, and names the first key in the caller's order that allows only that many, with how
// many milliseconds its next unit is over the window (the refused units' Retry-After). The rows are locked in key
// order (`for update`), so concurrent draws wait for each other and do not deadlock; only when a key has no row yet
// are the missing rows created (tat 0: no budget taken) by an insert that waits for a concurrent first draw of the
// same key instead of racing it. Each statement of a volatile function sees rows committed before it started. A
// draw that does deadlock (a first draw of one key while holding another's lock) or fails to serialize is retried
// by the caller (rate-limit-store.ts retryDraw); a failed call draws nothing.
export const rateLimitDrawMigration = { name: '390_rate_limit_draw', up, down };

export const DRAW_BUDGET_FUNCTION = 'workemon_draw_budget';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
create or replace function ${DRAW_BUDGET_FUNCTION}(p_keys text[], p_limits float8[], p_windows_ms float8[],
                                                  p_units integer)
returns table (drawn integer, refused_key text, over_ms float8)
language plpgsql volatile as $fn$
declare
  v_tats float8[];
  v_now float8;
  v_interval float8;
  v_base float8;
  v_fit float8;
  v_drawn integer := greatest(p_units, 0);
  v_refused integer;
  v_found integer;
  i integer;
begin
  if coalesce(cardinality(p_keys), 0) = 0 or v_drawn = 0 then
    return query select v_drawn, null::text, null::float8;
    return;
  end if;
  -- The keys' rows, locked in key order. Rows every draw finds are only locked (no new row version for that).
  select array_agg(l.tat_ms order by w.ord), count(l.key)::integer into v_tats, v_found
    from unnest(p_keys) with ordinality as w(key, ord)
    left join (select b.key, b.tat_ms from rate_limit_buckets b
                where b.key = any(p_keys) order by b.key for update) as l on l.key = w.key;
  if v_found < cardinality(p_keys) then
    -- A key without a row (its first draw, or its row was cleaned up): create the missing rows and lock all, in
    -- key order; an insert of the same key by a draw still running waits for it and then locks its row.
    with locked as (
      insert into rate_limit_buckets as b (key, tat_ms)
      select k, 0 from unnest(p_keys) as k order by k
      on conflict (key) do update set tat_ms = b.tat_ms
      returning b.key, b.tat_ms
    )
    select array_agg(l.tat_ms order by w.ord) into v_tats
      from unnest(p_keys) with ordinality as w(key, ord) join locked l on l.key = w.key;
  end if;
  v_now := extract(epoch from clock_timestamp())::float8 * 1000;
  for i in 1 .. cardinality(p_keys) loop
    v_interval := p_windows_ms[i] / p_limits[i];
    v_base := greatest(coalesce(v_tats[i], 0), v_now);
    v_fit := floor((p_windows_ms[i] - (v_base - v_now) + 0.001) / v_interval);
    if v_fit < v_drawn then
      v_drawn := greatest(v_fit, 0)::integer;
      v_refused := i;
    end if;
  end loop;
  if v_drawn > 0 then
    update rate_limit_buckets as b
       set tat_ms = greatest(b.tat_ms, v_now) + v_drawn * (w.window_ms / w.units)
      from unnest(p_keys, p_limits, p_windows_ms) as w(key, units, window_ms)
     where b.key = w.key;
  end if;
  if v_refused is null then
    return query select v_drawn, null::text, null::float8;
  else
    v_interval := p_windows_ms[v_refused] / p_limits[v_refused];
    v_base := greatest(coalesce(v_tats[v_refused], 0), v_now);
    return query select v_drawn, p_keys[v_refused],
                        v_base + (v_drawn + 1) * v_interval - v_now - p_windows_ms[v_refused];
  end if;
end
$fn$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`drop function if exists ${DRAW_BUDGET_FUNCTION}(text[], float8[], float8[], integer)`);
}
