import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** The JSON schema of one setting: the subset run settings need (types, ranges, choices, lists). */
export interface SettingSchema {
  readonly type: 'string' | 'number' | 'integer' | 'boolean' | 'array';
  readonly enum?: readonly (string | number)[];
  readonly minimum?: number;
  readonly exclusiveMinimum?: number;
  readonly maximum?: number;
  readonly exclusiveMaximum?: number;
  readonly minLength?: number;
  readonly items?: SettingSchema;
  readonly minItems?: number;
  readonly maxItems?: number;
}

/** Every setting a command or a config takes, by its camelCase name. */
export type SettingsSchema = Readonly<Record<string, SettingSchema>>;

export interface CheckOptions {
  /** Convert strings (command-line values) to the declared types first, in place. */
  readonly coerce: boolean;
  /** How a message names a setting: `--steps`, or `run.json: "steps"`. */
  readonly name: (key: string) => string;
}

const validators = { strict: new Ajv({ allErrors: true }), coercing: new Ajv({ allErrors: true, coerceTypes: true }) };
const compiled = new Map<string, ValidateFunction>();

/** Checks settings against their schemas; throws one error listing every problem, each naming its setting. */
export function checkSettings(schema: SettingsSchema, values: Record<string, unknown>, options: CheckOptions): void {
  const unknown = Object.keys(values).filter((key) => !(key in schema));
  if (unknown.length) throw new Error(unknown.map((key) => `${options.name(key)}: unknown setting`).join('\n'));
  const kind = options.coerce ? 'coercing' : 'strict';
  const cacheKey = `${kind}:${JSON.stringify(schema)}`;
  let validate = compiled.get(cacheKey);
  if (!validate) {
    validate = validators[kind].compile({ type: 'object', properties: schema });
    compiled.set(cacheKey, validate);
  }
  if (validate(values)) return;
  const problems = (validate.errors ?? []).map((error) => describe(error, values, options.name));
  throw new Error([...new Set(problems)].join('\n'));
}

function describe(error: ErrorObject, values: Record<string, unknown>, name: (key: string) => string): string {
  const [key, ...path] = error.instancePath.split('/').slice(1);
  let value: unknown = values[key];
  for (const step of path) value = (value as Record<string, unknown>)[step];
  const where = path.length ? `${name(key)} (item ${Number(path[0]) + 1})` : name(key);
  const choices = error.keyword === 'enum' ? `: ${(error.params as { allowedValues: unknown[] }).allowedValues.join(', ')}` : '';
  return `${where} ${error.message}${choices}, got ${JSON.stringify(value)}`;
}

/** A setting's flag name: `maxNewTokens` → `max-new-tokens`. */
export function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (m) => `-${m.toLowerCase()}`);
}
