import { isGradEnabled, recordOp } from '../autograd/grad-node.js';
import { formatShape, type Tensor } from '../gpu/tensor.js';
import { mul } from '../ops/binary.js';
import { assertGradientFits } from '../ops/gradient.js';
import { view } from '../ops/layout.js';
import { rowGrid, rowWorkgroupSize } from '../ops/rows.js';
import { assertF32, assertRank, assertSameShape } from '../ops/shape.js';

/**
 * The GRPO objective as TRL's GRPOTrainer._compute_loss computes it (trl 1.16), on the GPU: a
 * fused kernel per completion row (per-token terms, the sequence-level ratio's row reduction and
 * dloss/dlogprobs), then one small kernel for the loss type's normaliser and the logged metrics.
 *
 * Loss types (TRL's names):
 * - grpo: each row's mean over its tokens, averaged over rows.
 * - bnpo: Σ over the micro-batch's tokens / its token count.
 * - dr_grpo: Σ over tokens / (rows · maxCompletionLength).
 * - dapo (TRL's default): Σ over tokens / numItemsInBatch, the token count of the whole generation
 *   batch, so the micro-batches' losses add up to the full batch's.
 * - luspo: each row's token sum, averaged over rows (length-unbiased GSPO).
 * - cispo: −min(w, ε_high)·A·logp with the ratio w detached, normalised as dapo.
 * - sapo: a soft sigmoid gate on the ratio instead of the clip, normalised as grpo.
 * - vespo: −φ(w)·A·logp with a detached gamma weight φ of the sequence ratio, normalised as dapo.
 * The first five share PPO's clipped surrogate −min(w·A, clip(w, 1 − ε_low, 1 + ε_high)·A).
 *
 * Where this differs from TRL, on purpose:
 * - k1 and k2 are extra KL estimators (TRL has k3 only); k3 itself is evaluated by its Taylor
 *   series near 0, where TRL's f32 exp(d) − d − 1 cancels to ~1e-7 absolute error.
 * - Masked-out tokens are skipped, so non-finite padding cannot turn the loss into NaN (TRL
 *   multiplies it by 0, which gives NaN for inf).
 * - Metrics of token-level ratios are mask-weighted for any T; TRL decides "one value per row"
 *   from the tensor's shape, so with T = 1 it also counts masked tokens.
 * - One process, training mode. Not implemented: TRL's off-policy sequence mask, entropy-quantile
 *   mask, vLLM importance-sampling correction, entropy bonus and MoE aux loss.
 */
export type GrpoLossType = 'grpo' | 'bnpo' | 'dr_grpo' | 'dapo' | 'luspo' | 'cispo' | 'sapo' | 'vespo';

/**
 * The KL estimate of the policy from the reference, per token (x = ref − logp): k1 = −x,
 * k2 = ½x², k3 = exp(x) − x − 1 (the only one TRL implements).
 */
export type KlEstimator = 'k1' | 'k2' | 'k3';

export interface GrpoLossInputs {
  /** The policy's log-probs of the completion tokens [B, T], recorded for autograd. */
  logprobs: Tensor;
  /** Log-probs of the policy that sampled the completions [B, T] (num_iterations > 1); absent: logprobs detached (ratio 1, gradient as TRL). */
  oldLogprobs?: Tensor;
  /** The reference model's log-probs [B, T]; needed when beta ≠ 0. */
  refLogprobs?: Tensor;
  /** One advantage per completion [B]. */
  advantages: Tensor;
  /** Completion-token weights [B, T] (1 = token, 0 = padding, or a whole row zeroed for a truncated completion). */
  mask: Tensor;
}

export interface GrpoLossOptions {
  /** KL coefficient; 0 leaves the KL term (and the reference log-probs) out. */
  beta: number;
  epsilonLow: number;
  epsilonHigh: number;
  /** Two-sided clipping (TRL's `delta`): the unclipped ratio is capped at delta. */
  delta?: number;
  lossType: GrpoLossType;
  /** 'token': one ratio per token; 'sequence' (GSPO): exp of the row's mean log ratio. */
  importanceSampling: 'token' | 'sequence';
  klEstimator: KlEstimator;
  /** TRL's use_bias_correction_kl (its default true): the KL is multiplied by the (differentiable) ratio. */
  klBiasCorrection?: boolean;
  /** dr_grpo's constant normaliser. */
  maxCompletionLength?: number;
  /** dapo/cispo/vespo: completion tokens in the whole generation batch. */
  numItemsInBatch?: number;
  /** TRL divides the loss of each micro-batch by this (default 1). */
  gradientAccumulationSteps?: number;
  /** Micro-batches per generation batch (default gradientAccumulationSteps): rescales dapo's normaliser to one accumulation window. */
  stepsPerGeneration?: number;
  /** SAPO's gate temperatures for positive / non-positive advantages (TRL: 1.0, 1.05). */
  sapoTemperature?: { positive: number; negative: number };
  /** VESPO's gamma exponents k and decays λ for non-negative / negative advantages (TRL: k 2, λ 3; k 3, λ 2). */
  vespo?: { kPositive: number; lambdaPositive: number; kNegative: number; lambdaNegative: number };
}

