import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { checkSettings, kebab, type SettingsSchema } from '../io/settings-schema.js';

/** A script's opening comment (`//` lines or a `/** … *\/` block), its usage for --help; `script` is its import.meta.url. */
export function openingComment(script: string): string {
  const text = readFileSync(new URL(script), 'utf8');
  const block = /^\/\*\*([\s\S]*?)\*\//.exec(text);
  if (block) return block[1].split('\n').map((line) => line.replace(/^\s*\* ?/, '')).join('\n').trim();
  const lines = text.split('\n');
  const end = lines.findIndex((line) => !line.startsWith('//'));
  return lines.slice(0, end < 0 ? lines.length : end).map((line) => line.slice(3)).join('\n');
}

/** The exit status of a command refused for its settings (sysexits' EX_USAGE; 2 is a diverged run). */
export const EXIT_USAGE = 64;

/** A command's settings: one schema checks its flags and its config files alike. */
export interface CommandSpec<T> {
  /** The first lines of --help. */
  readonly usage: string;
  readonly schema: SettingsSchema;
  readonly defaults: Readonly<Partial<T>>;
  readonly help: Readonly<Record<string, string>>;
  /** Flags given once per value (`--prompt a --prompt b`); other list settings take one comma-separated value. */
  readonly repeatable?: readonly string[];
  /** Settings the command cannot run without. */
  readonly required?: readonly string[];
  /** Checks across settings (the schema checks each alone); throws what is wrong. */
  readonly check?: (values: T) => void;
}

export interface ParsedCommand<T> {
  readonly values: T;
  /** The settings the user gave (a flag or a config file), as opposed to defaults. */
  readonly given: ReadonlySet<string>;
}

/**
 * Reads a command's flags and `--config FILE` (a JSON object with the same names, camelCase or
 * kebab-case; flags override it), checks both against the schema — flag values are strings,
 * converted to the declared type; a config file's values must already have it — and merges them
 * over the defaults. A problem exits with status EXIT_USAGE and a message naming the flag, or the file and key.
 */
export function parseCommand<T>(spec: CommandSpec<T>, argv: readonly string[] = process.argv.slice(2)): ParsedCommand<T> {
  try {
    return parse(spec, argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n(--help lists every setting)`);
    process.exit(EXIT_USAGE);
  }
}

function parse<T>(spec: CommandSpec<T>, argv: readonly string[]): ParsedCommand<T> {
  const keys = Object.keys(spec.schema);
  const repeatable = new Set(spec.repeatable ?? []);
  const { values: flags } = parseArgs({
    args: [...argv],
    options: {
      ...Object.fromEntries(keys.map((key) => [kebab(key), { type: spec.schema[key].type === 'boolean' ? ('boolean' as const) : ('string' as const), multiple: repeatable.has(key) }])),
      config: { type: 'string' },
      help: { type: 'boolean' },
    },
    strict: true,
  });
  if (flags.help) {
    console.log(`${spec.usage}\n\nA config file (--config FILE) is a JSON object with the same names (camelCase or kebab-case); flags override it.\n`);
    for (const key of keys) console.log(`  --${kebab(key).padEnd(28)} ${spec.help[key]} (default: ${JSON.stringify(spec.defaults[key as keyof T]) ?? 'off'})`);
    process.exit(0);
  }
  const fromFile = typeof flags.config === 'string' ? readConfigFile(flags.config, spec.schema) : {};
  const fromFlags: Record<string, unknown> = {};
  for (const key of keys) {
    const raw = (flags as Record<string, unknown>)[kebab(key)];
    if (raw === undefined) continue;
    const isList = spec.schema[key].type === 'array' && !repeatable.has(key);
    fromFlags[key] = isList ? String(raw).split(',').map((s) => s.trim()).filter(Boolean) : raw;
  }
  checkSettings(spec.schema, fromFlags, { coerce: true, name: (key) => `--${kebab(key)}` });
  const values = { ...spec.defaults, ...fromFile, ...fromFlags } as Record<string, unknown>;
  const missing = (spec.required ?? []).filter((key) => values[key] === undefined);
  if (missing.length) throw new Error(`missing ${missing.map((key) => `--${kebab(key)}`).join(', ')}`);
  spec.check?.(values as T);
  return { values: values as T, given: new Set([...Object.keys(fromFile), ...Object.keys(fromFlags)]) };
}

function readConfigFile(path: string, schema: SettingsSchema): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: cannot read the config file (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`${path}: a config file must be a JSON object`);
  const byName = new Map(Object.keys(schema).flatMap((key) => [[key, key], [kebab(key), key]] as const));
  const values: Record<string, unknown> = {};
  const written = new Map<string, string>();
  for (const [name, value] of Object.entries(parsed)) {
    const key = byName.get(name);
    if (!key) throw new Error(`${path}: unknown setting "${name}"`);
    values[key] = value;
    written.set(key, name);
  }
  checkSettings(schema, values, { coerce: false, name: (key) => `${path}: "${written.get(key) ?? key}"` });
  return values;
}

/**
 * Runs the checks a command makes before its work starts. A refusal (an Error naming the flag,
 * file or line) prints its message alone and exits 1; a bug (TypeError, RangeError, …) keeps its stack.
 */
export async function refuseOnError<T>(checks: () => T | Promise<T>): Promise<T> {
  try {
    return await checks();
  } catch (error) {
    if (!(error instanceof Error) || error instanceof TypeError || error instanceof RangeError || error instanceof ReferenceError) throw error;
    console.error(error.message);
    process.exit(1);
  }
}
