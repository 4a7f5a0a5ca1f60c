import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { isAction, type Channel } from '@workemon/contracts';
import { openDatabase, type Database } from '@workemon/secretary';
import type { EvalCase } from './labelled-set.js';

/** A stored, succeeded analysis: what was decided and on what. */
export type StoredAnalysis = {
  id: number;
  channel: Channel;
  username: string;
  department: string;
  position: string;
  request: string;
  is_enough: boolean;
  action: string;
  created_at: string;
};

/**
 * Opens the secretary's database read-only in spirit (nothing is written): DATABASE_URL when set, otherwise the
 * embedded PGlite directory the secretary uses (PGLITE_DIR, default ./data/secretary).
 */
export function openHistory(options: { databaseUrl?: string; pgliteDir?: string }): Database {
  // Relative to where npm was invoked (INIT_CWD), as the secretary resolves PGLITE_DIR: both reach one database.
  const pgliteDir = resolve(process.env['INIT_CWD'] ?? process.cwd(), options.pgliteDir ?? './data/secretary');
  if (!options.databaseUrl && !existsSync(pgliteDir))
    throw new Error(
      `no history: DATABASE_URL is unset and ${pgliteDir} does not exist (--database-url or --pglite-dir)`,
    );
  return openDatabase({ url: options.databaseUrl, pgliteDir, poolMax: 2 });
}

/**
 * Succeeded analyses since a time, oldest first. Escalations are left out: they depend on how many rounds the
 * conversation had, which a single re-decision cannot reproduce. A follow-up's `request` is already the joined
 * text the decision was made on.
 */
export async function loadAnalyses(
  db: Database,
  filter: { since?: Date; until?: Date; limit?: number },
): Promise<StoredAnalysis[]> {
  const query = db
    .knex('analyses as a')
    .join('conversations as c', 'c.id', 'a.conversation_id')
    .leftJoin('employees as e', 'e.id', 'c.employee_id')
    .where('a.outcome', 'succeeded')
    .where('a.escalated', false)
    .orderBy('a.id')
    .select(
      'a.id',
      'a.channel',
      db.knex.raw('coalesce(e.username, c.sender) as username'),
      'a.department',
      'a.position',
      'a.request',
      'a.is_enough',
      'a.action',
      'a.created_at',
    );
  if (filter.since) query.where('a.created_at', '>=', filter.since);
  if (filter.until) query.where('a.created_at', '<', filter.until);
  if (filter.limit) query.limit(filter.limit);
  const rows = (await query) as (Omit<StoredAnalysis, 'created_at'> & { created_at: Date | string })[];
  return rows.map((r) => ({
    ...r,
    department: r.department ?? 'unknown',
    position: r.position ?? 'unknown',
    created_at: r.created_at instanceof Date ? r.created_at.toISOString() : String(r.created_at),
  }));
}

/** A stored analysis as a case whose label is what was decided (for --replay: agreement = accuracy). */
export function storedAsCase(a: StoredAnalysis): EvalCase {
  if (!isAction(a.action)) throw new Error(`analysis ${a.id}: unknown action '${a.action}'`);
  return {
    id: `analysis-${a.id}`,
    channel: a.channel,
    username: a.username,
    department: a.department,
    position: a.position,
    request: a.request,
    expected: { is_enough: a.is_enough, action: a.action },
    label_source: 'decision',
  };
}

/** The directory's current personas: department name → text (for `--db-personas`). */
export async function loadPersonas(db: Database): Promise<Record<string, string>> {
  const rows = await db
    .knex('departments')
    .whereNotNull('persona')
    .select<{ name: string; persona: string }[]>('name', 'persona');
  return Object.fromEntries(rows.map((r) => [r.name, r.persona]));
}
