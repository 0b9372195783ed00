import { beforeAll, describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import type { Tensor } from '../src/gpu/tensor.js';
import { grpoLoss, grpoMetrics, type GrpoLossOptions, type GrpoLossType, type KlEstimator } from '../src/rl/grpo-loss.js';
import { expectClose, type Tolerance } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randn, rng } from './helpers/random.js';
import { referenceGrpo, referenceGrpoLoss, type GrpoCase } from './helpers/reference-grpo.js';
import { testOp, type OpInput } from './helpers/test-op.js';
import { runPython } from './python/run-python.js';

const gpu = useGpu();

const LOSS_TYPES: GrpoLossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo', 'luspo', 'cispo', 'sapo', 'vespo'];
const CLIPPED: GrpoLossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo', 'luspo'];

/**
 * Log-probs of a batch with ragged completions (row lengths in `lengths`; 0 = a truncated
 * completion masked out whole). Old log-probs differ by up to ±0.6 so token ratios fall below,
 * inside and above the clip range; padding holds finite values unlike the tokens' (TRL multiplies
 * padding by the mask, so it must stay finite there).
 */
function makeCase(lengths: number[], t: number, seed: number, withOld: boolean): GrpoCase {
  const b = lengths.length;
  const pick = rng(seed);
  const logprobs = randn(b * t, seed, 1).map((x) => -Math.abs(x) - 0.05);
  const old = withOld ? logprobs.map((x) => x + 1.2 * (pick() - 0.5)) : undefined;
  const ref = logprobs.map((x) => x + 0.8 * (pick() - 0.5));
  const mask = new Float32Array(b * t);
  lengths.forEach((n, r) => mask.fill(1, r * t, r * t + n));
  for (let i = 0; i < b * t; i++) {
    if (mask[i] === 0) {
      logprobs[i] = -3;
      ref[i] = -1;
      if (old) old[i] = -2;
    }
  }
  // Both signs, and an advantage of exactly 0 (a tie of the two clipped surrogates) from row 3 on.
  const advantages = Float32Array.from({ length: b }, (_, r) => (r === 2 ? 0 : (r % 2 ? -1 : 1) * (0.3 + pick())));
  return { b, t, logprobs, old, ref, advantages, mask };
}

const SHAPES: { label: string; lengths: number[]; t: number }[] = [
  { label: 'B=1 T=1', lengths: [1], t: 1 },
  { label: 'B=6 T=13 ragged, one row masked out', lengths: [13, 7, 1, 0, 10, 4], t: 13 },
];

function options(lossType: GrpoLossType, rest: Partial<GrpoLossOptions>, t: number, tokens: number): GrpoLossOptions {
  return {
    beta: 0,
    epsilonLow: 0.2,
    epsilonHigh: lossType === 'cispo' ? 1.1 : 0.28,
    lossType,
    importanceSampling: 'token',
    klEstimator: 'k3',
    maxCompletionLength: t + 3,
    // As if this micro-batch were one of three in its generation batch.
    numItemsInBatch: 3 * tokens,
    gradientAccumulationSteps: 2,
    stepsPerGeneration: 3,
    ...rest,
  };
}

interface GpuResult {
  loss: number;
  grad: Float32Array;
  metrics: Record<string, number>;
}

function upload(k: GrpoCase): { logprobs: Tensor; old?: Tensor; ref?: Tensor; advantages: Tensor; mask: Tensor } {
  const g = gpu();
  const shape = [k.b, k.t];
  return {
    logprobs: g.tensor(k.logprobs, shape),
    old: k.old && g.tensor(k.old, shape),
    ref: k.ref && g.tensor(k.ref, shape),
    advantages: g.tensor(k.advantages, [k.b]),
    mask: g.tensor(k.mask, shape),
  };
}

async function runGpu(k: GrpoCase, opts: GrpoLossOptions): Promise<GpuResult> {
  const g = gpu();
  const { loss, grad, metrics } = g.tidy(() => {
    const t = upload(k);
    t.logprobs.requiresGrad = true;
    const out = grpoLoss({ logprobs: t.logprobs, oldLogprobs: t.old, refLogprobs: opts.beta ? t.ref : undefined, advantages: t.advantages, mask: t.mask }, opts);
    backward(out.loss);
    return { loss: out.loss, grad: g.keep(t.logprobs.grad!), metrics: out.metrics };
  });
  const result = { loss: await g.readScalar(loss), grad: await grad.toArray(), metrics: await grpoMetrics(metrics, opts) };
  for (const x of [loss, grad, metrics]) x.dispose();
  return result;
}

