import { beforeAll, describe, expect, it } from 'vitest';
import type { Tensor } from '../src/gpu/tensor.js';
import { AdamW } from '../src/optim/adamw.js';
import { clipGradNorm, globalGradNorm } from '../src/optim/grad-norm.js';
import { learningRate, lrMultiplier, type LrSchedule } from '../src/optim/lr-schedule.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { adamwReference } from './helpers/reference-optim.js';
import { runPython } from './python/run-python.js';

const gpu = useGpu();

const encode = (a: Float32Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const decode = (s: string): Float32Array => {
  const bytes = Buffer.from(s, 'base64');
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
};

// Shapes that are not multiples of the workgroup size, a single element, and one spanning many workgroups.
const SHAPES = [[1], [7, 13], [300], [3, 25_000]];
const STEPS = 5;
const LRS = [1e-2, 3e-3, 5e-2, 0, 2e-2];
const HYPER = { betas: [0.9, 0.95] as [number, number], eps: 1e-8, weightDecay: 0.1 };

interface AdamWCase {
  params: Float32Array[];
  /** grads[step][param]; null where the parameter has no gradient at that step. */
  grads: (Float32Array | null)[][];
}

function adamwCase(): AdamWCase {
  const params = SHAPES.map((s, i) => randn(s.reduce((a, b) => a * b, 1), 100 + i));
  const grads = LRS.map((_, step) =>
    params.map((p, i) => {
      if (step === 2 && i === 1) return null;
      const g = randn(p.length, 200 + 10 * step + i, 0.1);
      g[0] = step === 0 ? 0 : g[0]; // a zero first gradient: m = v = 0 and the update is 0/eps
      return g;
    }),
  );
  return { params, grads };
}

/** Runs the GPU optimizer over the case; returns the parameters after every step and the final state. */
async function runAdamW(c: AdamWCase) {
  const g = gpu();
  const params = c.params.map((p, i) => g.keep(g.tensor(p, SHAPES[i])));
  const opt = new AdamW(params, { lr: 1, ...HYPER });
  const history: Float32Array[][] = [];
  for (const [step, grads] of c.grads.entries()) {
    params.forEach((p, i) => (p.grad = grads[i] ? g.keep(g.tensor(grads[i]!, SHAPES[i])) : null));
    opt.step(LRS[step]);
    opt.zeroGrad();
    history.push(await Promise.all(params.map((p) => p.toArray())));
  }
  const state = await opt.exportState();
  opt.dispose();
  params.forEach((p) => p.dispose());
  return { history, state };
}


const ADAMW_CASE = adamwCase();
// Sizes around the 4,096-element first-pass chunk of the norm, a single element and an empty tensor.
const SIZES = [1, 4095, 4096, 4097, 100_003, 0];
const CLIP_GRADS = SIZES.map((n, i) => randn(n, 400 + i, 0.01 * (i + 1)));
const MAX_NORMS = [0.05, 1e3];
const SCHEDULES: (LrSchedule & { steps: number })[] = [
  { kind: 'cosine', lr: 3e-4, warmupSteps: 10, totalSteps: 100, steps: 120 },
  { kind: 'cosine', lr: 1e-3, warmupSteps: 0, totalSteps: 37, numCycles: 1.5, steps: 45 },
  { kind: 'linear', lr: 5e-5, warmupSteps: 5, totalSteps: 50, steps: 60 },
  { kind: 'linear', lr: 1e-4, warmupSteps: 0, totalSteps: 1, steps: 3 },
  { kind: 'constant', lr: 2e-5, warmupSteps: 7, steps: 15 },
  { kind: 'constant', lr: 2e-5, steps: 3 },
];

interface References {
  adamw: { params: string[][]; exp_avg: string[]; exp_avg_sq: string[]; steps: number[] };
  clip: { norm: number; grads: string[] }[];
  schedules: number[][];
}
let references: References;

// One Python process for the whole file: importing torch and transformers dominates its cost.
beforeAll(() => {
  const requests = [
    {
      kind: 'adamw',
      params: ADAMW_CASE.params.map(encode),
      shapes: SHAPES,
      grads: ADAMW_CASE.grads.map((gs) => gs.map((g) => (g ? encode(g) : null))),
      lrs: LRS,
      betas: HYPER.betas,
      eps: HYPER.eps,
      weight_decay: HYPER.weightDecay,
    },
    ...MAX_NORMS.map((maxNorm) => ({ kind: 'clip', grads: CLIP_GRADS.map(encode), max_norm: maxNorm })),
    {
      kind: 'schedule',
      schedules: SCHEDULES.map((s) => ({
        type: s.kind,
        lr: s.lr,
        warmup: s.warmupSteps ?? 0,
        total: 'totalSteps' in s ? s.totalSteps : 0,
        cycles: s.kind === 'cosine' ? (s.numCycles ?? 0.5) : 0.5,
        steps: s.steps,
      })),
    },
  ];
  const [adamw, ...rest] = JSON.parse(runPython('optim_reference.py', [], JSON.stringify(requests))) as unknown[];
  references = {
    adamw: adamw as References['adamw'],
    clip: rest.slice(0, MAX_NORMS.length) as References['clip'],
    schedules: rest[MAX_NORMS.length] as References['schedules'],
  };
});

// m is an average of gradients of scale 0.1 that can cancel to near 0: its error is a few ulps
// of the gradients (ulp(0.1) = 7.5e-9), not of m itself.
const M_TOL = { atol: 2e-8, rtol: 1e-6 };

describe('AdamW', () => {
  it('matches torch.optim.AdamW over 5 steps with weight decay, a changing lr and a missing gradient', async () => {
    const c = ADAMW_CASE;
    const torch = references.adamw;
    const ours = await runAdamW(c);
    // Same f32 operations in the same order; what remains is FMA contraction and sqrt/division
    // rounding: a few ulps of the ~1-magnitude parameters and of the moments.
    for (let step = 0; step < STEPS; step++) {
      for (let i = 0; i < SHAPES.length; i++) {
        expectClose(ours.history[step][i], decode(torch.params[step][i]), { atol: 2e-7, rtol: 1e-6 }, `param ${i} after step ${step}`);
      }
    }
    expect(ours.state.steps).toEqual(torch.steps);
    expect(torch.steps).toEqual([5, 4, 5, 5]);
    for (let i = 0; i < SHAPES.length; i++) {
      expectClose(ours.state.m[i], decode(torch.exp_avg[i]), M_TOL, `exp_avg ${i}`);
      expectClose(ours.state.v[i], decode(torch.exp_avg_sq[i]), { atol: 1e-12, rtol: 1e-6 }, `exp_avg_sq ${i}`);
    }
  });

  it('matches a float64 reference', async () => {
    const c = ADAMW_CASE;
    const ours = await runAdamW(c);
    const ref = adamwReference(c.params, c.grads, LRS, HYPER);
    // f32 against exact arithmetic: each step rounds the parameter (ulp 1.2e-7 near 1) and the
    // update; over five steps that stays within a few ulps.
    for (let step = 0; step < STEPS; step++) {
      for (let i = 0; i < SHAPES.length; i++) {
        expectClose(ours.history[step][i], ref.history[step][i], { atol: 5e-7, rtol: 2e-6 }, `param ${i} after step ${step}`);
      }
    }
    expect(ours.state.steps).toEqual(ref.steps);
    for (let i = 0; i < SHAPES.length; i++) {
      expectClose(ours.state.m[i], ref.m[i], M_TOL, `exp_avg ${i}`);
      expectClose(ours.state.v[i], ref.v[i], { atol: 1e-12, rtol: 2e-6 }, `exp_avg_sq ${i}`);
    }
  });

  it('resumes from exported state exactly as if never interrupted', async () => {
    const g = gpu();
    const c = ADAMW_CASE;
    const setGrads = (params: Tensor[], step: number) =>
      params.forEach((p, i) => (p.grad = c.grads[step][i] ? g.keep(g.tensor(c.grads[step][i]!, SHAPES[i])) : null));
    const original = c.params.map((p, i) => g.keep(g.tensor(p, SHAPES[i])));
    const opt = new AdamW(original, { lr: 1e-2, ...HYPER });
    for (let step = 0; step < 3; step++) {
      setGrads(original, step);
      opt.step();
      opt.zeroGrad();
    }
    const saved = await opt.exportState();
    const resumed = await Promise.all(original.map(async (p) => g.keep(g.tensor(await p.toArray(), p.shape))));
    const restored = new AdamW(resumed, { lr: 1e-2, ...HYPER });
    restored.importState(saved);
    for (let step = 3; step < STEPS; step++) {
      for (const [o, params] of [[opt, original], [restored, resumed]] as const) {
        setGrads(params, step);
        o.step();
        o.zeroGrad();
      }
    }
    for (let i = 0; i < SHAPES.length; i++) {
      expect(Array.from(await resumed[i].toArray())).toEqual(Array.from(await original[i].toArray()));
    }
    expect((await restored.exportState()).steps).toEqual([5, 4, 5, 5]);

    expect(() => restored.importState({ ...saved, steps: saved.steps.slice(1) })).toThrow(/state for 3 parameters .* optimizer has 4/);
    expect(() => restored.importState({ ...saved, m: [saved.m[1], ...saved.m.slice(1)] })).toThrow(/moments of 91\/1 values for parameter 0 \[1\]/);
    for (const o of [opt, restored]) o.dispose();
    for (const p of [...original, ...resumed]) p.dispose();
  });

  it('rejects bad hyperparameters and mismatched gradients', () => {
    const g = gpu();
    g.tidy(() => {
      const p = g.zeros([4]);
      expect(() => new AdamW([p], { lr: 1e-3, betas: [0.9, 1] })).toThrow(/betas must be below 1/);
      expect(() => new AdamW([p], { lr: NaN })).toThrow(/lr must be a finite non-negative number, got NaN/);
      const opt = new AdamW([p], { lr: 1e-3 });
      p.grad = g.zeros([5]);
      expect(() => opt.step()).toThrow(/AdamW.step: gradient \[5\] f32 does not match parameter \[4\] f32/);
      opt.dispose();
    });
  });
});

describe('gradient norm', () => {

  it('matches a float64 reference over many tensors', async () => {
    const g = gpu();
    const data = SIZES.map((n, i) => randn(n, 300 + i, 0.01 * (i + 1)));
    let sum = 0;
    for (const d of data) for (const x of d) sum += x * x;
    const norm = await g.tidy(() => globalGradNorm(data.map((d) => g.tensor(d, [d.length])))).toArray();
    // ~1e5 squares summed in f32 in short runs and trees: a few ulps.
    expectClose(norm, [Math.sqrt(sum)], { atol: 0, rtol: 1e-6 }, 'global norm');
  });

  for (const [k, maxNorm] of MAX_NORMS.entries()) {
    it(`clips like torch.nn.utils.clip_grad_norm_ (max norm ${maxNorm})`, async () => {
      const g = gpu();
      const data = CLIP_GRADS;
      const torch = references.clip[k];
      const { norm, grads } = g.tidy(() => {
        const grads = data.map((d) => g.tensor(d, [d.length]));
        return { norm: clipGradNorm(grads, maxNorm), grads };
      });
      expectClose(await norm.toArray(), [torch.norm], { atol: 0, rtol: 1e-6 }, 'pre-clip norm');
      for (const [i, t] of grads.entries()) {
        // The clip coefficient inherits the norm's relative error.
        expectClose(await t.toArray(), decode(torch.grads[i]), { atol: 1e-10, rtol: 2e-6 }, `clipped grad ${i}`);
      }
      if (maxNorm > 1) expect(Array.from(await grads[4].toArray())).toEqual(Array.from(data[4]));
    });
  }

  it('rejects an empty list, non-f32 gradients and a non-positive max norm', () => {
    const g = gpu();
    g.tidy(() => {
      expect(() => globalGradNorm([])).toThrow(/globalGradNorm: no gradients given/);
      expect(() => globalGradNorm([g.zeros([3], 'u32')])).toThrow(/globalGradNorm: gradients must be f32/);
      expect(() => clipGradNorm([g.zeros([3])], 0)).toThrow(/clipGradNorm: maxNorm must be a positive number, got 0/);
    });
  });
});

describe('learning-rate schedules', () => {
  it('matches transformers get_*_schedule_with_warmup step by step', () => {
    const torch = references.schedules;
    for (const [k, s] of SCHEDULES.entries()) {
      const ours = Array.from({ length: s.steps }, (_, step) => learningRate(s, step));
      // Both sides are float64; Math.cos and libm's cos may differ in the last ulp.
      expectClose(ours, torch[k], { atol: 1e-20, rtol: 1e-13 }, `${s.kind} schedule ${k}`);
    }
  });

  it('warms up from 0 and rejects fractional steps', () => {
    const s: LrSchedule = { kind: 'cosine', lr: 1, warmupSteps: 4, totalSteps: 8 };
    expect([0, 1, 2, 3, 4].map((t) => lrMultiplier(s, t))).toEqual([0, 0.25, 0.5, 0.75, 1]);
    expect(lrMultiplier(s, 8)).toBe(0);
    expect(() => lrMultiplier(s, 1.5)).toThrow(/lrMultiplier: step must be a non-negative integer, got 1.5/);
  });
});
