import { describe, expect, it } from 'vitest';
import { sizeClass } from '../src/gpu/buffer-pool.js';
import { parseHfConfig } from '../src/io/hf-config.js';
import { RandomLlamaWeights } from '../src/io/random-weights.js';
import { LlamaModel } from '../src/model/llama.js';
import { ProjectionStore } from '../src/model/projection-store.js';
import { attachLora } from '../src/nn/lora.js';
import type { SequenceInput } from '../src/train/completion-logprobs.js';
import { measureActivations } from '../src/rl/measure-activations.js';
import { configModelShape, estimateStepMemory, loadedModelShape, planMemory, type StepShape } from '../src/rl/memory-plan.js';
import { useGpu } from './helpers/gpu.js';
import { tinyModel } from './helpers/tiny-checkpoint.js';

const gpu = useGpu();
const GiB = 2 ** 30;


const PROMPT = 40;
const COMPLETION = 48;
const G = 4;
/** Two groups of G completions, every prompt and completion at full length (what the estimate assumes). */
const sequences: SequenceInput[] = Array.from({ length: 2 * G }, (_, i) => ({
  promptIds: Array.from({ length: PROMPT }, (_, t) => 3 + ((Math.floor(i / G) * 31 + t * 7) % 250)),
  completionIds: Array.from({ length: COMPLETION }, (_, t) => 3 + ((i * 17 + t * 11) % 250)),
}));

const shape = (microBatchSize: number, recompute: boolean): StepShape => ({
  promptTokens: PROMPT,
  maxNewTokens: COMPLETION,
  numGenerations: G,
  generationBatchSize: 2 * G,
  microBatchSize,
  sharedPrompts: true,
  recompute,
  poolCacheCap: 0,
});

describe('weights larger than one storage binding', () => {
  it('are refused by name before any weight is read, unless they are a frozen embedding or LM head (split instead)', () => {
    const g = gpu();
    const limit = Math.min(g.device.limits.maxStorageBufferBindingSize, g.device.limits.maxBufferSize);
    const hidden = 64;
    const oversized = Math.floor(limit / (hidden * 4)) + 1;
    const configWith = (vocab: number, intermediate: number) =>
      parseHfConfig(
        {
          architectures: ['LlamaForCausalLM'], hidden_size: hidden, intermediate_size: intermediate, num_hidden_layers: 1, num_attention_heads: 4,
          num_key_value_heads: 4, vocab_size: vocab, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 64, tie_word_embeddings: true,
        },
        'oversized weights',
      );
    const refused = (config: ReturnType<typeof configWith>, trainable: boolean, message: RegExp) => {
      const reader = new RandomLlamaWeights(config, 0);
      let reads = 0;
      const counting = Object.assign(Object.create(reader) as RandomLlamaWeights, { readFloat32: (name: string) => (reads++, reader.readFloat32(name)) });
      expect(() => new LlamaModel(g, config, counting, { trainable })).toThrow(message);
      expect(reads).toBe(0);
    };
    refused(configWith(256, oversized), false, /model\.layers\.0\.mlp\.gate_proj\.weight \[\d+, 64\] f32 takes \d+ MiB, more than one storage binding of this adapter holds \(max\w+ \d+ MiB\); only the embedding and the LM head are split/);
    refused(configWith(oversized, 128), true, /model\.embed_tokens\.weight \[\d+, 64\] f32 takes \d+ MiB, .*a trained weight is not split across bindings \(train LoRA adapters instead\)/);
  });
});

