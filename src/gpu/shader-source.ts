import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repositoryRoot } from '../io/repository-root.js';

/** Values that replace `const NAME ... = ...;` / `alias NAME = ...;` declarations in a shader. */
export type Specialisation = Readonly<Record<string, string | number | boolean>>;

const shaderDir = join(repositoryRoot(), 'shaders');
const rawSources = new Map<string, string>();

export function shaderPath(name: string): string {
  return join(shaderDir, `${name}.wgsl`);
}

/** Every shader in shaders/, by name (file name without .wgsl). */
export function shaderNames(): string[] {
  return readdirSync(shaderDir)
    .filter((file) => file.endsWith('.wgsl'))
    .map((file) => file.slice(0, -'.wgsl'.length))
    .sort();
}

export function loadShader(name: string): string {
  let source = rawSources.get(name);
  if (source === undefined) {
    const path = shaderPath(name);
    if (!existsSync(path)) throw new Error(`unknown shader '${name}': ${path} does not exist`);
    source = readFileSync(path, 'utf8');
    rawSources.set(name, source);
  }
  return source;
}

function literal(value: string | number | boolean, declaredType: string | undefined): string {
  if (typeof value !== 'number') return String(value);
  switch (declaredType) {
    case 'u32':
      if (!Number.isInteger(value) || value < 0) throw new Error(`u32 constant needs a non-negative integer, got ${value}`);
      return `${value}u`;
    case 'i32':
      if (!Number.isInteger(value)) throw new Error(`i32 constant needs an integer, got ${value}`);
      return `${value}i`;
    case 'f32':
    case 'f16':
      return Number.isInteger(value) ? `${value}.0` : String(value);
    default:
      return String(value);
  }
}

/**
 * Shaders are plain WGSL files with default values for their tunables, so they stay valid for
 * editors and linters; specialising rewrites those declarations in place (keeping line numbers,
 * which makes compiler messages point at the file's own lines). A one-line `if (FLAG) { … }` (no
 * else) that calls a subgroup builtin is blanked when its boolean FLAG is specialised to false: dead
 * code either way, and a shader can then use subgroups only on adapters its flag says have them.
 * Other dead lines stay: one may hold a binding's only use, and the pipeline's automatic layout
 * drops bindings the code never uses.
 */
export function specialise(name: string, source: string, values: Specialisation = {}): string {
  let out = source;
  for (const [key, value] of Object.entries(values)) {
    const decl = new RegExp(`^([ \\t]*)(const|alias)[ \\t]+${key}\\b([ \\t]*:[ \\t]*(\\w+))?[ \\t]*=[^;]*;`, 'm');
    const match = decl.exec(out);
    if (!match) throw new Error(`shader '${name}' has no 'const ${key}' or 'alias ${key}' to specialise`);
    const [, indent, kind, typed = '', type] = match;
    out = out.replace(decl, `${indent}${kind} ${key}${typed} = ${literal(value, type)};`);
    if (value === false) out = out.replace(new RegExp(`^[ \\t]*if[ \\t]*\\([ \\t]*${key}[ \\t]*\\)[ \\t]*\\{[^{}\\n]*\\bsubgroup[A-Z][^{}\\n]*\\}[ \\t]*$`, 'gm'), '');
  }
  // Extensions go on the first line so compiler line numbers still match the file.
  // Only code counts: a comment that mentions f16 must not make an f32 kernel need shader-f16.
  const code = out.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/[^\n]*/g, '');
  const enables: string[] = [];
  if (/\bf16\b/.test(code) && !/enable\s+f16/.test(code)) enables.push('enable f16;');
  if (/\bsubgroup[A-Z]\w*\s*\(|subgroup_size|subgroup_invocation_id/.test(code) && !/enable\s+subgroups/.test(code)) {
    enables.push('enable subgroups;');
  }
  return enables.length ? enables.join(' ') + ' ' + out : out;
}
