import type { Gpu } from '../gpu/gpu.js';
import type { Tensor } from '../gpu/tensor.js';
import type { LlamaModel } from '../model/llama.js';
import { lmHeadLogprobs } from '../nn/lm-head-logprobs.js';
import { view } from '../ops/layout.js';

export interface SequenceBatch {
  /** [B, W] u32: prompt then completion, right-padded. */
  ids: Tensor;
  positions: Tensor;
  /** [B·W] u32: the token each position predicts. */
  targets: Tensor;
  /** [B, W] f32: 1 where the position predicts a completion token. */
  mask: Tensor;
  width: number;
  /** Completion tokens per sequence. */
  lengths: number[];
}

export interface SequenceInput {
  promptIds: readonly number[];
  completionIds: readonly number[];
  /** Masked out entirely (e.g. truncated completions when masking them is on). */
  masked?: boolean;
}

/** Lays out prompt+completion sequences so that log π of each completion token sits under the mask. */
export function sequenceBatch(gpu: Gpu, sequences: readonly SequenceInput[], padId = 0): SequenceBatch {
  const width = Math.max(...sequences.map((s) => s.promptIds.length + s.completionIds.length));
  const ids: number[] = [];
  const targets: number[] = [];
  const mask: number[] = [];
  for (const { promptIds, completionIds, masked } of sequences) {
    // The last prompt position predicts the first completion token, so a prompt cannot be empty.
    if (promptIds.length === 0) throw new Error('sequenceBatch: a sequence has an empty prompt');
    const tokens = [...promptIds, ...completionIds];
    for (let t = 0; t < width; t++) {
      ids.push(tokens[t] ?? padId);
      targets.push(tokens[t + 1] ?? padId);
      // Position t predicts token t+1, a completion token when t+1 ∈ [prompt, prompt + completion).
      mask.push(!masked && t + 1 >= promptIds.length && t + 1 < tokens.length ? 1 : 0);
    }
  }
  const batch = sequences.length;
  return {
    ids: gpu.tensor(ids, [batch, width], 'u32'),
    positions: gpu.tensor(sequences.flatMap(() => Array.from({ length: width }, (_, t) => t)), [batch, width], 'u32'),
    targets: gpu.tensor(targets, [batch * width], 'u32'),
    mask: gpu.tensor(mask, [batch, width]),
    width,
    lengths: sequences.map((s) => s.completionIds.length),
  };
}

/** Per-position log-probs [B, W] (recorded for autograd when the model has trainable weights) and entropy [B, W]. */
export function completionLogprobs(model: LlamaModel, batch: SequenceBatch, chunkRows = 256): { logprobs: Tensor; entropy: Tensor } {
  const [rows, width] = batch.ids.shape;
  const hidden = model.forward(batch.ids, { positions: batch.positions });
  const { logprobs, entropy } = lmHeadLogprobs(hidden, model.lmHead, batch.targets, chunkRows);
  return { logprobs: view(logprobs, [rows, width]), entropy: view(entropy, [rows, width]) };
}