export interface GrpoLossOutput {
  /** [1], differentiable in inputs.logprobs. */
  loss: Tensor;
  /** [7]: see GRPO_METRIC_SLOTS; read it once per step with grpoMetrics(). */
  metrics: Tensor;
}

/** Positions in the metrics tensor. */
export const GRPO_METRIC_SLOTS = { kl: 0, clipLowMean: 1, clipHighMean: 2, clipRegionMean: 3, clipLowMin: 4, clipHighMax: 5, vespoPhiMean: 6 } as const;
const METRIC_COUNT = 7;
const ROW_STATS = 8;
const POLICY = { clipped: 0, sapo: 1, cispo: 2, vespo: 3 } as const;
const KL_ESTIMATORS = { k1: 1, k2: 2, k3: 3 } as const;
const FINISH_WG = 64;

const policyOf = (lossType: GrpoLossType): number =>
  lossType === 'sapo' || lossType === 'cispo' || lossType === 'vespo' ? POLICY[lossType] : POLICY.clipped;

function checkInputs(op: string, inputs: GrpoLossInputs, options: GrpoLossOptions): void {
  const { logprobs, oldLogprobs, refLogprobs, advantages, mask } = inputs;
  assertRank(op, logprobs, 2, 'logprobs');
  assertF32(op, logprobs, advantages, mask);
  const [rows, cols] = logprobs.shape;
  if (rows === 0 || cols === 0) throw new Error(`${op}: logprobs ${formatShape(logprobs.shape)} has no tokens`);
  assertSameShape(op, logprobs, mask);
  for (const other of [oldLogprobs, refLogprobs]) {
    if (!other) continue;
    assertF32(op, other);
    assertSameShape(op, logprobs, other);
  }
  if (advantages.size !== rows || advantages.shape.length !== 1) {
    throw new Error(`${op}: advantages ${formatShape(advantages.shape)} must be [${rows}] for logprobs ${formatShape(logprobs.shape)}`);
  }
  const { beta, lossType } = options;
  if (beta !== 0 && !refLogprobs) throw new Error(`${op}: beta = ${beta} needs refLogprobs ${formatShape(logprobs.shape)}`);
  if (lossType === 'dr_grpo' && !(options.maxCompletionLength! > 0)) {
    throw new Error(`${op}: loss type dr_grpo needs maxCompletionLength > 0, got ${options.maxCompletionLength}`);
  }
  if ((lossType === 'dapo' || lossType === 'cispo' || lossType === 'vespo') && options.numItemsInBatch === undefined) {
    throw new Error(`${op}: loss type ${lossType} needs numItemsInBatch (completion tokens in the generation batch)`);
  }
}

/**
 * The normaliser the summed loss is divided by, apart from bnpo's token count (counted on the GPU):
 * TRL divides every type but dapo/cispo/vespo by the accumulation steps, and rescales those three's
 * generation-batch token count to one accumulation window instead.
 */
function normaliserScale(options: GrpoLossOptions, rows: number): number {
  const accumulation = options.gradientAccumulationSteps ?? 1;
  switch (options.lossType) {
    case 'grpo':
    case 'sapo':
    case 'luspo':
      return rows * accumulation;
    case 'bnpo':
      return accumulation;
    case 'dr_grpo':
      return rows * options.maxCompletionLength! * accumulation;
    case 'dapo':
    case 'cispo':
    case 'vespo':
      return (Math.max(options.numItemsInBatch!, 1) * accumulation) / (options.stepsPerGeneration ?? accumulation);
  }
}

