// Every import in src/ points one way: a cycle between modules (even through a type-only import
// that becomes a value import later) means two files share one concept and neither can be read alone.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

interface Imports {
  /** Modules whose values the file uses at run time. */
  values: string[];
  /** Every module it names, `import type` included. */
  all: string[];
}

/** The src/ modules a file imports, as absolute .ts paths. */
function localImports(file: string): Imports {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
  const imports: Imports = { values: [], all: [] };
  for (const statement of source.statements) {
    if (!(ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) || !statement.moduleSpecifier) continue;
    const spec = (statement.moduleSpecifier as ts.StringLiteral).text;
    if (!spec.startsWith('.')) continue;
    const path = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
    imports.all.push(path);
    const typeOnly = ts.isImportDeclaration(statement) ? statement.importClause?.isTypeOnly : statement.isTypeOnly;
    if (!typeOnly) imports.values.push(path);
  }
  return imports;
}

/** Tarjan's strongly connected components with more than one member (or a self-import). */
function importCycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next++;
    stack.push(node);
    onStack.add(node);
    for (const dep of graph.get(node) ?? []) {
      if (!graph.has(dep)) continue;
      if (!index.has(dep)) {
        visit(dep);
        low.set(node, Math.min(low.get(node)!, low.get(dep)!));
      } else if (onStack.has(dep)) {
        low.set(node, Math.min(low.get(node)!, index.get(dep)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) cycles.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return cycles;
}

describe('src/ import graph', () => {
  const imports = new Map(sourceFiles(SRC).map((file) => [file, localImports(file)]));

  it('has no cycle between modules through run-time imports', () => {
    const graph = new Map([...imports].map(([file, { values }]) => [file, values]));
    const cycles = importCycles(graph).map((cycle) => cycle.map((file) => relative(SRC, file)).join(' ↔ '));
    expect(cycles).toEqual([]);
  });

  // Folders are the layers (cli → rl/train → nn/generate → model → ops → autograd/optim → gpu → io):
  // an import that points up, even for a type, makes two layers one.
  it('has no cycle between folders, type imports included', () => {
    const folder = (file: string): string => relative(SRC, file).split('/')[0]!;
    const graph = new Map<string, string[]>();
    for (const [file, { all }] of imports) {
      const from = folder(file);
      const targets = graph.get(from) ?? [];
      for (const to of all.map(folder)) if (to !== from && !targets.includes(to)) targets.push(to);
      graph.set(from, targets);
    }
    expect(importCycles(graph)).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    const graph = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
    expect(importCycles(graph)).toEqual([['a', 'b', 'c']]);
  });
});
