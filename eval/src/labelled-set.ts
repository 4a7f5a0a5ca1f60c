import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ACTIONS, CHANNELS } from '@workemon/contracts';

/**
 * The category names labels use (issue 17; the `rules` work names the guesser's `CATEGORIES`: internal fintech
 * support departments plus `automatic` and `marketing`). A label outside this list is still accepted: a
 * deployment's CATEGORIES may differ, and category accuracy compares the strings as they are.
 */
export const LABEL_CATEGORIES = [
  'analytics',
  'payments',
  'cards',
  'wallets',
  'access',
  'incidents',
  'data_exports',
  'other',
  'automatic',
  'marketing',
] as const;

/**
 * The label of a request the secretary leaves unanswered: its category is marked `(no_reply)` (automatic mail,
 * marketing) and the guesser is sure enough (NO_REPLY_MIN_CONFIDENCE). Not one of the contract's actions: the
 * decision keeps the channel's reply action with `no_reply: true`, and nothing is sent.
 */
export const NO_REPLY = 'без ответа' as const;

/** What a case may expect, and what a decision is scored as: the contract's actions and NO_REPLY. */
export const EVAL_ACTIONS = [...ACTIONS, NO_REPLY] as const;

export const expectedSchema = z.object({
  is_enough: z.boolean(),
  action: z.enum(EVAL_ACTIONS),
  category: z.string().min(1).optional(),
});

/** One line of a labelled set (eval/requests.jsonl): a request as the secretary receives it, and the right answer. */
export const caseSchema = z.object({
  id: z.string().min(1),
  channel: z.enum(CHANNELS),
  username: z.string().min(1),
  department: z.string().min(1),
  position: z.string().min(1),
  request: z.string().min(1),
  expected: expectedSchema,
  /** The id of the earlier case this one answers (a follow-up to a clarifying question). */
  follows: z.string().min(1).optional(),
  note: z.string().optional(),
  /** Where the label came from (`eval:export`: `corrected` from a labels file, `decision` when the stored one). */
  label_source: z.string().optional(),
});

export type EvalCase = z.infer<typeof caseSchema>;
export type Expected = z.infer<typeof expectedSchema>;

/**
 * Reads a JSON Lines set: one case per non-empty line. Throws naming the line of the first bad case, a duplicate
 * id, or a `follows` that names no earlier case.
 */
export function parseLabelledSet(text: string, source = 'set'): EvalCase[] {
  const cases: EvalCase[] = [];
  const ids = new Set<string>();
  text.split('\n').forEach((line, index) => {
    if (!line.trim()) return;
    const where = `${source}:${index + 1}`;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new Error(`${where}: not JSON`);
    }
    const parsed = caseSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new Error(`${where}: ${issue.path.join('.') || 'case'}: ${issue.message}`);
    }
    const c = parsed.data;
    if (ids.has(c.id)) throw new Error(`${where}: duplicate id '${c.id}'`);
    if (c.follows && !ids.has(c.follows))
      throw new Error(`${where}: follows '${c.follows}', which is not an earlier case`);
    ids.add(c.id);
    cases.push(c);
  });
  return cases;
}

export function readLabelledSet(path: string): EvalCase[] {
  return parseLabelledSet(readFileSync(path, 'utf8'), path);
}
