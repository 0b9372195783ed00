import type { Tensor } from '../gpu/tensor.js';
import type { LlamaModel } from '../model/llama.js';
import { scale } from '../ops/binary.js';
import { crossEntropy } from '../ops/cross-entropy.js';
import { view } from '../ops/layout.js';
import type { SequenceBatch } from './completion-logprobs.js';

/**
 * Mean cross-entropy of the completion tokens of a prompt+completion batch (laid out by
 * sequenceBatch, the same layout GRPO scores completions in), times `weight`: a micro-batch's share
 * of its step's completion tokens, so that the micro-batches' losses sum to the step's mean.
 */
export function sftLoss(model: LlamaModel, batch: SequenceBatch, weight = 1): Tensor {
  if (batch.prompts) throw new Error('sftLoss: needs whole sequences (sequenceBatch), not a shared-prompt batch');
  const hidden = model.forward(batch.ids, { positions: batch.positions });
  const loss = crossEntropy(model.logits(hidden), batch.targets, view(batch.mask, [batch.mask.size]));
  return weight === 1 ? loss : scale(loss, weight);
}
