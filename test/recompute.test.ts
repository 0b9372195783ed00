import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { checkpoint } from '../src/autograd/checkpoint.js';
import type { Gpu } from '../src/gpu/gpu.js';
import type { Tensor } from '../src/gpu/tensor.js';
import { LlamaModel } from '../src/model/llama.js';
import { attachLora, type LoraAdapters } from '../src/nn/lora.js';
import { mul } from '../src/ops/binary.js';
import { sumAll } from '../src/ops/reduce.js';
import { completionLogprobs, sequenceBatch, sharedPromptBatch, type SequenceBatch, type SequenceInput } from '../src/train/completion-logprobs.js';
import { grpoLoss } from '../src/rl/grpo-loss.js';
import { expectClose } from './helpers/check.js';
import { takeGradients, useGpu } from './helpers/gpu.js';
import { tinyModel } from './helpers/tiny-checkpoint.js';
import { randn } from './helpers/random.js';

const gpu = useGpu();


/** Two groups of ragged completions of ragged prompts, one masked. */
function sequences(): SequenceInput[] {
  const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((seed * 7 + i * 13) % 250));
  return [
    ...[5, 2, 7].map((n, i) => ({ promptIds: tokens(6, 1), completionIds: tokens(n, 10 + i) })),
    ...[3, 6].map((n, i) => ({ promptIds: tokens(9, 2), completionIds: tokens(n, 20 + i), masked: i === 1 })),
  ];
}

interface Outcome {
  loss: number;
  grads: Float32Array[];
  /** Pool bytes live right after the forward, above those live before it: what the forward keeps for backward. */
  keptBytes: number;
  dropoutStream: number;
}

async function trainOnce(g: Gpu, model: LlamaModel, lora: LoraAdapters, layout: (g: Gpu, s: SequenceInput[]) => SequenceBatch, recompute: boolean): Promise<Outcome> {
  const input = sequences();
  model.recomputeLayers = recompute;
  lora.training = true;
  lora.dropoutStream = 0;
  let keptBytes = 0;
  const loss = g.tidy(() => {
    const batch = layout(g, input);
    const before = g.pool.liveBytes;
    const { logprobs } = completionLogprobs(model, batch);
    keptBytes = g.pool.liveBytes - before;
    const advantages = g.tensor(randn(input.length, 3), [input.length]);
    const out = grpoLoss(
      { logprobs, advantages, mask: batch.mask },
      { beta: 0, epsilonLow: 0.2, epsilonHigh: 0.2, lossType: 'dapo', importanceSampling: 'token', klEstimator: 'k3', numItemsInBatch: 20 },
    );
    backward(out.loss);
    return out.loss;
  });
  const grads = await takeGradients(lora.parameters());
  const value = await g.readScalar(loss);
  loss.dispose();
  model.recomputeLayers = false;
  return { loss: value, grads, keptBytes, dropoutStream: lora.dropoutStream };
}

describe('activation recomputation (per decoder layer)', () => {
  it('a checkpointed function with several outputs: the gradients of its inputs and of the weights it reads are exact', async () => {
    const g = gpu();
    const run = (withCheckpoint: boolean) =>
      g.tidy(() => {
        const x = g.tensor(randn(6, 1), [6]);
        const w = g.tensor(randn(6, 2), [6]);
        x.requiresGrad = true;
        w.requiresGrad = true;
        const fn = ([input]: readonly Tensor[]) => [mul(input, w), mul(mul(input, input), w)];
        const [a, b] = withCheckpoint ? checkpoint('test', [x], fn) : fn([x]);
        // Only the second output and a product of both reach the loss; x's gradient sums both paths.
        backward(sumAll(mul(mul(a, b), b)));
        return [g.keep(x.grad!), g.keep(w.grad!)];
      });
    const plain = await g.readAll(run(false));
    const recomputed = await g.readAll(run(true));
    plain.forEach((expected, i) => expectClose(recomputed[i], expected, { atol: 0, rtol: 0 }, i === 0 ? 'input gradient' : 'weight gradient'));
  });

  for (const [name, layout] of [['shared prompts', sharedPromptBatch], ['repeated prompts', sequenceBatch]] as const) {
    it(`tiny model, LoRA with dropout, ${name}: the same loss and LoRA gradients, less kept for backward`, async () => {
      const g = gpu();
      const model = tinyModel(g);
      const lora = attachLora(model, { rank: 4, alpha: 8, dropout: 0.1, seed: 5 });
      // Non-zero B, so every adapter gets a gradient through the layers above it.
      lora.modules.forEach((m, i) => g.write(m.b, randn(m.b.size, 100 + i, 0.2)));
      const plain = await trainOnce(g, model, lora, layout, false);
      const recomputed = await trainOnce(g, model, lora, layout, true);
      lora.dispose();
      // Both run the same kernels on the same inputs in the same order (the dropout streams replayed),
      // so on one device the results agree to the bit; the tolerance only allows for a device that
      // schedules the same reductions differently between two runs.
      expectClose([recomputed.loss], [plain.loss], { atol: 1e-6, rtol: 1e-6 }, 'loss');
      plain.grads.forEach((expected, i) => {
        const scale = expected.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
        expect(scale, `gradient ${i} is non-zero`).toBeGreaterThan(0);
        expectClose(recomputed.grads[i], expected, { atol: 1e-6 * scale, rtol: 1e-5 }, `LoRA gradient ${i} of ${plain.grads.length}`);
      });
      expect(recomputed.dropoutStream).toBe(plain.dropoutStream);
      // Kept: each layer's input (and the prompts' keys and values) instead of every intermediate.
      expect(recomputed.keptBytes).toBeLessThan(plain.keptBytes / 3);
    });
  }
});
