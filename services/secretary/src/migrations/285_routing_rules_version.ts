import type { Knex } from 'knex';

// Issue 14 (performance): the secretary serves the routing rules from memory. A one-row counter, bumped by a
// statement trigger on every change of routing_rules (API, import or hand-written SQL alike), tells every
// replica that its copy is stale: the request path reads it in the statement it runs anyway (rules/rule-cache.ts).
export const routingRulesVersionMigration = { name: '285_routing_rules_version', up, down };

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table routing_rules_version (
      id integer primary key default 1 check (id = 1),
      version bigint not null default 1
    )`);
  await knex.raw('insert into routing_rules_version (id, version) values (1, 1)');
  await knex.raw(`
    create function bump_routing_rules_version() returns trigger language plpgsql as $$
    begin
      update routing_rules_version set version = version + 1 where id = 1;
      return null;
    end
    $$`);
  await knex.raw(`
    create trigger routing_rules_changed
      after insert or update or delete on routing_rules
      for each statement execute function bump_routing_rules_version()`);
  await knex.raw(`
    create trigger routing_rules_truncated
      after truncate on routing_rules
      for each statement execute function bump_routing_rules_version()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop trigger if exists routing_rules_truncated on routing_rules');
  await knex.raw('drop trigger if exists routing_rules_changed on routing_rules');
  await knex.raw('drop function if exists bump_routing_rules_version()');
  await knex.raw('drop table if exists routing_rules_version');
}
