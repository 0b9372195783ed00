import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { parseHfConfig } from '../src/io/hf-config.js';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { serializeSafetensors } from '../src/io/safetensors-writer.js';
import { initialLlamaWeights } from '../src/io/random-weights.js';
import { LlamaModel } from '../src/model/llama.js';
import { attachLora, type LoraAdapters } from '../src/nn/lora.js';
import { gatherRows, repeatRows } from '../src/ops/layout.js';
import { completionLogprobs, sequenceBatch, sharedPromptBatch, type SequenceBatch, type SequenceInput } from '../src/train/completion-logprobs.js';
import { grpoLoss, type GrpoLossOptions } from '../src/rl/grpo-loss.js';
import { sftLoss } from '../src/train/sft.js';
import { expectClose } from './helpers/check.js';
import { takeGradients, useGpu } from './helpers/gpu.js';
import { tinyModel } from './helpers/tiny-checkpoint.js';
import { gradcheck } from './helpers/gradcheck.js';
import { randn } from './helpers/random.js';

const gpu = useGpu();

describe('repeatRows', () => {
  const x = randn(3 * 2 * 5, 1);
  const rows = [2, 0, 0, 1, 2, 2, 0];

  it('forward and backward vs float64 reference: copies out, copies summed back', async () => {
    const g = gpu();
    const gradOut = randn(rows.length * 10, 2);
    const { out, grad } = await g.tidy(() => {
      const input = g.tensor(x, [3, 2, 5]);
      input.requiresGrad = true;
      const y = repeatRows(input, g.tensor(rows, [rows.length], 'u32'));
      expect(y.shape).toEqual([rows.length, 2, 5]);
      backward(y, g.tensor(gradOut, y.shape));
      return { out: g.keep(y), grad: g.keep(input.grad!) };
    });
    const expectedOut = rows.flatMap((r) => Array.from(x.slice(r * 10, r * 10 + 10)));
    const expectedGrad = new Float64Array(x.length);
    rows.forEach((r, b) => {
      for (let c = 0; c < 10; c++) expectedGrad[r * 10 + c] += gradOut[b * 10 + c];
    });
    expectClose(await out.toArray(), expectedOut, { atol: 0, rtol: 0 }, 'copies');
    // Sums of up to three f32 terms.
    expectClose(await grad.toArray(), expectedGrad, { atol: 1e-6, rtol: 1e-6 }, 'summed gradient');
  });

  it('gradcheck against finite differences', async () => {
    const g = gpu();
    const index = g.tensor(rows, [rows.length], 'u32');
    await gradcheck(g, ([input]) => repeatRows(input, index), [{ data: x, shape: [3, 10] }]);
  });

  it('rejects rows that are not u32 [B]', () => {
    const g = gpu();
    g.tidy(() => {
      expect(() => repeatRows(g.tensor(x, [3, 10]), g.tensor([0, 1], [2]))).toThrow(/repeatRows: rows must be u32 \[B\], got f32 \[2\]/);
    });
  });
});

