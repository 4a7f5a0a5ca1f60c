// Writes dist/openapi/<name>.json from openapi/<name>.yaml (YAML merge keys resolved), run by `npm run build`: the
// built package reads these with JSON.parse instead of loading the `yaml` parser and parsing YAML at every start
// (docs/operations.md, "Memory at start-up"). The YAML stays the source; running from src/ reads it directly.
// Usage: node scripts-build-json.mjs [outDir] (default dist/openapi/).
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('./', import.meta.url));
const outDir = resolve(process.argv[2] ?? resolve(root, 'dist/openapi'));
mkdirSync(outDir, { recursive: true });
for (const file of readdirSync(resolve(root, 'openapi')).filter((f) => f.endsWith('.yaml'))) {
  const document = parse(readFileSync(resolve(root, 'openapi', file), 'utf8'), { merge: true });
  writeFileSync(resolve(outDir, file.replace(/\.yaml$/, '.json')), `${JSON.stringify(document)}\n`);
}
