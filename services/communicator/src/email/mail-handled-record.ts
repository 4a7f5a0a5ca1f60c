import { createHash } from 'node:crypto';
import { isAppError, type Logger } from '@workemon/service-kit';
import type { HandledOutcome, SecretaryClient } from '../secretary-client.js';

/**
 * The durable "this mail was handled" record of the IMAP intake: the secretary's `/deliveries` (table `deliveries`,
 * kept 7 days), the same `mail:` keys the inbound webhooks use (webhook-routes.ts), so both intakes share them.
 * It, not the mailbox's `\Answered` flag nor a UID, decides whether a mail was answered: a UID names a message only
 * while the mailbox's UIDVALIDITY stays the same (RFC 9051 §2.3.1.1, RFC 3501 §2.3.1.1), and a server that
 * rebuilds its index, a mailbox restored or recreated, or a provider's migration gives every message a new UID
 * under a new UIDVALIDITY — dropping a flag write still pending and, for a restore, the flags written before.
 */

/** `/deliveries` keys are at most 200 characters (secretary DeliveryKeys): a longer id is keyed by its SHA-256. */
const MAX_KEY_CHARS = 200;

/**
 * The `/deliveries` key of a mail: `mail:<id>` for its Message-ID, or for `contentKeyOf(raw)` when it has none;
 * `mail:sha256:<hex of id>` when that would exceed 200 characters. Equal to webhook-routes.ts's `deliveryKey('mail',
 * id)`, so a mail answered through a webhook is known here too.
 */
export function mailDeliveryKey(id: string): string {
  const key = `mail:${id}`;
  return key.length <= MAX_KEY_CHARS ? key : `mail:sha256:${createHash('sha256').update(id).digest('hex')}`;
}

/**
 * `sha256:<64 hex>` of a raw mail as the server hands it out (the first MAX_MAIL_BYTES of it): the idempotency key of
 * mail without a Message-ID — the secretary's `message_id`, the reply's Message-ID seed and the `/deliveries` key.
 * The bytes of a stored message do not change when the server gives it a new UID (RFC 9051 §2.3.1.1), so the key
 * survives a UIDVALIDITY change, where `<uidvalidity>:<uid>` did not. The inbound webhooks key such mail the same
 * way; two mails of identical bytes (Date and Received lines included) are one mail.
 */
export function contentKeyOf(raw: Buffer): string {
  return `sha256:${createHash('sha256').update(raw).digest('hex')}`;
}

/**
 * The secretary could not be asked whether a mail was handled (503, unreachable, timeout, a secretary without the
 * route): `cause` is the secretary client's AppError. The email channel then lets the mailbox's flags decide.
 */
export class HandledLookupError extends Error {
  readonly code = 'EHANDLEDLOOKUP';
  constructor(cause: unknown) {
    super(`the secretary's /deliveries/lookup failed: ${isAppError(cause) ? cause.code : (cause as Error)?.message}`, {
      cause,
    });
  }
}

export type HandledRecord = {
  /**
   * `POST /deliveries/lookup` of `keys` (1..100, from mailDeliveryKey): the outcome recorded for the first of them
   * that is recorded, undefined when none is. Rejects with HandledLookupError when the secretary cannot answer.
   */
  lookup: (keys: string[]) => Promise<HandledOutcome | undefined>;
  /**
   * `POST /deliveries` (channel `email`): records `keys` as handled with `outcome` (and `reason`, ≤ 200 characters).
   * Never rejects: a record the secretary does not take is logged and kept in memory (at most KEPT_RECORDS) for
   * `flush`, so one failing call does not reopen the mail to a repeat after a later UIDVALIDITY change.
   */
  record: (keys: string[], outcome: HandledOutcome, reason?: string) => Promise<void>;
  /** Tries the kept records again (each sweep calls it); never rejects. */
  flush: () => Promise<void>;
};

/** Records kept for a retry at most (a secretary down for long: the oldest are dropped, logged). */
export const KEPT_RECORDS = 1000;

type Kept = { keys: string[]; outcome: HandledOutcome; reason?: string };

/** The durable record over the secretary client (see the file header). */
export function createHandledRecord(secretary: SecretaryClient, logger: Logger): HandledRecord {
  const kept: Kept[] = [];
  let flushing = false;

  async function send(item: Kept): Promise<boolean> {
    try {
      await secretary.recordHandled('email', item.keys, item.outcome, item.reason);
      return true;
    } catch (err) {
      logger.warn('recording a handled mail in the secretary failed; tried again at the next sweep', {
        email: { handled_keys: item.keys.map((k) => k.slice(0, 256)), outcome: item.outcome },
        error: { message: isAppError(err) ? err.code : (err as Error).message },
      });
      return false;
    }
  }

  return {
    lookup: async (keys) => {
      let found: Map<string, HandledOutcome>;
      try {
        found = await secretary.lookupHandled(keys);
      } catch (err) {
        throw new HandledLookupError(err);
      }
      for (const key of keys) if (found.has(key)) return found.get(key);
      return undefined;
    },
    record: async (keys, outcome, reason) => {
      const item = { keys, outcome, ...(reason ? { reason } : {}) };
      if (await send(item)) return;
      kept.push(item);
      if (kept.length > KEPT_RECORDS) {
        const dropped = kept.shift()!;
        logger.error('too many handled-mail records waiting for the secretary; the oldest is dropped', {
          email: { handled_keys: dropped.keys.map((k) => k.slice(0, 256)) },
        });
      }
    },
    flush: async () => {
      if (flushing || !kept.length) return;
      flushing = true;
      try {
        while (kept.length && (await send(kept[0]!))) kept.shift();
      } finally {
        flushing = false;
      }
    },
  };
}
