// Every import in src/ points one way: down the layers, and never in a circle between two modules
// (a cycle means two files share one concept and neither can be read alone).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = resolve(import.meta.dirname, '..', 'src');

const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['experiments'],
  ['rl'],
  ['train'],
  ['tasks'],
  ['generate'],
  ['nn'],
  ['model'],
  ['ops'],
  ['autograd', 'optim'],
  ['gpu'],
  ['tokenizer'],
  ['rewards'],
  ['data'],
  ['report'],
  ['io'],
];

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

  // The folders of src/ are layers, top to bottom (the README's layout table lists them in this order);
  // an import that points up, even for a type, makes two layers one.
  it('imports only from its own folder or folders below it', () => {
    const folder = (file: string): string => relative(SRC, file).split('/')[0]!;
    const rank = (name: string): number => {
      const index = LAYERS.findIndex((layer) => layer.includes(name));
      if (index < 0) throw new Error(`src/${name} is in no layer of test/import-graph.test.ts: add it where it belongs`);
      return index;
    };
    const upward = [...imports].flatMap(([file, { all }]) =>
      all.filter((target) => rank(folder(target)) < rank(folder(file))).map((target) => `${relative(SRC, file)} → ${relative(SRC, target)}`),
    );
    expect(upward).toEqual([]);
  });

  it('finds a cycle when there is one', () => {
    const graph = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]]);
    expect(importCycles(graph)).toEqual([['a', 'b', 'c']]);
  });
});
