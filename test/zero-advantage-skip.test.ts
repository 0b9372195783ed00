import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repositoryRoot } from '../src/io/repository-root.js';
import { DEFAULT_CONFIG, type GrpoConfig } from '../src/rl/grpo-config.js';
import { GrpoTrainer, type StepMetrics } from '../src/rl/grpo-trainer.js';
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

  async function train(zeroAdvantageMicroBatches: GrpoConfig['zeroAdvantageMicroBatches'], lossType: GrpoConfig['lossType']) {
    const trainer = await GrpoTrainer.create(
      gpu(),
      {
        ...DEFAULT_CONFIG,
        model: 'tiny',
        task: 'tiny-arithmetic',
        promptsPerStep: prompts,
        numGenerations: generations,
        generationBatchSize: prompts * generations,
        // One group per micro-batch: groups 0 and 2 of the first step are left out, and all of the second.
        microBatchSize: generations,
        loraRank: 4,
        loraDropout: 0.25,
        lossType,
        zeroAdvantageMicroBatches,
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
      for (const advantages of [mixed, new Float64Array(sequences.length)]) {
        rows.push(await trainer.trainOn(sequences, advantages));
        parameters.push(await trainer.gpu.readAll(trainer.lora.parameters()));
      }
      return { rows, parameters, dropoutStream: trainer.lora.dropoutStream };
    } finally {
      await trainer.close();
    }
  }

  for (const lossType of ['dapo', 'grpo', 'bnpo'] as const) {
    it(`are left out with the same parameters, bit for bit, as when they run (${lossType}, LoRA dropout)`, async () => {
      const skipped = await train('skip', lossType);
      const ran = await train('run', lossType);
      expect(skipped.rows.map((r) => r['micro_batches/skipped'])).toEqual([2, 3]);
      expect(ran.rows.map((r) => r['micro_batches/skipped'])).toEqual([0, 0]);
      expect(skipped.dropoutStream).toBe(ran.dropoutStream);
      expect(skipped.dropoutStream).toBeGreaterThan(0);
      for (const step of [0, 1]) {
        // The first step moves the adapters; the second, with no gradient at all, moves them by AdamW's momentum alone.
        expect(skipped.parameters[step]).toEqual(ran.parameters[step]);
        expect(skipped.rows[step].grad_norm).toBe(ran.rows[step].grad_norm);
        expect(skipped.rows[step].loss).toBe(ran.rows[step].loss);
      }
      expect(skipped.parameters[1]).not.toEqual(skipped.parameters[0]);
      expect(skipped.rows[0].grad_norm).toBeGreaterThan(0);
      expect(skipped.rows[1].grad_norm).toBe(0);
      // Entropy and the clip metrics describe the micro-batches that ran: none in the second step.
      expect(skipped.rows[1].entropy).toBeUndefined();
      expect(ran.rows[1].entropy).toBeGreaterThan(0);
      expect(skipped.rows[0]['tokens/computed']).toBeLessThan(ran.rows[0]['tokens/computed']);
    });
  }
});
