// Regenerates src/generated/<name>.ts from openapi/<name>.yaml (openapi-typescript).
// `--check` exits 1 when a committed file differs from what the document gives (used by the tests and CI).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import openapiTS, { astToString } from 'openapi-typescript';

const root = new URL('./', import.meta.url);
const check = process.argv.includes('--check');
let stale = 0;
for (const file of readdirSync(new URL('openapi/', root)).filter((f) => f.endsWith('.yaml'))) {
  const name = file.replace(/\.yaml$/, '');
  const ast = await openapiTS(new URL(`openapi/${file}`, root));
  const text = `/* eslint-disable */\n// Generated from openapi/${file} by \`npm run generate -w libs/contracts\`. Do not edit.\n${astToString(ast)}`;
  const target = new URL(`src/generated/${name}.ts`, root);
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    current = '';
  }
  if (current === text) continue;
  if (check) {
    console.error(`src/generated/${name}.ts is stale: run npm run generate -w libs/contracts`);
    stale += 1;
  } else {
    writeFileSync(target, text);
    console.log(`generated src/generated/${name}.ts`);
  }
}
process.exit(stale ? 1 : 0);
