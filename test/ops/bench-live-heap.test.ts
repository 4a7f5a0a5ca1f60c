// `npm run bench` reads each service's live heap from a heap snapshot its process writes on a signal
// (scripts/bench-live-heap.ts). Checked on a real Node child process: memory it keeps shows up, memory it drops
// does not (the snapshot comes after a full collection), and the snapshot file is removed.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { liveHeapBytes, liveHeapProbe } from '../../scripts/bench-live-heap.js';

const MB = 1024 * 1024;

// A process that, on each line read, keeps (`keep`) or drops (`drop`) an array of 2 Mi doubles (16 MB in V8's
// heap), then says `ok`.
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
  it('counts memory a process keeps, not the garbage it dropped, and removes the snapshot', async () => {
    const probe = liveHeapProbe('test');
    removeProbe = probe.remove;
    child = spawn(process.execPath, [...probe.flags, '-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
    await reply(child, 'ready');
    const base = await liveHeapBytes(child.pid!, probe.dir);
    expect(base).toBeGreaterThan(MB);

    const dropped = reply(child, 'ok');
    child.stdin!.write('drop\n');
    await dropped;
    const afterDrop = await liveHeapBytes(child.pid!, probe.dir);
    expect(Math.abs(afterDrop - base)).toBeLessThan(2 * MB);

    const kept = reply(child, 'ok');
    child.stdin!.write('keep\n');
    await kept;
    const afterKeep = await liveHeapBytes(child.pid!, probe.dir);
    // 2 Mi unboxed doubles, 8 bytes each: 16 MB live.
    expect(afterKeep - afterDrop).toBeGreaterThan(16 * MB);
    expect(afterKeep - afterDrop).toBeLessThan(24 * MB);
    expect(readdirSync(probe.dir).filter((f) => f.endsWith('.heapsnapshot'))).toEqual([]);
  }, 60_000);
});
