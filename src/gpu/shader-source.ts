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
  out = unrollLoops(name, out);
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

/** `for (var i = 0u; i < BOUND; i++) { // unroll`: the loops unrollLoops expands. */
const UNROLL = /^([ \t]*)for[ \t]*\([ \t]*var[ \t]+(\w+)[ \t]*=[ \t]*(\d+)(u|i)?[ \t]*;[ \t]*\2[ \t]*<[ \t]*(\w+)[ \t]*;[ \t]*\2[ \t]*\+\+[ \t]*\)[ \t]*\{[ \t]*\/\/[ \t]*unroll[ \t]*$/;

/**
 * Expands every loop whose header is `for (var i = START; i < BOUND; i++) { // unroll` into one
 * block per value of i, `{ const i = 0u; body } { const i = 1u; body } …`, where BOUND is a
 * literal or a const of the shader whose value the host can work out (after specialisation). An
 * index into a register array that is a constant lets the array live in registers; lavapipe's
 * NIR leaves loops with long bodies rolled (even at 16 iterations), and an array indexed in a
 * rolled loop lives in memory, each access a per-lane loop (attention's loops over the head dim
 * ran 1.6× slower that way). The copies go on the header's line and the body's lines are left
 * blank, so the compiler's line numbers still match the file. Loops nest: inner ones are
 * expanded first. A body must not `break` or `continue` its loop.
 */
export function unrollLoops(name: string, source: string): string {
  const lines = source.split('\n');
  const marked = lines.map((line) => UNROLL.test(line));
  for (let guard = 0; marked.some(Boolean); guard++) {
    if (guard > lines.length) throw new Error(`shader '${name}': loops marked // unroll do not close`);
    // The last marked loop has no marked loop inside it (they would come after its header).
    const at = marked.lastIndexOf(true);
    const [, indent, variable, start, suffix = '', boundText] = UNROLL.exec(lines[at]) ?? [];
    const end = closingLine(name, lines, at);
    const body = lines.slice(at + 1, end).map((line) => line.replace(/\/\/.*$/, '').trim()).filter(Boolean).join(' ');
    if (/\b(break|continue)\b/.test(body)) {
      throw new Error(`shader '${name}' line ${at + 1}: a loop marked // unroll must not break or continue`);
    }
    const bound = constValue(name, source, boundText, at + 1);
    const copies: string[] = [];
    for (let i = Number(start); i < bound; i++) copies.push(`{ const ${variable} = ${i}${suffix}; ${body} }`);
    lines.splice(at, end - at + 1, indent + copies.join(' '), ...new Array<string>(end - at).fill(''));
    marked.splice(at, end - at + 1, ...new Array<boolean>(end - at + 1).fill(false));
  }
  return lines.join('\n');
}

/** The line that closes the block the header on line `at` opens (braces counted outside comments). */
function closingLine(name: string, lines: readonly string[], at: number): number {
  let depth = 0;
  for (let i = at; i < lines.length; i++) {
    const code = lines[i].replace(/\/\/.*$/, '');
    for (const ch of code) {
      if (ch === '{') depth++;
      else if (ch === '}' && --depth === 0) {
        if (code.trim() !== '}') throw new Error(`shader '${name}' line ${i + 1}: close a loop marked // unroll with a line of its own`);
        return i;
      }
    }
  }
  throw new Error(`shader '${name}' line ${at + 1}: the loop marked // unroll is not closed`);
}

/** The value of an integer literal, or of `const NAME` built from literals, other such consts and + − * / ( ). */
function constValue(name: string, source: string, text: string, line: number, seen: ReadonlySet<string> = new Set()): number {
  const literalValue = /^(\d+)[ui]?$/.exec(text.trim());
  if (literalValue) return Number(literalValue[1]);
  const decl = new RegExp(`^[ \\t]*const[ \\t]+${text}\\b(?:[ \\t]*:[ \\t]*\\w+)?[ \\t]*=([^;]*);`, 'm').exec(source);
  if (!/^\w+$/.test(text) || !decl || seen.has(text)) {
    throw new Error(`shader '${name}' line ${line}: the bound of a loop marked // unroll must be an integer or a const of integers, got '${text}'`);
  }
  const tokens = decl[1].match(/\d+[ui]?|\w+|[-+*/()]|\S/g) ?? [];
  let position = 0;
  const inner = new Set([...seen, text]);
  const primary = (): number => {
    const token = tokens[position++];
    if (token === '(') {
      const value = sum();
      if (tokens[position++] !== ')') throw new Error(`shader '${name}': const ${text} = ${decl[1].trim()} is not an integer expression`);
      return value;
    }
    if (token !== undefined && /^\w+$/.test(token)) return constValue(name, source, token, line, inner);
    throw new Error(`shader '${name}': const ${text} = ${decl[1].trim()} is not an integer expression`);
  };
  const product = (): number => {
    let value = primary();
    while (tokens[position] === '*' || tokens[position] === '/') {
      value = tokens[position++] === '*' ? value * primary() : Math.trunc(value / primary());
    }
    return value;
  };
  const sum = (): number => {
    let value = product();
    while (tokens[position] === '+' || tokens[position] === '-') value = tokens[position++] === '+' ? value + product() : value - product();
    return value;
  };
  const value = sum();
  if (position !== tokens.length) throw new Error(`shader '${name}': const ${text} = ${decl[1].trim()} is not an integer expression`);
  return value;
}
