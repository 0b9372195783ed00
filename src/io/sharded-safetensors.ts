import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SafetensorsFile } from './safetensors.js';
import type { TensorInfo, TensorReader } from './tensor-reader.js';

export const SHARD_INDEX_FILE = 'model.safetensors.index.json';

interface ShardIndex {
  metadata?: Record<string, unknown>;
  weight_map: Record<string, string>;
}

function parseIndex(path: string): ShardIndex {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path}: cannot read shard index (${(error as Error).message})`);
  }
  const weightMap = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new Error(`${path}: shard index has no "weight_map" object`);
  }
  for (const [tensor, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) {
      throw new Error(`${path}: weight_map["${tensor}"] must name a file in the same directory, got ${JSON.stringify(file)}`);
    }
  }
  return json as ShardIndex;
}

/**
 * A checkpoint split over several safetensors files, described by `model.safetensors.index.json`.
 * Every shard's header is read up front, so a weight_map that disagrees with the shards fails at
 * open, not in the middle of loading a model.
 */
export class ShardedSafetensors implements TensorReader {
  private readonly shards = new Map<string, SafetensorsFile>();
  private readonly shardOf = new Map<string, SafetensorsFile>();

  private constructor(readonly name: string) {
    const index = parseIndex(name);
    const directory = dirname(name);
    try {
      for (const [tensor, file] of Object.entries(index.weight_map)) {
        let shard = this.shards.get(file);
        if (!shard) {
          const shardPath = join(directory, file);
          if (!existsSync(shardPath)) throw new Error(`${name}: shard "${file}" listed in weight_map does not exist`);
          shard = SafetensorsFile.open(shardPath);
          this.shards.set(file, shard);
        }
        if (!shard.has(tensor)) throw new Error(`${name}: weight_map puts "${tensor}" in ${file}, which has no such tensor`);
        this.shardOf.set(tensor, shard);
      }
      for (const [file, shard] of this.shards) {
        const unlisted = shard.tensorNames().filter((tensor) => this.shardOf.get(tensor) !== shard);
        if (unlisted.length > 0) {
          throw new Error(`${name}: shard ${file} holds tensors missing from weight_map: ${unlisted.slice(0, 5).join(', ')}`);
        }
      }
    } catch (error) {
      this.close();
      throw error;
    }
  }

  /** Opens from the index file path. */
  static open(indexPath: string): ShardedSafetensors {
    return new ShardedSafetensors(indexPath);
  }

  tensorNames(): string[] {
    return [...this.shardOf.keys()];
  }

  has(name: string): boolean {
    return this.shardOf.has(name);
  }

  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }

  readFloat32(name: string): Float32Array {
    return this.shard(name).readFloat32(name);
  }

  close(): void {
    for (const shard of this.shards.values()) shard.close();
  }

  private shard(name: string): SafetensorsFile {
    const shard = this.shardOf.get(name);
    if (!shard) throw new Error(`${this.name}: no tensor named "${name}"`);
    return shard;
  }
}
