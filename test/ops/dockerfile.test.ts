// The root Dockerfile and scripts/offline-base-image.sh as the first real compose run (2026-11-30) needed them
// (docs/operations.md, "Images" and "Trying the images without a registry"). CI has no Docker daemon: the
// Dockerfile's stages are read from the file, and the shell of its install steps runs here, as `sh -c` does in
// the build, with a stand-in `npm` that records what it was given.
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoPath } from './observability-files.js';

/** One build stage: its name (`AS …`) and its instructions, continuation lines joined, comments dropped. */
type Stage = { name: string; instructions: string[] };

/** The Dockerfile's stages in order (Dockerfile reference: `\` continues a line, `#` starts a comment line). */
function stages(text: string): Stage[] {
  const joined = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const result: Stage[] = [];
  for (const line of joined.split('\n').map((l) => l.trim())) {
    if (!line) continue;
    const from = /^FROM\s+\S+(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) result.push({ name: from[1] ?? '', instructions: [] });
    else result.at(-1)?.instructions.push(line);
  }
  return result;
}

const dockerfile = stages(readFileSync(repoPath('Dockerfile'), 'utf8'));
const stage = (name: string): Stage => {
  const found = dockerfile.find((s) => s.name === name);
  if (!found) throw new Error(`no stage ${name} in the Dockerfile`);
  return found;
};
/** The shell command of the stage's RUN that calls `npm ci`. */
const installCommand = (name: string): string => {
  const run = stage(name).instructions.find((i) => /^RUN\s/.test(i) && /\bnpm ci\b/.test(i));
  if (!run) throw new Error(`no RUN with npm ci in stage ${name}`);
  return run.replace(/^RUN\s+/, '');
};

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'workemon-dockerfile-'));
  dirs.push(dir);
  return dir;
};

/** Two certificates as `cat /usr/local/share/ca-certificates/*.crt` gives them (shape only: never parsed). */
const PEM = [
  '-----BEGIN CERTIFICATE-----',
  'MIIBszCCAVmgAwIBAgIUYWxwaGEtdGVzdC1jZXJ0aWZpY2F0ZTAKBggqhkjOPQQDAjAS',
  '-----END CERTIFICATE-----',
  '-----BEGIN CERTIFICATE-----',
  'MIIBtDCCAVqgAwIBAgIUYmV0YS10ZXN0LWNlcnRpZmljYXRlMAoGCCqGSM49BAMCMBI=',
  '-----END CERTIFICATE-----',
].join('\n');

/**
 * Runs an install step's command with `sh -c` (as the build does) and a stand-in npm on PATH (a shell script, so
 * no Node parses the sample certificates) that records, per call, its arguments, NODE_EXTRA_CA_CERTS and that
 * file's text. `/tmp/build-ca.pem` is redirected into a temporary directory.
 */
function runInstall(name: string, env: Record<string, string>) {
  const dir = tempDir();
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  const calls = join(dir, 'calls');
  mkdirSync(calls);
  writeFileSync(
    join(bin, 'npm'),
    `#!/bin/sh
call=${calls}/$(ls ${calls} | wc -l)
mkdir "$call"
printf '%s' "$*" > "$call/args"
if [ -n "\${NODE_EXTRA_CA_CERTS:-}" ]; then printf '%s' "$NODE_EXTRA_CA_CERTS" > "$call/ca"; cat "$NODE_EXTRA_CA_CERTS" > "$call/ca-text"; fi
`,
  );
  chmodSync(join(bin, 'npm'), 0o755);
  const command = installCommand(name).replaceAll('/tmp/build-ca.pem', join(dir, 'build-ca.pem'));
  const result = spawnSync('sh', ['-c', command], {
    cwd: dir,
    encoding: 'utf8',
    env: { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, SERVICE: 'secretary', ...env },
  });
  const read = (call: string, file: string): string | null =>
    existsSync(join(calls, call, file)) ? readFileSync(join(calls, call, file), 'utf8') : null;
  const recorded = readdirSync(calls)
    .sort((a, b) => Number(a) - Number(b))
    .map((call) => ({
      args: (read(call, 'args') ?? '').split(' '),
      ca: read(call, 'ca'),
      caText: read(call, 'ca-text'),
    }));
  return { status: result.status, stderr: result.stderr, calls: recorded };
}

describe('Dockerfile', () => {
  it.each(['build', 'runtime-deps'])(
    'the %s stage hands BUILD_CA_CERTS to npm ci through NODE_EXTRA_CA_CERTS, every line intact',
    (name) => {
      expect(stage(name).instructions).toContain('ARG BUILD_CA_CERTS=');
      const { status, stderr, calls } = runInstall(name, { BUILD_CA_CERTS: PEM });
      expect(stderr).toBe('');
      expect(status).toBe(0);
      const ci = calls.find((c) => c.args[0] === 'ci');
      expect(ci?.ca).toMatch(/build-ca\.pem$/);
      expect(ci?.caText).toBe(`${PEM}\n`);
    },
  );

  it.each(['build', 'runtime-deps'])('the %s stage without BUILD_CA_CERTS sets no extra CA file', (name) => {
    const { status, calls } = runInstall(name, {});
    expect(status).toBe(0);
    const ci = calls.find((c) => c.args[0] === 'ci');
    expect(ci).toBeDefined();
    expect(ci?.ca).toBeNull();
  });

  it('the runtime image takes neither the certificates nor the argument', () => {
    const runtime = stage('runtime');
    expect(runtime.instructions.some((i) => /BUILD_CA_CERTS|build-ca\.pem|NODE_EXTRA_CA_CERTS/.test(i))).toBe(false);
    // What it copies from the install stages: the application directory only, never their /tmp.
    const copies = runtime.instructions.filter((i) => /^COPY\s+--from=/.test(i));
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) expect(copy).not.toMatch(/\s\/tmp\b/);
  });

  it('the build stage installs before it declares SERVICE, so the four images share the install layer', () => {
    const build = stage('build').instructions;
    const install = build.findIndex((i) => /^RUN\s/.test(i) && /\bnpm ci\b/.test(i));
    const service = build.findIndex((i) => /^ARG SERVICE\b/.test(i));
    expect(install).toBeGreaterThanOrEqual(0);
    expect(service).toBeGreaterThan(install);
    // and the compile step, which needs it, comes after the declaration.
    const compile = build.findIndex((i) => /npm run build/.test(i));
    expect(compile).toBeGreaterThan(service);
  });
});

describe('scripts/offline-base-image.sh', () => {
  /** Runs the script with a stand-in node printing `version` and an npm directory (present or not). */
  function runScript(version: string, withNpm: boolean) {
    const dir = tempDir();
    const node = join(dir, 'node');
    writeFileSync(node, `#!/bin/sh\necho ${version}\n`);
    chmodSync(node, 0o755);
    const npmDir = join(dir, 'npm');
    if (withNpm) {
      mkdirSync(join(npmDir, 'bin'), { recursive: true });
      writeFileSync(join(npmDir, 'bin', 'npm-cli.js'), '');
    }
    return spawnSync('sh', [repoPath('scripts/offline-base-image.sh')], {
      encoding: 'utf8',
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', NODE_BIN: node, NPM_DIR: npmDir },
    });
  }

  it('refuses a Node that is not 20 before it builds anything', () => {
    const result = runScript('18.19.1', true);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('is Node 18.19.1; node:20-bookworm-slim needs Node 20');
    expect(result.stdout).not.toMatch(/debootstrap|I: Retrieving/);
  });

  it('names the missing npm directory', () => {
    const result = runScript('20.20.2', false);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no npm in .*\(set NPM_DIR\)/);
  });
});
