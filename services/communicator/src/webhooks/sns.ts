import { X509Certificate, createVerify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import type { CommunicatorApi } from '@workemon/contracts';
import { createHttpPool, exchange, sharedHttpPool, type HttpPool } from '@workemon/service-kit';

/**
 * An Amazon SNS HTTP(S) message body (JSON) as this endpoint reads it: the contract's `SnsMessage` schema
 * (libs/contracts communicator.yaml), which follows AWS's format — Amazon SNS Developer Guide, "Parsing message
 * formats" (the HTTP/HTTPS notification, subscription confirmation and unsubscribe confirmation JSON formats). One
 * difference: SignatureVersion is any string here, since an unknown version is a failed verification (401 from
 * `verify`), not a malformed body.
 */
export type SnsMessage = Omit<CommunicatorApi.components['schemas']['SnsMessage'], 'SignatureVersion'> & {
  SignatureVersion: string;
};

const TYPES = new Set(['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation']);

/** Whether a parsed JSON body has the shape of an SNS message (all signed fields strings). Not a signature check. */
export function isSnsMessage(body: unknown): body is SnsMessage {
  const m = body as Record<string, unknown> | null;
  if (!m || typeof m !== 'object' || Array.isArray(m)) return false;
  if (typeof m['Type'] !== 'string' || !TYPES.has(m['Type'])) return false;
  const required = ['MessageId', 'TopicArn', 'Message', 'Timestamp', 'SignatureVersion', 'Signature', 'SigningCertURL'];
  if (!required.every((k) => typeof m[k] === 'string')) return false;
  if (m['Subject'] !== undefined && m['Subject'] !== null && typeof m['Subject'] !== 'string') return false;
  if (m['Type'] !== 'Notification' && (typeof m['SubscribeURL'] !== 'string' || typeof m['Token'] !== 'string'))
    return false;
  return true;
}

/**
 * The string SNS signs (AWS SNS developer guide, "Verifying the signatures of Amazon SNS messages"): for a
 * Notification the pairs Message, MessageId, Subject (only when present), Timestamp, TopicArn, Type; for
 * SubscriptionConfirmation and UnsubscribeConfirmation Message, MessageId, SubscribeURL, Timestamp, Token,
 * TopicArn, Type — each as `name\nvalue\n`, in that (byte) order, values as decoded from the JSON.
 */
export function snsStringToSign(m: SnsMessage): string {
  const names =
    m.Type === 'Notification'
      ? ['Message', 'MessageId', ...(typeof m.Subject === 'string' ? ['Subject'] : []), 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return names.map((n) => `${n}\n${(m as Record<string, string>)[n]}\n`).join('');
}

/**
 * One DNS label; under amazonaws.com(.cn) only a region name (`eu-west-1`, `us-gov-west-1`, `cn-north-1`): S3
 * serves any bucket as `<bucket>.s3.amazonaws.com` (and `.s3-<region>`, `.s3-accelerate`) with a valid certificate,
 * so `sns.*.amazonaws.com` with any label would trust whoever owns the bucket named `sns`.
 */
const ANY_LABEL = '[a-z0-9-]+';
const AWS_REGION_LABEL = '[a-z]{2}(?:-[a-z]+)+-[0-9]+';

/**
 * `sns.*.amazonaws.com` → a matcher; `*` stands for exactly one DNS label, which must be a region name when the
 * pattern ends in `.amazonaws.com` or `.amazonaws.com.cn`. Case-insensitive.
 */
export function hostMatcher(patterns: readonly string[]): (host: string) => boolean {
  const regexes = patterns.map((p) => {
    const pattern = p.toLowerCase();
    const label = /\.amazonaws\.com(\.cn)?$/.test(pattern) ? AWS_REGION_LABEL : ANY_LABEL;
    return new RegExp(
      `^${pattern
        .split('*')
        .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
        .join(label)}$`,
    );
  });
  return (host) => regexes.some((r) => r.test(host.toLowerCase()));
}

/** Why an SNS message was not verified: `untrusted-url` and `bad-signature` are the sender's fault (401). */
export class SnsVerificationError extends Error {
  constructor(
    readonly reason: 'untrusted-url' | 'bad-signature' | 'certificate-unavailable',
    message: string,
  ) {
    super(message);
    this.name = 'SnsVerificationError';
  }
}

export type SnsVerifier = {
  /** Whether `url` is https on an allowed host (SES_SNS_CERT_HOSTS). */
  allowedUrl: (url: string) => boolean;
  /**
   * Verifies the message's signature (SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA) with the certificate at
   * SigningCertURL — fetched over https from an allowed host only, cached. Throws SnsVerificationError.
   */
  verify: (message: SnsMessage) => Promise<void>;
  /** GET an allowed https URL (a SubscribeURL); resolves with the status code. */
  get: (url: string) => Promise<number>;
};

const MAX_CERT_BYTES = 64 * 1024;
const CERT_CACHE_MS = 24 * 3600_000;

/**
 * GETs `url` (already checked by `allowedUrl`) through service-kit's `exchange()` on `pool`: the whole exchange
 * under `timeoutMs`, at most MAX_CERT_BYTES of body, no redirect followed (a redirect could leave the allowed
 * hosts). Resolves with any status and the body's bytes; throws HttpTransportError (`timeout`, `unreachable`,
 * `too-large`).
 */
async function fetchAllowed(url: string, pool: HttpPool, timeoutMs: number): Promise<{ status: number; body: Buffer }> {
  const answer = await exchange({ method: 'GET', url, timeoutMs, maxBytes: MAX_CERT_BYTES, binary: true, pool });
  return { status: answer.status, body: answer.bytes ?? Buffer.alloc(0) };
}

/**
 * The pool the verifier fetches on: TLS is always verified, against the system roots plus the CAs in `caFile`
 * (SES_SNS_CA_FILE) on a pool of its own when one is given, else on the process's shared pool.
 */
function snsPool(caFile: string | undefined): HttpPool {
  if (!caFile) return sharedHttpPool();
  return createHttpPool({ ca: [...rootCertificates, readFileSync(caFile, 'utf8')] });
}

/**
 * Creates the SNS signature verifier. TLS is always verified: against the system roots plus, when given, the CAs
 * in `caFile` (SES_SNS_CA_FILE). No redirects are followed (a redirect could leave the allowed hosts).
 */
export function createSnsVerifier(options: {
  certHosts: readonly string[];
  caFile?: string;
  timeoutMs?: number;
  now?: () => number;
}): SnsVerifier {
  const now = options.now ?? Date.now;
  const allowedHost = hostMatcher(options.certHosts);
  const pool = snsPool(options.caFile);
  const timeoutMs = options.timeoutMs ?? 5000;
  const cache = new Map<string, { key: Promise<KeyObject>; until: number }>();

  const allowedUrl = (url: string) => {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return false;
    }
    return parsed.protocol === 'https:' && !parsed.username && !parsed.password && allowedHost(parsed.hostname);
  };

  async function fetchKey(url: string): Promise<KeyObject> {
    let res: { status: number; body: Buffer };
    try {
      res = await fetchAllowed(url, pool, timeoutMs);
    } catch (err) {
      throw new SnsVerificationError(
        'certificate-unavailable',
        `the signing certificate cannot be fetched: ${(err as Error).message}`,
      );
    }
    if (res.status !== 200)
      throw new SnsVerificationError('certificate-unavailable', `the certificate URL answered ${res.status}`);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(res.body);
    } catch {
      throw new SnsVerificationError('bad-signature', 'the signing certificate is not an X.509 certificate');
    }
    const t = now();
    if (t < Date.parse(cert.validFrom) || t > Date.parse(cert.validTo))
      throw new SnsVerificationError('bad-signature', 'the signing certificate is not valid now');
    return cert.publicKey;
  }

  function keyFor(url: string): Promise<KeyObject> {
    const t = now();
    const hit = cache.get(url);
    if (hit && hit.until > t) return hit.key;
    const key = fetchKey(url);
    cache.set(url, { key, until: t + CERT_CACHE_MS });
    // A failed fetch is not cached: the next message tries again.
    key.catch(() => cache.delete(url));
    if (cache.size > 100) cache.delete(cache.keys().next().value!);
    return key;
  }

  return {
    allowedUrl,
    verify: async (message) => {
      const algorithm =
        message.SignatureVersion === '1' ? 'RSA-SHA1' : message.SignatureVersion === '2' ? 'RSA-SHA256' : undefined;
      if (!algorithm) throw new SnsVerificationError('bad-signature', 'unknown SignatureVersion');
      if (!allowedUrl(message.SigningCertURL) || !new URL(message.SigningCertURL).pathname.endsWith('.pem'))
        throw new SnsVerificationError('untrusted-url', 'SigningCertURL is not an https .pem URL on an allowed host');
      const key = await keyFor(message.SigningCertURL);
      const verifier = createVerify(algorithm);
      verifier.update(snsStringToSign(message), 'utf8');
      if (!verifier.verify(key, Buffer.from(message.Signature, 'base64')))
        throw new SnsVerificationError('bad-signature', 'the signature does not match');
    },
    get: async (url) => {
      if (!allowedUrl(url)) throw new SnsVerificationError('untrusted-url', 'the URL is not https on an allowed host');
      return (await fetchAllowed(url, pool, timeoutMs)).status;
    },
  };
}
