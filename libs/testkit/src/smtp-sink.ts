import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import { waitFor } from './ports.js';

export type ReceivedMail = {
  envelope: { from: string | undefined; to: string[] };
  /** The authenticated user the client logged in as (undefined without AUTH). */
  user: string | undefined;
  raw: Buffer;
  parsed: ParsedMail;
  /** A header's value as text (lower-case name), e.g. header('auto-submitted'). */
  header: (name: string) => string | undefined;
};

export type SmtpSink = {
  host: string;
  port: number;
  mails: ReceivedMail[];
  /** Resolves once at least `count` mails have arrived (default 1). */
  waitForMails: (count?: number, timeoutMs?: number) => Promise<ReceivedMail[]>;
  /** Answers every following DATA with this SMTP error until `accept()`. 4xx = temporary, 5xx = permanent. */
  reject: (code?: number, message?: string) => void;
  /**
   * Holds the answer to the next `times` DATA commands (default: every one until `accept()`) this long: a slow
   * server. The mail is kept before the answer goes out, as a real server commits it before its 250.
   */
  delay: (ms: number, times?: number) => void;
  /** Back to accepting immediately. */
  accept: () => void;
  close: () => Promise<void>;
};

/**
 * The communicator's SMTP settings for sending through `sink`: loopback, plaintext (the sink has no STARTTLS), a
 * login the sink records as `user` (`bot@example.test`), and a 30 s deadline: shorter than the default, yet longer
 * than any stall of a loaded test worker. After a stall Node fires a socket's timer before it reads the answer
 * that came meanwhile, so a short deadline makes a reply the sink took look lost, and it is sent again.
 */
export function smtpSinkEnv(sink: Pick<SmtpSink, 'port'>): Record<string, string> {
  return {
    SMTP_HOST: '127.0.0.1',
    SMTP_PORT: String(sink.port),
    SMTP_SECURE: 'false',
    SMTP_USER: 'bot@example.test',
    SMTP_PASSWORD: 'smtp-password',
    SMTP_TIMEOUT: '30s',
  };
}

/**
 * A real SMTP server (smtp-server) on a loopback port that keeps every mail it accepts, parsed with mailparser.
 * Plaintext only: no STARTTLS, any user/password accepted (the test checks `user`).
 */
export async function startSmtpSink(): Promise<SmtpSink> {
  const mails: ReceivedMail[] = [];
  let rejection: { code: number; message: string } | undefined;
  let delayMs = 0;
  let delaysLeft = Infinity;

  const server = new SMTPServer({
    secure: false,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    authOptional: true,
    logger: false,
    onAuth(auth, _session, callback) {
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        void (async () => {
          if (delayMs > 0 && delaysLeft > 0) {
            delaysLeft -= 1;
            await new Promise((resolve) => setTimeout(resolve, delayMs));
          }
          if (rejection) {
            const err = new Error(rejection.message) as Error & { responseCode: number };
            err.responseCode = rejection.code;
            callback(err);
            return;
          }
          const raw = Buffer.concat(chunks);
          const parsed = await simpleParser(raw);
          mails.push({
            envelope: {
              from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
              to: session.envelope.rcptTo.map((r) => r.address),
            },
            user: typeof session.user === 'string' ? session.user : undefined,
            raw,
            parsed,
            header: (name) => {
              const value = parsed.headers.get(name.toLowerCase());
              if (value === undefined) return undefined;
              if (typeof value === 'string') return value;
              if (Array.isArray(value)) return value.join(' ');
              if (typeof value === 'object' && 'text' in value) return String((value as { text: unknown }).text);
              if (typeof value === 'object' && 'value' in value) return String((value as { value: unknown }).value);
              return String(value);
            },
          });
          callback();
        })();
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;

  return {
    host: '127.0.0.1',
    port,
    mails,
    waitForMails: (count = 1, timeoutMs = 15_000) =>
      waitFor(() => (mails.length >= count ? mails : undefined), { timeoutMs, what: `${count} mail(s) at the sink` }),
    reject: (code = 451, message = 'Temporary failure, try again later') => {
      rejection = { code, message };
    },
    delay: (ms, times = Infinity) => {
      delayMs = ms;
      delaysLeft = times;
    },
    accept: () => {
      rejection = undefined;
      delayMs = 0;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