// f32 against float64 on identical f32 inputs. The loss sums ≤ 78 terms of size ≤ ~3 (ratios up
// to e^0.6 times advantages ≤ 1.3, plus β·KL): each term carries a few ulps of exp/log error and the
// sums a rounding per add, so ~1e-6 relative; 3e-7 absolute covers losses that cancel to near 0.
const LOSS_TOL: Tolerance = { atol: 3e-7, rtol: 2e-6 };
// Each gradient entry is a handful of products of those terms scaled by 1/normaliser: the same
// relative error, absolute floor at f32 resolution of the largest entries (~0.3).
const GRAD_TOL: Tolerance = { atol: 1e-7, rtol: 2e-6 };
// Clip fractions are counts / counts (exact unless a ratio sits within an ulp of a bound); KL and φ
// means carry the same relative error as the loss.
const METRIC_TOL: Tolerance = { atol: 1e-7, rtol: 2e-6 };

function expectMetrics(actual: Record<string, number>, expected: Record<string, number | null>, label: string): void {
  expect(Object.keys(actual).sort(), label).toEqual(Object.keys(expected).sort());
  for (const [name, value] of Object.entries(expected)) {
    if (value === null || Number.isNaN(value)) expect(actual[name], `${label} ${name}`).toBeNaN();
    else expectClose([actual[name]], [value], METRIC_TOL, `${label} ${name}`);
  }
}

interface Config {
  label: string;
  opts: GrpoLossOptions;
  withOld: boolean;
}

function configs(t: number, tokens: number): Config[] {
  const out: Config[] = [];
  for (const lossType of LOSS_TYPES) {
    for (const importanceSampling of ['token', 'sequence'] as const) {
      for (const withOld of [false, true]) {
        const kls: [number, KlEstimator, boolean][] = [[0, 'k3', true], [0.04, 'k1', true], [0.04, 'k2', true], [0.04, 'k3', true], [0.04, 'k3', false]];
        for (const [beta, klEstimator, klBiasCorrection] of kls) {
          for (const delta of CLIPPED.includes(lossType) ? [undefined, 1.5] : [undefined]) {
            const opts = options(lossType, { importanceSampling, beta, klEstimator, klBiasCorrection, delta }, t, tokens);
            const kl = beta ? `, β ${beta} ${klEstimator}${klBiasCorrection ? '' : ' uncorrected'}` : '';
            out.push({ label: `${lossType} ${importanceSampling} ${withOld ? 'off' : 'on'}-policy${kl}${delta ? ', δ 1.5' : ''}`, opts, withOld });
          }
        }
      }
    }
  }
  return out;
}

describe('grpoLoss vs float64 reference (loss, dloss/dlogprobs, metrics)', () => {
  SHAPES.forEach(({ label, lengths, t }, s) => {
    const tokens = lengths.reduce((a, n) => a + n, 0);
    for (const lossType of LOSS_TYPES) {
      it(`${label}: ${lossType}`, async () => {
        for (const [k, { label: name, opts, withOld }] of configs(t, tokens).entries()) {
          if (opts.lossType !== lossType) continue;
          const c = makeCase(lengths, t, 100 * s + k, withOld);
          const expected = referenceGrpo(c, opts);
          const actual = await runGpu(c, opts);
          expectClose([actual.loss], [expected.loss], LOSS_TOL, `${name}: loss`);
          expectClose(actual.grad, expected.grad, GRAD_TOL, `${name}: grad`);
          expectMetrics(actual.metrics, expected.metrics, name);
        }
      });
    }
  });
});

// ---- the real thing: TRL's GRPOTrainer._compute_loss on the same numbers ---------------------

interface TrlAnswer {
  loss: number;
  grad: number[][];
  metrics: Record<string, number | null>;
}

/** TRL implements only the k3 estimator: every other axis of the matrix, both shapes. */
const trlCases = SHAPES.flatMap(({ label, lengths, t }, s) => {
  const tokens = lengths.reduce((a, n) => a + n, 0);
  return configs(t, tokens)
    .filter(({ opts }) => opts.klEstimator === 'k3')
    .map((config, k) => ({ ...config, label: `${label}: ${config.label}`, c: makeCase(lengths, t, 1000 + 100 * s + k, config.withOld) }));
});

