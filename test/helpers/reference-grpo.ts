import type { GrpoLossOptions } from '../../src/rl/grpo-loss.js';

/**
 * A float64 restatement of TRL's GRPOTrainer._compute_loss (trl 1.16), written line by line after
 * TRL's tensor code over dual numbers: one forward pass per log-prob gives d(loss)/d(logprob)
 * exactly, with torch's rules at the kinks (clamp passes the gradient strictly inside its
 * bounds; min splits it evenly on a tie). Deliberately independent of the kernel's hand-derived
 * gradient formulas.
 */

/** f32 inputs as the GPU sees them, or float64 ones (finite differences perturb them below f32's resolution). */
type Values = Float32Array | Float64Array;

export interface GrpoCase {
  b: number;
  t: number;
  logprobs: Values;
  old?: Values;
  ref?: Values;
  advantages: Values;
  mask: Values;
}

export interface GrpoReference {
  loss: number;
  grad: Float64Array;
  /** Under TRL's names, as grpoMetrics returns them. */
  metrics: Record<string, number>;
}

/** value + derivative·ε for one seeded direction. */
class Dual {
  constructor(
    readonly v: number,
    readonly d = 0,
  ) {}
  add(o: Dual): Dual {
    return new Dual(this.v + o.v, this.d + o.d);
  }
  sub(o: Dual): Dual {
    return new Dual(this.v - o.v, this.d - o.d);
  }
  mul(o: Dual): Dual {
    return new Dual(this.v * o.v, this.d * o.v + this.v * o.d);
  }
  div(o: Dual): Dual {
    return new Dual(this.v / o.v, (this.d * o.v - this.v * o.d) / (o.v * o.v));
  }
  scale(s: number): Dual {
    return new Dual(this.v * s, this.d * s);
  }
  exp(): Dual {
    const e = Math.exp(this.v);
    return new Dual(e, this.d * e);
  }
  /** torch.clamp: the gradient passes strictly inside [lo, hi]. */
  clamp(lo: number, hi: number): Dual {
    return new Dual(Math.min(Math.max(this.v, lo), hi), this.v > lo && this.v < hi ? this.d : 0);
  }
  /** torch.min(a, b): on a tie each side gets half the gradient. */
  min(o: Dual): Dual {
    if (this.v < o.v) return this;
    if (this.v > o.v) return o;
    return new Dual(this.v, (this.d + o.d) / 2);
  }
  detach(): Dual {
    return new Dual(this.v);
  }
}
const c = (v: number): Dual => new Dual(v);

function klEstimate(logp: Dual, ref: Dual, estimator: GrpoLossOptions['klEstimator']): Dual {
  const x = ref.sub(logp);
  if (estimator === 'k1') return logp.sub(ref);
  if (estimator === 'k2') return x.mul(x).scale(0.5);
  return x.exp().sub(x).sub(c(1));
}

/** VESPO's detached gamma weight per row (TRL's get_gamma_weights without vLLM ratios). */
function vespoWeight(logRatio: Dual[], mask: ArrayLike<number>, advantage: number, options: GrpoLossOptions): number {
  const { kPositive = 2, lambdaPositive = 3, kNegative = 3, lambdaNegative = 2 } = options.vespo ?? {};
  let sum = 0;
  logRatio.forEach((r, t) => (sum += Math.min(Math.max(r.v, -20), 20) * mask[t]));
  const logW = Math.min(Math.max(sum, Math.log(1e-8)), 20);
  // torch.where over Python scalars makes float32 tensors, whatever the inputs' dtype.
  const k = Math.fround(advantage >= 0 ? kPositive : kNegative);
  const lambda = Math.max(Math.fround(advantage >= 0 ? lambdaPositive : lambdaNegative), 1e-4);
  const phi = Math.exp(lambda + k * logW - lambda * Math.exp(logW));
  return Number.isFinite(phi) ? phi : 0;
}

interface Forward {
  loss: Dual;
  perTokenKl: Dual[][] | null;
  /** coef_1 after TRL's delta cap: [B][T] at token level, [B][1] at sequence level. */
  coef1: Dual[][];
  phi: number[];
}