describe('gatherRows', () => {
  // 4 rows of x to 6 output rows: two padding rows (index 4 ≥ N) and one row of x (2) left out.
  const x = randn(4 * 3, 3);
  const index = [1, 4, 0, 3, 4, 4];
  const inverse = [2, 0, 6, 3];

  it('forward and backward vs reference: zero rows at padding, gradients copied back', async () => {
    const g = gpu();
    const gradOut = randn(index.length * 3, 4);
    const { out, grad } = await g.tidy(() => {
      const input = g.tensor(x, [4, 3]);
      input.requiresGrad = true;
      const y = gatherRows(input, g.tensor(index, [index.length], 'u32'), g.tensor(inverse, [4], 'u32'));
      expect(y.shape).toEqual([index.length, 3]);
      backward(y, g.tensor(gradOut, y.shape));
      return { out: g.keep(y), grad: g.keep(input.grad!) };
    });
    const expectedOut = index.flatMap((r) => (r < 4 ? Array.from(x.slice(r * 3, r * 3 + 3)) : [0, 0, 0]));
    const expectedGrad = inverse.flatMap((i) => (i < index.length ? Array.from(gradOut.slice(i * 3, i * 3 + 3)) : [0, 0, 0]));
    expectClose(await out.toArray(), expectedOut, { atol: 0, rtol: 0 }, 'rows');
    expectClose(await grad.toArray(), expectedGrad, { atol: 0, rtol: 0 }, 'gradient');
  });

  it('gradcheck against finite differences', async () => {
    const g = gpu();
    const rows = g.tensor(index, [index.length], 'u32');
    const back = g.tensor(inverse, [4], 'u32');
    await gradcheck(g, ([input]) => gatherRows(input, rows, back), [{ data: x, shape: [4, 3] }]);
  });

  it('rejects an inverse that does not match the rows of x', () => {
    const g = gpu();
    g.tidy(() => {
      expect(() => gatherRows(g.tensor(x, [4, 3]), g.tensor(index, [6], 'u32'), g.tensor([0, 1], [2], 'u32'))).toThrow(/gatherRows: inverse must be u32 \[4\], got u32 \[2\]/);
    });
  });
});

/** Ragged prompts (1 to 9 tokens) in groups of 1 to 3, ragged completions (1 to 8 tokens), one masked. */
function groups(vocab: number): SequenceInput[] {
  const tokens = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((seed * 7 + i * 13) % (vocab - 3)));
  const layout: [number, number[]][] = [
    [6, [5, 1, 8]],
    [2, [3, 7]],
    [1, [4, 2]],
    [9, [6, 6]],
    [4, [2]],
  ];
  return layout.flatMap(([promptLength, completions], p) =>
    completions.map((n, i) => ({
      promptIds: tokens(promptLength, p + 1),
      completionIds: tokens(n, 31 * p + i + 5),
      masked: p === 1 && i === 1,
    })),
  );
}

const LOSS: GrpoLossOptions = { beta: 0.04, epsilonLow: 0.2, epsilonHigh: 0.28, lossType: 'dapo', importanceSampling: 'token', klEstimator: 'k3', numItemsInBatch: 40 };

interface Outcome {
  loss: number;
  /** Log-probs, reference log-probs and entropies of the completion tokens, in sequence order. */
  logprobs: number[];
  ref: number[];
  entropy: number[];
  grads: Float32Array[];
  computedTokens: number;
}

/**
 * The GRPO loss with a KL term (reference log-probs with the adapters off) and a ratio against old
 * log-probs that differ from the current ones, then every LoRA gradient, in one layout.
 */
async function outcome(g: Gpu, model: LlamaModel, lora: LoraAdapters, sequences: SequenceInput[], layout: (g: Gpu, s: SequenceInput[]) => SequenceBatch): Promise<Outcome> {
  const advantages = randn(sequences.length, 9);
  const result = g.tidy(() => {
    const batch = layout(g, sequences);
    // The policy that sampled: other B matrices, so the ratios differ from 1 and some clip.
    lora.modules.forEach((m, i) => g.write(m.b, oldB(m.b.size, i)));
    const old = noGrad(() => completionLogprobs(model, batch).logprobs);
    lora.modules.forEach((m, i) => g.write(m.b, currentB(m.b.size, i)));
    const ref = noGrad(() => {
      lora.enabled = false;
      try {
        return completionLogprobs(model, batch).logprobs;
      } finally {
        lora.enabled = true;
      }
    });
    const mask = batch.mask;
    const { logprobs, entropy } = completionLogprobs(model, batch);
    const { loss } = grpoLoss({ logprobs, oldLogprobs: old, refLogprobs: ref, advantages: g.tensor(advantages, [sequences.length]), mask }, LOSS);
    backward(loss);
    return { loss, logprobs, ref, entropy, mask };
  });
  const [loss, logprobs, ref, entropy, mask] = await g.readAll([result.loss, result.logprobs, result.ref, result.entropy, result.mask]);
  const underMask = (values: Float32Array) => Array.from(values).filter((_, i) => mask[i] === 1);
  const grads = await takeGradients(lora.parameters());
  for (const t of Object.values(result)) t.dispose();
  const computedTokens = g.tidy(() => layout(g, sequences).computedTokens);
  return { loss: loss[0], logprobs: underMask(logprobs), ref: underMask(ref), entropy: underMask(entropy), grads, computedTokens };
}