/** TRL's GRPO loss of one micro-batch, and the metrics TRL logs for it (see grpoMetrics). */
export function grpoLoss(inputs: GrpoLossInputs, options: GrpoLossOptions): GrpoLossOutput {
  const op = 'grpoLoss';
  checkInputs(op, inputs, options);
  const { logprobs, oldLogprobs, refLogprobs, advantages, mask } = inputs;
  const gpu = logprobs.gpu;
  const [rows, cols] = logprobs.shape;
  const { beta, lossType } = options;
  const withGrad = isGradEnabled() && logprobs.requiresGrad;
  const sapo = options.sapoTemperature ?? { positive: 1.0, negative: 1.05 };
  const vespo = options.vespo ?? { kPositive: 2, lambdaPositive: 3, kNegative: 3, lambdaNegative: 2 };

  const grad = gpu.empty(withGrad ? logprobs.shape : [1]);
  const rowStats = gpu.empty([rows, ROW_STATS]);
  const specialisation = {
    WG: rowWorkgroupSize(gpu, cols),
    POLICY: policyOf(lossType),
    SEQUENCE: options.importanceSampling === 'sequence',
    KL: beta === 0 ? 0 : KL_ESTIMATORS[options.klEstimator],
    KL_BIAS_CORRECTION: options.klBiasCorrection ?? true,
    HAS_DELTA: options.delta !== undefined,
    ROW_MEAN: lossType === 'grpo' || lossType === 'sapo',
    WITH_GRAD: withGrad,
  };
  // Absent old/ref log-probs bind the policy's own: the ratio is then exactly 1 (and ref is never read).
  gpu.run(gpu.kernel('grpo_loss', specialisation), [logprobs, oldLogprobs ?? logprobs, refLogprobs ?? logprobs, advantages, mask, grad, rowStats], rowGrid(gpu, rows), {
    u32: [rows, cols],
    f32: [
      beta,
      1 - options.epsilonLow,
      1 + options.epsilonHigh,
      options.delta ?? 0,
      options.epsilonHigh,
      sapo.positive,
      sapo.negative,
      vespo.kPositive,
      vespo.lambdaPositive,
      vespo.kNegative,
      vespo.lambdaNegative,
    ],
  });

  const loss = gpu.empty([1]);
  const invNorm = gpu.empty([1]);
  const metrics = gpu.empty([METRIC_COUNT]);
  gpu.run(gpu.kernel('grpo_loss_finish', { WG: FINISH_WG, PER_TOKEN: lossType === 'bnpo' }), [rowStats, loss, invNorm, metrics], [1], {
    u32: [rows],
    f32: [normaliserScale(options, rows), NaN],
  });
  rowStats.dispose();

  recordOp(op, [logprobs], loss, (g) => {
    assertGradientFits(op, g, loss);
    // The kernel saved d(summed loss)/dlogprobs; the chain rule only scales it.
    const factor = mul(view(g, [1]), invNorm);
    const dlogprobs = mul(grad, factor);
    factor.dispose();
    return [dlogprobs];
  });
  if (!loss.node) {
    grad.dispose();
    invNorm.dispose();
  }
  return { loss, metrics };
}

const CLIP_FAMILY: readonly GrpoLossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo', 'luspo'];

/**
 * Reads the metrics tensor (one wait) into the entries TRL logs for this configuration, under
 * TRL's names: `kl` when beta ≠ 0; `clip_ratio/{low_mean, high_mean, region_mean, low_min,
 * high_max}` for the clipped loss types, `cispo_clip_ratio` for cispo, `vespo/phi_seq_mean` for vespo.
 */
export async function grpoMetrics(metrics: Tensor, options: Pick<GrpoLossOptions, 'beta' | 'lossType'>): Promise<Record<string, number>> {
  if (metrics.size !== METRIC_COUNT) throw new Error(`grpoMetrics: expected the ${METRIC_COUNT} metrics of grpoLoss, got ${formatShape(metrics.shape)}`);
  return namedGrpoMetrics(await metrics.toArray(), options);
}

/** grpoMetrics for values already read back (a trainer reads a step's tensors in one go). */
export function namedGrpoMetrics(values: Float32Array, options: Pick<GrpoLossOptions, 'beta' | 'lossType'>): Record<string, number> {
  const s = GRPO_METRIC_SLOTS;
  const out: Record<string, number> = {};
  if (options.beta !== 0) out.kl = values[s.kl];
  if (CLIP_FAMILY.includes(options.lossType)) {
    out['clip_ratio/low_mean'] = values[s.clipLowMean];
    out['clip_ratio/high_mean'] = values[s.clipHighMean];
    out['clip_ratio/region_mean'] = values[s.clipRegionMean];
    out['clip_ratio/low_min'] = values[s.clipLowMin];
    out['clip_ratio/high_max'] = values[s.clipHighMax];
  } else if (options.lossType === 'cispo') {
    out.cispo_clip_ratio = values[s.clipHighMean];
  } else if (options.lossType === 'vespo') {
    out['vespo/phi_seq_mean'] = values[s.vespoPhiMean];
  }
  return out;
}