function trlRequest(c: GrpoCase, opts: GrpoLossOptions, dtype: 'float32' | 'float64'): unknown {
  const rowsOf = (x: GrpoCase['logprobs']): number[][] => Array.from({ length: c.b }, (_, r) => Array.from(x.subarray(r * c.t, (r + 1) * c.t)));
  return {
    kind: 'loss',
    dtype,
    logprobs: rowsOf(c.logprobs),
    old: c.old ? rowsOf(c.old) : null,
    ref: rowsOf(c.ref!),
    advantages: Array.from(c.advantages),
    mask: rowsOf(c.mask),
    config: {
      beta: opts.beta,
      epsilon_low: opts.epsilonLow,
      epsilon_high: opts.epsilonHigh,
      delta: opts.delta ?? null,
      loss_type: opts.lossType,
      importance_sampling_level: opts.importanceSampling,
      use_bias_correction_kl: opts.klBiasCorrection ?? true,
      max_completion_length: opts.maxCompletionLength,
      num_items_in_batch: opts.numItemsInBatch,
      gradient_accumulation_steps: opts.gradientAccumulationSteps,
      steps_per_generation: opts.stepsPerGeneration,
      sapo_temperature_pos: 1.0,
      sapo_temperature_neg: 1.05,
      vespo_k_pos: 2.0,
      vespo_lambda_pos: 3.0,
      vespo_k_neg: 3.0,
      vespo_lambda_neg: 2.0,
    },
  };
}

let trl: { f32: TrlAnswer; f64: TrlAnswer }[];
beforeAll(() => {
  const requests = trlCases.flatMap(({ c, opts }) => [trlRequest(c, opts, 'float32'), trlRequest(c, opts, 'float64')]);
  const answers = JSON.parse(runPython('trl_grpo_reference.py', [], JSON.stringify(requests))) as TrlAnswer[];
  trl = trlCases.map((_, k) => ({ f32: answers[2 * k], f64: answers[2 * k + 1] }));
}, 180_000);

// The float64 restatement and TRL in float64 differ only in summation order; but TRL turns clip
// flags into fractions with `.float()`, which is float32 whatever the inputs: one f32 rounding.
const EXACT: Tolerance = { atol: 1e-15, rtol: 1e-12 };
const CLIP_FRACTION_TOL: Tolerance = { atol: 0, rtol: 2 ** -24 };
// f32 against TRL's own f32 run: rtol 1e-5 on the loss, and the same for gradients.
// Both sides round independently (a few ulps each, ~1e-6 relative); TRL's k3 = exp(d) − d − 1
// also cancels in f32 (absolute error ~1e-7 per token before β scales it), hence the atol.
const TRL_F32_TOL: Tolerance = { atol: 1e-7, rtol: 1e-5 };

describe('grpoLoss vs TRL GRPOTrainer._compute_loss', () => {
  it('the float64 reference is TRL in float64 (loss, autograd gradient, logged metrics)', () => {
    trlCases.forEach(({ label, c, opts }, k) => {
      const expected = trl[k].f64;
      const ours = referenceGrpo(c, opts);
      expectClose([ours.loss], [expected.loss], EXACT, `${label}: loss`);
      expectClose(ours.grad, expected.grad.flat(), EXACT, `${label}: grad`);
      expect(Object.keys(ours.metrics).sort(), label).toEqual(Object.keys(expected.metrics).sort());
      for (const [name, value] of Object.entries(expected.metrics)) {
        if (value === null) expect(ours.metrics[name], `${label} ${name}`).toBeNaN();
        else expectClose([ours.metrics[name]], [value], name.includes('clip') ? CLIP_FRACTION_TOL : EXACT, `${label} ${name}`);
      }
    });
  });

  it('the GPU matches TRL in float64 and in float32', async () => {
    for (const [k, { label, c, opts }] of trlCases.entries()) {
      const actual = await runGpu(c, opts);
      const { f32, f64 } = trl[k];
      expectClose([actual.loss], [f64.loss], LOSS_TOL, `${label}: loss vs float64`);
      expectClose(actual.grad, f64.grad.flat(), GRAD_TOL, `${label}: grad vs float64`);
      expectMetrics(actual.metrics, f64.metrics, `${label} vs float64`);
      expectClose([actual.loss], [f32.loss], TRL_F32_TOL, `${label}: loss vs float32`);
      expectClose(actual.grad, f32.grad.flat(), TRL_F32_TOL, `${label}: grad vs float32`);
    }
  }, 120_000);
});

