import type { ImapFlow, SearchObject } from 'imapflow';
import { Socket } from 'node:net';
import { backoffMs, sleep, untilAborted, withDeadline, type Logger } from '@workemon/service-kit';
import type { EmailSettings } from '../config.js';
import type { ChannelMetrics } from '../channel-metrics.js';

export const FLAG_FAILED = '$WorkemonFailed';
export const FLAG_REPLIED = '$WorkemonReplied';

/** Keyword prefix that counts processing attempts on the message itself: `$WorkemonAttempt1`, `…2`, … */
export const FLAG_ATTEMPT_PREFIX = '$WorkemonAttempt';

/**
 * A fetched mail. `uidValidity` is the mailbox's UIDVALIDITY when it was fetched: `uid` names this message only
 * under it (RFC 9051 §2.3.1.1, RFC 3501 §2.3.1.1), so every later write about it (flags, set aside) carries it.
 */
export type FetchedMail = { uid: number; uidValidity: string; source: Buffer; truncated: boolean; flags: string[] };

/** Attempts already recorded on a message by its `$WorkemonAttemptN` keywords (survives restarts). */
export function attemptsRecorded(flags: readonly string[]): number {
  let n = 0;
  for (const f of flags) {
    if (!f.startsWith(FLAG_ATTEMPT_PREFIX)) continue;
    const k = Number(f.slice(FLAG_ATTEMPT_PREFIX.length));
    if (Number.isInteger(k) && k > n) n = k;
  }
  return n;
}

/** Thrown when an IMAP command got no answer within its deadline; the connection is closed and replaced. */
export class ImapTimeoutError extends Error {
  readonly code = 'ETIMEOUT';
}

/**
 * Thrown when an IMAP command failed: the server answered NO or BAD (RFC 9051 §7.1.2–7.1.3; `refused`, the
 * connection still usable), or the connection closed before its tagged answer (`refused` false). imapflow reports
 * such a STORE, SEARCH or MOVE by resolving `false` (or `undefined` with no mailbox selected) instead of rejecting;
 * `succeeded` turns that into this error.
 */
export class ImapCommandError extends Error {
  readonly code = 'ECOMMAND';
  constructor(
    message: string,
    /** The server answered NO/BAD on a connection that is still usable: the same command gets the same answer. */
    readonly refused: boolean,
  ) {
    super(message);
  }
}

/**
 * The answer of an imapflow command on `c` that reports failure as `false`/`undefined` (messageFlagsAdd → true,
 * search → UIDs, messageMove → the UID map): returned as is when it succeeded; otherwise throws ImapCommandError
 * naming the command (`what`: STORE, SEARCH, MOVE), `refused` when `c` is still usable (the server said NO/BAD).
 */
function succeeded<T>(c: ImapFlow, answer: T | false | undefined, what: string): T {
  if (answer !== false && answer !== undefined) return answer;
  const refused = isOpen(c);
  throw new ImapCommandError(
    `IMAP ${what} ${refused ? 'refused by the server' : 'failed: the connection closed'}`,
    refused,
  );
}

const isRefusal = (err: unknown): boolean => err instanceof ImapCommandError && err.refused;

/**
 * Whether commands can still go over `c`: usable, and the server has not said `* BYE` (RFC 9051 §7.1.5: the server
 * is about to close the connection). imapflow keeps `usable` true after an untagged BYE until the socket closes and
 * answers every later command `false` without sending it; when the close never comes (the FIN lost, a server that
 * hangs after its BYE) that looked like the server refusing every SEARCH, for the 5 minutes of imapflow's socket
 * timeout (s35).
 */
const isOpen = (c: ImapFlow): boolean => c.usable && c.byeReason === undefined;

/** How many times its silence limit one command may run in all while the server keeps sending (timed). */
const MAX_STRETCH = 20;

/**
 * The socket under `c` (imapflow keeps it in `socket`, not in its typings; `false` before connecting): its
 * `bytesRead` tells a slow answer from a silent connection. Undefined when absent: `timed` then ends a command after
 * its limit whatever arrives.
 */
