// The live heap of a running service, for `npm run bench`'s "no growth of the live heap" goal (issue 14): what
// V8 keeps after a full collection, not the heap in use at some moment (which includes garbage not collected yet,
// as `process.memoryUsage().heapUsed` and prom-client's `nodejs_heap_size_used_bytes` do).
//
// How: the service runs with Node's `--heapsnapshot-signal=SIGUSR2` (Node's CLI documentation); on the signal it
// writes a heap snapshot into `--diagnostic-dir`, and V8 takes one only after collecting all it can
// (HeapSnapshotGenerator: "CollectAllAvailableGarbage"). The snapshot's nodes' `self_size` add up to what is
// still reachable: JavaScript objects in V8's heap, and `native` nodes for memory V8 accounts for outside it
// (the contents of ArrayBuffers and Buffers, "system / JSArrayBufferData"). The two are reported apart. Writing a
// snapshot blocks the service for a second or two and raises its RSS (the snapshot's own buffers), so the bench
// reads RSS before it ever asks for one.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SIGNAL = 'SIGUSR2';

/** Snapshot directories still on disk, removed when the bench exits however it ends (a snapshot is ~50 MB). */
const probeDirs = new Set<string>();
let cleanupInstalled = false;
function removeProbeDirs(): void {
  for (const dir of probeDirs) rmSync(dir, { recursive: true, force: true });
  probeDirs.clear();
}
function installCleanup(): void {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  process.once('exit', removeProbeDirs);
  // Ctrl-C or a kill: exit through 'exit' (the services are children in the same process group and get the
  // signal themselves).
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));
}

/** Where a service's snapshots go and the Node flags that enable them (pass `dir` to `liveHeapBytes`). */
export function liveHeapProbe(name: string): { dir: string; flags: string[]; remove: () => void } {
  installCleanup();
  const dir = mkdtempSync(join(tmpdir(), `workemon-bench-heap-${name}-`));
  probeDirs.add(dir);
  return {
    dir,
    flags: [`--heapsnapshot-signal=${SIGNAL}`, `--diagnostic-dir=${dir}`],
    remove: () => {
      rmSync(dir, { recursive: true, force: true });
      probeDirs.delete(dir);
    },
  };
}

/** What a heap snapshot holds, in bytes: V8's heap (JavaScript objects) and native memory it accounts for. */
export type LiveHeap = { heapBytes: number; nativeBytes: number };

type HeapSnapshot = {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
};

/**
 * The sums of `self_size` over a V8 heap snapshot's nodes (the `.heapsnapshot` JSON format), split into `native`
 * nodes and all others. Throws a SyntaxError on incomplete JSON, an Error on a snapshot without those fields.
 */
export function liveHeapOfSnapshot(text: string): LiveHeap {
  const parsed = JSON.parse(text) as HeapSnapshot;
  const fields = parsed.snapshot.meta.node_fields;
  const stride = fields.length;
  const selfSize = fields.indexOf('self_size');
  const type = fields.indexOf('type');
  const native = parsed.snapshot.meta.node_types[0].indexOf('native');
  if (selfSize < 0 || type < 0) throw new Error('heap snapshot without self_size or type');
  const live: LiveHeap = { heapBytes: 0, nativeBytes: 0 };
  for (let i = 0; i < parsed.nodes.length; i += stride) {
    if (parsed.nodes[i + type] === native) live.nativeBytes += parsed.nodes[i + selfSize]!;
    else live.heapBytes += parsed.nodes[i + selfSize]!;
  }
  return live;
}

/**
 * Asks the process `pid` (started with `liveHeapProbe(…).flags`) for a heap snapshot and returns what it holds,
 * once the file is complete; the snapshot is deleted afterwards. Only a file named for `pid` that was not there
 * before the signal counts (Node names it `Heap.<date>.<time>.<pid>.<thread>.<seq>.heapsnapshot`). A file whose
 * size has not changed over a poll is read; while it does not parse (the writer paused), polling goes on. Throws
 * after `timeoutMs` (default 60 s), saying whether no file came or the one that came never parsed.
 */
export async function liveHeapBytes(pid: number, dir: string, timeoutMs = 60_000): Promise<LiveHeap> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, SIGNAL);
  const deadline = Date.now() + timeoutMs;
  let path: string | undefined;
  let lastSize = -1;
  let parseError: unknown;
  try {
    while (Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      const file = readdirSync(dir).find(
        (f) => !before.has(f) && f.endsWith('.heapsnapshot') && f.split('.')[3] === String(pid),
      );
      if (!file) continue;
      path = join(dir, file);
      const size = statSync(path).size;
      if (size === 0 || size !== lastSize) {
        lastSize = size;
        continue;
      }
      try {
        return liveHeapOfSnapshot(readFileSync(path, 'utf8'));
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
        parseError = err;
      }
    }
  } finally {
    if (path) rmSync(path, { force: true });
  }
  throw new Error(
    parseError
      ? `the heap snapshot of process ${pid} did not parse within ${timeoutMs} ms (${String(parseError)})`
      : `no heap snapshot from process ${pid} within ${timeoutMs} ms`,
  );
}
