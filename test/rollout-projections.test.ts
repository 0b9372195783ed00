import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import type { Gpu } from '../src/gpu/gpu.js';
import { generate, logitRows, projectionRows } from '../src/generate/generate.js';
import { repositoryRoot } from '../src/io/repository-root.js';
import type { LlamaModel } from '../src/model/llama.js';
import { ProjectionStore } from '../src/model/projection-store.js';
import { attachLora, type LoraAdapters } from '../src/nn/lora.js';
import { DEFAULT_CONFIG, validateConfig, type GrpoConfig } from '../src/rl/grpo-config.js';
import { GrpoTrainer } from '../src/rl/grpo-trainer.js';
import type { StepMetrics } from '../src/rl/grpo-update.js';
import { checkSameRun } from '../src/rl/same-run.js';
import { completionLogprobs, sequenceBatch, sharedPromptBatch, type SequenceBatch, type SequenceInput } from '../src/train/completion-logprobs.js';
import { expectClose } from './helpers/check.js';
import { takeGradients, useGpu } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { tinyModel } from './helpers/tiny-checkpoint.js';
import { prepareTinyRun } from './helpers/train-cli.js';

const gpu = useGpu();

// Ragged prompts (1 to 7 tokens), three or two samples each, in two generation batches.
const PROMPTS = [
  [[12, 40, 41, 42, 9], [12, 40, 41, 42, 9], [12, 40, 41, 42, 9], [77, 5], [77, 5], [77, 5]],
  [[3, 90, 91, 92, 93, 94, 95], [3, 90, 91, 92, 93, 94, 95], [200], [200]],
];
const MAX_NEW = 7;
// A third of the vocabulary ends a sequence, so completions stop after 1 to 7 tokens.
const EOS = Array.from({ length: 90 }, (_, i) => 100 + i);

/** Samples both batches with the adapters on, their linear outputs kept in `store`. */
async function sample(model: LlamaModel, store: ProjectionStore, sharePrompts: boolean): Promise<SequenceInput[]> {
  const sequences: SequenceInput[] = [];
  for (const [i, prompts] of PROMPTS.entries()) {
    const completions = await generate(model, prompts, { maxNewTokens: MAX_NEW, temperature: 1, seed: 3 + i, eosTokenIds: EOS, projections: store, sharePrompts });
    completions.forEach((c, b) =>
      sequences.push({
        promptIds: prompts[b],
        completionIds: c.tokens,
        projections: { store, slots: c.projectionSlots! },
      }),
    );
  }
  return sequences;
}

const storeRows = (sharePrompts = true) => PROMPTS.reduce((n, prompts) => n + projectionRows(prompts, MAX_NEW, sharePrompts), 0);
const storeLogitRows = (sharePrompts = true) => PROMPTS.reduce((n, prompts) => n + logitRows(prompts, MAX_NEW, sharePrompts), 0);

/** Σ advantage · log π over the completion tokens, and every LoRA gradient of it. */
async function lossAndGrads(g: Gpu, model: LlamaModel, lora: LoraAdapters, batch: SequenceBatch, advantages: Float32Array) {
  const [mask] = await g.readAll([batch.mask]);
  const width = batch.mask.shape[1];
  const weights = Float32Array.from(mask, (m, i) => m * advantages[Math.floor(i / width)]);
  const kept = g.tidy(() => {
    const { logprobs } = completionLogprobs(model, batch);
    backward(logprobs, g.tensor(weights, logprobs.shape));
    return g.keep(logprobs);
  });
  const logprobs = await kept.toArray();
  kept.dispose();
  const grads = await takeGradients(lora.parameters());
  return { loss: logprobs.reduce((s, lp, i) => s + lp * weights[i], 0), logprobs: Array.from(logprobs).filter((_, i) => mask[i] === 1), grads };
}

function expectSameGradients(actual: Float32Array[], expected: Float32Array[]): void {
  expected.forEach((e, i) => {
    const scale = e.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    expect(scale, `gradient ${i} is non-zero`).toBeGreaterThan(0);
    // f32 throughout; the sampling forwards ran the products as decode batches, the training
    // forward as one packed batch: the sums differ in order only.
    expectClose(actual[i], e, { atol: 1e-5 * scale, rtol: 1e-4 }, `LoRA gradient ${i} of ${expected.length}`);
  });
}

