// A TCP proxy in front of a PostgreSQL server that counts the round trips its clients make. In the frontend/backend
// protocol (PostgreSQL documentation, "Frontend/Backend Protocol", "Message Flow") a client waits for the server
// after a simple Query ('Q') and after a Sync ('S', which ends an extended-protocol batch: Parse/Bind/Execute…);
// every other message travels in the same flight. So round trips = Query + Sync messages sent. The startup
// packet (and an SSLRequest / GSSENCRequest before it) carries no type byte and is not counted.
import { createConnection, createServer, type Socket } from 'node:net';

export type RoundTripCounter = {
  /** The server's URL with the proxy's port in place of the server's. */
  url: string;
  /** Round trips since the last reset, over all connections. */
  count: () => number;
  reset: () => void;
  close: () => Promise<void>;
};

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/** Follows one client's stream of frontend messages and calls `onRoundTrip` at each Query or Sync. */
function frontendParser(onRoundTrip: () => void): (chunk: Buffer) => void {
  let buffer = Buffer.alloc(0);
  let started = false;
  return (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (!started) {
        if (buffer.length < 8) return;
        const length = buffer.readInt32BE(0);
        if (buffer.length < length) return;
        const code = buffer.readInt32BE(4);
        // An SSL or GSS encryption request is followed by the real startup packet.
        if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) started = true;
        buffer = buffer.subarray(length);
        continue;
      }
      if (buffer.length < 5) return;
      const length = buffer.readInt32BE(1);
      if (buffer.length < 1 + length) return;
      const type = String.fromCharCode(buffer[0]!);
      if (type === 'Q' || type === 'S') onRoundTrip();
      buffer = buffer.subarray(1 + length);
    }
  };
}

/** Starts the proxy on a free loopback port for the server at `databaseUrl`. */
export async function startRoundTripCounter(databaseUrl: string): Promise<RoundTripCounter> {
  const target = new URL(databaseUrl);
  let trips = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    sockets.add(client).add(upstream);
    const parse = frontendParser(() => (trips += 1));
    client.on('data', (chunk: Buffer) => {
      parse(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.toString(),
    count: () => trips,
    reset: () => {
      trips = 0;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
