/**
 * A fake model hub speaking the Hugging Face Hub's wire format for what the `local` LLM provider uses:
 * - `GET /api/models/{owner}/{repo}/tree/main` → `[{type:'file', oid, size, path, lfs:{oid:<sha256>, size,
 *   pointerSize}}]` (404 `{"error":"Repository not found"}` for other repositories);
 * - `GET /{owner}/{repo}/resolve/main/{path}` → the file, `Accept-Ranges: bytes`; `Range: bytes=N-` → 206 with
 *   `Content-Range: bytes N-M/size`; an unsatisfiable range → 416.
 * It records every request (with its Range header), can cut the connection after a number of bytes (to test
 * resuming), slow the body down (to watch progress), and list a wrong checksum (to test verification).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FakeModelHub = {
  url: string;
  requests: { method: string; path: string; range?: string }[];
  /** The next file download is cut (socket destroyed) after this many body bytes. */
  cutNextAfterBytes?: number;
  /** Pause after each chunk of the body (ms); chunks are `chunkBytes` long. */
  chunkDelayMs: number;
  chunkBytes: number;
  /** Lists this SHA-256 instead of the real one. */
  listedSha256?: string;
  close(): Promise<void>;
};

export async function startFakeModelHub(opts: {
  owner: string;
  repo: string;
  files: Record<string, Buffer>;
}): Promise<FakeModelHub> {
  const sockets = new Set<Socket>();
  const hub: FakeModelHub = { url: '', requests: [], chunkDelayMs: 0, chunkBytes: 16 * 1024, close: async () => {} };
  const repoPath = `/${opts.owner}/${opts.repo}`;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function serveFile(req: IncomingMessage, res: ServerResponse, content: Buffer): Promise<void> {
    let start = 0;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d+)-$/.exec(range);
      if (!m || Number(m[1]) >= content.length) {
        res.writeHead(416, { 'content-range': `bytes */${content.length}` }).end();
        return;
      }
      start = Number(m[1]);
      res.writeHead(206, {
        'content-type': 'application/octet-stream',
        'content-length': String(content.length - start),
        'content-range': `bytes ${start}-${content.length - 1}/${content.length}`,
        'accept-ranges': 'bytes',
      });
    } else {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(content.length),
        'accept-ranges': 'bytes',
      });
    }
    const cut = hub.cutNextAfterBytes;
    hub.cutNextAfterBytes = undefined;
    let sent = 0;
    for (let at = start; at < content.length; at += hub.chunkBytes) {
      const chunk = content.subarray(at, Math.min(content.length, at + hub.chunkBytes));
      if (cut !== undefined && sent + chunk.length > cut) {
        res.write(chunk.subarray(0, cut - sent));
        await sleep(50);
        req.socket.destroy();
        return;
      }
      res.write(chunk);
      sent += chunk.length;
      if (hub.chunkDelayMs) await sleep(hub.chunkDelayMs);
    }
    res.end();
  }

  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    hub.requests.push({ method: req.method ?? 'GET', path, range: req.headers.range });
    if (path === `/api/models${repoPath}/tree/main`) {
      const listing = Object.entries(opts.files).map(([name, content]) => {
        const sha = createHash('sha256').update(content).digest('hex');
        return {
          type: 'file',
          oid: createHash('sha1').update(content).digest('hex'),
          size: content.length,
          path: name,
          lfs: { oid: hub.listedSha256 ?? sha, size: content.length, pointerSize: 134 },
        };
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(listing));
      return;
    }
    const prefix = `${repoPath}/resolve/main/`;
    if (path.startsWith(prefix) && opts.files[path.slice(prefix.length)]) {
      serveFile(req, res, opts.files[path.slice(prefix.length)]!).catch(() => req.socket.destroy());
      return;
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'Repository not found' }));
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hub.close = () =>
    new Promise<void>((ok) => {
      for (const s of sockets) s.destroy();
      server.close(() => ok());
    });
  return hub;
}
