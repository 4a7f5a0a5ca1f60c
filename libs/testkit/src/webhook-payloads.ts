/**
 * Inbound-mail webhook payloads in the providers' published wire formats, signed (or forged) the way the providers
 * sign them, for tests of the communicator's POST /webhook/mailgun, /webhook/sendgrid and /webhook/ses:
 * - Mailgun inbound routes ("Receiving messages via HTTP through a forward() action"): form fields, `timestamp`,
 *   `token` (50 characters), `signature` = hex HMAC-SHA256(timestamp + token) keyed with the webhook signing key;
 *   urlencoded without attachments, multipart/form-data with them; `body-mime` for raw MIME routes.
 * - SendGrid Inbound Parse: multipart/form-data, raw (`email`) or parsed (`headers`, `from`, `to`, `subject`,
 *   `text`, `html`, `envelope`, `charsets`, `attachment-info`, files `attachment1`…). Unsigned.
 * - Amazon SNS HTTP(S) messages carrying SES receipt notifications: the canonical string of the SNS docs signed
 *   with SHA1withRSA (SignatureVersion 1) or SHA256withRSA (2) by a test signing certificate, which
 *   `startSnsCertServer` serves over https from a test CA (never with TLS verification turned off).
 */
import { createHmac, createSign, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A request body with its Content-Type header. */
export type WebhookBody = { body: Buffer; contentType: string };

/** A form field: text, raw bytes, or a file upload. */
export type FormValue = string | Buffer | { filename: string; contentType: string; content: Buffer };

/** RFC 7578 multipart/form-data, fields and files in the given order. */
export function multipartBody(fields: Array<[string, FormValue]>): WebhookBody {
  const boundary = `----workemon${randomBytes(12).toString('hex')}`;
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const file = typeof value === 'object' && !Buffer.isBuffer(value) ? value : undefined;
    const head = file
      ? `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="${file.filename}"\r\n` +
        `Content-Type: ${file.contentType}\r\n\r\n`
      : `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`;
    parts.push(
      Buffer.from(head, 'utf8'),
      file ? file.content : Buffer.from(value as string | Buffer),
      Buffer.from('\r\n'),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(parts), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** application/x-www-form-urlencoded (UTF-8, spaces as `+`). */
export function urlencodedBody(fields: Array<[string, string | Buffer]>): WebhookBody {
  const enc = (v: string | Buffer) =>
    [...(Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'))]
      .map((b) =>
        (b >= 0x30 && b <= 0x39) ||
        (b >= 0x41 && b <= 0x5a) ||
        (b >= 0x61 && b <= 0x7a) ||
        [0x2d, 0x2e, 0x5f, 0x2a].includes(b)
          ? String.fromCharCode(b)
          : b === 0x20
            ? '+'
            : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
      )
      .join('');
  return {
    body: Buffer.from(fields.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&'), 'latin1'),
    contentType: 'application/x-www-form-urlencoded',
  };
}

// ---- Mailgun ----------------------------------------------------------------------------------------------------

/** Mailgun's signature fields; `timestamp` in Unix seconds (default now), `token` 50 random characters. */
export function mailgunSignature(
  signingKey: string,
  options: { timestamp?: number; token?: string } = {},
): { timestamp: string; token: string; signature: string } {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const token = options.token ?? randomBytes(25).toString('hex');
  const signature = createHmac('sha256', signingKey)
    .update(timestamp + token)
    .digest('hex');
  return { timestamp, token, signature };
}

/** The parsed fields of a Mailgun inbound route POST, as Mailgun names them. */
export type MailgunParsed = {
  sender: string;
  from: string;
  recipient: string;
  subject: string;
  'body-plain': string;
  'stripped-text'?: string;
  'body-html'?: string;
  'Message-Id'?: string;
  'In-Reply-To'?: string;
  References?: string;
  /** All header fields in order; dumped to `message-headers` as JSON. */
  headers: Array<[string, string]>;
  attachments?: Array<{ filename: string; contentType: string; content: Buffer }>;
};

/**
 * A signed Mailgun inbound POST: raw MIME (`mime`, the `body-mime` field of a store/forward MIME route) or parsed
 * fields. urlencoded unless there are attachments (Mailgun sends multipart/form-data then), or `multipart` is set.
 * `signature` replaces the computed fields (to forge or replay).
 */
export function mailgunPayload(options: {
  signingKey: string;
  mime?: Buffer;
  parsed?: MailgunParsed;
  signature?: { timestamp: string; token: string; signature: string };
  timestamp?: number;
  multipart?: boolean;
}): WebhookBody & { token: string } {
  const sig = options.signature ?? mailgunSignature(options.signingKey, { timestamp: options.timestamp });
  const fields: Array<[string, FormValue]> = [];
  if (options.mime) {
    fields.push(['body-mime', options.mime]);
  } else if (options.parsed) {
    const p = options.parsed;
    for (const key of [
      'sender',
      'from',
      'recipient',
      'subject',
      'body-plain',
      'stripped-text',
      'body-html',
      'Message-Id',
      'In-Reply-To',
      'References',
    ] as const)
      if (p[key] !== undefined) fields.push([key, p[key]]);
    fields.push(['message-headers', JSON.stringify(p.headers)]);
    if (p.attachments?.length) {
      fields.push(['attachment-count', String(p.attachments.length)]);
      p.attachments.forEach((a, i) => fields.push([`attachment-${i + 1}`, a]));
    }
  }
  fields.push(['timestamp', sig.timestamp], ['token', sig.token], ['signature', sig.signature]);
  const multipart = options.multipart || fields.some(([, v]) => typeof v === 'object' && !Buffer.isBuffer(v));
  const built = multipart ? multipartBody(fields) : urlencodedBody(fields as Array<[string, string | Buffer]>);
  return { ...built, token: sig.token };
}

// ---- SendGrid ---------------------------------------------------------------------------------------------------

/** SendGrid Inbound Parse, raw mode: the full MIME in `email`, with the envelope and charsets fields. */
export function sendgridRawPayload(mime: Buffer, envelope: { from: string; to: string[] }): WebhookBody {
  return multipartBody([
    ['dkim', '{@client.test : pass}'],
    ['email', mime],
    ['to', envelope.to.join(', ')],
    ['from', envelope.from],
    ['sender_ip', '192.0.2.10'],
    ['spam_report', ''],
    ['envelope', JSON.stringify(envelope)],
    ['subject', ''],
    ['spam_score', '0.1'],
    ['charsets', JSON.stringify({ to: 'UTF-8', from: 'UTF-8', subject: 'UTF-8' })],
    ['SPF', 'pass'],
  ]);
}

/** SendGrid Inbound Parse, parsed mode; `text` is encoded in `textCharset` (default UTF-8) as SendGrid does. */
export function sendgridParsedPayload(p: {
  headers: string;
  from: string;
  to: string;
  subject: string;
  text: string;
  html?: string;
  textCharset?: 'UTF-8' | 'windows-1251' | 'iso-8859-1';
  encodeText?: (text: string) => Buffer;
  attachments?: Array<{ filename: string; contentType: string; content: Buffer }>;
}): WebhookBody {
  const charset = p.textCharset ?? 'UTF-8';
  const fields: Array<[string, FormValue]> = [
    ['headers', p.headers],
    ['dkim', 'none'],
    ['to', p.to],
    ['from', p.from],
    ['subject', p.subject],
    ['text', p.encodeText ? p.encodeText(p.text) : Buffer.from(p.text, 'utf8')],
    ...(p.html !== undefined ? ([['html', p.html]] as Array<[string, FormValue]>) : []),
    ['sender_ip', '192.0.2.10'],
    ['envelope', JSON.stringify({ to: [p.to], from: p.from })],
    ['attachments', String(p.attachments?.length ?? 0)],
    ['charsets', JSON.stringify({ to: 'UTF-8', html: 'UTF-8', subject: 'UTF-8', from: 'UTF-8', text: charset })],
    ['SPF', 'pass'],
  ];
  if (p.attachments?.length) {
    const info: Record<string, { filename: string; name: string; type: string }> = {};
    p.attachments.forEach((a, i) => {
      info[`attachment${i + 1}`] = { filename: a.filename, name: a.filename, type: a.contentType };
    });
    fields.push(['attachment-info', JSON.stringify(info)]);
    p.attachments.forEach((a, i) => fields.push([`attachment${i + 1}`, a]));
  }
  return multipartBody(fields);
}

// ---- Amazon SNS / SES -------------------------------------------------------------------------------------------

/** A test PKI made with openssl: a CA, a localhost server certificate it issued, and an SNS signing key+cert. */
export type SnsTestPki = {
  caFile: string;
  caPem: string;
  serverKeyPem: string;
  serverCertPem: string;
  signingKeyPem: string;
  signingCertPem: string;
  /** Removes the temporary directory. */
  remove: () => void;
};

/** Generates the test PKI (openssl, RSA 2048, valid two days). */
export function createSnsTestPki(): SnsTestPki {
  const dir = mkdtempSync(join(tmpdir(), 'workemon-sns-'));
  const at = (f: string) => join(dir, f);
  const run = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=Workemon Test CA',
  );
  run(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    at('server.key'),
    '-out',
    at('server.csr'),
    '-subj',
    '/CN=localhost',
  );
  writeFileSync(at('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  run(
    'x509',
    '-req',
    '-in',
    at('server.csr'),
    '-CA',
    at('ca.pem'),
    '-CAkey',
    at('ca.key'),
    '-CAcreateserial',
    '-out',
    at('server.pem'),
    '-days',
    '2',
    '-extfile',
    at('ext.cnf'),
  );
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    at('signing.key'),
    '-out',
    at('signing.pem'),
    '-days',
    '2',
    '-subj',
    '/CN=sns.amazonaws.com',
  );
  const read = (f: string) => readFileSync(at(f), 'utf8');
  return {
    caFile: at('ca.pem'),
    caPem: read('ca.pem'),
    serverKeyPem: read('server.key'),
    serverCertPem: read('server.pem'),
    signingKeyPem: read('signing.key'),
    signingCertPem: read('signing.pem'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** An https server on localhost standing in for sns.<region>.amazonaws.com: the signing cert and SubscribeURL. */
export type SnsCertServer = {
  /** `https://localhost:<port>` */
  origin: string;
  certUrl: string;
  /** Requests received (path and query), in order. */
  requests: string[];
  /** Serve another certificate under `path`. */
  serve: (path: string, pem: string) => void;
  close: () => Promise<void>;
};

export async function startSnsCertServer(pki: SnsTestPki): Promise<SnsCertServer> {
  const files = new Map<string, string>([['/SimpleNotificationService-test.pem', pki.signingCertPem]]);
  const requests: string[] = [];
  const server = createServer({ key: pki.serverKeyPem, cert: pki.serverCertPem }, (req: IncomingMessage, res) => {
    requests.push(req.url ?? '');
    const path = (req.url ?? '').split('?')[0]!;
    const file = files.get(path);
    if (file) {
      res.writeHead(200, { 'Content-Type': 'application/x-x509-ca-cert' }).end(file);
      return;
    }
    if (path === '/' && /Action=ConfirmSubscription/.test(req.url ?? '')) {
      res
        .writeHead(200, { 'Content-Type': 'text/xml' })
        .end(
          '<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>arn</SubscriptionArn></ConfirmSubscriptionResult></ConfirmSubscriptionResponse>',
        );
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `https://localhost:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    certUrl: `${origin}/SimpleNotificationService-test.pem`,
    requests,
    serve: (path, pem) => void files.set(path, pem),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The SNS canonical string (the same rule as the AWS docs; written independently of the code under test). */
function canonical(m: Record<string, string | undefined>): string {
  const names =
    m['Type'] === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  let out = '';
  for (const n of names) if (m[n] !== undefined) out += `${n}\n${m[n]}\n`;
  return out;
}

/** Signs an SNS message the way SNS does; returns the JSON body fields. */
export function signSnsMessage(
  fields: Record<string, string | undefined> & { Type: string; TopicArn: string; Message: string },
  options: { signingKeyPem: string; certUrl: string; version?: '1' | '2' },
): Record<string, string> {
  const version = options.version ?? '2';
  const message: Record<string, string | undefined> = {
    MessageId: randomBytes(16).toString('hex'),
    Timestamp: new Date().toISOString(),
    ...fields,
  };
  const signer = createSign(version === '1' ? 'RSA-SHA1' : 'RSA-SHA256');
  signer.update(canonical(message), 'utf8');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(message)) if (v !== undefined) out[k] = v;
  return {
    ...out,
    SignatureVersion: version,
    Signature: signer.sign(options.signingKeyPem, 'base64'),
    SigningCertURL: options.certUrl,
  };
}

/** The SES receipt notification (notificationType Received) an SNS action posts, with the mail as `content`. */
export function sesReceivedNotification(
  mime: Buffer,
  options: {
    topicArn: string;
    encoding?: 'UTF8' | 'BASE64';
    action?: 'SNS' | 'S3';
    /** S3 action: where SES stored the mail (default inbound-bucket, mail/abc). */
    bucket?: string;
    objectKey?: string;
    /** `receipt.dmarcVerdict.status` (default PASS, as for a colleague's mail from a domain with DMARC). */
    dmarc?: 'PASS' | 'FAIL' | 'GRAY' | 'PROCESSING_FAILED';
    /** `mail.commonHeaders.from` (default: the mime's From: field values, as SES gives them). */
    commonFrom?: string[];
  },
): string {
  const encoding = options.encoding ?? 'UTF8';
  const head = mime
    .toString('latin1')
    .split(/\r?\n\r?\n/, 1)[0]!
    .replace(/\r?\n[ \t]+/g, ' ');
  const from = options.commonFrom ?? [...head.matchAll(/^from:[ \t]*(.*)$/gim)].map((m) => m[1]!.trim());
  const action =
    options.action === 'S3'
      ? {
          type: 'S3',
          topicArn: options.topicArn,
          bucketName: options.bucket ?? 'inbound-bucket',
          objectKeyPrefix: (options.objectKey ?? 'mail/abc').replace(/[^/]*$/, '').replace(/\/$/, ''),
          objectKey: options.objectKey ?? 'mail/abc',
        }
      : { type: 'SNS', topicArn: options.topicArn, encoding };
  return JSON.stringify({
    notificationType: 'Received',
    mail: {
      timestamp: new Date().toISOString(),
      source: 'ivan@client.test',
      messageId: randomBytes(10).toString('hex'),
      destination: ['bot@example.test'],
      headersTruncated: false,
      commonHeaders: { from },
    },
    receipt: {
      timestamp: new Date().toISOString(),
      processingTimeMillis: 222,
      recipients: ['bot@example.test'],
      spamVerdict: { status: 'PASS' },
      virusVerdict: { status: 'PASS' },
      spfVerdict: { status: 'PASS' },
      dkimVerdict: { status: 'PASS' },
      dmarcVerdict: { status: options.dmarc ?? 'PASS' },
      action,
    },
    ...(options.action === 'S3'
      ? {}
      : { content: encoding === 'BASE64' ? mime.toString('base64') : mime.toString('utf8') }),
  });
}
