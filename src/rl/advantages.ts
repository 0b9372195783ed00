/**
 * Group-relative advantages for GRPO, as TRL's GRPOTrainer computes them in
 * `_generate_and_score_completions` (trl 1.16), on the host in float64: a step has only
 * numPrompts·G rewards per reward function.
 *
 * Completions are grouped consecutively, G per prompt. A reward of NaN means "this function did
 * not score this completion" (TRL's None): sums skip it (nansum), means and standard deviations
 * ignore it (nanmean / TRL's nanstd), and a completion that no function scored gets advantage 0.
 */

/** How advantages are divided by a standard deviation: per group (TRL's default), over the batch, or not at all. */
export type ScaleRewards = 'group' | 'batch' | 'none';

/**
 * 'sum_then_normalize' (TRL's default): weighted sum of the functions, then centre per group and
 * scale as `scaleRewards` says. 'normalize_then_sum' (GDPO): centre and scale each function per
 * group, sum them weighted, then standardise over the batch (scaleRewards is not used).
 */
export type RewardAggregation = 'sum_then_normalize' | 'normalize_then_sum';

export interface RewardFunctionScores {
  /** Used in the logged metric names `rewards/{name}/mean` and `rewards/{name}/std`. */
  name: string;
  /** One reward per completion, numPrompts·G of them; NaN where the function gave no score. */
  rewards: ArrayLike<number>;
}

export interface AdvantageOptions {
  /** G, the completions per prompt (TRL's num_generations). */
  numGenerations: number;
  scaleRewards?: ScaleRewards;
  /** One weight per reward function (TRL's reward_weights); all 1 when absent. */
  rewardWeights?: readonly number[];
  aggregation?: RewardAggregation;
}

export interface Advantages {
  /** One advantage per completion. */
  advantages: Float64Array;
  /** The weighted sum of the functions' rewards per completion, NaN where no function scored it. */
  rewards: Float64Array;
  /**
   * What TRL logs for the step, under TRL's names: `reward`, `reward_std`,
   * `frac_reward_zero_std`, and `rewards/{name}/mean`, `rewards/{name}/std` per function.
   */
  metrics: Record<string, number>;
}

/** TRL adds this to the standard deviation before dividing, so a group of equal rewards gives 0, not NaN. */
const STD_EPSILON = 1e-4;

function nanmean(values: ArrayLike<number>): number {
  let sum = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) continue;
    sum += values[i];
    count++;
  }
  return sum / count;
}

/** TRL's `nanstd`: Bessel-corrected over the non-NaN values; NaN when fewer than two remain. */
function nanstd(values: ArrayLike<number>): number {
  const mean = nanmean(values);
  let squares = 0;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) continue;
    squares += (values[i] - mean) ** 2;
    count++;
  }
  return count > 1 ? Math.sqrt(squares / (count - 1)) : NaN;
}

/** torch.isclose(std, 0) with its default tolerances (atol 1e-8); false for NaN. */
const isZeroStd = (std: number): boolean => Math.abs(std) <= 1e-8;

/** A group's elements: completions [g·G, (g + 1)·G). */
const groupOf = (values: Float64Array, g: number, size: number): Float64Array => values.subarray(g * size, (g + 1) * size);

/** Σ_f w_f·r_f per completion, skipping NaN terms (torch.nansum: 0 when every term is NaN). */
function weightedNansum(perFunction: readonly Float64Array[], weights: readonly number[], n: number): Float64Array {
  const out = new Float64Array(n);
  perFunction.forEach((rewards, f) => {
    for (let i = 0; i < n; i++) {
      const term = weights[f] * rewards[i];
      if (!Number.isNaN(term)) out[i] += term;
    }
  });
  return out;
}

/** NaN where no function scored the completion (TRL's unscorable rows, kept out of baselines and logged means). */
function markUnscorable(values: Float64Array, perFunction: readonly Float64Array[]): Float64Array {
  return values.map((v, i) => (perFunction.every((rewards) => Number.isNaN(rewards[i])) ? NaN : v));
}