/** The same sequences, their projections left to be computed. */
const computing = (sequences: readonly SequenceInput[]): SequenceInput[] => sequences.map(({ projections, ...rest }) => rest);

interface Sampled {
  g: Gpu;
  model: LlamaModel;
  lora: LoraAdapters;
  store: ProjectionStore;
  sequences: SequenceInput[];
}

/** tiny with adapters whose B is not zero (so they are part of every output the store keeps), and a rollout sampled into a store. */
async function withRollout(sharePrompts: boolean, check: (sampled: Sampled) => Promise<void>, keepLogits = false): Promise<void> {
  const g = gpu();
  const model = tinyModel(g);
  const lora = attachLora(model, { rank: 4, alpha: 8, seed: 5 });
  lora.modules.forEach((m, i) => g.write(m.b, randn(m.b.size, 100 + i, 0.2)));
  // Blocks of 16 rows of logits, so a rollout's fill several and their copies cross block edges.
  const logits = keepLogits ? { vocab: model.config.vocab_size, rows: storeLogitRows(sharePrompts), blockRows: 16 } : undefined;
  const store = new ProjectionStore(g, model.linears(), storeRows(sharePrompts), logits);
  try {
    await check({ g, model, lora, store, sequences: await sample(model, store, sharePrompts) });
  } finally {
    store.dispose();
    lora.dispose();
  }
}

describe('the training forward reads the sampling forwards’ linear outputs', () => {
  const cases = [
    ['shared prompts', sharedPromptBatch, true, false],
    ['repeated prompts', sequenceBatch, true, false],
    ['shared prompts, each row prefilled its own prompt', sharedPromptBatch, false, false],
    ['shared prompts, the sampling’s logits kept too', sharedPromptBatch, true, true],
    ['shared prompts, each row prefilled its own prompt, logits kept', sharedPromptBatch, false, true],
  ] as const;
  for (const [name, layout, sharePrompts, keepLogits] of cases) {
    it(`gives the log-probs and LoRA gradients of the computed forward (${name}; ragged prompts and completions, two generation batches)`, () =>
      withRollout(sharePrompts, async ({ g, model, lora, store, sequences }) => {
        const readLogits = vi.spyOn(store, 'readLogits');
        expect(store.rows).toBe(storeRows(sharePrompts) - PROMPTS.flat().length * (MAX_NEW - 1) + sequences.reduce((n, s) => n + s.completionIds.length - 1, 0));
        const lengths = sequences.map((s) => s.completionIds.length);
        expect(Math.min(...lengths)).toBeLessThan(Math.max(...lengths));
        const advantages = randn(sequences.length, 9);
        const expected = await lossAndGrads(g, model, lora, layout(g, computing(sequences)), advantages);
        const read = layout(g, sequences);
        expect(read.projections?.store).toBe(store);
        const actual = await lossAndGrads(g, model, lora, read, advantages);
        // The LM head's logits are read (one call per chunk of rows) exactly when the store keeps them.
        expect(readLogits.mock.calls.length > 0).toBe(keepLogits);
        expectClose(actual.logprobs, expected.logprobs, { atol: 1e-5, rtol: 1e-5 }, 'log-probs');
        expectClose([actual.loss], [expected.loss], { atol: 1e-5, rtol: 1e-4 }, 'loss');
        expectSameGradients(actual.grads, expected.grads);
      }, keepLogits));
  }

  it('reads the kept outputs rather than computing them: weights changed in place give the old outputs', () =>
    withRollout(true, async ({ g, model, lora, sequences }) => {
      const advantages = randn(sequences.length, 11);
      const before = await lossAndGrads(g, model, lora, sharedPromptBatch(g, computing(sequences)), advantages);
      // The same modules (so the store cannot tell), other B: the computed forward changes, the read one does not.
      lora.modules.forEach((m, i) => g.write(m.b, randn(m.b.size, 700 + i, 0.2)));
      const after = await lossAndGrads(g, model, lora, sharedPromptBatch(g, computing(sequences)), advantages);
      const read = await lossAndGrads(g, model, lora, sharedPromptBatch(g, sequences), advantages);
      expect(Math.abs(after.loss - before.loss)).toBeGreaterThan(1e-3 * Math.abs(before.loss));
      expectClose(read.logprobs, before.logprobs, { atol: 1e-5, rtol: 1e-5 }, 'log-probs of the sampling weights');
    }));

  it('reads LoRA’s kept h = x·Aᵀ rather than computing it: A changed in place leaves the last down_proj’s dB as the sampling weights give it', () =>
    withRollout(true, async ({ g, model, lora, sequences }) => {
      const advantages = randn(sequences.length, 13);
      const before = await lossAndGrads(g, model, lora, sharedPromptBatch(g, sequences), advantages);
      // The last layer's output gradient does not depend on A where every output is read, so its
      // down_proj's dB = scale·gᵀ·h changes only if h is computed from the new A.
      lora.modules.forEach((m, i) => g.write(m.a, randn(m.a.size, 800 + i, 0.5)));
      const after = await lossAndGrads(g, model, lora, sharedPromptBatch(g, sequences), advantages);
      const last = lora.modules.length - 1;
      expect(lora.modules[last].linear.name).toBe(`model.layers.${model.config.num_hidden_layers - 1}.mlp.down_proj`);
      const dB = 2 * last + 1;
      expect(Math.max(...before.grads[dB].map(Math.abs))).toBeGreaterThan(0);
      expect(Array.from(after.grads[dB])).toEqual(Array.from(before.grads[dB]));
    }));

  it('refuses reads under other weights or adapters, and slots that do not match the sequence', () =>
    withRollout(true, async ({ g, model, lora, store, sequences }) => {
      const batch = sharedPromptBatch(g, sequences);
      lora.enabled = false;
      expect(() => g.tidy(() => completionLogprobs(model, batch))).toThrow(/q_proj now has no delta term \(adapters disabled\)/);
      lora.enabled = true;
      store.invalidate();
      expect(() => g.tidy(() => completionLogprobs(model, batch))).toThrow(/the weights changed since these outputs were written/);
      const [first] = sequences;
      expect(() => sharedPromptBatch(g, [{ ...first, projections: { store, slots: first.projections!.slots.slice(1) } }])).toThrow(
        /sharedPromptBatch: \d+ projection slots for a sequence of 5 \+ \d+ tokens \(one per token but the last\)/,
      );
      expect(() => sequenceBatch(g, [first, { ...sequences[1], projections: undefined }])).toThrow(/either every sequence has its projections in one store or none has/);
      expect(() => store.reserve(storeRows())).toThrow(/exceeds the \d+ rows it was made for/);
    }));
});

