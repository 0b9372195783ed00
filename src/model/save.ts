import type { TensorsToWrite } from '../io/safetensors-writer.js';
import { writeSafetensors } from '../io/safetensors-writer.js';
import type { LlamaModel } from './llama.js';

/**
 * Writes the model's weights as model.safetensors with Hugging Face names (f32), atomically.
 * A tied LM head is the embedding itself, so it is written once, as transformers does.
 */
export async function saveModelWeights(model: LlamaModel, path: string, metadata: Record<string, string> = {}): Promise<void> {
  const tensors: Record<string, TensorsToWrite[string]> = {};
  for (const [name, t] of model.parameters) {
    tensors[name] = { dtype: 'F32', shape: t.shape, data: await t.toArray() };
  }
  writeSafetensors(path, tensors, { format: 'pt', ...metadata });
}
