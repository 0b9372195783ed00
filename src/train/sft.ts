import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';
import type { LlamaModel } from '../model/llama.js';
import { crossEntropy } from '../ops/cross-entropy.js';

/** One supervised example: the loss covers the completion's tokens only. */
export interface SftExample {
  prompt: readonly number[];
  completion: readonly number[];
}

export interface SftBatch {
  ids: Tensor;
  positions: Tensor;
  targets: Tensor;
  mask: Tensor;
  /** Tokens the loss covers. */
  tokens: number;
}

/** Right-pads a batch; position t predicts token t+1, and only completion tokens count. */
export function sftBatch(gpu: Gpu, examples: readonly SftExample[], padId: number): SftBatch {
  const width = Math.max(...examples.map((e) => e.prompt.length + e.completion.length));
  const ids: number[] = [];
  const targets: number[] = [];
  const mask: number[] = [];
  for (const { prompt, completion } of examples) {
    if (prompt.length === 0) throw new Error('sftBatch: an example has an empty prompt');
    const sequence = [...prompt, ...completion];
    for (let t = 0; t < width; t++) {
      ids.push(sequence[t] ?? padId);
      targets.push(sequence[t + 1] ?? padId);
      mask.push(t + 1 >= prompt.length && t + 1 < sequence.length ? 1 : 0);
    }
  }
  const batch = examples.length;
  return {
    ids: gpu.tensor(ids, [batch, width], 'u32'),
    positions: gpu.tensor(examples.flatMap(() => Array.from({ length: width }, (_, t) => t)), [batch, width], 'u32'),
    targets: gpu.tensor(targets, [batch * width], 'u32'),
    mask: gpu.tensor(mask, [batch * width]),
    tokens: mask.reduce((a, b) => a + b, 0),
  };
}

/** Mean cross-entropy of the completion tokens. */
export function sftLoss(model: LlamaModel, batch: SftBatch): Tensor {
  const hidden = model.forward(batch.ids, { positions: batch.positions });
  return crossEntropy(model.logits(hidden), batch.targets, batch.mask);
}
