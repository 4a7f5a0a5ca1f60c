import type { AnalysisResponse, Channel } from '@workemon/contracts';
import type { Decision } from './decision.js';

/**
 * The guesser's classification as the secretary keeps it: `category` (one of the guesser's CATEGORIES),
 * `confidence` (0–1) and `no_reply` (the category is marked no_reply: automatic mail, marketing). All optional:
 * a model may give none, and the seed's AnalysisResponse stays valid without them.
 */
export type Classification = Pick<AnalysisResponse, 'category' | 'confidence' | 'no_reply'>;

/** The optional AnalysisResponse fields of a guesser answer (only the ones present). */
export function classificationOf(guess: Classification): Classification {
  return {
    ...(guess.category !== undefined ? { category: guess.category } : {}),
    ...(guess.confidence !== undefined ? { confidence: guess.confidence } : {}),
    ...(guess.no_reply ? { no_reply: true } : {}),
  };
}

/**
 * The decision for a request whose category gets no reply: nothing is sent back and no action runs. `action` stays
 * a valid contract value (the channel's reply action) so clients that only know the seed's fields still parse it;
 * `no_reply: true` tells the communicator not to send, and question and response are empty.
 */
export function noReplyDecision(
  request: string,
  replyAction: Decision['action'],
  guess: Pick<AnalysisResponse, 'is_enough'> & Classification,
): Decision {
  return {
    is_enough: guess.is_enough,
    request,
    action: replyAction,
    question: '',
    response: '',
    ...classificationOf(guess),
    no_reply: true,
  };
}

/** Columns of the `analyses` row (migration 220_analysis_classification). */
export function classificationColumns(decision: Classification) {
  return {
    category: decision.category ?? null,
    confidence: decision.confidence ?? null,
    no_reply: decision.no_reply === true,
  };
}

/** A stored analysis row's classification, for a replayed decision (a repeated message_id). */
export function classificationFromRow(row: {
  category?: string | null;
  confidence?: number | string | null;
  no_reply?: boolean | null;
}): Classification {
  return {
    ...(row.category ? { category: row.category } : {}),
    ...(row.confidence !== null && row.confidence !== undefined ? { confidence: Number(row.confidence) } : {}),
    ...(row.no_reply ? { no_reply: true } : {}),
  };
}

/** For logs: what was skipped and why. */
export function skippedLogFields(channel: Channel, analysisId: number, c: Classification) {
  return { channel, analysis: { id: analysisId }, classification: { category: c.category, confidence: c.confidence } };
}
