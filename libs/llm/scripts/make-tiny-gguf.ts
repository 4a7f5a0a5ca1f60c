/**
 * Writes the tiny GGUF model the tests use (libs/testkit/src/tiny-gguf.ts): a llama-architecture model of about
 * 170 KB with fixed pseudo-random weights and a byte-level vocabulary. It answers nonsense, but valid nonsense:
 * enough to try the local provider (and `npm start`) without downloading a real model.
 *
 *   npx tsx --conditions=@workemon/source libs/llm/scripts/make-tiny-gguf.ts <file.gguf> [terse|endless]
 *   LLM_PROVIDER=local LLM_MODEL=<file.gguf> npm start
 */
import { resolve } from 'node:path';
import { writeTinyGguf, type TinyGgufStyle } from '@workemon/testkit/tiny-gguf';

const [out, style = 'terse'] = process.argv.slice(2);
if (!out || !['terse', 'endless'].includes(style)) {
  process.stderr.write('usage: make-tiny-gguf.ts <file.gguf> [terse|endless]\n');
  process.exit(2);
}
const path = writeTinyGguf(resolve(out), { style: style as TinyGgufStyle });
process.stdout.write(`wrote ${path}\n`);