const socketOf = (c: ImapFlow): Socket | undefined => {
  const socket = (c as unknown as { socket?: unknown }).socket;
  return socket instanceof Socket ? socket : undefined;
};

/**
 * Whether a Message-ID can be put in a SEARCH HEADER key: no control characters or white space and at most 998
 * octets, as RFC 5322 §3.6.4 and §2.1.1 have it; UTF-8 (RFC 6532 §3.2) is searched with CHARSET UTF-8 (imapflow adds
 * it, RFC 9051 §6.4.4). A hostile one (NUL, CR/LF, 64 KB) makes Dovecot refuse the whole SEARCH.
 */
const searchable = (messageId: string): boolean =>
  Buffer.byteLength(messageId) <= 998 && /^[^\p{Cc}\p{Z}\uFFFD]+$/u.test(messageId);

export type ImapMailbox = {
  start: () => void;
  /** Logs out and stops reconnecting. */
  stop: () => Promise<void>;
  isConnected: () => boolean;
  /**
   * Why the last connection attempt failed (`<code>: <message>`, "login refused …" for an authentication
   * failure), cleared once a session opens; shown in /health while the mailbox is unreachable.
   */
  lastError: () => string | undefined;
  /** UIDVALIDITY of the open mailbox: with a UID it names one message for good. */
  uidValidity: () => string | undefined;
  /**
   * Unseen mail not yet given up on, oldest first, and the INTERNALDATE of the oldest. Undefined while
   * disconnected. Rejects with ImapTimeoutError when the server stops answering (the connection is replaced).
   */
  listUnseen: () => Promise<{ uids: number[]; oldestAt?: number } | undefined>;
  fetch: (uid: number) => Promise<FetchedMail | undefined>;
  /**
   * Adds flags to a message (those the mailbox keeps: PERMANENTFLAGS). When the connection is lost the write is
   * kept and applied right after the next login (before any sweep), and the promise resolves then: a reply that
   * was accepted is never forgotten. A write the server refuses (NO/BAD) is tried REFUSED_WRITE_RETRIES more times,
   * then logged and given up; the promise resolves either way. Never rejects.
   * `uidValidity`: the UIDVALIDITY `uid` was read under (FetchedMail.uidValidity; default: the open mailbox's now).
   * When the mailbox's UIDVALIDITY is another one by the time the write goes out, the UID names another message (or
   * none), so the write is dropped (logged; RFC 9051 §2.3.1.1): the durable record in the secretary, not this flag,
   * then keeps the mail from being answered again (email-channel.ts).
   */
  addFlags: (uid: number, flags: string[], uidValidity?: string) => Promise<void>;
  /**
   * Sets a message aside for a human: the keyword `$WorkemonFailed`, or, on a server without custom keywords
   * (PERMANENTFLAGS without `\\*`), a move to `failedMailbox`. Rejects with ImapCommandError (not `refused`)
   * when `uidValidity` (the UIDVALIDITY `uid` was read under) is no longer the mailbox's: that UID is another
   * message now, which must not be set aside.
   */
  setAside: (uid: number, uidValidity?: string) => Promise<void>;
  /** Whether the server keeps custom keywords (attempt counting and `$WorkemonFailed` need them). */
  keywordsAllowed: () => boolean;
  /** Whether another copy of this Message-ID in the mailbox was already answered. */
  isAnswered: (messageId: string, exceptUid: number) => Promise<boolean>;
};

type PendingFlags = {
  validity: string;
  uid: number;
  flags: string[];
  done: () => void;
  /** How often the server refused this write (NO/BAD) so far. */
  refusals?: number;
  /** How often applying it after a login lost the connection (applyPending). */
  lost?: number;
};

/** Logins a kept flag write may lose in a row (applyPending) before it is given up. */
export const LOST_WRITE_RETRIES = 3;

