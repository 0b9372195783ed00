import type { Tensor } from '../gpu/tensor.js';
import type { LlamaModel } from '../model/llama.js';
import { crossEntropy } from '../ops/cross-entropy.js';
import { view } from '../ops/layout.js';
import type { SequenceBatch } from '../rl/completion-logprobs.js';

/**
 * Mean cross-entropy of the completion tokens of a prompt+completion batch (laid out by
 * sequenceBatch, the same layout GRPO scores completions in).
 */
export function sftLoss(model: LlamaModel, batch: SequenceBatch): Tensor {
  if (batch.prompts) throw new Error('sftLoss: needs whole sequences (sequenceBatch), not a shared-prompt batch');
  const hidden = model.forward(batch.ids, { positions: batch.positions });
  return crossEntropy(model.logits(hidden), batch.targets, view(batch.mask, [batch.mask.size]));
}