/** TRL's _compute_loss with log-prob (seedB, seedT) carrying derivative 1 (−1: none). */
function forward(k: GrpoCase, options: GrpoLossOptions, seed: number): Forward {
  const { b: rows, t: cols, mask } = k;
  const at = (r: number, t: number): number => r * cols + t;
  const lp = Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, t) => new Dual(k.logprobs[at(r, t)], at(r, t) === seed ? 1 : 0)));
  const old = lp.map((row, r) => row.map((x, t) => (k.old ? c(k.old[at(r, t)]) : x.detach())));
  const m = (r: number, t: number): number => mask[at(r, t)];
  const rowCount = (r: number): number => Array.from({ length: cols }, (_, t) => m(r, t)).reduce((s, x) => s + x, 0);

  const logRatio = lp.map((row, r) => row.map((x, t) => x.sub(old[r][t])));
  const sequence = options.importanceSampling === 'sequence';
  const logWeights = sequence
    ? logRatio.map((row, r) => [row.reduce((s, x, t) => s.add(x.scale(m(r, t))), c(0)).scale(1 / Math.max(rowCount(r), 1))])
    : logRatio;
  let coef1 = logWeights.map((row) => row.map((x) => x.exp()));
  // Broadcast a [B, 1] tensor against [B, T].
  const bc = <T>(x: T[][], r: number, t: number): T => (x[r].length === 1 ? x[r][0] : x[r][t]);

  let perTokenKl: Dual[][] | null = null;
  if (options.beta !== 0) {
    perTokenKl = lp.map((row, r) => row.map((x, t) => klEstimate(x, c(k.ref![at(r, t)]), options.klEstimator)));
    if (options.klBiasCorrection ?? true) perTokenKl = perTokenKl.map((row, r) => row.map((x, t) => x.mul(bc(coef1, r, t))));
  }

  const a = (r: number): number => k.advantages[r];
  const phi = options.lossType === 'vespo' ? logRatio.map((row, r) => vespoWeight(row, mask.subarray(r * cols, (r + 1) * cols), a(r), options)) : [];
  let perTokenLoss: Dual[][];
  switch (options.lossType) {
    case 'cispo':
      perTokenLoss = lp.map((row, r) => row.map((x, t) => c(-Math.min(bc(coef1, r, t).v, options.epsilonHigh) * a(r)).mul(x)));
      break;
    case 'sapo': {
      const { positive = 1.0, negative = 1.05 } = options.sapoTemperature ?? {};
      perTokenLoss = coef1.map((row, r) =>
        row.map((w) => {
          // float32, as TRL's torch.where over Python scalars makes it.
          const tau = Math.fround(a(r) > 0 ? positive : negative);
          const gate = c(1).div(c(1).add(w.sub(c(1)).scale(-tau).exp()));
          return gate.scale((-4 / tau) * a(r));
        }),
      );
      break;
    }
    case 'vespo':
      perTokenLoss = lp.map((row, r) => row.map((x) => x.scale(-phi[r] * a(r))));
      break;
    default: {
      const coef2 = coef1.map((row) => row.map((w) => w.clamp(1 - options.epsilonLow, 1 + options.epsilonHigh)));
      if (options.delta !== undefined) coef1 = coef1.map((row) => row.map((w) => w.clamp(-Infinity, options.delta!)));
      perTokenLoss = coef1.map((row, r) => row.map((w, t) => w.scale(a(r)).min(coef2[r][t].scale(a(r))).scale(-1)));
    }
  }
  const total = Array.from({ length: rows }, (_, r) =>
    Array.from({ length: cols }, (_, t) => {
      const policy = bc(perTokenLoss, r, t);
      return (perTokenKl ? policy.add(perTokenKl[r][t].scale(options.beta)) : policy).scale(m(r, t));
    }),
  );
  const rowSums = total.map((row) => row.reduce((s, x) => s.add(x), c(0)));
  const allSum = rowSums.reduce((s, x) => s.add(x), c(0));
  const tokens = Array.from({ length: rows }, (_, r) => rowCount(r)).reduce((s, x) => s + x, 0);
  const accumulation = options.gradientAccumulationSteps ?? 1;
  let loss: Dual;
  switch (options.lossType) {
    case 'grpo':
    case 'sapo':
      loss = rowSums.reduce((s, x, r) => s.add(x.scale(1 / Math.max(rowCount(r), 1))), c(0)).scale(1 / rows / accumulation);
      break;
    case 'bnpo':
      loss = allSum.scale(1 / Math.max(tokens, 1) / accumulation);
      break;
    case 'dr_grpo':
      loss = allSum.scale(1 / (rows * options.maxCompletionLength!) / accumulation);
      break;
    case 'luspo':
      loss = allSum.scale(1 / rows / accumulation);
      break;
    default: {
      const normaliser = (Math.max(options.numItemsInBatch!, 1) * accumulation) / (options.stepsPerGeneration ?? accumulation);
      loss = allSum.scale(1 / normaliser);
    }
  }
  return { loss, perTokenKl, coef1, phi };
}

