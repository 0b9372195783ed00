import { describe, expect, it } from 'vitest';
import type { Gpu } from '../src/gpu/gpu.js';
import type { Tensor } from '../src/gpu/tensor.js';
import { parseHfConfig } from '../src/io/hf-config.js';
import { initialLlamaWeights } from '../src/io/random-weights.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { serializeSafetensors } from '../src/io/safetensors-writer.js';
import { LlamaModel } from '../src/model/llama.js';
import { add, mul, scale } from '../src/ops/binary.js';
import { sumAll } from '../src/ops/reduce.js';
import { AdamW } from '../src/optim/adamw.js';
import { sequenceBatch, type SequenceInput } from '../src/train/completion-logprobs.js';
import { sftLoss } from '../src/train/sft.js';
import { splitMicroBatches, trainingStep, TrainingDiverged } from '../src/train/step.js';
import { useGpu } from './helpers/gpu.js';
import { rng } from './helpers/random.js';

const gpu = useGpu();

// Rounded to f32 so the float64 reference sees exactly the GPU's inputs.
const randomValues = (n: number, random: () => number) => Array.from({ length: n }, () => Math.fround(random() * 2 - 1));

function parameter(g: Gpu, values: readonly number[]): Tensor {
  const p = g.keep(g.tensor([...values], [values.length]));
  p.requiresGrad = true;
  return p;
}