describe('memory plan', () => {
  it('estimates the activations of a micro-batch within 15% of what the pool measures, with and without recomputation', async () => {
    const g = gpu();
    const model = tinyModel(g);
    const lora = attachLora(model, { rank: 8, alpha: 16, seed: 1 });
    for (const recompute of [false, true]) {
      const measured = measureActivations(model, lora, sequences.slice(0, G), recompute);
      const estimated = estimateStepMemory(loadedModelShape(model, lora), shape(G, recompute)).activations;
      expect(estimated / measured, `recompute ${recompute}: estimated ${estimated}, measured ${measured}`).toBeGreaterThan(0.85);
      expect(estimated / measured, `recompute ${recompute}: estimated ${estimated}, measured ${measured}`).toBeLessThan(1.15);
    }
    await g.sync();
    lora.dispose();
  });

  it('the shape from a config alone is the loaded model’s (weights by size class, adapters, projections)', () => {
    const g = gpu();
    const model = tinyModel(g);
    const lora = attachLora(model, { rank: 8, alpha: 16, seed: 1, targetModules: ['q_proj', 'v_proj', 'down_proj'] });
    const loaded = loadedModelShape(model, lora);
    expect(configModelShape(model.config, 'f32', { rank: 8, targets: ['q_proj', 'v_proj', 'down_proj'], dropout: 0 })).toEqual(loaded);
    expect(loaded.linears.map((l) => l.adapted)).toEqual([true, false, true, false, false, false, true]);
    lora.dispose();
  });

  it('picks the largest micro-batch that fits without recomputation, then recomputation, and refuses with the breakdown', () => {
    const g = gpu();
    const model = tinyModel(g);
    const lora = attachLora(model, { rank: 8, alpha: 16, seed: 1 });
    const budget = { recompute: 'auto' as const, microBatchGiven: false, sequencesPerStep: 2 * G };
    const { microBatchSize: _, recompute: __, ...base } = shape(G, false);
    const peak = (micro: number, recompute: boolean) => estimateStepMemory(loadedModelShape(model, lora), shape(micro, recompute)).peak;

    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, maxBytes: GiB })).toMatchObject({ microBatchSize: 2 * G, recompute: false });
    // Room for 3 sequences without recomputation: 3, not 8 with it.
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, maxBytes: peak(3, false) })).toMatchObject({ microBatchSize: 3, recompute: false });
    // Not even one sequence without recomputation: the largest micro-batch with it.
    const oneWith = peak(1, false) - 1;
    const recomputed = planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, maxBytes: oneWith });
    expect(recomputed.recompute).toBe(true);
    expect(peak(recomputed.microBatchSize, true)).toBeLessThanOrEqual(oneWith);
    // A given micro-batch is kept; recomputation is turned on for it.
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, microBatchGiven: true, maxBytes: peak(4, true) })).toMatchObject({ microBatchSize: 4, recompute: true });
    // The pool's cache gets what the step leaves of the budget, at most its cap; an uncapped pool is capped there.
    const MiB = 2 ** 20;
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4, poolCacheCap: 512 * MiB }, { ...budget, microBatchGiven: true, maxBytes: peak(4, false) + 100 * MiB })).toMatchObject({ poolCacheCap: 100 * MiB, recompute: false });
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4, poolCacheCap: 512 * MiB }, { ...budget, microBatchGiven: true, maxBytes: GiB })).toMatchObject({ poolCacheCap: 512 * MiB });
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4, poolCacheCap: Infinity }, { ...budget, microBatchGiven: true, maxBytes: GiB }).poolCacheCap).toBe(GiB - peak(4, false));
    // Room without a budget (a CPU adapter's default): the largest micro-batch that fits, never
    // recomputation, never a refusal; a given micro-batch stands.
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, roomBytes: peak(3, false) })).toMatchObject({ microBatchSize: 3, recompute: false });
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, roomBytes: GiB })).toMatchObject({ microBatchSize: 2 * G, recompute: false });
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, roomBytes: oneWith })).toMatchObject({ microBatchSize: 1, recompute: false });
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, microBatchGiven: true, roomBytes: peak(3, false) })).toMatchObject({ microBatchSize: 4 });
    // Without a budget the settings stand.
    expect(planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, recompute: 'on', maxBytes: undefined })).toMatchObject({ microBatchSize: 4, recompute: true });
    expect(() => planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, maxBytes: 1e6 })).toThrow(
      /--max-memory 0\.00 GiB: a step does not fit even at micro-batch 1 with activation recomputation: estimated frozen .* activations .*--base-dtype f16/,
    );
    expect(() => planMemory(loadedModelShape(model, lora), { ...base, microBatchSize: 4 }, { ...budget, recompute: 'off', maxBytes: oneWith })).toThrow(/micro-batch 1 \(--recompute off\)/);
    lora.dispose();
  });
});

describe('the rollout projections kept for training', () => {
  it('are estimated as the buffers the store holds, and add to the peak of both phases', () => {
    const g = gpu();
    const model = tinyModel(g);
    const lora = attachLora(model, { rank: 4, alpha: 8 });
    const rows = 300;
    const live = g.pool.liveBytes;
    const store = new ProjectionStore(g, model.linears(), rows);
    const held = g.pool.liveBytes - live;
    store.dispose();
    const without = estimateStepMemory(loadedModelShape(model, lora), shape(G, false));
    const withStore = estimateStepMemory(loadedModelShape(model, lora), { ...shape(G, false), projectionRows: rows });
    lora.dispose();
    expect(without.projections).toBe(0);
    expect(withStore.projections).toBe(held);
    expect(withStore.peak - without.peak).toBe(held);
  });

  it('with the sampling’s logits: their blocks, allocated as they fill, are estimated as the full store holds them', () => {
    const g = gpu();
    const model = tinyModel(g);
    const lora = attachLora(model, { rank: 4, alpha: 8 });
    const [rows, logitRows, blockRows] = [300, 70, 32];
    const vocab = model.config.vocab_size;
    const live = g.pool.liveBytes;
    const store = new ProjectionStore(g, model.linears(), rows, { vocab, rows: logitRows, blockRows });
    g.tidy(() => store.writeLogits(g.zeros([logitRows, vocab]), Array.from({ length: logitRows }, (_, i) => i)));
    const held = g.pool.liveBytes - live;
    store.dispose();
    const estimate = estimateStepMemory(loadedModelShape(model, lora), { ...shape(G, false), projectionRows: rows, logitRows, logitBlockRows: blockRows });
    const projectionsOnly = estimateStepMemory(loadedModelShape(model, lora), { ...shape(G, false), projectionRows: rows });
    lora.dispose();
    expect(estimate.projections).toBe(held);
    expect(estimate.projections - projectionsOnly.projections).toBe(sizeClass(32 * vocab * 4) * 2 + sizeClass(6 * vocab * 4));
  });
});
