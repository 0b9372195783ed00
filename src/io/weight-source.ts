import { GgufHfReader } from './gguf-hf-reader.js';
import type { HfModelConfig } from './hf-config.js';
import { RandomLlamaWeights } from './random-weights.js';
import { SafetensorsFile } from './safetensors.js';
import { ShardedSafetensors } from './sharded-safetensors.js';
import type { TensorReader } from './tensor-reader.js';

/** Where a model's weights live; every kind opens as a TensorReader with Hugging Face names. */
export type WeightSource =
  | { readonly format: 'gguf'; readonly path: string }
  | { readonly format: 'safetensors'; readonly path: string }
  | { readonly format: 'sharded-safetensors'; readonly indexPath: string }
  /** Freshly initialised weights for the config (see initialLlamaWeights), generated when opened. */
  | { readonly format: 'random'; readonly config: HfModelConfig; readonly seed: number };

export function openWeights(source: WeightSource): TensorReader {
  switch (source.format) {
    case 'gguf':
      return GgufHfReader.open(source.path);
    case 'safetensors':
      return SafetensorsFile.open(source.path);
    case 'sharded-safetensors':
      return ShardedSafetensors.open(source.indexPath);
    case 'random':
      return new RandomLlamaWeights(source.config, source.seed);
  }
}
