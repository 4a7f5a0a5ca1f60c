// `npm run bench` reads each service's live heap from a heap snapshot its process writes on a signal
// (scripts/bench-live-heap.ts). Checked on a real Node child process: memory it keeps shows up, memory it drops
// does not (the snapshot comes after a full collection), a Buffer's contents count as native memory, not as V8's
// heap, and the snapshot file is removed.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { liveHeapBytes, liveHeapProbe } from '../../scripts/bench-live-heap.js';

const MB = 1024 * 1024;

// A process that, on each line read, keeps (`keep`) or drops (`drop`) an array of 2 Mi doubles (16 MB in V8's
// heap), or keeps a 16 MB Buffer (`buffer`, memory outside V8's heap), then says `ok`.
const CHILD = `
const kept = [];
let line = '';
process.stdin.on('data', (chunk) => {
  line += chunk;
  for (;;) {
    const i = line.indexOf('\\n');
    if (i < 0) return;
    const cmd = line.slice(0, i);
    line = line.slice(i + 1);
    const batch = Array.from({ length: 2 * 1024 * 1024 }, (_, n) => n + 0.5);
    if (cmd === 'keep') kept.push(batch);
    if (cmd === 'buffer') kept.push(Buffer.alloc(16 * 1024 * 1024, 1));
    process.stdout.write('ok\\n');
  }
});
process.stdout.write('ready\\n');
`;

let child: ChildProcess | undefined;
let removeProbe: (() => void) | undefined;
afterEach(() => {
  child?.kill('SIGKILL');
  removeProbe?.();
});

function reply(c: ChildProcess, word: string): Promise<void> {
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      if (chunk.toString().includes(word)) {
        c.stdout!.off('data', onData);
        resolve();
      }
    };
    c.stdout!.on('data', onData);
  });
}

describe('the bench live-heap reader', () => {
  it('counts memory a process keeps, not the garbage it dropped, Buffers apart, and removes the snapshot', async () => {
    const probe = liveHeapProbe('test');
    removeProbe = probe.remove;
    child = spawn(process.execPath, [...probe.flags, '-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
    await reply(child, 'ready');
    const send = async (cmd: string) => {
      const done = reply(child!, 'ok');
      child!.stdin!.write(`${cmd}\n`);
      await done;
      return liveHeapBytes(child!.pid!, probe.dir);
    };
    const base = await liveHeapBytes(child.pid!, probe.dir);
    expect(base.heapBytes).toBeGreaterThan(MB);

    // 16 MB allocated and dropped: within the 2 MB a snapshot's own bookkeeping may move.
    const afterDrop = await send('drop');
    expect(Math.abs(afterDrop.heapBytes - base.heapBytes)).toBeLessThan(2 * MB);

    // 2 Mi unboxed doubles, 8 bytes each: 16 MB more in V8's heap (± the same 2 MB), none native.
    const afterKeep = await send('keep');
    expect(afterKeep.heapBytes - afterDrop.heapBytes).toBeGreaterThan(14 * MB);
    expect(afterKeep.heapBytes - afterDrop.heapBytes).toBeLessThan(18 * MB);
    expect(Math.abs(afterKeep.nativeBytes - afterDrop.nativeBytes)).toBeLessThan(2 * MB);

    // A 16 MB Buffer: its contents are native memory; V8's heap holds only the small object pointing at them.
    const afterBuffer = await send('buffer');
    expect(afterBuffer.nativeBytes - afterKeep.nativeBytes).toBeGreaterThan(14 * MB);
    expect(afterBuffer.nativeBytes - afterKeep.nativeBytes).toBeLessThan(18 * MB);
    expect(Math.abs(afterBuffer.heapBytes - afterKeep.heapBytes)).toBeLessThan(2 * MB);
    expect(readdirSync(probe.dir).filter((f) => f.endsWith('.heapsnapshot'))).toEqual([]);
  }, 60_000);
});
