import type { Gpu } from '../gpu/gpu.js';
import { resolveModel, type ResolvedModel } from '../io/model-registry.js';
import { openWeights } from '../io/weight-source.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';
import { LlamaModel, type LoadOptions } from './llama.js';

export interface LoadedModel {
  model: LlamaModel;
  tokenizer: Tokenizer;
  resolved: ResolvedModel;
}

/** A registered model name (small, tiny) or a path, loaded onto the GPU with its tokenizer. */
export function loadModel(gpu: Gpu, nameOrPath: string, options: LoadOptions = {}): LoadedModel {
  const resolved = resolveModel(nameOrPath);
  for (const warning of resolved.warnings) console.warn(`warning: ${warning}`);
  const reader = openWeights(resolved.weights);
  try {
    return { model: new LlamaModel(gpu, resolved.config, reader, options), tokenizer: Tokenizer.fromSource(resolved.tokenizer), resolved };
  } finally {
    reader.close();
  }
}
