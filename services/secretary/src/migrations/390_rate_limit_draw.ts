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
// `p_units`, at least 0) from every key, and names the first key in the caller's order with no room for the unit
// after those (what single draws in a row would name), with how many milliseconds that unit is over its window
// (the refused units' Retry-After). The rows are locked in key
// order on both paths: `for update` when every key has a row, else an insert of the missing ones (tat 0: no budget
// taken) with `on conflict do update` over all keys, which waits for a concurrent first draw of the same key instead
// of racing it; so concurrent draws wait for each other and do not deadlock (but for a row the clean-up deletes
// between the read and the lock: then the second path runs with some locks held, and a deadlock there is detected
// by PostgreSQL and retried by the caller, rate-limit-store.ts retryDraw). A call that draws nothing removes the
// rows it created, so refused draws leave nothing behind. Each statement of a volatile function sees rows committed
// before it started; a failed call draws nothing.
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
  v_fits float8[];
  v_created text[];
  v_now float8;
  v_interval float8;
  v_base float8;
  v_min float8;
  v_drawn integer := greatest(p_units, 0);
  v_refused integer;
  v_present integer;
  i integer;
begin
  if coalesce(cardinality(p_keys), 0) = 0 or v_drawn = 0 then
    return query select v_drawn, null::text, null::float8;
    return;
  end if;
  -- Which keys have a row, read without locking: the locks below are then taken in key order on either path.
  select count(*)::integer into v_present from rate_limit_buckets b where b.key = any(p_keys);
  if v_present = cardinality(p_keys) then
    -- Every row there (the usual draw): lock them in key order; no new row version for that.
    select array_agg(l.tat_ms order by w.ord) into v_tats
      from unnest(p_keys) with ordinality as w(key, ord)
      left join (select b.key, b.tat_ms from rate_limit_buckets b
                  where b.key = any(p_keys) order by b.key for update) as l on l.key = w.key;
  end if;
  if v_present < cardinality(p_keys) or array_position(v_tats, null) is not null then
    -- A key without a row (its first draw, or the clean-up deleted it): create the missing rows and lock all, in
    -- key order; an insert of the same key by a draw still running waits for it and then locks its row. The rows
    -- this call created are remembered (xmax = 0: inserted, not updated) to be removed again if it draws nothing.
    with locked as (
      insert into rate_limit_buckets as b (key, tat_ms)
      select k, 0 from unnest(p_keys) as k order by k
      on conflict (key) do update set tat_ms = b.tat_ms
      returning b.key, b.tat_ms, b.xmax = 0 as created
    )
    select array_agg(l.tat_ms order by w.ord), array_agg(l.key) filter (where l.created) into v_tats, v_created
      from unnest(p_keys) with ordinality as w(key, ord) join locked l on l.key = w.key;
  end if;
  -- How many units each key has room for now, and the fewest (GCRA for n units, see above).
  v_now := extract(epoch from clock_timestamp())::float8 * 1000;
  v_fits := array_fill(0::float8, array[cardinality(p_keys)]);
  for i in 1 .. cardinality(p_keys) loop
    v_interval := p_windows_ms[i] / p_limits[i];
    v_base := greatest(coalesce(v_tats[i], 0), v_now);
    v_fits[i] := floor((p_windows_ms[i] - (v_base - v_now) + 0.001) / v_interval);
    if v_min is null or v_fits[i] < v_min then
      v_min := v_fits[i];
    end if;
  end loop;
  v_drawn := greatest(least(v_min, v_drawn::float8), 0)::integer;
  -- The unit after the last one drawn is refused by the first key, in the caller's order, without room for it:
  -- what single draws in a row would have named.
  if v_drawn < p_units then
    for i in 1 .. cardinality(p_keys) loop
      if v_fits[i] <= v_drawn then
        v_refused := i;
        exit;
      end if;
    end loop;
  end if;
  if v_drawn > 0 then
    update rate_limit_buckets as b
       set tat_ms = greatest(b.tat_ms, v_now) + v_drawn * (w.window_ms / w.units)
      from unnest(p_keys, p_limits, p_windows_ms) as w(key, units, window_ms)
     where b.key = w.key;
  elsif v_created is not null then
    -- Refused whole: nothing of this call stays behind (a spent key's callers cannot fill the table).
    delete from rate_limit_buckets b where b.key = any(v_created);
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