/** Times a flag write the server refused is tried again (after 1, 4 and 16 × the retry base) before it is dropped. */
export const REFUSED_WRITE_RETRIES = 3;

/** The most items one coalesced IMAP command carries (UIDs of a FETCH/STORE, Message-IDs of a SEARCH). */
export const IMAP_BATCH_MAX = 32;

/**
 * Coalesces calls into batches: calls made in the same turn of the event loop, or while an earlier batch is on
 * the wire, go out together as one `send` of up to IMAP_BATCH_MAX items (IMAP takes UID sets and OR-ed search
 * keys: RFC 9051 §6.4.4, §6.4.6, §6.4.9), which answers each item in order or rejects them all. The mailbox is one
 * serial connection, so N mails in flight cost one round trip per step instead of N.
 */
export function createCoalescer<I, R>(send: (items: I[]) => Promise<R[]>): (item: I) => Promise<R> {
  const waiting: Array<{ item: I; resolve: (r: R) => void; reject: (err: unknown) => void }> = [];
  let busy = false;
  async function drain() {
    while (waiting.length) {
      const batch = waiting.splice(0, IMAP_BATCH_MAX);
      try {
        const results = await send(batch.map((b) => b.item));
        batch.forEach((b, i) => b.resolve(results[i]!));
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    busy = false;
  }
  return (item) =>
    new Promise<R>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      if (busy) return;
      busy = true;
      queueMicrotask(() => void drain());
    });
}

/** A FETCH answer as the channel uses it; undefined when the message is gone (expunged) or has no body. */
function fetchedMailOf(
  uid: number,
  uidValidity: string,
  m: { source?: Buffer; size?: number; flags?: Set<string> } | undefined,
  maxMailBytes: number,
): FetchedMail | undefined {
  if (!m || !m.source) return undefined;
  return { uid, uidValidity, source: m.source, truncated: (m.size ?? 0) > maxMailBytes, flags: [...(m.flags ?? [])] };
}

/** The SEARCH criteria of answered copies of any of these Message-IDs (HEADER is a substring match, RFC 9051). */
function answeredCopiesQuery(messageIds: string[]): SearchObject {
  if (messageIds.length === 1) return { header: { 'message-id': messageIds[0]! }, answered: true };
  return { or: messageIds.map((id) => ({ header: { 'message-id': id } })), answered: true };
}

/** The least and the most the reconnect backoff's cap may be (reconnectCapMs). */
export const RECONNECT_CAP_MIN_MS = 5_000;
export const RECONNECT_CAP_MAX_MS = 5 * 60_000;

/**
 * The cap (ms) of the reconnect backoff (exponential from the base delay, full jitter) for a sweep interval of
 * `sweepIntervalMs` (IMAP_SWEEP_INTERVAL_S × 1000): one sweep interval, bounded to RECONNECT_CAP_MIN_MS…
 * RECONNECT_CAP_MAX_MS. A server that comes back is found within about one interval, as mail a missed IDLE push left
 * is, and before /health turns `down` (five intervals without a sweep) — a fixed 60 s cap kept a mailbox swept every
 * 5 s away for up to a minute. The floor keeps a 1-s sweep from becoming a login every second against a down server
 * (Yandex restricts accounts that log in too often); the ceiling keeps a long sweep interval (IDLE does the work
 * while connected) from leaving the mailbox unread for as long after an outage. The default 60 s sweep gives 60 s.
 */
export function reconnectCapMs(sweepIntervalMs: number): number {
  return Math.min(RECONNECT_CAP_MAX_MS, Math.max(RECONNECT_CAP_MIN_MS, sweepIntervalMs));
}

/** An isAnswered question: a Message-ID and the UID of the copy being handled (not counted). */
type AnsweredQuery = { messageId: string; exceptUid: number };

/**
 * One long-lived IMAP connection (Yandex restricts accounts that log in too often): imapflow keeps IDLE
 * running between commands and restarts it every `idleRenewMs`, well before servers drop IDLE (~30 min, RFC 2177).
 * Any error or close → a new connection after a backoff with full jitter; errors never escape.
 */
