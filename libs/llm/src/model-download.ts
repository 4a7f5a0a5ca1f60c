import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, truncate, unlink, utimes } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { exchange, headerValue, HttpTransportError, openHttpStream, type HttpStream } from '@workemon/service-kit';

/** A model on a Hugging Face-style hub: `hf:<owner>/<repo>[:<quant>]`. */
export type HubModelRef = { owner: string; repo: string; quant?: string };

/** One file of a hub repository, as the hub's tree listing describes it. */
export type HubFile = {
  /** Path inside the repository, e.g. `Qwen3-0.6B-Q8_0.gguf`. */
  path: string;
  /** Bytes. */
  size: number;
  /** Hex SHA-256 of the content (the Git LFS object id); undefined when the hub did not give one. */
  sha256?: string;
  /** Where the content is downloaded from: `{base}/{owner}/{repo}/resolve/main/{path}`. */
  url: string;
};

export type DownloadProgress = { receivedBytes: number; totalBytes: number };

/** A failed download step; `kind` tells the caller what to say (no network, bad checksum, hub answered an error). */
export class ModelDownloadError extends Error {
  constructor(
    readonly kind: 'network' | 'checksum' | 'http' | 'not-found',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ModelDownloadError';
  }
}

const HF_REF = /^hf:([\w.-]+)\/([\w.-]+)(?::([\w.-]+))?$/;

/** `hf:owner/repo[:quant]` → its parts; undefined for anything else (a file path). */
export function parseHubModelRef(model: string): HubModelRef | undefined {
  const m = HF_REF.exec(model.trim());
  if (!m) return undefined;
  return { owner: m[1]!, repo: m[2]!, ...(m[3] ? { quant: m[3] } : {}) };
}

/** The directory a hub model is kept in: `{modelsDir}/{owner}/{repo}` (absolute). */
export function hubModelDir(modelsDir: string, ref: HubModelRef): string {
  return resolve(modelsDir, ref.owner, ref.repo);
}

/** The download URL of a file of a hub repository (main branch). */
export function hubFileUrl(baseUrl: string, ref: HubModelRef, path: string): string {
  const encoded = path.split('/').map(encodeURIComponent).join('/');
  return `${baseUrl.replace(/\/+$/, '')}/${ref.owner}/${ref.repo}/resolve/main/${encoded}`;
}

const SPLIT_PART = /-\d{5}-of-\d{5}\.gguf$/i;

