// The workspace packages form a graph without cycles (issue 11): an edge is a declared @workemon/* dependency
// (dependencies or devDependencies) or an import found in any file of the package (src, test, scripts), by
// package name or by a relative path into another package's folder. Test code counts: a library whose tests need
// a service, and a service it depends on, make a cycle the build order and the reader both pay for.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

type Package = { name: string; dir: string; declared: string[] };

function workspacePackages(): Package[] {
  const patterns = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] })
    .workspaces;
  const dirs = patterns.flatMap((pattern) =>
    pattern.endsWith('/*')
      ? readdirSync(join(root, pattern.slice(0, -2)))
          .map((d) => join(pattern.slice(0, -2), d))
          .filter((d) => statSync(join(root, d)).isDirectory())
      : [pattern],
  );
  return dirs.map((dir) => {
    const manifest = JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) as {
      name: string;
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    const declared = Object.keys({ ...manifest.dependencies, ...manifest.devDependencies });
    return { name: manifest.name, dir, declared: declared.filter((d) => d.startsWith('@workemon/')) };
  });
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return ['node_modules', 'dist', 'generated'].includes(entry.name) ? [] : sourceFiles(path);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

/** The code of a file without its block comments and whole-line `//` comments (a doc comment may show an import). */
const withoutComments = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');

const IMPORT = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g;

/** Package name → the workspace packages it depends on (declared or imported), without itself. */
function packageGraph(): Map<string, Set<string>> {
  const packages = workspacePackages();
  const byDir = packages.map((p) => ({ ...p, abs: join(root, p.dir) + sep }));
  const graph = new Map<string, Set<string>>();
  for (const pkg of byDir) {
    const edges = new Set(pkg.declared);
    for (const file of sourceFiles(pkg.abs)) {
      for (const [, spec] of withoutComments(readFileSync(file, 'utf8')).matchAll(IMPORT)) {
        if (spec!.startsWith('@workemon/')) edges.add(spec!.split('/').slice(0, 2).join('/'));
        else if (spec!.startsWith('.')) {
          const target = resolve(dirname(file), spec!);
          const owner = byDir.find((p) => target.startsWith(p.abs));
          if (owner) edges.add(owner.name);
        }
      }
    }
    edges.delete(pkg.name);
    graph.set(pkg.name, edges);
  }
  return graph;
}

/** Every elementary cycle's first sighting, as `a → b → a`. */
function cyclesOf(graph: Map<string, Set<string>>): string[] {
  const found = new Set<string>();
  const visit = (node: string, path: string[]) => {
    for (const next of graph.get(node) ?? []) {
      const at = path.indexOf(next);
      if (at >= 0) {
        const cycle = path.slice(at);
        const start = cycle.indexOf([...cycle].sort()[0]!);
        const canonical = [...cycle.slice(start), ...cycle.slice(0, start)];
        found.add([...canonical, canonical[0]].join(' → '));
      } else if (graph.has(next)) visit(next, [...path, next]);
    }
  };
  for (const node of graph.keys()) visit(node, [node]);
  return [...found].sort();
}

describe('workspace package graph', () => {
  const graph = packageGraph();

  it('reads every workspace package, with the edges their imports make', () => {
    expect([...graph.keys()].sort()).toEqual(
      expect.arrayContaining(['@workemon/contracts', '@workemon/secretary', '@workemon/testkit']),
    );
    expect([...graph.get('@workemon/secretary')!]).toContain('@workemon/service-kit');
  });

  it('has no cycles', () => {
    expect(cyclesOf(graph)).toEqual([]);
  });

  it('finds a cycle when there is one (the check can fail)', () => {
    const withCycle = new Map(graph);
    withCycle.set('@workemon/contracts', new Set(['@workemon/secretary']));
    expect(cyclesOf(withCycle).some((c) => c.includes('@workemon/contracts → @workemon/s'))).toBe(true);
  });

  it('keeps libs/testkit a leaf over the contracts: it wires no service and no service kit', () => {
    expect([...graph.get('@workemon/testkit')!]).toEqual(['@workemon/contracts']);
  });

  it('lets no library depend on a service', () => {
    const services = new Set(
      workspacePackages()
        .filter((p) => p.dir.startsWith('services'))
        .map((p) => p.name),
    );
    const wrong = workspacePackages()
      .filter((p) => p.dir.startsWith('libs'))
      .flatMap((p) => [...graph.get(p.name)!].filter((d) => services.has(d)).map((d) => `${p.name} → ${d}`));
    expect(wrong).toEqual([]);
  });
});
