import type { Tensor } from '../gpu/tensor.js';
import type { TensorsToWrite } from '../io/safetensors-writer.js';
import { writeSafetensors } from '../io/safetensors-writer.js';
import type { LlamaModel } from './llama.js';

/**
 * The model's weights as f32 tensors with Hugging Face names, `replaced` ones (by name) instead of
 * the model's own; a weight split into blocks of rows is joined back into one.
 */
export async function hfTensorsToWrite(model: LlamaModel, replaced: ReadonlyMap<string, Tensor> = new Map()): Promise<TensorsToWrite> {
  const tensors: Record<string, TensorsToWrite[string]> = {};
  const blocks = new Set([...model.splitWeights.values()].flat());
  for (const [name, t] of model.parameters) {
    if (!blocks.has(t)) tensors[name] = { dtype: 'F32', shape: t.shape, data: await (replaced.get(name) ?? t).toArray() };
  }
  for (const [name, parts] of model.splitWeights) {
    const data = new Float32Array(parts.reduce((n, p) => n + p.size, 0));
    let offset = 0;
    for (const p of parts) {
      data.set(await p.toArray(), offset);
      offset += p.size;
    }
    tensors[name] = { dtype: 'F32', shape: [data.length / parts[0].shape[1], parts[0].shape[1]], data };
  }
  return tensors;
}

/**
 * Writes the model's weights as model.safetensors with Hugging Face names (f32), atomically.
 * A tied LM head is the embedding itself, so it is written once, as transformers does.
 */
export async function saveModelWeights(model: LlamaModel, path: string, metadata: Record<string, string> = {}): Promise<void> {
  writeSafetensors(path, await hfTensorsToWrite(model), { format: 'pt', ...metadata });
}
