import type { Tensor } from '../gpu/tensor.js';
import type { LlamaModel } from '../model/llama.js';
import { isFrozenHead, lmHeadLogprobs } from '../nn/lm-head-logprobs.js';
import { scale } from '../ops/binary.js';
import { crossEntropy, maskedMean } from '../ops/cross-entropy.js';
import { view } from '../ops/layout.js';
import type { SequenceBatch } from './completion-logprobs.js';

/**
 * Mean cross-entropy of the completion tokens of a prompt+completion batch (laid out by
 * sequenceBatch, the same layout GRPO scores completions in), times `weight`: a micro-batch's share
 * of its step's completion tokens, so that the micro-batches' losses sum to the step's mean. With a
 * frozen LM head (LoRA) the log-probs come from the head a chunk of rows at a time, so the
 * [positions, vocab] logits are never held whole (for the small model's 49,152-word vocabulary, 16
 * sequences of 80 tokens would need a 240 MiB buffer, above what a storage binding may hold); a
 * trained head needs its logits whole for its own gradient.
 */
export function sftLoss(model: LlamaModel, batch: SequenceBatch, weight = 1): Tensor {
  if (batch.prompts) throw new Error('sftLoss: needs whole sequences (sequenceBatch), not a shared-prompt batch');
  const hidden = model.forward(batch.ids, { positions: batch.positions });
  const mask = view(batch.mask, [batch.mask.size]);
  if (!isFrozenHead(model.lmHead)) {
    const loss = crossEntropy(model.logits(hidden), batch.targets, mask);
    return weight === 1 ? loss : scale(loss, weight);
  }
  const { logprobs, entropy } = lmHeadLogprobs(hidden, model.lmHead, batch.targets);
  entropy.dispose();
  return scale(maskedMean(logprobs, mask), -weight);
}