// ---- the backward against float64: the written-out gradient and differences of the loss --------

describe('grpoLoss backward vs float64 (dual-number gradient and central differences of the float64 loss)', () => {
  // Log ratios chosen so every token ratio and every row's sequence ratio sits ≥ 5% away from the
  // kinks (1 − ε_low = 0.8, 1 + ε_high = 1.28, δ = 1.5): below, inside, between and above them.
  // Off-policy old log-probs are passed explicitly even "on-policy" (ratio 1), because finite
  // differences must hold them fixed while the log-probs move (TRL's detach).
  const SHIFTS = [-0.5, -0.12, 0.12, 0.35, 0.6];
  // CISPO and VESPO are left out by design: their coefficients are detached, so their gradient is
  // not the derivative of their value (the float64 reference and TRL cover them above).
  const SMOOTH: GrpoLossType[] = ['grpo', 'bnpo', 'dr_grpo', 'dapo', 'luspo', 'sapo'];
  const KLS: KlEstimator[] = ['k1', 'k2', 'k3'];
  // β large enough that a wrong KL gradient shows.
  const BETA = 0.3;
  interface GradCase {
    label: string;
    lengths: number[];
    t: number;
    offPolicy: boolean;
    opts: GrpoLossOptions;
  }
  const cases: GradCase[] = [];
  for (const { label, lengths, t } of [
    { label: 'B=1 T=1', lengths: [1], t: 1 },
    { label: 'B=3 T=5 ragged, one row masked out', lengths: [5, 2, 0], t: 5 },
  ]) {
    const tokens = lengths.reduce((a, n) => a + n, 0);
    for (const lossType of SMOOTH) {
      for (const importanceSampling of ['token', 'sequence'] as const) {
        for (const offPolicy of [false, true]) {
          const klEstimator = KLS[cases.length % KLS.length];
          const opts = options(lossType, { importanceSampling, beta: BETA, klEstimator, delta: CLIPPED.includes(lossType) ? 1.5 : undefined }, t, tokens);
          cases.push({ label: `${label}: ${lossType} ${importanceSampling} ${offPolicy ? 'off' : 'on'}-policy, β ${BETA} ${klEstimator}`, lengths, t, offPolicy, opts });
        }
      }
    }
  }
  /** The float64 inputs in the order the op takes them: log-probs, old, ref, advantages, mask. */
  const caseOf = ([logprobs, old, ref, advantages, mask]: readonly Float64Array[], c: GradCase): GrpoCase => ({ b: c.lengths.length, t: c.t, logprobs, old, ref, advantages, mask });
  testOp(
    'grpoLoss',
    ([logprobs, oldLogprobs, refLogprobs, advantages, mask], c) => grpoLoss({ logprobs, oldLogprobs, refLogprobs, advantages, mask }, c.opts).loss,
    (values, c) => [referenceGrpoLoss(caseOf(values, c), c.opts)],
    cases,
    {
      gpu,
      inputs: (c, seed) => {
        const k = makeCase(c.lengths, c.t, seed, false);
        const shape = [k.b, k.t];
        const fixed = (data: ArrayLike<number>, inputShape: number[]): OpInput => ({ data, shape: inputShape, differentiable: false });
        return [
          { data: k.logprobs, shape },
          fixed(k.logprobs.map((x, i) => (c.offPolicy ? x - SHIFTS[i % SHIFTS.length] : x)), shape),
          fixed(k.ref!, shape),
          fixed(k.advantages, [k.b]),
          fixed(k.mask, shape),
        ];
      },
      tol: LOSS_TOL,
      outShape: () => [1],
      label: (c) => c.label,
      gradient: {
        cases,
        tol: GRAD_TOL,
        backwardReference: (values, outputGrad, c) => [referenceGrpo(caseOf(values, c), c.opts).grad.map((g) => g * outputGrad[0]), null, null, null, null],
      },
    },
  );
});

// ---- accumulation, no-grad use, errors --------------------------------------------------------