describe('sampling into a store', () => {
  it('binds the buffers a rollout without one binds: each decode step reuses the bind groups of the steps before at least as often, and samples the same tokens', async () => {
    const g = gpu();
    const model = tinyModel(g);
    const lora = attachLora(model, { rank: 4, alpha: 8, seed: 5 });
    const [prompts] = PROMPTS;
    const options = { maxNewTokens: MAX_NEW, temperature: 1, seed: 3, eosTokenIds: [] };
    const store = new ProjectionStore(g, model.linears(), 2 * projectionRows(prompts, MAX_NEW));
    try {
      // Each counted rollout follows one of its own kind, so both start from the pool and bind-group
      // cache that kind leaves behind.
      const rollout = async (projections?: ProjectionStore) => {
        await generate(model, prompts, { ...options, projections });
        const [dispatches, hits] = [g.commands.dispatchCount, g.commands.bindGroupHits];
        const tokens = (await generate(model, prompts, { ...options, projections })).map((c) => c.tokens);
        return { tokens, dispatches: g.commands.dispatchCount - dispatches, hits: g.commands.bindGroupHits - hits };
      };
      const without = await rollout();
      const kept = await rollout(store);
      expect(kept.tokens).toEqual(without.tokens);
      expect(kept.dispatches).toBe(without.dispatches);
      expect(without.hits).toBeGreaterThan(without.dispatches / 2);
      expect(kept.hits).toBeGreaterThanOrEqual(without.hits);
    } finally {
      store.dispose();
      lora.dispose();
    }
  });
});

