import aws4 from 'aws4';
import { AppError, HttpTransportError, exchange } from '@workemon/service-kit';
import type { SesS3Settings } from '../config.js';

/** Where an SES S3 action stored a mail (the notification's `receipt.action`). */
export type S3Location = { bucket: string; key: string };

/** The S3 error code of an XML error body (`<Error><Code>NoSuchKey</Code>…`), when there is one. */
function s3ErrorCode(text: string): string | undefined {
  return /<Code>([^<]{1,100})<\/Code>/.exec(text)?.[1];
}

const encodeKey = (key: string) => key.split('/').map(encodeURIComponent).join('/');

/**
 * Fetches the raw MIME an SES S3 action stored: one GET signed with SigV4 (aws4), through service-kit's transport
 * under `timeoutMs` and at most `maxBytes`. AWS: virtual-hosted style `https://<bucket>.s3.<region>.amazonaws.com`;
 * `endpoint` (S3-compatible stores, tests): path style `<endpoint>/<bucket>/<key>`.
 * Throws 422 (retryable: false) for a bucket not in `buckets` (nothing is fetched), 403/404 and other 4xx (the mail
 * cannot be taken: retrying will not change it) or too big; 503 for 5xx, timeouts and network errors (SNS retries).
 */
export async function fetchSesMailFromS3(settings: SesS3Settings, where: S3Location): Promise<Buffer> {
  if (!settings.buckets.includes(where.bucket))
    throw new AppError(
      'unsupported_action',
      422,
      `The SES S3 action's bucket ${where.bucket.slice(0, 63)} is not one this endpoint reads (SES_S3_BUCKETS)`,
      { retryable: false },
    );
  const path = settings.endpoint
    ? `${new URL(settings.endpoint).pathname.replace(/\/+$/, '')}/${where.bucket}/${encodeKey(where.key)}`
    : `/${encodeKey(where.key)}`;
  const origin = settings.endpoint
    ? new URL(settings.endpoint).origin
    : `https://${where.bucket}.s3.${settings.region}.amazonaws.com`;
  const url = new URL(path, origin);
  const signed = aws4.sign(
    { host: url.host, path: url.pathname, method: 'GET', service: 's3', region: settings.region, headers: {} },
    settings.credentials ?? {
      accessKeyId: process.env['AWS_ACCESS_KEY_ID'],
      secretAccessKey: process.env['AWS_SECRET_ACCESS_KEY'],
      sessionToken: process.env['AWS_SESSION_TOKEN'],
    },
  );
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(signed.headers ?? {})) headers[name] = String(value);
  const unavailable = (message: string, cause?: unknown) =>
    new AppError('dependency_unavailable', 503, message, { cause, headers: { 'Retry-After': '60' } });
  let answer;
  try {
    answer = await exchange({
      method: 'GET',
      url: url.href,
      headers,
      timeoutMs: settings.timeoutMs,
      maxBytes: settings.maxBytes,
      binary: true,
    });
  } catch (err) {
    if (err instanceof HttpTransportError && err.kind === 'too-large')
      throw new AppError('payload_too_large', 422, `The mail in S3 is larger than ${settings.maxBytes} bytes`, {
        retryable: false,
      });
    throw unavailable('S3 cannot be reached now; the mail is not taken yet, retry later', err);
  }
  if (answer.status === 200) return answer.bytes!;
  const code = s3ErrorCode(answer.text) ?? `HTTP ${answer.status}`;
  if (answer.status >= 500 || answer.status === 429)
    throw unavailable(`S3 answered ${answer.status} (${code}); the mail is not taken yet, retry later`);
  throw new AppError(
    'mail_unavailable',
    422,
    `The mail cannot be fetched from S3: ${answer.status} ${code} (bucket ${where.bucket.slice(0, 63)})`,
    { retryable: false },
  );
}