/** Whether a GGUF file name carries the quantisation `quant` (case-insensitive, as a whole name part). */
function hasQuant(name: string, quant: string): boolean {
  const escaped = quant.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[-_.])${escaped}([-_.]|$)`, 'i').test(name.replace(/\.gguf$/i, ''));
}

/**
 * Picks the model file among a repository's GGUF files: the one carrying `quant` when given; otherwise the only
 * one, else Q4_K_M, else Q8_0, else the smallest. Projector files (`mmproj`) and split models are left out.
 */
export function pickGgufFile<T extends { path: string; size: number }>(files: T[], quant?: string): T | undefined {
  const ggufs = files.filter((f) => /\.gguf$/i.test(f.path) && !/mmproj/i.test(f.path) && !SPLIT_PART.test(f.path));
  if (quant) return ggufs.find((f) => hasQuant(basename(f.path), quant));
  if (ggufs.length <= 1) return ggufs[0];
  for (const preferred of ['Q4_K_M', 'Q8_0']) {
    const hit = ggufs.find((f) => hasQuant(basename(f.path), preferred));
    if (hit) return hit;
  }
  return [...ggufs].sort((a, b) => a.size - b.size)[0];
}

/** A finished model file already in `dir` for `ref` (no network needed), or undefined. */
export async function findDownloadedModel(dir: string, ref: HubModelRef): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return undefined;
  }
  const files = await Promise.all(
    names.filter((n) => /\.gguf$/i.test(n)).map(async (n) => ({ path: n, size: (await stat(join(dir, n))).size })),
  );
  const hit = pickGgufFile(files, ref.quant);
  return hit ? join(dir, hit.path) : undefined;
}

/** Largest tree listing read (a repository with thousands of files lists a few hundred KB). */
const MAX_LISTING_BYTES = 16 * 1024 * 1024;

/** One entry of the hub's tree listing, as far as the download reads it. */
type TreeEntry = { type?: string; path?: string; size?: number; lfs?: { oid?: string; size?: number } };

/**
 * `GET {root}/api/models/{owner}/{repo}/tree/main` under a deadline of `timeoutMs`, on the project's HTTP stack
 * (`exchange()`). Throws ModelDownloadError: `network` when the hub cannot be reached or does not answer in time,
 * `not-found` for 404/401 (the hub answers 401 for a repository that does not exist or is private), `http` for
 * other statuses and a listing that is not JSON.
 */
async function fetchTreeListing(root: string, ref: HubModelRef, timeoutMs: number): Promise<TreeEntry[]> {
  const listing = `${root}/api/models/${ref.owner}/${ref.repo}/tree/main`;
  let answer: Awaited<ReturnType<typeof exchange>>;
  try {
    answer = await exchange({
      method: 'GET',
      url: listing,
      headers: { accept: 'application/json' },
      timeoutMs,
      maxBytes: MAX_LISTING_BYTES,
    });
  } catch (err) {
    if (err instanceof HttpTransportError && err.kind === 'too-large')
      throw new ModelDownloadError('http', `${listing} answered more than ${MAX_LISTING_BYTES} bytes`);
    throw new ModelDownloadError('network', `cannot reach ${root} (${describeCause(err)})`, { cause: err });
  }
  if (answer.status === 404 || answer.status === 401) {
    throw new ModelDownloadError('not-found', `${root} has no repository ${ref.owner}/${ref.repo}`);
  }
  if (answer.status < 200 || answer.status > 299)
    throw new ModelDownloadError('http', `${listing} answered HTTP ${answer.status}`);
  try {
    const entries = JSON.parse(answer.text) as unknown;
    return Array.isArray(entries) ? (entries as TreeEntry[]) : [];
  } catch (err) {
    throw new ModelDownloadError('http', `${listing} answered no JSON`, { cause: err });
  }
}

/**
 * Lists a hub repository's files (`GET {base}/api/models/{owner}/{repo}/tree/main`, the Hugging Face Hub API) and
 * picks the GGUF file of `ref` (see pickGgufFile). Size and SHA-256 come from the listing's `lfs` entry.
 * Throws ModelDownloadError: `network` when the hub cannot be reached, `not-found` when the repository or a
 * matching file does not exist, `http` for other statuses.
 */
export async function resolveHubFile(baseUrl: string, ref: HubModelRef, timeoutMs = 30_000): Promise<HubFile> {
  const root = baseUrl.replace(/\/+$/, '');
  const files = (await fetchTreeListing(root, ref, timeoutMs))
    .filter((e) => e.type === 'file' && typeof e.path === 'string')
    .map((e) => ({ path: e.path!, size: Number(e.lfs?.size ?? e.size ?? 0), sha256: e.lfs?.oid }));
  const picked = pickGgufFile(files, ref.quant);
  if (!picked) {
    throw new ModelDownloadError(
      'not-found',
      `${ref.owner}/${ref.repo} has no single-file GGUF model${ref.quant ? ` in quantisation ${ref.quant}` : ''}`,
    );
  }
  const sha256 = typeof picked.sha256 === 'string' && /^[0-9a-f]{64}$/i.test(picked.sha256) ? picked.sha256 : undefined;
  return { path: picked.path, size: picked.size, sha256, url: hubFileUrl(root, ref, picked.path) };
}

/** The most telling part of a failed exchange for an operator: the network code (`ECONNREFUSED`) or a message. */
export function describeCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

async function hashFile(path: string, hash: ReturnType<typeof createHash>): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

function writeChunk(out: WriteStream, chunk: Uint8Array): Promise<void> {
  return new Promise((ok, fail) => {
    out.write(chunk, (err) => (err ? fail(err) : ok()));
  });
}

/** The part file of a download and what is known of it: bytes on disk and their running SHA-256. */
type PartState = { have: number; digest: ReturnType<typeof createHash> };

/**
 * Opens the part file `part` of a download of `size` bytes: a part longer than the file is emptied (it cannot be
 * a prefix of it); the bytes kept are hashed so that the digest continues where they end.
 */
async function openPart(part: string, size: number): Promise<PartState> {
  let have = (await sizeOf(part)) ?? 0;
  if (have > size) {
    await truncate(part, 0);
    have = 0;
  }
  const digest = createHash('sha256');
  if (have > 0) await hashFile(part, digest);
  return { have, digest };
}

/**
 * Asks for `file` from byte `have` on (`Range: bytes=<have>-`, RFC 9110 §14.2; the whole file when `have` is 0),
 * following the hub's redirects. Throws ModelDownloadError `network` when the hub cannot be reached.
 */
async function requestFrom(file: HubFile, have: number, signal?: AbortSignal): Promise<HttpStream> {
  try {
    return await openHttpStream({ url: file.url, headers: have > 0 ? { range: `bytes=${have}-` } : {}, signal });
  } catch (err) {
    throw new ModelDownloadError('network', `cannot reach ${new URL(file.url).origin} (${describeCause(err)})`, {
      cause: err,
    });
  }
}

/**
 * What the answer to a request from byte `have` means for the part: `append` (206 starting at `have`, or 200 to a
 * request from 0), `restart` (200 to a range request: the server ignored the range, RFC 9110 §14.2, and sends the
 * whole file). Anything else drops the body and throws ModelDownloadError: `http` for a range starting elsewhere
 * or another status, `not-found` for 404.
 */
function resumeVerdict(answer: HttpStream, file: HubFile, have: number): 'append' | 'restart' {
  if (answer.status === 200) return have > 0 ? 'restart' : 'append';
  const start = /^bytes (\d+)-/.exec(headerValue(answer.headers, 'content-range') ?? '')?.[1];
  if (answer.status === 206 && Number(start) === have) return 'append';
  answer.discard();
  if (answer.status === 206) {
    throw new ModelDownloadError('http', `${file.url} answered a range starting at ${start}, not at ${have}`);
  }
  throw new ModelDownloadError(
    answer.status === 404 ? 'not-found' : 'http',
    `${file.url} answered HTTP ${answer.status}`,
  );
}

/**
 * Appends the answer's body to `part` as it arrives, feeding `state.digest` and reporting progress. Throws
 * ModelDownloadError `network` when the connection breaks off (the bytes written so far stay for a resume).
 */
async function appendBody(
  answer: HttpStream,
  part: string,
  file: HubFile,
  state: PartState,
  onProgress?: (p: DownloadProgress) => void,
): Promise<void> {
  const out = createWriteStream(part, { flags: 'a' });
  let receivedBytes = state.have;
  try {
    for await (const chunk of answer.body) {
      await writeChunk(out, chunk);
      state.digest.update(chunk);
      receivedBytes += chunk.length;
      onProgress?.({ receivedBytes, totalBytes: file.size });
    }
  } catch (err) {
    throw new ModelDownloadError(
      'network',
      `the download of ${file.url} broke off at ${receivedBytes} of ${file.size} bytes (${describeCause(err)}); it resumes from there`,
      { cause: err },
    );
  } finally {
    await new Promise<void>((ok) => out.end(ok));
  }
}

/**
 * Downloads `file` to `dest` over plain HTTP(S) (the project's HTTP stack, `openHttpStream`): into `dest.part`,
 * resumed with `Range: bytes=<have>-` when a part is there (RFC 9110 §14; a server answering 200 instead of 206
 * restarts it), then checked — byte count against `file.size`, SHA-256 against `file.sha256` — and renamed to
 * `dest`. A part that fails the check is deleted. `onProgress` is called as bytes arrive. Throws
 * ModelDownloadError (`network`: connection lost — the part stays for the next attempt; `checksum`; `http`).
 */
export async function downloadHubFile(
  file: HubFile,
  dest: string,
  opts: { onProgress?: (p: DownloadProgress) => void; signal?: AbortSignal } = {},
): Promise<void> {
  await mkdir(dirname(dest), { recursive: true });
  const part = `${dest}.part`;
  let state = await openPart(part, file.size);
  opts.onProgress?.({ receivedBytes: state.have, totalBytes: file.size });
  if (state.have < file.size) {
    const answer = await requestFrom(file, state.have, opts.signal);
    if (resumeVerdict(answer, file, state.have) === 'restart') {
      await truncate(part, 0);
      state = { have: 0, digest: createHash('sha256') };
    }
    await appendBody(answer, part, file, state, opts.onProgress);
  }
  await verify(part, file, state.digest);
  await rename(part, dest);
}

async function verify(part: string, file: HubFile, digest: ReturnType<typeof createHash>): Promise<void> {
  const size = (await sizeOf(part)) ?? 0;
  const problem =
    size !== file.size
      ? `${size} bytes instead of ${file.size}`
      : file.sha256 && digest.digest('hex') !== file.sha256.toLowerCase()
        ? `its SHA-256 is not ${file.sha256}`
        : undefined;
  if (problem) {
    await unlink(part).catch(() => undefined);
    throw new ModelDownloadError('checksum', `the downloaded ${basename(file.path)} is corrupt: ${problem}; deleted`);
  }
}

/**
 * A lock file beside a download so that two processes sharing the models directory (the guesser and the system
 * analyst under `npm start`, or two containers on one volume) download once: created exclusively, its mtime
 * refreshed every few seconds; a lock untouched for `staleMs` belonged to a process that died and is taken over.
 * Resolves with a release function, or undefined when another live process holds it.
 */
export async function tryLockDownload(dest: string, staleMs = 30_000): Promise<(() => Promise<void>) | undefined> {
  await mkdir(dirname(dest), { recursive: true });
  const lock = `${dest}.lock`;
  const acquire = async () => {
    const handle = await open(lock, 'wx');
    await handle.writeFile(String(process.pid));
    await handle.close();
  };
  try {
    await acquire();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const age = Date.now() - ((await stat(lock).catch(() => undefined))?.mtimeMs ?? 0);
    if (age < staleMs) return undefined;
    await unlink(lock).catch(() => undefined);
    try {
      await acquire();
    } catch {
      return undefined;
    }
  }
  const beat = setInterval(
    () => {
      const now = new Date();
      utimes(lock, now, now).catch(() => undefined);
    },
    Math.max(1000, Math.floor(staleMs / 4)),
  );
  beat.unref();
  return async () => {
    clearInterval(beat);
    await unlink(lock).catch(() => undefined);
  };
}
