// A TCP proxy in front of a PostgreSQL server that counts the round trips its clients make. In the frontend/backend
// protocol (PostgreSQL documentation, "Frontend/Backend Protocol", "Message Flow") a client waits for the server
// after a simple Query ('Q') and after a Sync ('S', which ends an extended-protocol batch: Parse/Bind/Execute…);
// every other message travels in the same flight. So round trips = Query + Sync messages sent. The startup
// packet (and an SSLRequest / GSSENCRequest before it) carries no type byte and is not counted. Each Query and each
// Sync is answered by exactly one ReadyForQuery ('Z') from the server, which ends its round trip: a round trip that
// begins while none other is awaiting its answer, on any connection, starts a new step of the clients' sequence; one
// that begins while another is outstanding runs beside it (`sequential`).
import { createConnection, createServer, type Socket } from 'node:net';

export type RoundTripCounter = {
  /** The server's URL with the proxy's port in place of the server's. */
  url: string;
  /** Round trips since the last reset, over all connections. */
  count: () => number;
  /**
   * Of those, the ones that began while no other round trip was awaiting its answer: how many a client's requests
   * waited for one after another, the ones made at the same time on other connections not counted.
   */
  sequential: () => number;
  reset: () => void;
  close: () => Promise<void>;
};

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * Follows one client's stream of frontend messages and calls `onRoundTrip` at each Query or Sync, and `onSslRequest`
 * when the client asks for encryption (the server then answers with one byte before its first message).
 */
function frontendParser(onRoundTrip: () => void, onSslRequest: () => void): (chunk: Buffer) => void {
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
        else onSslRequest();
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

/**
 * Follows the server's stream of backend messages to one client and calls `onReadyForQuery` at each ReadyForQuery
 * ('Z'). `expectSslByte()` announces a one-byte answer to an SSLRequest / GSSENCRequest, read before the next message.
 */
function backendParser(onReadyForQuery: () => void): { parse: (chunk: Buffer) => void; expectSslByte: () => void } {
  let buffer = Buffer.alloc(0);
  let sslBytes = 0;
  return {
    expectSslByte: () => {
      sslBytes += 1;
    },
    parse: (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        if (sslBytes > 0) {
          if (buffer.length < 1) return;
          sslBytes -= 1;
          buffer = buffer.subarray(1);
          continue;
        }
        if (buffer.length < 5) return;
        const length = buffer.readInt32BE(1);
        if (buffer.length < 1 + length) return;
        if (buffer[0] === 'Z'.charCodeAt(0)) onReadyForQuery();
        buffer = buffer.subarray(1 + length);
      }
    },
  };
}

/** Starts the proxy on a free loopback port for the server at `databaseUrl`. */
export async function startRoundTripCounter(databaseUrl: string): Promise<RoundTripCounter> {
  const target = new URL(databaseUrl);
  let trips = 0;
  let sequentialTrips = 0;
  // Round trips sent and not answered yet, over all connections.
  let outstanding = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    sockets.add(client).add(upstream);
    // This connection's round trips awaiting their ReadyForQuery (the one after start-up answers none of them).
    let pending = 0;
    const backend = backendParser(() => {
      if (pending === 0) return;
      pending -= 1;
      outstanding -= 1;
    });
    const parse = frontendParser(() => {
      trips += 1;
      if (outstanding === 0) sequentialTrips += 1;
      outstanding += 1;
      pending += 1;
    }, backend.expectSslByte);
    client.on('data', (chunk: Buffer) => {
      parse(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      backend.parse(chunk);
      client.write(chunk);
    });
    const end = () => {
      outstanding -= pending;
      pending = 0;
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
    sequential: () => sequentialTrips,
    reset: () => {
      trips = 0;
      sequentialTrips = 0;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