/** TRL's logged metrics from the forward's tensors (global_masked_mean, masked_seq_mean, nanmin/nanmax). */
function metricsOf(k: GrpoCase, options: GrpoLossOptions, f: Forward): Record<string, number> {
  const { t: cols, mask } = k;
  const m = (r: number, t: number): number => mask[r * cols + t];
  // One value per row at sequence level (every row counts), else a mask-weighted token mean.
  const globalMean = (x: number[][]): number => {
    let sum = 0;
    let count = 0;
    x.forEach((row, r) => row.forEach((v, t) => ((sum += row.length === 1 ? v : v * m(r, t)), (count += row.length === 1 ? 1 : m(r, t)))));
    return sum / Math.max(count, 1);
  };
  const perRow = (x: number[][]): number[] =>
    x.map((row, r) => (row.length === 1 ? row[0] : row.reduce((s, v, t) => s + v * m(r, t), 0) / row.reduce((s, _, t) => s + m(r, t), 0)));
  const nanExtreme = (values: number[], pick: (...v: number[]) => number): number => {
    const kept = values.filter((v) => !Number.isNaN(v));
    return kept.length ? pick(...kept) : NaN;
  };
  const a = (r: number): number => k.advantages[r];
  const flag = (test: (w: number, r: number) => boolean): number[][] => f.coef1.map((row, r) => row.map((w) => (test(w.v, r) ? 1 : 0)));

  const out: Record<string, number> = {};
  if (f.perTokenKl) out.kl = globalMean(f.perTokenKl.map((row) => row.map((x) => x.v)));
  if (['grpo', 'bnpo', 'dr_grpo', 'dapo', 'luspo'].includes(options.lossType)) {
    const low = flag((w, r) => w < 1 - options.epsilonLow && a(r) < 0);
    const high = flag((w, r) => w > 1 + options.epsilonHigh && a(r) > 0);
    const region = low.map((row, r) => row.map((v, t) => Math.max(v, high[r][t])));
    out['clip_ratio/low_mean'] = globalMean(low);
    out['clip_ratio/high_mean'] = globalMean(high);
    out['clip_ratio/region_mean'] = globalMean(region);
    out['clip_ratio/low_min'] = nanExtreme(perRow(low), Math.min);
    out['clip_ratio/high_max'] = nanExtreme(perRow(high), Math.max);
  } else if (options.lossType === 'cispo') {
    out.cispo_clip_ratio = globalMean(flag((w, r) => w > options.epsilonHigh && a(r) > 0));
  } else if (options.lossType === 'vespo') {
    out['vespo/phi_seq_mean'] = globalMean(f.phi.map((p) => [p]));
  }
  return out;
}

/** The loss alone (one forward, no derivatives). */
export function referenceGrpoLoss(k: GrpoCase, options: GrpoLossOptions): number {
  return forward(k, options, -1).loss.v;
}

export function referenceGrpo(k: GrpoCase, options: GrpoLossOptions): GrpoReference {
  const base = forward(k, options, -1);
  const grad = Float64Array.from({ length: k.b * k.t }, (_, i) => forward(k, options, i).loss.d);
  return { loss: base.loss.v, grad, metrics: metricsOf(k, options, base) };
}
