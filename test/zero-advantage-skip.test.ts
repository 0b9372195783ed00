import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repositoryRoot } from '../src/io/repository-root.js';
import { DEFAULT_CONFIG, type GrpoConfig } from '../src/rl/grpo-config.js';
import { GrpoTrainer } from '../src/rl/grpo-trainer.js';
import type { StepMetrics } from '../src/rl/grpo-update.js';
import { useGpu } from './helpers/gpu.js';
import { rng } from './helpers/random.js';

const gpu = useGpu();

// With β = 0 a micro-batch whose rows all have advantage 0 has a gradient of exactly 0, so leaving
// out its forward and backward must change no bit of the parameters: not the accumulated gradient,
// not AdamW's moments (a step where every micro-batch is left out still steps them), not the LoRA
// dropout masks of the micro-batches after it.
describe('micro-batches whose completions all have advantage 0', () => {
  const generations = 4;
  const prompts = 3;

  async function train(zeroAdvantageCompletions: GrpoConfig['zeroAdvantageCompletions'], lossType: GrpoConfig['lossType'], loraDropout: number, microBatchSize = generations) {
    const trainer = await GrpoTrainer.create(
      gpu(),
      {
        ...DEFAULT_CONFIG,
        model: 'tiny',
        task: 'tiny-arithmetic',
        promptsPerStep: prompts,
        numGenerations: generations,
        generationBatchSize: prompts * generations,
        // By default one group per micro-batch: groups 0 and 2 of the first step are left out, and all of the second.
        microBatchSize,
        loraRank: 4,
        loraDropout,
        lossType,
        zeroAdvantageCompletions,
        evalPrompts: 0,
        outDir: mkdtempSync(join(tmpdir(), 'zero-advantage-')),
      },
      repositoryRoot(),
    );
    try {
      const random = rng(11);
      const vocab = trainer.loaded.model.config.vocab_size;
      const sequences = Array.from({ length: prompts }, (_, p) => {
        // The last group's prompt is one token: its layout runs one model forward, not two.
        const promptIds = Array.from({ length: p === prompts - 1 ? 1 : 3 + 2 * p }, () => Math.floor(random() * vocab));
        return Array.from({ length: generations }, (_, i) => ({
          promptIds,
          completionIds: Array.from({ length: 2 + ((p + i) % 4) }, () => Math.floor(random() * vocab)),
        }));
      }).flat();
      const mixed = Float64Array.from(sequences, (_, i) => (Math.floor(i / generations) === 1 ? random() * 2 - 1 : 0));
      const rows: StepMetrics[] = [];
      const parameters: Float32Array[][] = [];
      // AdamW's first moments: after the first step (1 − β₁)·g for the step's clipped gradient g.
      const firstMoments: Float32Array[][] = [];
      for (const advantages of [mixed, new Float64Array(sequences.length)]) {
        rows.push(await trainer.trainOn(sequences, advantages));
        parameters.push(await trainer.gpu.readAll(trainer.lora.parameters()));
        firstMoments.push((await trainer.optimizer.exportState()).m);
      }
      return { rows, parameters, firstMoments, dropoutStream: trainer.lora.dropoutStream };
    } finally {
      await trainer.close();
    }
  }

  for (const lossType of ['dapo', 'grpo', 'bnpo'] as const) {
    it(`are left out as whole micro-batches with the same parameters, bit for bit, as when they train (${lossType}, LoRA dropout)`, async () => {
      const skipped = await train('skip', lossType, 0.25);
      const trained = await train('train', lossType, 0.25);
      expect(skipped.rows.map((r) => r['completions/skipped_in_training'])).toEqual([8, 12]);
      expect(trained.rows.map((r) => r['completions/skipped_in_training'])).toEqual([0, 0]);
      expect(skipped.dropoutStream).toBe(trained.dropoutStream);
      expect(skipped.dropoutStream).toBeGreaterThan(0);
      for (const step of [0, 1]) {
        // The first step moves the adapters; the second, with no gradient at all, moves them by AdamW's momentum alone.
        expect(skipped.parameters[step]).toEqual(trained.parameters[step]);
        expect(skipped.rows[step].grad_norm).toBe(trained.rows[step].grad_norm);
        expect(skipped.rows[step].loss).toBe(trained.rows[step].loss);
      }
      expect(skipped.parameters[1]).not.toEqual(skipped.parameters[0]);
      expect(skipped.rows[0].grad_norm).toBeGreaterThan(0);
      expect(skipped.rows[1].grad_norm).toBe(0);
      // Entropy and the clip metrics describe the micro-batches that ran: none in the second step.
      expect(skipped.rows[1].entropy).toBeUndefined();
      expect(trained.rows[1].entropy).toBeGreaterThan(0);
      expect(skipped.rows[0]['tokens/computed']).toBeLessThan(trained.rows[0]['tokens/computed']);
    });
  }

  it('leave a dapo step without LoRA dropout as rows: the same gradient up to float rounding', async () => {
    // Micro-batches of 6 split group 1, so no micro-batch of the first step holds zero advantages alone.
    const skipped = await train('skip', 'dapo', 0, 6);
    const trained = await train('train', 'dapo', 0, 6);
    expect(skipped.rows.map((r) => r['completions/skipped_in_training'])).toEqual([8, 12]);
    expect(skipped.rows[0]['tokens/computed']).toBeLessThan(trained.rows[0]['tokens/computed']);
    // dapo divides by the rollout's tokens (TRL's num_items_in_batch) whichever rows are trained.
    expect(Math.abs(skipped.rows[0].loss - trained.rows[0].loss)).toBeLessThanOrEqual(1e-6 * Math.abs(trained.rows[0].loss));
    expect(Math.abs(skipped.rows[0].grad_norm - trained.rows[0].grad_norm)).toBeLessThanOrEqual(1e-5 * trained.rows[0].grad_norm);
    for (const step of [0, 1]) {
      // The gradient itself, through AdamW's first moments, entry by entry: within a few float32
      // rounding steps of the largest entry (1.8e-7 of it measured with the default kernels, which
      // useGpu pins; when tuned winners give the shape classes different kernels, the two paths'
      // products, of different row counts, can run different kernels: up to 1.3e-6 measured over 54
      // such mixes, the summation orders of two kernels rather than of one). The parameters are not compared
      // entry by entry: AdamW moves a weight by about lr·g/(|g| + 1e-8), so an entry whose gradient is
      // itself at rounding level (|g| ≈ 2e-8, the sum of terms that cancel) moves by up to lr·(its
      // relative rounding), and any change in summation order shows there in full.
      const [a, b] = [skipped.firstMoments[step].flatMap((t) => [...t]), trained.firstMoments[step].flatMap((t) => [...t])];
      const scale = Math.max(...b.map(Math.abs));
      const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
      expect(scale, `step ${step + 1}`).toBeGreaterThan(0);
      expect(worst / scale, `step ${step + 1}`).toBeLessThan(1e-6);
    }
    expect(skipped.parameters[0]).not.toEqual(skipped.parameters[1]);
  });
});
