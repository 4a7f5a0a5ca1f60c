#!/usr/bin/env node
// `npm start`: runs every service from its TypeScript sources on embedded defaults (no build, no servers
// needed), each with its own port, prefixing their log lines. Ctrl-C stops them all gracefully.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

const services = [
  { name: 'guesser', port: 8001 },
  { name: 'system-analyst', port: 8002 },
  { name: 'secretary', port: 8000 },
  { name: 'communicator', port: 8003 },
].filter((s) => existsSync(new URL(`../services/${s.name}/src/main.ts`, import.meta.url)));

// No provider configured: the LLM services run a small model in process (LLM_PROVIDER=local, docs/llm.md), so
// `npm start` answers with no API key and no model server; the first start downloads it into ./data/models.
const llmDefault = process.env.LLM_PROVIDER ? {} : { LLM_PROVIDER: 'local' };

const children = services.map((s) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--conditions=@workemon/source', `services/${s.name}/src/main.ts`],
    {
      cwd: new URL('..', import.meta.url),
      env: { ...process.env, PORT: String(s.port), ...llmDefault },
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  child.on('exit', (code, signal) => {
    console.error(`[start] ${s.name} exited (${signal ?? code})`);
    if (!stopping) stop(code ?? 1);
  });
  return child;
});
console.error(`[start] ${services.map((s) => `${s.name}:${s.port}`).join('  ')}`);

let stopping = false;
function stop(code = 0) {
  stopping = true;
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 20_000).unref();
  Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.on('exit', r)) : null))).then(() =>
    process.exit(code),
  );
}
process.on('SIGINT', () => stop(0));
process.on('SIGTERM', () => stop(0));
