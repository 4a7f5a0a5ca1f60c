import { afterEach, describe, expect, it } from 'vitest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpTransportError, openHttpStream, runWithRequestId } from '@workemon/service-kit';
import { getFreePort, listen, type Listening } from '@workemon/testkit/ports';

const servers: Listening[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Listening> {
  const server = await listen(handler);
  servers.push(server);
  return server;
}

async function readAll(body: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; chunks: number }> {
  const parts: Buffer[] = [];
  for await (const chunk of body) parts.push(chunk);
  return { bytes: Buffer.concat(parts), chunks: parts.length };
}

describe('openHttpStream', () => {
  it('resolves at the headers and streams the body as it arrives, forwarding the request id', async () => {
    const seen: IncomingMessage['headers'][] = [];
    const server = await serve((req, res) => {
      seen.push(req.headers);
      res.writeHead(206, { 'content-range': 'bytes 4-11/12' });
      res.write('abcd');
      setTimeout(() => res.end('efgh'), 50);
    });
    const answer = await runWithRequestId('req-stream-1', () =>
      openHttpStream({ url: `${server.url}/file`, headers: { range: 'bytes=4-' } }),
    );
    expect(answer.status).toBe(206);
    expect(answer.headers['content-range']).toBe('bytes 4-11/12');
    const { bytes, chunks } = await readAll(answer.body);
    expect(bytes.toString()).toBe('abcdefgh');
    expect(chunks).toBeGreaterThanOrEqual(2);
    expect(seen[0]).toMatchObject({ range: 'bytes=4-', 'x-request-id': 'req-stream-1' });
  });

  it('follows a redirect to where the file is (as a hub sends downloads on to its CDN)', async () => {
    const cdn = await serve((_req, res) => res.end('model bytes'));
    const hub = await serve((_req, res) => res.writeHead(302, { location: `${cdn.url}/blob` }).end());
    const answer = await openHttpStream({ url: `${hub.url}/resolve/main/m.gguf` });
    expect(answer.status).toBe(200);
    expect((await readAll(answer.body)).bytes.toString()).toBe('model bytes');
  });

  it('an unreachable host is HttpTransportError unreachable with the network code', async () => {
    const port = await getFreePort();
    const err = await openHttpStream({ url: `http://127.0.0.1:${port}/x` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HttpTransportError);
    expect(err).toMatchObject({ kind: 'unreachable', code: 'ECONNREFUSED' });
  });

  it('no headers within the idle limit is HttpTransportError timeout; a body that stalls fails while read', async () => {
    const silent = await serve(() => undefined);
    const err = await openHttpStream({ url: `${silent.url}/x`, idleTimeoutMs: 100 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'timeout', message: 'no answer within 100 ms' });

    const stalling = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only a little');
    });
    const answer = await openHttpStream({ url: `${stalling.url}/x`, idleTimeoutMs: 100 });
    const broken = await readAll(answer.body).catch((e: unknown) => e);
    expect((broken as { code?: string }).code).toBe('UND_ERR_BODY_TIMEOUT');
  });

  it('an abort stops the exchange; discard() drops a body unread', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/slow') return;
      res.end('x'.repeat(100_000));
    });
    const controller = new AbortController();
    const pending = openHttpStream({ url: `${server.url}/slow`, signal: controller.signal }).catch((e: unknown) => e);
    controller.abort();
    expect(await pending).toMatchObject({ kind: 'unreachable' });

    const answer = await openHttpStream({ url: `${server.url}/big` });
    answer.discard();
    const again = await openHttpStream({ url: `${server.url}/big` });
    expect((await readAll(again.body)).bytes.length).toBe(100_000);
  });
});
