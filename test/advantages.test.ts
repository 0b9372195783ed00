import { beforeAll, describe, expect, it } from 'vitest';
import { groupAdvantages, type AdvantageOptions, type RewardAggregation, type RewardFunctionScores, type ScaleRewards } from '../src/rl/advantages.js';
import { expectClose } from './helpers/check.js';
import { rng } from './helpers/random.js';
import { runPython } from './python/run-python.js';

interface Case {
  label: string;
  functions: RewardFunctionScores[];
  options: Required<AdvantageOptions>;
}

/**
 * Rewards on a coarse grid (so groups of equal rewards occur), with NaN holes: a completion one
 * function skipped, one that no function scored, and (from the 3rd prompt on) a whole group that
 * the second function skipped.
 */
function makeFunctions(numPrompts: number, g: number, seed: number): RewardFunctionScores[] {
  const pick = rng(seed);
  const n = numPrompts * g;
  const correctness = Array.from({ length: n }, () => Math.floor(pick() * 3) / 2);
  const format: number[] = Array.from({ length: n }, () => (pick() < 0.5 ? 0 : 0.25));
  // Prompt 0: every completion got the same reward from both functions (a zero-std group).
  for (let i = 0; i < g; i++) [correctness[i], format[i]] = [1, 0.25];
  if (numPrompts > 1) format[g] = NaN;
  if (numPrompts > 1 && g > 1) [correctness[g + 1], format[g + 1]] = [NaN, NaN];
  if (numPrompts > 2) for (let i = 2 * g; i < 3 * g; i++) format[i] = NaN;
  return [
    { name: 'correctness', rewards: correctness },
    { name: 'format', rewards: format },
  ];
}

const cases: Case[] = [];
for (const aggregation of ['sum_then_normalize', 'normalize_then_sum'] as RewardAggregation[]) {
  for (const scaleRewards of ['group', 'batch', 'none'] as ScaleRewards[]) {
    for (const [numPrompts, g] of [[4, 4], [3, 2], [2, 1], [1, 1]]) {
      cases.push({
        label: `${aggregation}, scale ${scaleRewards}, ${numPrompts} prompts x ${g}`,
        functions: makeFunctions(numPrompts, g, cases.length + 1),
        options: { numGenerations: g, scaleRewards, aggregation, rewardWeights: [1, 0.5] },
      });
    }
  }
}
cases.push({
  label: 'one function, default weights, 8 completions per prompt',
  functions: [{ name: 'accuracy', rewards: Array.from({ length: 16 }, (_, i) => (i * 7) % 5) }],
  options: { numGenerations: 8, scaleRewards: 'group', aggregation: 'sum_then_normalize', rewardWeights: [1] },
});

interface Reference {
  advantages: number[];
  metrics: Record<string, number | null>;
}

let references: Reference[];
beforeAll(() => {
  const requests = cases.map(({ functions, options }) => ({
    kind: 'advantages',
    rewards_per_func: Array.from({ length: functions[0].rewards.length }, (_, i) =>
      functions.map((f) => (Number.isNaN(f.rewards[i]) ? null : f.rewards[i])),
    ),
    names: functions.map((f) => f.name),
    weights: options.rewardWeights,
    num_generations: options.numGenerations,
    scale_rewards: options.scaleRewards,
    aggregation: options.aggregation,
  }));
  references = JSON.parse(runPython('trl_grpo_reference.py', [], JSON.stringify(requests))) as Reference[];
}, 120_000);

// Both sides compute in float64, but TRL's nanstd forms its Bessel factor count/(count − 1) as an
// int/int division, which torch does in float32: its stds (and so the advantages and logged stds)
// carry a relative error up to 2^-24 from that one rounding.
const TOL = { atol: 1e-12, rtol: 1e-7 };

describe('groupAdvantages vs TRL GRPOTrainer (its own source lines, float64)', () => {
  cases.forEach((c, k) => {
    it(c.label, () => {
      const { advantages, metrics } = groupAdvantages(c.functions, c.options);
      const reference = references[k];
      expectClose(advantages, reference.advantages, TOL, 'advantages');
      expect(Object.keys(metrics).sort()).toEqual(Object.keys(reference.metrics).sort());
      for (const [name, expected] of Object.entries(reference.metrics)) {
        // TRL logs NaN (a std of one value) as null here.
        if (expected === null) expect(metrics[name], name).toBeNaN();
        else expectClose([metrics[name]], [expected], TOL, name);
      }
    });
  });
});

describe('groupAdvantages by hand', () => {
  it('centres and scales a group of two by the unbiased std + 1e-4', () => {
    const { advantages, rewards, metrics } = groupAdvantages([{ name: 'r', rewards: [1, 0, 3, 3] }], { numGenerations: 2 });
    const a = 0.5 / (Math.SQRT1_2 + 1e-4);
    expectClose(advantages, [a, -a, 0, 0], { atol: 1e-15, rtol: 1e-15 }, 'advantages');
    expect([...rewards]).toEqual([1, 0, 3, 3]);
    expect(metrics.frac_reward_zero_std).toBe(0.5);
  });

  it('gives an unscored completion advantage 0 and keeps it out of the baseline', () => {
    const { advantages, rewards } = groupAdvantages([{ name: 'r', rewards: [2, NaN, 0] }], { numGenerations: 3, scaleRewards: 'none' });
    expect([...advantages]).toEqual([1, 0, -1]);
    expect(rewards[1]).toBeNaN();
  });
});

describe('groupAdvantages rejects bad input, naming the problem', () => {
  const r = { name: 'r', rewards: [1, 2, 3, 4] };
  it.each([
    [[r], { numGenerations: 3 }, /4 rewards do not form groups of numGenerations = 3/],
    [[r], { numGenerations: 0 }, /numGenerations must be a positive integer/],
    [[r, { name: 's', rewards: [1, 2] }], { numGenerations: 2 }, /'s' has 2 rewards, 'r' has 4/],
    [[r], { numGenerations: 2, rewardWeights: [1, 2] }, /2 reward weights for 1 reward functions/],
    [[{ name: 'r', rewards: [1, Infinity] }], { numGenerations: 2 }, /'r' gave Infinity for completion 1/],
    [[], { numGenerations: 2 }, /at least one reward function/],
  ])('case %#', (functions, options, message) => {
    expect(() => groupAdvantages(functions, options)).toThrow(message);
  });
});
