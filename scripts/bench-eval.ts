// `npm run bench:eval`: how long `npm run eval` takes over the shipped set (eval/requests.jsonl) with an instant
// fake LLM (testkit's fake-llm, OpenAI wire), for one and for two configurations side by side. Goal (not a test):
// the full set in under a minute per run on 2 cores. The eval itself runs as `npm run eval` does (tsx, sources).
import { spawn } from 'node:child_process';
import { startFakeLlm } from '@workemon/testkit/fake-llm';

const root = new URL('..', import.meta.url).pathname;
const GOAL_MS = 60_000;

const fake = await startFakeLlm({ wire: 'openai' });
// One answer fits both services: the guesser's schema ignores `action`.
fake.reply(() => ({ is_enough: true, response: 'Контекст и рекомендация', action: 'создать jira-task' }));
const config = (name: string) =>
  `name=${name},provider=openai,base_url=${fake.url},model=${fake.model},api_key=${fake.apiKey},LLM_MAX_RETRIES=0`;

async function timed(args: string[]): Promise<number> {
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      `${root}node_modules/.bin/tsx`,
      ['--conditions=@workemon/source', 'eval/src/main.ts', ...args],
      {
        cwd: root,
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`eval exited with ${code}`))));
  });
  return performance.now() - started;
}

let failed = false;
try {
  for (const [label, args] of [
    ['one configuration', ['--config', config('a'), '--json']],
    ['two configurations', ['--config', config('a'), '--config', config('b'), '--json']],
  ] as const) {
    const ms = await timed([...args]);
    const ok = ms < GOAL_MS;
    failed ||= !ok;
    process.stdout.write(
      `${label}: ${(ms / 1000).toFixed(1)} s for the full set, ${fake.requests.length} LLM calls so far ${ok ? '(goal met)' : `(goal: < ${GOAL_MS / 1000} s)`}\n`,
    );
  }
} finally {
  await fake.close();
}
process.exitCode = failed ? 1 : 0;
