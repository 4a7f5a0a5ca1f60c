import { parseEvalArgs, runEval } from './eval-cli.js';

try {
  const options = parseEvalArgs(process.argv.slice(2), process.env);
  await runEval(options, (text) => process.stdout.write(text));
} catch (err) {
  process.stderr.write(`eval: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
