import { backward } from '../autograd/backward.js';
import type { LlamaModel } from '../model/llama.js';
import type { LoraAdapters } from '../nn/lora.js';
import { completionLogprobs, sharedPromptBatch, type SequenceInput } from '../train/completion-logprobs.js';
import { grpoLoss } from './grpo-loss.js';

/**
 * What StepMemoryEstimate.activations estimates, measured: the pool's peak bytes above those live
 * before, over one micro-batch's forward and backward (shared prompts, GRPO's loss) of `sequences`.
 * The adapters' gradients are dropped afterwards.
 */
export function measureActivations(model: LlamaModel, lora: LoraAdapters, sequences: readonly SequenceInput[], recompute: boolean): number {
  const gpu = model.gpu;
  const rows = sequences.length;
  const completionTokens = sequences.reduce((n, s) => n + s.completionIds.length, 0);
  model.recomputeLayers = recompute;
  lora.training = true;
  const before = gpu.pool.liveBytes;
  gpu.pool.resetPeak();
  try {
    gpu.tidy(() => {
      const batch = sharedPromptBatch(gpu, sequences);
      const { logprobs } = completionLogprobs(model, batch);
      // Advantages of either sign, so both sides of the clipped surrogate carry gradient.
      const advantages = gpu.tensor(Array.from({ length: rows }, (_, i) => (i % 2 ? -1 : 1)), [rows]);
      const { loss } = grpoLoss(
        { logprobs, advantages, mask: batch.mask },
        { beta: 0, epsilonLow: 0.2, epsilonHigh: 0.2, lossType: 'dapo', importanceSampling: 'token', klEstimator: 'k3', numItemsInBatch: completionTokens },
      );
      backward(loss);
    });
  } finally {
    model.recomputeLayers = false;
    for (const p of lora.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }
  return gpu.pool.peakBytes - before;
}
