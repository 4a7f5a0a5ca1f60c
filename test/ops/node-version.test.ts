// One Node for contributors, CI and images (issue 11): `.nvmrc` names the major, the root package.json's
// `engines.node` accepts exactly that major (from the minor the code needs on), and the Dockerfile's base image
// is that major.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('Node version pins', () => {
  const major = read('.nvmrc').trim();
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  const image = /^ARG NODE_IMAGE=(\S+)$/m.exec(read('Dockerfile'))?.[1];

  it('names one major in .nvmrc', () => {
    expect(major).toMatch(/^\d+$/);
  });

  it('accepts that major and no other in engines.node', () => {
    expect(engines).toMatch(new RegExp(`^>=${major}\\.\\d+(\\.\\d+)? <${Number(major) + 1}$`));
  });

  it('builds the images on that major', () => {
    expect(image).toMatch(new RegExp(`^node:${major}(-|$)`));
  });
});
