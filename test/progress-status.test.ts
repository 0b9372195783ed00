import { describe, expect, it } from 'vitest';
import { repositoryRoot } from '../src/io/repository-root.js';
import { GrpoTrainer } from '../src/rl/grpo-trainer.js';
import type { StepMetrics } from '../src/rl/grpo-update.js';
import { useGpu } from './helpers/gpu.js';
import { tinyGrpoConfig } from './helpers/tiny-trainer.js';

const gpu = useGpu();

describe('what a GRPO step under way is doing (the progress line)', () => {
  it('says each phase of each step: sampling token by token, scoring, micro-batches, evaluation, checkpoint', async () => {
    // Two generation batches a step: the token count runs on across them.
    const settings = { promptsPerStep: 2, numGenerations: 4, generationBatchSize: 4, microBatchSize: 3, maxNewTokens: 12, zeroAdvantageCompletions: 'train' } as const;
    const trainer = await GrpoTrainer.create(gpu(), tinyGrpoConfig({ ...settings, steps: 2, evalEvery: 2, saveEvery: 2, evalPrompts: 2, skipEvalAtStart: true }), repositoryRoot());
    const statuses: string[] = [];
    const rows: StepMetrics[] = [];
    trainer.onProgress = (status) => statuses.push(status);
    try {
      await trainer.train((m) => rows.push(m));
    } finally {
      await trainer.close();
    }
    for (const step of [1, 2]) {
      const mine = statuses.filter((s) => s.startsWith(`step ${step}/2: `)).map((s) => s.slice(`step ${step}/2: `.length));
      const sampling = mine.filter((s) => s.startsWith('sampling 2 prompts × 4, '));
      expect(sampling[0]).toBe(`sampling 2 prompts × 4, prefill${step === 1 ? ' (a kernel compiles on its first use)' : ''}`);
      const tokens = sampling.slice(1).map((s) => Number(/, (\d+) tokens, decode step \d+ of ≤ 12$/.exec(s)?.[1]));
      expect(tokens.length).toBeGreaterThan(1);
      // Never fewer than before, across the two generation batches, ending at the rollout's tokens.
      expect(tokens.every((n, i) => i === 0 || n >= tokens[i - 1])).toBe(true);
      expect(tokens.at(-1)).toBe(rows[step - 1]['completions/mean_length'] * 8);
      const rest = mine.slice(sampling.length);
      expect(rest).toEqual([
        'scoring 8 completions',
        'forward/backward, 1 of 3 micro-batches',
        'forward/backward, 2 of 3 micro-batches',
        'forward/backward, 3 of 3 micro-batches',
        ...(step === 2 ? ['held-out evaluation (2 prompts)', 'saving a checkpoint'] : []),
      ]);
    }
    expect(statuses.every((s) => /^step [12]\/2: /.test(s))).toBe(true);
  });
});
