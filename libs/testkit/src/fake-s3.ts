// A fake S3 for GET Object, path style (`GET /<bucket>/<key>`, as S3-compatible stores and S3 itself accept it):
// the SigV4 `Authorization` header is checked by recomputing it with aws4 from the same credentials, over the
// headers it names as signed (a wrong one: 403 `SignatureDoesNotMatch`, an unknown key id: 403
// `InvalidAccessKeyId`, none: 403 `AccessDenied`), a missing bucket 404 `NoSuchBucket`, a missing key 404
// `NoSuchKey`, each with S3's XML error body; an object is served as its raw bytes (`binary/octet-stream` like
// objects SES stores). Failures and slow answers can be scripted (`failNext`, `holdNext`). It leaves out everything else: other operations,
// virtual-hosted style, presigned query signatures, clock-skew checks, ranges, versions.
import type { IncomingMessage, ServerResponse } from 'node:http';
import aws4 from 'aws4';
import { listen, type Listening } from './ports.js';

export type FakeS3Options = {
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
};

export type FakeS3 = Listening & {
  /** Objects by bucket, then key. */
  put(bucket: string, key: string, body: Buffer): void;
  /** Every request that reached the fake, answered or not. */
  requests: { method: string; path: string; signed: boolean; status: number }[];
  /** The next `times` requests answer this status with the S3 error `code`. */
  failNext(status: number, code: string, times?: number): void;
  /** The next `times` requests are answered only after `ms` (a caller's deadline passes first). */
  holdNext(ms: number, times?: number): void;
};

const xmlError = (code: string, message: string, resource: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
  `<Resource>${resource}</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>`;

export async function startFakeS3(options: FakeS3Options): Promise<FakeS3> {
  const buckets = new Map<string, Map<string, Buffer>>();
  const requests: FakeS3['requests'] = [];
  const failures: { status: number; code: string }[] = [];
  const holds: number[] = [];

  const listening = await listen((req, res) => {
    const hold = holds.shift();
    if (hold) {
      const timer = setTimeout(() => handle(req, res), hold);
      res.on('close', () => clearTimeout(timer));
    } else handle(req, res);
  });

  function handle(req: IncomingMessage, res: ServerResponse) {
    const path = req.url ?? '/';
    const entry = { method: req.method ?? '', path, signed: false, status: 0 };
    requests.push(entry);
    const answer = (status: number, code?: string, message = '') => {
      entry.status = status;
      if (code) {
        res.writeHead(status, { 'Content-Type': 'application/xml' });
        res.end(xmlError(code, message, path.split('?')[0]!));
      } else res.end();
    };
    const failure = failures.shift();
    if (failure) return answer(failure.status, failure.code, 'Scripted failure');
    const auth = req.headers.authorization ?? '';
    const m =
      /^AWS4-HMAC-SHA256 Credential=([^/]+)\/\d{8}\/([^/]+)\/s3\/aws4_request, SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$/.exec(
        auth,
      );
    if (!m) return answer(403, 'AccessDenied', 'Access Denied');
    if (m[1] !== options.accessKeyId)
      return answer(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    const headers: Record<string, string> = {};
    for (const name of m[3]!.split(';')) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const expected = aws4.sign(
      { host: headers['host'], path, method: req.method, service: 's3', region: options.region, headers },
      { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey },
    );
    const expectedAuth = (expected.headers as Record<string, string> | undefined)?.['Authorization'];
    if (m[2] !== options.region || expectedAuth !== auth)
      return answer(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      );
    entry.signed = true;
    if (req.method !== 'GET') return answer(405, 'MethodNotAllowed', 'The specified method is not allowed.');
    const [, bucket = '', ...rest] = path.split('?')[0]!.split('/');
    const key = rest.map((part) => decodeURIComponent(part)).join('/');
    const objects = buckets.get(bucket);
    if (!objects) return answer(404, 'NoSuchBucket', 'The specified bucket does not exist');
    const body = objects.get(key);
    if (!body) return answer(404, 'NoSuchKey', 'The specified key does not exist.');
    entry.status = 200;
    res.writeHead(200, { 'Content-Type': 'binary/octet-stream', 'Content-Length': String(body.length) });
    res.end(body);
  }

  return {
    ...listening,
    put(bucket, key, body) {
      if (!buckets.has(bucket)) buckets.set(bucket, new Map());
      buckets.get(bucket)!.set(key, body);
    },
    requests,
    failNext(status, code, times = 1) {
      for (let i = 0; i < times; i++) failures.push({ status, code });
    },
    holdNext(ms, times = 1) {
      for (let i = 0; i < times; i++) holds.push(ms);
    },
  };
}