/**
 * A failed IMAP connection for /health, in an operator's words: imapflow marks a refused LOGIN with
 * `authenticationFailed` (the server's NO, RFC 9051 §6.2.3); network errors carry Node's `code` (ENOTFOUND,
 * ECONNREFUSED, ETIMEDOUT). Never holds the password: neither does any of these messages.
 */
function connectionFailure(err: unknown): string {
  const e = err as { message?: string; code?: string; authenticationFailed?: boolean; responseText?: string };
  if (e.authenticationFailed)
    return `login refused${e.responseText ? ` (${e.responseText})` : ''}: check IMAP_USER and IMAP_PASSWORD`;
  return `${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`;
}

export function createImapMailbox(options: {
  settings: EmailSettings;
  logger: Logger;
  metrics: ChannelMetrics;
  /** New mail was announced (EXISTS) or a (re)connection finished: time to sweep. */
  onChange: () => void;
  reconnectBaseDelayMs?: number;
  /** The reconnect backoff's cap; default reconnectCapMs(IMAP_SWEEP_INTERVAL_S). */
  reconnectMaxDelayMs?: number;
  /** The jitter's random source in [0, 1) (tests); default Math.random. */
  random?: () => number;
}): ImapMailbox {
  const { settings, logger, metrics } = options;
  // A connection that stops answering without closing (a middlebox dropped it, no FIN/RST) is only noticed by a
  // deadline: every command gets half a sweep interval (1–30 s), so the next sweep finds and replaces it.
  const commandTimeoutMs = Math.min(30_000, Math.max(1000, settings.sweepIntervalMs / 2));
  const baseDelay = options.reconnectBaseDelayMs ?? 1000;
  const maxDelay = options.reconnectMaxDelayMs ?? reconnectCapMs(settings.sweepIntervalMs);
  const refusedRetryBaseMs = baseDelay;
  let client: ImapFlow | undefined;
  let connected = false;
  let lastError: string | undefined;
  let stopping = false;
  let validity: string | undefined;
  let wakeUp: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let hadSession = false;
  const pending: PendingFlags[] = [];
  let keywords = true;
  /** PERMANENTFLAGS of the open mailbox (RFC 9051 §7.1: `\\*` allows any keyword); undefined when not announced. */
  let permanentFlags: Set<string> | undefined;
  /** The flags of `flags` the mailbox keeps: imapflow would silently drop the others (and store nothing at all). */
  const storable = (flags: string[]): string[] =>
    !permanentFlags || permanentFlags.has('\\*') ? flags : flags.filter((f) => permanentFlags!.has(f));

  /**
   * Runs one command until the connection has been silent for `ms` (default commandTimeoutMs): each `ms` without a
   * byte from the server ends it, while bytes that keep coming (a large FETCH over a slow link, a header SEARCH
   * sending `* OK Searched N%` progress, another command's answer ahead of this one in imapflow's queue) extend it,
   * up to MAX_STRETCH × `ms` in all. On expiry the connection is closed (reconnect follows) and it rejects with
   * ImapTimeoutError. A fixed deadline over the whole command cut off a backlog's coalesced FETCH at every sweep,
   * so no mail was ever answered (s35).
   */
  async function timed<T>(c: ImapFlow, command: Promise<T>, what: string, ms = commandTimeoutMs): Promise<T> {
    const silent = new AbortController();
    const bytesRead = () => socketOf(c)?.bytesRead ?? 0;
    const startedAt = Date.now();
    let seen = bytesRead();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      timer = setTimeout(() => {
        const read = bytesRead();
        if (read > seen && Date.now() - startedAt < ms * MAX_STRETCH) {
          seen = read;
          arm();
        } else silent.abort();
      }, ms);
    };
    arm();
    try {
      return await untilAborted(command, silent.signal);
    } catch (err) {
      if (!silent.signal.aborted) throw err;
      logger.warn(`IMAP ${what} got no answer in ${ms} ms; replacing the connection`);
      metrics.pollError('email', 'timeout');
      c.close();
      throw new ImapTimeoutError(`IMAP ${what} timed out`);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One UID STORE of `flags` (those the mailbox keeps: `storable`) on `uids`: `written` once done (or when the
   * mailbox keeps none of them: nothing to write, warned), `refused` when the server answered NO/BAD. Throws
   * ImapCommandError when the connection closed, ImapTimeoutError when it stopped answering.
   */
  async function storeOn(c: ImapFlow, uids: number[], flags: string[]): Promise<'written' | 'refused'> {
    const kept = storable(flags);
    if (!kept.length) {
      logger.warn('the mailbox keeps none of these flags (PERMANENTFLAGS); nothing written', { imap: { uids, flags } });
      return 'written';
    }
    try {
      succeeded(c, await timed(c, c.messageFlagsAdd(uids.join(','), kept, { uid: true }), 'STORE'), 'STORE');
      return 'written';
    } catch (err) {
      if (isRefusal(err)) return 'refused';
      throw err;
    }
  }

  /**
   * A flag write the server refuses (a message expunged meanwhile, a read-only mailbox): asking again gets the same
   * answer, so it is reported and dropped. The channel does not take the mail up again in this process (it keeps
   * what it settled), but the mailbox still shows it as before; a restart would see it.
   */
  function reportRefused(item: PendingFlags) {
    logger.error('the IMAP server refused a flag write; the message keeps its flags (a restart may take it up again)', {
      imap: { uid: item.uid, flags: item.flags },
    });
  }

  /** Refused writes waiting for their next try (`onRefused`), resolved by stop(). */
  const refusedWaiting = new Map<PendingFlags, NodeJS.Timeout>();

  /**
   * A write the server refused: tried again REFUSED_WRITE_RETRIES times (a passing NO), 1, 4 and 16 × the retry base
   * apart, then reported and dropped (`reportRefused`) — never a loop, never a closed connection.
   */
  function onRefused(item: PendingFlags) {
    item.refusals = (item.refusals ?? 0) + 1;
    if (item.refusals > REFUSED_WRITE_RETRIES || stopping) {
      reportRefused(item);
      item.done();
      return;
    }
    const timer = setTimeout(
      () => {
        refusedWaiting.delete(item);
        writeFlags(item);
      },
      refusedRetryBaseMs * 4 ** (item.refusals - 1),
    );
    refusedWaiting.set(item, timer);
  }

  /** Writes `item` now when connected (coalesced), else after the next login (`pending`); resolves it when done. */
  function writeFlags(item: PendingFlags) {
    if (!live()) {
      if (stopping) item.done();
      else pending.push(item);
      return;
    }
    storeCoalesced(item).then(
      (outcome) => (outcome === 'refused' ? onRefused(item) : item.done()),
      (err: Error) => {
        if (stopping) {
          // stop() has already let go of the pending writes: this one would wait for a login that never comes.
          logger.warn('shutting down with a flag write not applied', { imap: { uid: item.uid, flags: item.flags } });
          item.done();
          return;
        }
        logger.warn('IMAP flag write failed; will apply after reconnect', { error: { message: err.message } });
        pending.push(item);
      },
    );
  }

  /**
   * Applies the writes kept while disconnected, in order, before the session counts as connected. A write whose
   * STORE loses the connection LOST_WRITE_RETRIES times in a row is given up (logged) so it cannot keep the mailbox
   * from ever connecting; the error is rethrown (this session is gone) and the next login goes on with the rest.
   */
  async function applyPending(c: ImapFlow) {
    while (pending.length) {
      const item = pending[0]!;
      let outcome: 'written' | 'refused' = 'written';
      if (item.validity !== validity)
        logger.warn('UIDVALIDITY changed; a pending flag write was dropped', {
          imap: { uid: item.uid, flags: item.flags, uid_validity: item.validity, now: validity },
        });
      else {
        try {
          outcome = await storeOn(c, [item.uid], item.flags);
        } catch (err) {
          item.lost = (item.lost ?? 0) + 1;
          if (item.lost >= LOST_WRITE_RETRIES) {
            pending.shift();
            logger.error('a flag write lost the IMAP connection again and again; given up', {
              imap: { uid: item.uid, flags: item.flags },
            });
            item.done();
          }
          throw err;
        }
      }
      pending.shift();
      if (outcome === 'refused') onRefused(item);
      else item.done();
    }
  }

  async function runSession(): Promise<void> {
    // Loaded with the first session: a communicator with no mailbox never loads imapflow (docs/operations.md).
    const { ImapFlow: ImapClient } = await import('imapflow');
    const c = new ImapClient({
      host: settings.imap.host,
      port: settings.imap.port,
      secure: settings.imap.secure,
      auth: { user: settings.imap.user, pass: settings.imap.password },
      logger: false,
      maxIdleTime: settings.idleRenewMs,
      connectionTimeout: commandTimeoutMs * 2,
      greetingTimeout: commandTimeoutMs,
      // imapflow waits 15 s of silence before it IDLEs; new mail would wait that long to be noticed.
      autoIdleDelay: 500,
      // imapflow tries STARTTLS on a plaintext port; loopback test servers have none.
      ...(settings.imap.secure ? {} : { doSTARTTLS: false }),
    });
    const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
    c.on('error', (err: Error) => {
      logger.warn('IMAP connection error', { error: { message: err.message, code: (err as { code?: string }).code } });
    });
    c.on('exists', () => options.onChange());
    client = c;
    try {
      // A server (or middlebox) that stops answering while a session opens would hold it until the socket's
      // 5-minute timeout: LOGIN (inside connect, after the greeting) and SELECT get deadlines like any command.
      // connect: TCP, greeting, CAPABILITY, LOGIN, the capabilities after it — a few round trips.
      await timed(c, c.connect(), 'LOGIN', commandTimeoutMs * 3);
      const box = await timed(c, c.mailboxOpen(settings.imap.mailbox), 'SELECT');
      validity = String(box.uidValidity);
      permanentFlags = box.permanentFlags;
      keywords = !box.permanentFlags || box.permanentFlags.has('\\*');
      await applyPending(c);
      connected = true;
      lastError = undefined;
      if (hadSession) metrics.imapReconnect();
      hadSession = true;
      logger.info('IMAP connected', { imap: { mailbox: settings.imap.mailbox } });
      options.onChange();
    } catch (err) {
      logger.warn('IMAP connection failed', { error: { message: (err as Error).message } });
      lastError = connectionFailure(err);
      c.close();
    }
    await closed;
    connected = false;
    client = undefined;
  }

  async function connectLoop() {
    let failures = 0;
    while (!stopping) {
      const startedAt = Date.now();
      await runSession();
      if (stopping) break;
      const lasted = Date.now() - startedAt > 30_000;
      failures = lasted ? 1 : failures + 1;
      const delay = backoffMs(failures - 1, { baseMs: baseDelay, maxMs: maxDelay, random: options.random });
      logger.info(`IMAP reconnecting in ${Math.round(delay)} ms`);
      metrics.pollError('email', 'connection');
      const cut = new AbortController();
      wakeUp = () => cut.abort();
      await sleep(delay, { signal: cut.signal });
      wakeUp = undefined;
    }
  }

  /** The connection commands may use now; one the server said BYE on is closed here, so a reconnect follows. */
  const live = () => {
    if (connected && client?.usable && !isOpen(client)) {
      logger.warn('the IMAP server said BYE and did not close the connection; closing it', {
        imap: { bye: client.byeReason },
      });
      client.close();
    }
    return connected && client && isOpen(client) ? client : undefined;
  };

  /** One UID FETCH for a batch of mails: body (up to MAX_MAIL_BYTES), size and flags. */
  async function fetchBatch(uids: number[]): Promise<Array<FetchedMail | undefined>> {
    const c = live();
    if (!c) throw new Error('IMAP not connected');
    // The UIDVALIDITY of the session this FETCH runs on: a reconnect replaces `validity` only with a new session.
    const fetchedUnder = validity ?? '';
    const query = { uid: true, size: true, flags: true, source: { maxLength: settings.maxMailBytes } };
    const found = await timed(c, c.fetchAll(uids.join(','), query, { uid: true }), 'FETCH');
    const byUid = new Map(found.map((m) => [m.uid, m]));
    return uids.map((uid) => fetchedMailOf(uid, fetchedUnder, byUid.get(uid), settings.maxMailBytes));
  }

  /**
   * One UID STORE for a batch of flag writes with the same flags. A write whose UIDVALIDITY is no longer the
   * mailbox's is dropped (its UID names another message now). A failed STORE on a live connection means the
   * connection is in trouble: it is closed (reconnect follows) and the writes are kept for after the next login.
   */
  async function storeBatch(items: PendingFlags[]): Promise<Array<'written' | 'refused'>> {
    const c = live();
    if (!c) throw new Error('IMAP not connected');
    const current = items.filter((item) => item.validity === validity);
    for (const item of items.filter((i) => i.validity !== validity))
      logger.warn('UIDVALIDITY changed; a flag write was dropped', {
        imap: { uid: item.uid, flags: item.flags, uid_validity: item.validity, now: validity },
      });
    const refused = new Set<PendingFlags>();
    try {
      const outcome = current.length
        ? await storeOn(
            c,
            current.map((i) => i.uid),
            current[0]!.flags,
          )
        : 'written';
      // Some servers refuse the whole UID set for one bad UID: each write on its own tells which.
      if (outcome === 'refused' && current.length === 1) refused.add(current[0]!);
      if (outcome === 'refused' && current.length > 1)
        for (const item of current) if ((await storeOn(c, [item.uid], item.flags)) === 'refused') refused.add(item);
    } catch (err) {
      if (client === c) c.close();
      throw err;
    }
    return items.map((item) => (refused.has(item) ? 'refused' : 'written'));
  }

  /** Flag writes coalesced per flag set (`\\Seen`, the attempt keyword, …). */
  const storeBySet = new Map<string, (item: PendingFlags) => Promise<'written' | 'refused'>>();
  function storeCoalesced(item: PendingFlags): Promise<'written' | 'refused'> {
    const key = item.flags.join(' ');
    let store = storeBySet.get(key);
    if (!store) storeBySet.set(key, (store = createCoalescer(storeBatch)));
    return store(item);
  }

  /**
   * One UID SEARCH for a batch of "was this Message-ID answered?" questions (the answered copies of any of them);
   * when more than one Message-ID found copies, one FETCH of their envelopes tells which. A Message-ID no SEARCH can
   * carry (`searchable`) has no copy we could find: false, without asking. When the server refuses a shared SEARCH
   * (NO/BAD), each question is asked on its own, and the one it refuses alone gets that ImapCommandError as its
   * answer (its mail is looked at again later; the others are not held up). Rejects when the connection is lost.
   */
  async function answeredBatch(queries: AnsweredQuery[]): Promise<Array<boolean | ImapCommandError>> {
    const c = live();
    if (!c) throw new Error('IMAP not connected');
    const ids = [...new Set(queries.map((q) => q.messageId).filter(searchable))];
    if (!ids.length) return queries.map(() => false);
    let uids: number[];
    try {
      uids = succeeded(c, await timed(c, c.search(answeredCopiesQuery(ids), { uid: true }), 'SEARCH'), 'SEARCH');
    } catch (err) {
      if (!isRefusal(err)) throw err;
      logger.warn('the IMAP server refused an "already answered?" SEARCH', {
        error: { message: (err as Error).message },
      });
      if (ids.length === 1) return queries.map((q) => (searchable(q.messageId) ? (err as ImapCommandError) : false));
      const alone: Array<boolean | ImapCommandError> = [];
      for (const q of queries) alone.push((await answeredBatch([q]))[0]!);
      return alone;
    }
    const answered = (q: AnsweredQuery, copies: Array<{ uid: number; messageId?: string }>) =>
      searchable(q.messageId) &&
      copies.some(
        (m) =>
          m.uid !== q.exceptUid &&
          (ids.length === 1 || (m.messageId ?? '').toLowerCase().includes(q.messageId.toLowerCase())),
      );
    if (ids.length === 1 || !uids.length)
      return queries.map((q) =>
        answered(
          q,
          uids.map((uid) => ({ uid })),
        ),
      );
    const copies = await timed(c, c.fetchAll(uids.join(','), { uid: true, envelope: true }, { uid: true }), 'FETCH');
    return queries.map((q) =>
      answered(
        q,
        copies.map((m) => ({ uid: m.uid, messageId: m.envelope?.messageId })),
      ),
    );
  }

  const fetchCoalesced = createCoalescer(fetchBatch);
  const answeredCoalesced = createCoalescer(answeredBatch);

  return {
    start: () => {
      loop ??= connectLoop();
    },
    stop: async () => {
      stopping = true;
      wakeUp?.();
      const c = client;
      if (c) {
        // LOGOUT (RFC 9051 §6.1.3) gets 5 s; the connection is closed whatever happens.
        await withDeadline(5000, (signal) => untilAborted(c.logout(), signal)).catch(() => undefined);
        c.close();
      }
      await loop;
      for (const [item, timer] of refusedWaiting) {
        clearTimeout(timer);
        pending.push(item);
      }
      refusedWaiting.clear();
      for (const item of pending.splice(0)) {
        logger.warn('shutting down with a flag write not applied', { imap: { uid: item.uid, flags: item.flags } });
        item.done();
      }
    },
    isConnected: () => !!live(),
    lastError: () => lastError,
    uidValidity: () => validity,
    listUnseen: async () => {
      const c = live();
      if (!c) return undefined;
      const found = succeeded(
        c,
        await timed(c, c.search({ seen: false, unKeyword: FLAG_FAILED }, { uid: true }), 'SEARCH'),
        'SEARCH',
      );
      const uids = [...found].sort((a, b) => a - b);
      if (!uids.length) return { uids };
      const oldest = await timed(c, c.fetchOne(String(uids[0]), { internalDate: true }, { uid: true }), 'FETCH');
      const at = oldest && oldest.internalDate ? new Date(oldest.internalDate).getTime() : undefined;
      return { uids, oldestAt: Number.isFinite(at) ? at : undefined };
    },
    fetch: (uid) => fetchCoalesced(uid),
    keywordsAllowed: () => keywords,
    setAside: async (uid, uidValidity) => {
      const c = live();
      if (!c) throw new Error('IMAP not connected');
      if (uidValidity !== undefined && uidValidity !== validity)
        throw new ImapCommandError('UIDVALIDITY changed: this UID names another message now; nothing set aside', false);
      if (keywords) {
        succeeded(c, await timed(c, c.messageFlagsAdd(String(uid), [FLAG_FAILED], { uid: true }), 'STORE'), 'STORE');
        return;
      }
      // No custom keywords on this server: the mail leaves the folder we read instead.
      await timed(
        c,
        c.mailboxCreate(settings.failedMailbox).catch(() => undefined),
        'CREATE',
      );
      succeeded(c, await timed(c, c.messageMove(String(uid), settings.failedMailbox, { uid: true }), 'MOVE'), 'MOVE');
    },
    addFlags: (uid, flags, uidValidity) =>
      new Promise<void>((resolve) =>
        writeFlags({ validity: uidValidity ?? validity ?? '', uid, flags, done: resolve }),
      ),
    isAnswered: async (messageId, exceptUid) => {
      const answer = await answeredCoalesced({ messageId, exceptUid });
      if (answer instanceof Error) throw answer;
      return answer;
    },
  };
}