describe('grpoLoss normalisers across micro-batches', () => {
  // Two micro-batches of one generation batch (TRL: gradient_accumulation_steps = steps_per_generation
  // = 2) add up to the whole batch in one step, for the types whose normaliser spans the batch.
  for (const lossType of ['dapo', 'grpo', 'cispo'] as GrpoLossType[]) {
    it(lossType, async () => {
      const lengths = [13, 7, 1, 0, 10, 4];
      const t = 13;
      const tokens = lengths.reduce((a, n) => a + n, 0);
      const whole = makeCase(lengths, t, 77, true);
      const half = (r0: number): GrpoCase => {
        const slice = (x: GrpoCase['logprobs']): GrpoCase['logprobs'] => x.slice(r0 * t, (r0 + 3) * t);
        return { b: 3, t, logprobs: slice(whole.logprobs), old: slice(whole.old!), ref: slice(whole.ref!), advantages: whole.advantages.slice(r0, r0 + 3), mask: slice(whole.mask) };
      };
      const common = { beta: 0.04, numItemsInBatch: tokens };
      const full = await runGpu(whole, options(lossType, { ...common, gradientAccumulationSteps: 1, stepsPerGeneration: 1 }, t, tokens));
      const micro = options(lossType, { ...common, gradientAccumulationSteps: 2, stepsPerGeneration: 2 }, t, tokens);
      const [first, second] = [await runGpu(half(0), micro), await runGpu(half(3), micro)];
      expectClose([first.loss + second.loss], [full.loss], LOSS_TOL, 'loss');
      expectClose([...first.grad, ...second.grad], full.grad, GRAD_TOL, 'grad');
    });
  }
});

describe('grpoLoss without autograd', () => {
  it('gives the same loss and records nothing', async () => {
    const c = makeCase([13, 7, 1, 0, 10, 4], 13, 5, true);
    const opts = options('dapo', { beta: 0.04 }, 13, 35);
    const withGrad = await runGpu(c, opts);
    const g = gpu();
    const loss = noGrad(() =>
      g.tidy(() => {
        const t = upload(c);
        t.logprobs.requiresGrad = true;
        const out = grpoLoss({ logprobs: t.logprobs, oldLogprobs: t.old, refLogprobs: t.ref, advantages: t.advantages, mask: t.mask }, opts);
        expect(out.loss.node).toBeNull();
        return out.loss;
      }),
    );
    expect(await g.readScalar(loss)).toBe(withGrad.loss);
    loss.dispose();
  });
});

describe('grpoLoss rejects bad inputs, naming the op and shapes', () => {
  const base = options('grpo', {}, 3, 6);
  it.each([
    ['logprobs of rank 1', { lp: [6] }, base, /grpoLoss: logprobs must have rank 2, got \[6\]/],
    ['a mask of another shape', { mask: [2, 4] }, base, /grpoLoss: shapes differ: \[2, 3\] vs \[2, 4\]/],
    ['advantages per token', { adv: [2, 3] }, base, /grpoLoss: advantages \[2, 3\] must be \[2\] for logprobs \[2, 3\]/],
    ['beta without reference log-probs', {}, { ...base, beta: 0.04 }, /grpoLoss: beta = 0.04 needs refLogprobs \[2, 3\]/],
    ['dr_grpo without maxCompletionLength', {}, { ...base, lossType: 'dr_grpo', maxCompletionLength: undefined }, /dr_grpo needs maxCompletionLength/],
    ['dapo without numItemsInBatch', {}, { ...base, lossType: 'dapo', numItemsInBatch: undefined }, /dapo needs numItemsInBatch/],
    ['an empty batch', { lp: [0, 3], mask: [0, 3], adv: [0] }, base, /grpoLoss: logprobs \[0, 3\] has no tokens/],
  ] as [string, { lp?: number[]; mask?: number[]; adv?: number[] }, GrpoLossOptions, RegExp][])('%s', (_, shapes, opts, message) => {
    const g = gpu();
    g.tidy(() => {
      const zeros = (shape: number[]): Tensor => g.zeros(shape);
      const inputs = { logprobs: zeros(shapes.lp ?? [2, 3]), advantages: zeros(shapes.adv ?? [2]), mask: zeros(shapes.mask ?? [2, 3]) };
      expect(() => grpoLoss(inputs, opts)).toThrow(message);
    });
  });

  it('grpoMetrics wants the metrics tensor', async () => {
    const g = gpu();
    const wrong = g.zeros([3]);
    await expect(grpoMetrics(wrong, base)).rejects.toThrow(/grpoMetrics: expected the 7 metrics of grpoLoss, got \[3\]/);
    wrong.dispose();
  });
});