// Loss Σ_m Σ_p ⟨p, c_mp⟩ has the gradient Σ_m c_mp exactly, so the clipped AdamW update has a
// float64 closed form. eps = 1 keeps the first AdamW step (lr·g/(|g| + eps)) sensitive to the
// gradient's scale, so clipping shows in the parameters.
describe('trainingStep', () => {
  const sizes = [7, 300];
  const microBatches = 3;
  const lr = 0.5;
  const weightDecay = 0.1;
  const eps = 1;

  async function linearStep(maxGradNorm: number) {
    const g = gpu();
    const random = rng(5);
    const initial = sizes.map((n) => randomValues(n, random));
    const coefficients = Array.from({ length: microBatches }, () => sizes.map((n) => randomValues(n, random)));
    const params = initial.map((values) => parameter(g, values));
    const optimizer = new AdamW(params, { lr, betas: [0.9, 0.999], eps, weightDecay });
    const result = await trainingStep(g, {
      optimizer,
      microBatches: coefficients,
      loss: (perParameter) => {
        const terms = params.map((p, i) => sumAll(mul(p, g.tensor(perParameter[i], [sizes[i]]))));
        const loss = terms.reduce((a, b) => add(a, b));
        return { loss, readBack: { doubled: scale(loss, 2) } };
      },
      maxGradNorm,
      schedule: { kind: 'constant', lr },
      step: 0,
    });
    const after = await g.readAll(params);
    for (const p of params) p.dispose();
    optimizer.dispose();
    return { initial, coefficients, result, after };
  }

  function expected(initial: number[][], coefficients: number[][][], maxGradNorm: number) {
    const grads = sizes.map((n, i) => Array.from({ length: n }, (_, j) => coefficients.reduce((s, c) => s + c[i][j], 0)));
    const norm = Math.sqrt(grads.flat().reduce((s, x) => s + x * x, 0));
    const clip = Math.min(1, maxGradNorm / (norm + 1e-6));
    const losses = coefficients.map((c) => c.reduce((s, perParameter, i) => s + perParameter.reduce((t, x, j) => t + x * initial[i][j], 0), 0));
    const params = initial.map((values, i) => values.map((p, j) => {
      const gradient = grads[i][j] * clip;
      return p * (1 - lr * weightDecay) - (lr * gradient) / (Math.abs(gradient) + eps);
    }));
    return { norm, losses, params };
  }

  for (const maxGradNorm of [0.5, 1e6]) {
    it(`accumulates micro-batch gradients, clips to ${maxGradNorm} and takes the AdamW step (float64 reference)`, async () => {
      const { initial, coefficients, result, after } = await linearStep(maxGradNorm);
      const want = expected(initial, coefficients, maxGradNorm);
      // The clipped case must actually clip, the other must not.
      expect(want.norm > maxGradNorm).toBe(maxGradNorm === 0.5);
      expect(result.gradNorm).toBeCloseTo(want.norm, 4);
      expect(result.learningRate).toBe(lr);
      expect(result.microBatches).toHaveLength(microBatches);
      result.microBatches.forEach((m, i) => {
        expect(m.loss).toBeCloseTo(want.losses[i], 4);
        expect(m.values.doubled[0]).toBeCloseTo(2 * want.losses[i], 4);
      });
      expect(result.loss).toBeCloseTo(want.losses.reduce((a, b) => a + b), 4);
      after.forEach((values, i) => values.forEach((v, j) => expect(Math.abs(v - want.params[i][j]), `param ${i}[${j}]`).toBeLessThan(2e-6)));
    });
  }

  it('names a parameter the loss gives no gradient, and throws TrainingDiverged on a loss that is not finite', async () => {
    const g = gpu();
    const used = parameter(g, [1, 2]);
    const unused = parameter(g, [3]);
    const optimizer = new AdamW([used, unused], { lr: 0.1 });
    const options = { optimizer, microBatches: [0], maxGradNorm: 1, schedule: { kind: 'constant' as const, lr: 0.1 }, step: 4, parameterNames: ['used', 'unused'] };
    await expect(trainingStep(g, { ...options, loss: () => ({ loss: sumAll(used) }) })).rejects.toThrow('step 5: the loss gives no gradient to unused');
    optimizer.zeroGrad();
    const diverged = trainingStep(g, {
      ...options,
      loss: () => ({ loss: add(sumAll(used), scale(sumAll(unused), Infinity)) }),
      divergedAdvice: () => 'lower the rate',
    });
    await expect(diverged).rejects.toThrow(TrainingDiverged);
    await expect(diverged).rejects.toThrow(/^step 5: loss (NaN|-?Infinity), grad norm \S+, parameter norm \S+ — training diverged; lower the rate$/);
    optimizer.dispose();
  });

  it('splits a batch into consecutive micro-batches', () => {
    expect(splitMicroBatches([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(splitMicroBatches([1, 2], 4)).toEqual([[1, 2]]);
    expect(() => splitMicroBatches([1], 0)).toThrow('micro-batch size must be a positive integer, got 0');
  });
});

// The SFT loss of a toy transformer: three micro-batches, each weighted by its share of the
// step's completion tokens, give the loss, gradient norm and update of the whole batch at once.
describe('trainingStep with the SFT loss', () => {
  const config = parseHfConfig(
    {
      architectures: ['LlamaForCausalLM'], hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2,
      num_attention_heads: 3, num_key_value_heads: 1, head_dim: 8, vocab_size: 37, rms_norm_eps: 1e-5,
      rope_theta: 10000, max_position_embeddings: 64, tie_word_embeddings: true,
    },
    'toy config',
  );
  const weights = serializeSafetensors(initialLlamaWeights(config, 11, 0.3));
  const random = rng(23);
  const token = () => Math.floor(random() * 37);
  const sequences: SequenceInput[] = Array.from({ length: 6 }, (_, i) => ({
    promptIds: Array.from({ length: 2 + (i % 3) }, token),
    completionIds: Array.from({ length: 1 + ((i * 2) % 5) }, token),
  }));
  const completionTokens = (batch: readonly SequenceInput[]) => batch.reduce((n, s) => n + s.completionIds.length, 0);

  async function sftStep(microBatchSize: number) {
    const g = gpu();
    const model = new LlamaModel(g, config, SafetensorsFile.fromBytes(weights), { trainable: true });
    const params = [...model.parameters.values()];
    // lr 1 and eps 1: the update −g/(|g| + 1) shows the gradient itself, not only its sign.
    const optimizer = new AdamW(params, { lr: 1, eps: 1, weightDecay: 0 });
    const stepTokens = completionTokens(sequences);
    const result = await trainingStep(g, {
      optimizer,
      microBatches: splitMicroBatches(sequences, microBatchSize),
      loss: (micro) => ({ loss: sftLoss(model, sequenceBatch(g, micro), completionTokens(micro) / stepTokens) }),
      maxGradNorm: 1e6,
      schedule: { kind: 'constant', lr: 1 },
      step: 0,
      parameterNames: [...model.parameters.keys()],
    });
    const after = await g.readAll(params);
    optimizer.dispose();
    for (const p of params) p.dispose();
    return { result, after, names: [...model.parameters.keys()] };
  }

  it('accumulating 3 micro-batches equals one batch of 6', async () => {
    const whole = await sftStep(6);
    const accumulated = await sftStep(2);
    expect(whole.result.microBatches).toHaveLength(1);
    expect(accumulated.result.microBatches).toHaveLength(3);
    expect(Math.abs(accumulated.result.loss - whole.result.loss)).toBeLessThan(1e-5 * whole.result.loss);
    expect(Math.abs(accumulated.result.gradNorm - whole.result.gradNorm)).toBeLessThan(1e-5 * whole.result.gradNorm);
    whole.after.forEach((values, i) => {
      let worst = 0;
      values.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - accumulated.after[i][j]))));
      expect(worst, whole.names[i]).toBeLessThan(1e-6);
    });
  });
});