// Non-zero B, so the adapters change the prompt's hidden states and receive gradients through them.
const currentB = (size: number, i: number) => randn(size, 100 + i, 0.2);
const oldB = (size: number, i: number) => randn(size, 500 + i, 0.2);

async function expectSameTraining(model: LlamaModel, sequences: SequenceInput[]): Promise<void> {
  const g = gpu();
  const lora = attachLora(model, { rank: 4, alpha: 8, seed: 5 });
  const repeated = await outcome(g, model, lora, sequences, sequenceBatch);
  const shared = await outcome(g, model, lora, sequences, sharedPromptBatch);
  lora.dispose();
  const completionTokens = sequences.reduce((n, s) => n + (s.masked ? 0 : s.completionIds.length), 0);
  expect(repeated.logprobs).toHaveLength(completionTokens);
  // f32 on both sides; the layouts differ in summation order only (attention's key blocks, row
  // batching, the copies' gradients summed). On lavapipe the log-probs agree to the bit and the
  // gradients to 7e-7 of their largest element.
  const tol = { atol: 1e-5, rtol: 1e-5 };
  expectClose(shared.logprobs, repeated.logprobs, tol, 'log-probs');
  expectClose(shared.ref, repeated.ref, tol, 'reference log-probs');
  expectClose(shared.entropy, repeated.entropy, tol, 'entropy');
  expect(shared.ref).not.toEqual(shared.logprobs);
  expectClose([shared.loss], [repeated.loss], { atol: 1e-6, rtol: 1e-4 }, 'loss');
  repeated.grads.forEach((expected, i) => {
    const scale = expected.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    expect(scale, `gradient ${i} is non-zero`).toBeGreaterThan(0);
    expectClose(shared.grads[i], expected, { atol: 1e-5 * scale, rtol: 1e-4 }, `LoRA gradient ${i} of ${repeated.grads.length}`);
  });

  expect(shared.computedTokens).toBeLessThan(repeated.computedTokens);
}


/** Three query heads per kv head (tiny has two), head dim 8, random weights; `fields` change the config. */
function randomGqaModel(g: Gpu, fields: Record<string, unknown> = {}): LlamaModel {
  const config = parseHfConfig(
    {
      architectures: ['LlamaForCausalLM'], hidden_size: 24, intermediate_size: 40, num_hidden_layers: 2,
      num_attention_heads: 3, num_key_value_heads: 1, head_dim: 8, vocab_size: 37, rms_norm_eps: 1e-5,
      rope_theta: 10000, max_position_embeddings: 64, tie_word_embeddings: true, ...fields,
    },
    'random GQA config',
  );
  return new LlamaModel(g, config, SafetensorsFile.fromBytes(serializeSafetensors(initialLlamaWeights(config, 11, 0.3))));
}

