import { existsSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { GgufFile } from './gguf.js';
import { configFromGguf } from './gguf-config.js';
import { type HfModelConfig, readHfConfigAudit } from './hf-config.js';
import { repositoryRoot } from './repository-root.js';
import { SHARD_INDEX_FILE } from './sharded-safetensors.js';
import type { WeightSource } from './weight-source.js';

/** Where a model's tokenizer lives: a GGUF file's metadata or a directory with tokenizer.json. */
export type TokenizerSource =
  | { readonly format: 'gguf'; readonly path: string }
  | { readonly format: 'hf-directory'; readonly path: string };

export interface ResolvedModel {
  /** The registry name, or the path as given. */
  readonly name: string;
  readonly config: HfModelConfig;
  /** config.json fields the loader did not recognise (not used); see auditHfConfig. */
  readonly warnings: readonly string[];
  readonly weights: WeightSource;
  readonly tokenizer: TokenizerSource;
}

interface RegistryEntry {
  description: string;
  gguf?: string;
  fetch?: string;
  directory?: string;
  /** Another entry whose tokenizer this model shares when its directory has none. */
  tokenizer?: string;
}

const REGISTRY_FILE = join('models', 'registry.json');

function readRegistry(root: string): Record<string, RegistryEntry> {
  const path = join(root, REGISTRY_FILE);
  const json = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(json).filter(([name]) => !name.startsWith('$'))) as Record<string, RegistryEntry>;
}

function resolveGguf(name: string, path: string, missingHint: string): ResolvedModel {
  if (!existsSync(path)) throw new Error(`model "${name}": ${path} does not exist${missingHint}`);
  const file = GgufFile.open(path);
  try {
    return { name, config: configFromGguf(file), warnings: [], weights: { format: 'gguf', path }, tokenizer: { format: 'gguf', path } };
  } finally {
    file.close();
  }
}

/** Weights of a checkpoint directory: a shard index if there is one, else model.safetensors. */
function directoryWeights(directory: string): WeightSource | null {
  const index = join(directory, SHARD_INDEX_FILE);
  if (existsSync(index)) return { format: 'sharded-safetensors', indexPath: index };
  const single = join(directory, 'model.safetensors');
  return existsSync(single) ? { format: 'safetensors', path: single } : null;
}

function resolveDirectory(name: string, directory: string, fallbackTokenizer: TokenizerSource | null, weightsOptional: boolean): ResolvedModel {
  const configPath = join(directory, 'config.json');
  if (!existsSync(configPath)) throw new Error(`model "${name}": ${directory} has no config.json`);
  const { config, warnings } = readHfConfigAudit(configPath);
  const weights = directoryWeights(directory);
  if (!weights && !weightsOptional) {
    throw new Error(`model "${name}": ${directory} has neither ${SHARD_INDEX_FILE} nor model.safetensors`);
  }
  const tokenizer: TokenizerSource | null = existsSync(join(directory, 'tokenizer.json'))
    ? { format: 'hf-directory', path: directory }
    : fallbackTokenizer;
  if (!tokenizer) throw new Error(`model "${name}": ${directory} has no tokenizer.json`);
  // A registered model whose weights are still to be trained resolves to where they will be written.
  return { name, config, warnings, weights: weights ?? { format: 'safetensors', path: join(directory, 'model.safetensors') }, tokenizer };
}

/** Prefix of a model whose weights are freshly initialised: `random:<model>` takes <model>'s config and tokenizer. */
export const RANDOM_MODEL_PREFIX = 'random:';

/**
 * Resolves a model name from models/registry.json ("small", "tiny") or a path (a Hugging Face
 * checkpoint directory, or a .gguf file) to its config, weights and tokenizer. Only headers and
 * config files are read; the weights are opened later with openWeights().
 * `random:<model>` is <model>'s architecture and tokenizer with randomly initialised weights (seed
 * 0); its directory then needs only config.json and the tokenizer files.
 */
export function resolveModel(nameOrPath: string, root = repositoryRoot()): ResolvedModel {
  if (nameOrPath.startsWith(RANDOM_MODEL_PREFIX)) {
    const shape = resolveNamedOrPath(nameOrPath.slice(RANDOM_MODEL_PREFIX.length), root, true);
    return { ...shape, name: nameOrPath, weights: { format: 'random', config: shape.config, seed: 0 } };
  }
  return resolveNamedOrPath(nameOrPath, root, false);
}

function resolveNamedOrPath(nameOrPath: string, root: string, weightsOptional: boolean): ResolvedModel {
  const registry = readRegistry(root);
  const entry = Object.hasOwn(registry, nameOrPath) ? registry[nameOrPath] : undefined;
  if (entry) {
    if (entry.gguf) {
      return resolveGguf(nameOrPath, join(root, entry.gguf), entry.fetch ? `; fetch it with: ${entry.fetch}` : '');
    }
    if (entry.directory) {
      const shared = entry.tokenizer ? resolveModel(entry.tokenizer, root).tokenizer : null;
      return resolveDirectory(nameOrPath, join(root, entry.directory), shared, true);
    }
    throw new Error(`${join(root, REGISTRY_FILE)}: entry "${nameOrPath}" has neither "gguf" nor "directory"`);
  }

  const path = isAbsolute(nameOrPath) ? nameOrPath : resolve(nameOrPath);
  if (!existsSync(path)) {
    throw new Error(`unknown model "${nameOrPath}": not in ${REGISTRY_FILE} (${Object.keys(registry).join(', ')}) and no such path`);
  }
  if (statSync(path).isDirectory()) return resolveDirectory(nameOrPath, path, null, weightsOptional);
  if (path.endsWith('.gguf')) return resolveGguf(nameOrPath, path, '');
  throw new Error(`model "${nameOrPath}": ${path} is neither a checkpoint directory nor a .gguf file`);
}