describe('the sampling’s logits kept by slot', () => {
  it('keeps a slot that several rows share once, copies runs across block edges, and refuses what it cannot answer', async () => {
    const g = gpu();
    const model = tinyModel(g);
    const vocab = 12;
    const store = new ProjectionStore(g, model.linears(), 40, { vocab, rows: 7, blockRows: 3 });
    try {
      const [a, b] = [randn(5 * vocab, 1), randn(3 * vocab, 2)];
      g.tidy(() => {
        store.writeLogits(g.tensor(a, [5, vocab]), [10, 10, 11, 12, 13]);
        store.writeLogits(g.tensor(b, [3, vocab]), [14, 11, 15]);
      });
      const row = (t: Float32Array, r: number) => Array.from(t.subarray(r * vocab, (r + 1) * vocab));
      const kept = new Map([[10, row(a, 0)], [11, row(a, 2)], [12, row(a, 3)], [13, row(a, 4)], [14, row(b, 0)], [15, row(b, 2)]]);
      const slots = [15, 13, 10, 11, 14, 12, 10];
      const read = g.tidy(() => g.keep(store.readLogits(slots)));
      expect(Array.from(await read.toArray())).toEqual(slots.flatMap((s) => kept.get(s)!));
      read.dispose();
      expect(() => store.readLogits([16])).toThrow(/no logits were kept at slot 16/);
      expect(() => g.tidy(() => store.writeLogits(g.tensor(randn(2 * vocab, 3), [2, vocab]), [20, 21]))).toThrow(/8 rows of logits exceed the 7 it was made for/);
      expect(() => store.readLogits([20])).toThrow(/no logits were kept at slot 20/);
      expect(() => g.tidy(() => store.writeLogits(g.tensor(randn(2 * vocab, 3), [2, vocab]), [20]))).toThrow(/logits \[2, 12\] are not \[1, 12\]/);
      store.invalidate();
      expect(() => store.readLogits([10])).toThrow(/the weights changed since these logits were written/);
      store.reset();
      expect(() => store.readLogits([10])).toThrow(/no logits were kept at slot 10/);
    } finally {
      store.dispose();
    }
    const plain = new ProjectionStore(g, model.linears(), 4);
    expect(() => plain.readLogits([0])).toThrow(/this store keeps no logits/);
    plain.dispose();
  });
});

describe('--rollout-projections', () => {
  // A random model and a reward that varies between completions (the share of digits), so the step has a gradient.
  const tiny = prepareTinyRun();
  const settings = (rolloutProjections: GrpoConfig['rolloutProjections']): GrpoConfig => ({
    ...DEFAULT_CONFIG,
    model: tiny.model,
    rewardConfig: tiny.rewardConfig,
    task: 'tiny-arithmetic',
    promptsPerStep: 3,
    numGenerations: 4,
    generationBatchSize: 8,
    microBatchSize: 4,
    maxNewTokens: 8,
    loraRank: 4,
    learningRate: 1e-2,
    zeroAdvantageCompletions: 'train',
    steps: 2,
    numIterations: 2,
    evalPrompts: 0,
    rolloutProjections,
    outDir: mkdtempSync(join(tmpdir(), 'rollout-projections-')),
  });

  async function run(setting: GrpoConfig['rolloutProjections']) {
    const trainer = await GrpoTrainer.create(gpu(), settings(setting), repositoryRoot());
    try {
      const rows: StepMetrics[] = [];
      await trainer.train((m) => rows.push(m));
      return { rows };
    } finally {
      await trainer.close();
      trainer.optimizer.dispose();
      trainer.lora.dispose();
    }
  }

  it('trains like recomputing: the first step on a rollout has the same loss and gradient norm; the next one computes', async () => {
    // Two iterations per rollout: the old log-probs' forward and the first step read the store, the second step computes.
    const reused = await run('reuse');
    const recomputed = await run('recompute');
    expect(reused.rows).toHaveLength(2);
    expect(reused.rows[0]['completions/mean_length']).toBe(recomputed.rows[0]['completions/mean_length']);
    expect(recomputed.rows[0].grad_norm).toBeGreaterThan(0);
    expectClose([reused.rows[0].loss, reused.rows[0].grad_norm], [recomputed.rows[0].loss, recomputed.rows[0].grad_norm], { atol: 1e-6, rtol: 1e-4 }, 'step 1');
    expect(Number.isFinite(reused.rows[1].loss)).toBe(true);
  });

  it('is refused with LoRA dropout, and a checkpoint from before it existed resumes only recomputing', () => {
    expect(() => validateConfig({ ...settings('reuse'), loraDropout: 0.1 })).toThrow(/--rollout-projections reuse with --lora-dropout 0.1/);
    const { rolloutProjections, ...older } = settings('auto');
    expect(() => checkSameRun({ config: older }, settings('auto'), {})).toThrow(/--rollout-projections "recompute" vs "auto"/);
    expect(() => checkSameRun({ config: older }, settings('recompute'), {})).not.toThrow();
    expect(rolloutProjections).toBe('auto');
  });
});