describe('shared prompts train exactly like repeated prompts', () => {
  it('the batch runs each group prompt once, without its last token, and each row without its padding', async () => {
    const g = gpu();
    const sequences = groups(37);
    const completion = sequences.reduce((n, s) => n + s.completionIds.length, 0);
    const prompt = sequences.reduce((n, s) => n + s.promptIds.length, 0);
    const distinct = [6, 2, 1, 9, 4].reduce((n, p) => n + p - 1, 0);
    const batch = sharedPromptBatch(g, sequences);
    try {
      expect(batch.prompts!.ids.shape).toEqual([5, 8]);
      // One position per completion token: the prompt's last token, then the completion but its last token.
      expect(batch.ids.shape).toEqual([1, completion]);
      expect(batch.mask.shape).toEqual([sequences.length, 8]);
      expect(batch.packed!.shape).toEqual([sequences.length, 8]);
      expect(batch.computedTokens).toBe(distinct + completion);
      expect(batch.computedPositions).toBe(5 * 8 + completion);
      const [ids, positions, slots, rows] = await g.readAll([batch.ids, batch.positions, batch.packed!.slots, batch.packed!.rows]);
      let n = 0;
      sequences.forEach((s, b) => {
        const tokens = [s.promptIds.at(-1)!, ...s.completionIds.slice(0, -1)];
        for (let t = 0; t < 8; t++) {
          if (t >= tokens.length) {
            expect(slots[b * 8 + t], `padding slot ${b}, ${t}`).toBe(completion);
            continue;
          }
          expect([slots[b * 8 + t], rows[n], ids[n], positions[n]], `slot ${b}, ${t}`).toEqual([n, b * 8 + t, tokens[t], s.promptIds.length - 1 + t]);
          n++;
        }
      });
      expect(n).toBe(completion);
      expect(sequenceBatch(g, sequences).computedTokens).toBe(prompt + completion);
    } finally {
      g.tidy(() => {
        for (const t of [batch.ids, batch.positions, batch.targets, batch.mask, batch.packed!.slots, batch.packed!.rows]) t.dispose();
        for (const t of Object.values(batch.prompts!)) t.dispose();
      });
    }
  });

  it('rows of equal length stay a [B, W] batch (nothing to pack)', () => {
    const g = gpu();
    const sequences = groups(37).filter((s) => s.completionIds.length === 2);
    g.tidy(() => {
      const batch = sharedPromptBatch(g, sequences);
      expect(batch.packed).toBeUndefined();
      expect(batch.ids.shape).toEqual([sequences.length, 2]);
    });
  });

  it('tiny model (4/2 heads): loss, log-probs, reference log-probs, every LoRA gradient', async () => {
    await expectSameTraining(tinyModel(gpu()), groups(259));
  });

  it('random model with 3 query heads per kv head', async () => {
    await expectSameTraining(randomGqaModel(gpu()), groups(37));
  });

  it('the SFT loss (sft.js with LoRA) and every LoRA gradient are those of whole sequences', async () => {
    const g = gpu();
    const model = randomGqaModel(g);
    const lora = attachLora(model, { rank: 4, alpha: 8, seed: 5 });
    lora.modules.forEach((m, i) => g.write(m.b, currentB(m.b.size, i)));
    const sequences = groups(37);
    const train = async (layout: (g: Gpu, s: SequenceInput[]) => SequenceBatch) => {
      const loss = g.tidy(() => {
        const l = sftLoss(model, layout(g, sequences), 0.5);
        backward(l);
        return g.keep(l);
      });
      const [value] = await loss.toArray();
      loss.dispose();
      const grads = await takeGradients(lora.parameters());
      return { value, grads };
    };
    const repeated = await train(sequenceBatch);
    const shared = await train(sharedPromptBatch);
    lora.dispose();
    expect(repeated.value).toBeGreaterThan(0);
    expectClose([shared.value], [repeated.value], { atol: 1e-6, rtol: 1e-5 }, 'loss');
    repeated.grads.forEach((expected, i) => {
      const scale = expected.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      expect(scale, `gradient ${i} is non-zero`).toBeGreaterThan(0);
      expectClose(shared.grads[i], expected, { atol: 1e-5 * scale, rtol: 1e-4 }, `LoRA gradient ${i} of ${repeated.grads.length}`);
    });
  });

  it('sliding window 3 (Mistral): keys counted across the shared prompt and the completion alike', async () => {
    await expectSameTraining(randomGqaModel(gpu(), { architectures: ['MistralForCausalLM'], sliding_window: 3 }), groups(37));
  });

  it('one-token prompts (nothing to share) and a micro-batch that splits a group', async () => {
    const g = gpu();
    const model = randomGqaModel(g);
    const single = groups(37).map((s) => ({ ...s, promptIds: s.promptIds.slice(0, 1) }));
    expect(g.tidy(() => sharedPromptBatch(g, single).prompts)).toBeUndefined();
    await expectSameTraining(model, single.slice(0, 4));
    await expectSameTraining(model, groups(37).slice(2, 7));
  });
});
