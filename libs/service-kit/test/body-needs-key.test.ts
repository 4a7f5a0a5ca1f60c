// `bodyNeedsKey` (createServiceApp): a service whose every body route needs a key does not read the body of a
// caller without one. Before, such a caller could make the service buffer and JSON.parse up to the body limit on
// every request before the route's key check answered 401. Real HTTP over a raw socket, so the test sees when the
// answer comes relative to the body it has (not yet) sent.
import { connect, type AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createAuthenticator,
  createLogger,
  createMetrics,
  createServiceApp,
  type ApiKeys,
} from '@workemon/service-kit';

const SERVICE = 'service-key-0123456789abcdefghijklmno';
const CLIENT = 'client-key-0123456789abcdefghijklmnop';
const keys: ApiKeys = { client: [{ name: 'web', key: CLIENT }], admin: [], service: [{ name: 'stack', key: SERVICE }] };

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A service app with one POST route for service keys that echoes the body's field count. */
async function start(bodyNeedsKey: boolean): Promise<{ port: number; parsed: unknown[] }> {
  const auth = createAuthenticator(keys);
  const parsed: unknown[] = [];
  const app = createServiceApp(
    {
      service: 'guarded',
      version: '1.0.0',
      logger: createLogger({ service: 'guarded', level: 'error' }),
      metrics: createMetrics('guarded'),
      auth,
      bodyNeedsKey,
    },
    (a) => {
      a.post('/work', auth.require(['service']), (req, res) => {
        parsed.push(req.body);
        res.json({ fields: Object.keys(req.body as object).length });
      });
    },
  );
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server!.once('listening', resolve));
  return { port: (server!.address() as AddressInfo).port, parsed };
}

/**
 * Sends the head of a POST announcing `length` bytes of JSON and only its first `sent` bytes, then waits up to
 * `waitMs` for an answer: the status line, or undefined when the server is still waiting for the body.
 */
async function partialPost(
  port: number,
  authorization: string | undefined,
  waitMs: number,
): Promise<string | undefined> {
  const body = `{"padding":"${'x'.repeat(200_000)}"}`;
  const socket = connect(port, '127.0.0.1');
  await new Promise((resolve) => socket.once('connect', resolve));
  let answer = '';
  socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
  socket.write(
    `POST /work HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${authorization ? `Authorization: ${authorization}\r\n` : ''}\r\n`,
  );
  socket.write(body.slice(0, 1000));
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  socket.destroy();
  return answer ? answer.split('\r\n')[0] : undefined;
}

describe('bodyNeedsKey', () => {
  it.each([
    ['no key', undefined],
    ['an unknown key', 'Bearer not-a-key-0123456789abcdefghijkl'],
  ])('answers a caller with %s 401 without waiting for, reading or parsing its body', async (_what, authorization) => {
    const { port, parsed } = await start(true);
    expect(await partialPost(port, authorization, 500)).toBe('HTTP/1.1 401 Unauthorized');
    expect(parsed).toEqual([]);
  });

  it('reads the body of a caller with a key of any class: the route judges the class (403), and a service key is served', async () => {
    const { port, parsed } = await start(true);
    // The body is awaited for a known key: no answer while it is incomplete.
    expect(await partialPost(port, `Bearer ${CLIENT}`, 300)).toBeUndefined();
    const post = (key: string) =>
      fetch(`http://127.0.0.1:${port}/work`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify({ a: 1, b: 2 }),
      });
    expect((await post(CLIENT)).status).toBe(403);
    const served = await post(SERVICE);
    expect(served.status).toBe(200);
    expect(await served.json()).toEqual({ fields: 2 });
    expect(parsed).toEqual([{ a: 1, b: 2 }]);
  });

  it('without it, waits for the whole body before the key check (the communicator: webhooks carry signatures)', async () => {
    const { port } = await start(false);
    expect(await partialPost(port, undefined, 300)).toBeUndefined();
  });

  it('a keyless caller still gets 401 once it sends its whole body, and the connection serves the next request', async () => {
    const { port } = await start(true);
    const big = JSON.stringify({ padding: 'y'.repeat(500_000) });
    const refused = await fetch(`http://127.0.0.1:${port}/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: big,
    });
    expect(refused.status).toBe(401);
    expect((await refused.json()) as { statusCode: number }).toMatchObject({ statusCode: 401 });
    const served = await fetch(`http://127.0.0.1:${port}/work`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${SERVICE}` },
      body: '{"x":1}',
    });
    expect(served.status).toBe(200);
  });
});
