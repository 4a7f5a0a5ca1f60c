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
 * The `/deliveries` key of a mail, shared by the IMAP intake, the webhooks and the dry run:
 * - with a Message-ID, `mail:<sender>/<Message-ID>` (`sender`: the From: address, lower-cased): a Message-ID names a
 *   mail only together with its author (RFC 5322 §3.6.4 makes it unique per generating host, and anyone can type
 *   any), so another sender's mail that reuses an answered Message-ID is no duplicate of it — keyed by the
 *   Message-ID alone, a stranger who had seen one (a Cc, a forward) could silence the genuine mail for the record's
 *   7 days, flagged as answered;
 * - without one, `mail:<contentKeyOf(raw)>` (the bytes hold the From: line already; `sender` undefined);
 * - `mail:sha256:<hex>` of the same text when the key would exceed 200 characters (secretary DeliveryKeys).
 */
export function mailDeliveryKey(id: string, sender?: string): string {
  const key = sender === undefined ? `mail:${id}` : `mail:${sender.toLowerCase()}/${id}`;
  return key.length <= MAX_KEY_CHARS ? key : `mail:sha256:${createHash('sha256').update(key.slice(5)).digest('hex')}`;
}

/**
 * The key webhook mail was recorded under before keys named the sender (`mail:<Message-ID>`, kept 7 days): looked
 * up beside mailDeliveryKey by the webhooks and the dry run, so a provider's retry across the upgrade is still a
 * duplicate. The IMAP intake never wrote it.
 */
export function legacyMailDeliveryKey(messageId: string): string {
  const key = `mail:${messageId}`;
  return key.length <= MAX_KEY_CHARS ? key : `mail:sha256:${createHash('sha256').update(messageId).digest('hex')}`;
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
 * route): `cause` is the secretary client's AppError. The pipeline ends such a pass as `secretary-failed` (the mail
 * waits, retried like any secretary outage); only a secretary without the route (`routeMissing`: 404) lets the
 * mailbox's flags decide.
 */
export class HandledLookupError extends Error {
  readonly code = 'EHANDLEDLOOKUP';
  /** The secretary answered 404: it is older than `/deliveries/lookup`. */
  get routeMissing(): boolean {
    return isAppError(this.cause) && this.cause.details?.['status'] === 404;
  }
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