/** Each completion's group mean and group std (TRL takes the std as 0 for groups of one, as in evaluation with one generation). */
function groupStats(values: Float64Array, groupSize: number): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(values.length);
  const std = new Float64Array(values.length);
  for (let g = 0; g < values.length / groupSize; g++) {
    const group = groupOf(values, g, groupSize);
    groupOf(mean, g, groupSize).fill(nanmean(group));
    groupOf(std, g, groupSize).fill(groupSize > 1 ? nanstd(group) : 0);
  }
  return { mean, std };
}

/** (v − mean) / (std + 1e-4) elementwise. */
const standardise = (values: Float64Array, mean: Float64Array, std: Float64Array): Float64Array =>
  values.map((v, i) => (v - mean[i]) / (std[i] + STD_EPSILON));

function checkInputs(functions: readonly RewardFunctionScores[], options: AdvantageOptions): { n: number; weights: readonly number[] } {
  const op = 'groupAdvantages';
  const { numGenerations: g } = options;
  if (functions.length === 0) throw new Error(`${op}: needs at least one reward function`);
  const n = functions[0].rewards.length;
  for (const f of functions) {
    if (f.rewards.length !== n) {
      throw new Error(`${op}: reward function '${f.name}' has ${f.rewards.length} rewards, '${functions[0].name}' has ${n}`);
    }
    for (let i = 0; i < n; i++) {
      // NaN is "no score"; an infinite reward is a broken reward function, not a signal.
      if (Math.abs(f.rewards[i]) === Infinity) throw new Error(`${op}: reward function '${f.name}' gave ${f.rewards[i]} for completion ${i}`);
    }
  }
  if (!Number.isInteger(g) || g < 1) throw new Error(`${op}: numGenerations must be a positive integer, got ${g}`);
  if (n === 0 || n % g !== 0) throw new Error(`${op}: ${n} rewards do not form groups of numGenerations = ${g}`);
  const weights = options.rewardWeights ?? functions.map(() => 1);
  if (weights.length !== functions.length) {
    throw new Error(`${op}: ${weights.length} reward weights for ${functions.length} reward functions`);
  }
  return { n, weights };
}

/** Advantages and logged reward statistics for one generation batch, as TRL computes them. */
export function groupAdvantages(functions: readonly RewardFunctionScores[], options: AdvantageOptions): Advantages {
  const { n, weights } = checkInputs(functions, options);
  const { numGenerations: groupSize, scaleRewards = 'group', aggregation = 'sum_then_normalize' } = options;
  const perFunction = functions.map((f) => Float64Array.from(f.rewards));
  const rewards = markUnscorable(weightedNansum(perFunction, weights, n), perFunction);

  let advantages: Float64Array;
  let std: Float64Array;
  if (aggregation === 'sum_then_normalize') {
    const group = groupStats(rewards, groupSize);
    // With 'none' the group std is still computed: it decides frac_reward_zero_std.
    std = scaleRewards === 'batch' ? new Float64Array(n).fill(n > 1 ? nanstd(rewards) : 0) : group.std;
    advantages = scaleRewards === 'none' ? rewards.map((r, i) => r - group.mean[i]) : standardise(rewards, group.mean, std);
  } else {
    const standardised = perFunction.map((r) => {
      const { mean, std: functionStd } = groupStats(r, groupSize);
      return standardise(r, mean, functionStd);
    });
    const summed = markUnscorable(weightedNansum(standardised, weights, n), perFunction);
    std = new Float64Array(n).fill(n > 1 ? nanstd(summed) : 0);
    advantages = standardise(summed, new Float64Array(n).fill(nanmean(summed)), std);
  }
  // Unscorable completions carry no learning signal.
  advantages = advantages.map((a) => (Number.isNaN(a) ? 0 : a));

  const metrics: Record<string, number> = {};
  functions.forEach((f, k) => {
    metrics[`rewards/${f.name}/mean`] = nanmean(perFunction[k]);
    metrics[`rewards/${f.name}/std`] = nanstd(perFunction[k]);
  });
  metrics.reward = nanmean(rewards);
  metrics.reward_std = nanstd(rewards);
  metrics.frac_reward_zero_std = std.reduce((count, s) => count + (isZeroStd(s) ? 1 : 0), 0) / n;
  return { advantages, rewards, metrics };
}
