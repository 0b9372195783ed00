import type { Tensor } from '../gpu/tensor.js';
import type { LlamaModel } from '../model/llama.js';
import { isFrozenHead } from '../nn/lm-head-logprobs.js';
import { scale } from '../ops/binary.js';
import { crossEntropy, maskedMean } from '../ops/cross-entropy.js';
import { view } from '../ops/layout.js';
import { completionLogprobs, type SequenceBatch } from './completion-logprobs.js';

/**
 * Mean cross-entropy of the completion tokens of a prompt+completion batch, times `weight`: a
 * micro-batch's share of its step's completion tokens, so that the micro-batches' losses sum to the
 * step's mean. With a frozen LM head (LoRA) the batch may be either layout GRPO scores completions
 * in: sequenceBatch, or sharedPromptBatch, which computes each prompt once and sends only the
 * completion positions through the head (the same loss and gradients; an SFT reply is a few tokens
 * after a long prompt); the head's [positions, vocab] logits are never held whole. A trained head
 * (full fine-tuning) needs its logits whole, for its own gradient, and whole sequences.
 */
export function sftLoss(model: LlamaModel, batch: SequenceBatch, weight = 1): Tensor {
  const mask = view(batch.mask, [batch.mask.size]);
  if (isFrozenHead(model.lmHead)) {
    const { logprobs, entropy } = completionLogprobs(model, batch);
    entropy.dispose();
    return scale(maskedMean(view(logprobs, [logprobs.size]), mask), -weight);
  }
  if (batch.prompts || batch.packed) throw new Error('sftLoss: training the LM head needs whole sequences (sequenceBatch)');
  const loss = crossEntropy(model.logits(model.forward(batch.ids, { positions: batch.positions })), batch.targets, mask);
  return weight === 1 ? loss : scale(loss, weight);
}
