// The live heap of a running service, for `npm run bench`'s "no growth of the live heap" goal (issue 14): what
// V8 keeps after a full collection, not the heap in use at some moment (which includes garbage not collected yet,
// as `process.memoryUsage().heapUsed` and prom-client's `nodejs_heap_size_used_bytes` do).
//
// How: the service runs with Node's `--heapsnapshot-signal=SIGUSR2` (Node's CLI documentation); on the signal it
// writes a heap snapshot into `--diagnostic-dir`, and V8 takes one only after collecting all it can
// (HeapSnapshotGenerator: "CollectAllAvailableGarbage"). The sum of the snapshot's nodes' `self_size` is the
// live heap. Writing a snapshot blocks the service for a second or two and raises its RSS (the snapshot's own
// buffers), so the bench reads RSS before it ever asks for one.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SIGNAL = 'SIGUSR2';

/** Where a service's snapshots go and the Node flags that enable them (pass both to `liveHeapBytes`). */
export function liveHeapProbe(name: string): { dir: string; flags: string[]; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `workemon-bench-heap-${name}-`));
  return {
    dir,
    flags: [`--heapsnapshot-signal=${SIGNAL}`, `--diagnostic-dir=${dir}`],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

type HeapSnapshot = { snapshot: { meta: { node_fields: string[] } }; nodes: number[] };

/** The sum of every node's `self_size` in a V8 heap snapshot (the `.heapsnapshot` JSON format), in bytes. */
export function liveBytesOfSnapshot(text: string): number {
  const parsed = JSON.parse(text) as HeapSnapshot;
  const fields = parsed.snapshot.meta.node_fields;
  const stride = fields.length;
  const selfSize = fields.indexOf('self_size');
  if (selfSize < 0) throw new Error('heap snapshot without self_size');
  let total = 0;
  for (let i = selfSize; i < parsed.nodes.length; i += stride) total += parsed.nodes[i]!;
  return total;
}

/**
 * Asks the process `pid` (started with `liveHeapProbe(…).flags`) for a heap snapshot and returns its live heap in
 * bytes, once the file is complete; the snapshot is deleted afterwards. Throws after `timeoutMs` (default 60 s).
 */
export async function liveHeapBytes(pid: number, dir: string, timeoutMs = 60_000): Promise<number> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, SIGNAL);
  const deadline = Date.now() + timeoutMs;
  let lastSize = -1;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const file = readdirSync(dir).find((f) => !before.has(f) && f.endsWith('.heapsnapshot'));
    if (!file) continue;
    const path = join(dir, file);
    const size = statSync(path).size;
    // Node writes the file in one go from the main thread; a size unchanged over a poll and JSON that parses
    // mean it is complete.
    if (size === 0 || size !== lastSize) {
      lastSize = size;
      continue;
    }
    try {
      const bytes = liveBytesOfSnapshot(readFileSync(path, 'utf8'));
      rmSync(path, { force: true });
      return bytes;
    } catch {
      lastSize = -1;
    }
  }
  throw new Error(`no heap snapshot from process ${pid} within ${timeoutMs} ms`);
}
