import { describe, expect, it, vi } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import type { Tensor } from '../src/gpu/tensor.js';
import { dropout, dropoutThreshold, streamBits, streamKey } from '../src/nn/dropout.js';
import { Linear } from '../src/model/linear.js';
import { loraScaling } from '../src/nn/lora-config.js';
import { projectPlusLowRank } from '../src/ops/low-rank.js';
import { forceMatmulVariant } from '../src/ops/matmul-variants.js';
import { expectClose } from './helpers/check.js';
import { gradcheck } from './helpers/gradcheck.js';
import { useGpu } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { matmulReference } from './helpers/reference-matmul.js';
import { testOp } from './helpers/test-op.js';

const gpu = useGpu();

/**
 * The host's copy of the dropout kernel's per-element factor: 0 where the counter-based hash drops
 * the element, 1/(1−p) (as the kernel's f32 uniform holds it) elsewhere.
 */
function dropoutFactors(n: number, p: number, seed: number, stream: number): Float64Array {
  const key = streamKey(seed, stream);
  const keepScale = Math.fround(1 / (1 - p));
  return Float64Array.from({ length: n }, (_, i) => ((streamBits(key, i) >>> 8) >= dropoutThreshold(p) ? keepScale : 0));
}

interface LoraCase {
  rows: number;
  inFeatures: number;
  outFeatures: number;
  rank: number;
  base: 'f32' | 'f16';
  /** Whether W0 and the bias are trained too (an f16 base is always frozen). */
  trainableBase: boolean;
  /** LoRA's dropout on the adapter's input (0: none). */
  dropout: number;
}

const DROPOUT = { seed: 42, stream: 7 };
const ALPHA = 7;
const scalingOf = (c: LoraCase): number => loraScaling({ rank: c.rank, alpha: ALPHA, useRslora: false });

// Odd sizes (no dimension a multiple of a tile), then sizes that span several tiles.
const SMALL = { rows: 5, inFeatures: 13, outFeatures: 11, rank: 3 };
const LARGE = { rows: 70, inFeatures: 67, outFeatures: 65, rank: 8 };
const CASES: LoraCase[] = [
  { ...SMALL, base: 'f32', trainableBase: false, dropout: 0 },
  { ...SMALL, base: 'f32', trainableBase: true, dropout: 0 },
  { ...SMALL, base: 'f16', trainableBase: false, dropout: 0 },
  { ...SMALL, base: 'f32', trainableBase: false, dropout: 0.3 },
  { ...SMALL, base: 'f16', trainableBase: false, dropout: 0.3 },
  { ...LARGE, base: 'f32', trainableBase: true, dropout: 0.3 },
  { ...LARGE, base: 'f16', trainableBase: false, dropout: 0.1 },
];

/** The Linear as the model runs it, with the LoRA term (after LoRA's dropout, as LoraModule applies it) in its delta slot. */
function loraLinear(w0: Tensor, bias: Tensor, a: Tensor, b: Tensor, c: LoraCase): Linear {
  const linear = new Linear('model.layers.0.self_attn.q_proj', w0, bias);
  linear.delta = {
    innerWidth: a.shape[0],
    project: (x, weight) => {
      const { output, h } = projectPlusLowRank(x, weight, c.dropout ? dropout(x, { p: c.dropout, ...DROPOUT }) : x, a, b, scalingOf(c));
      return { output, inner: h };
    },
  };
  return linear;
}

function transpose(m: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = m[i * cols + j];
  return out;
}

/** LoRA's input: x after dropout, in float64. */
function droppedInput(x: Float64Array, c: LoraCase): Float64Array {
  if (!c.dropout) return x;
  const factors = dropoutFactors(x.length, c.dropout, DROPOUT.seed, DROPOUT.stream);
  return x.map((v, i) => v * factors[i]);
}

/** float64 y = x·W0ᵀ + bias + scale·dropout(x)·Aᵀ·Bᵀ. */
function loraReference([x, w0, bias, a, b]: readonly Float64Array[], c: LoraCase): Float64Array {
  const { rows, inFeatures, outFeatures, rank } = c;
  const h = matmulReference(droppedInput(x, c), [rows, inFeatures], a, [rank, inFeatures], false, true);
  const base = matmulReference(x, [rows, inFeatures], w0, [outFeatures, inFeatures], false, true);
  const low = matmulReference(h, [rows, rank], b, [outFeatures, rank], false, true);
  return base.map((v, i) => v + bias[i % outFeatures] + scalingOf(c) * low[i]);
}

/** float64 gradients of Σ g·y with respect to x, W0, bias, A and B (the last two always; W0 and bias when trained). */
function loraBackwardReference([x, w0, , a, b]: readonly Float64Array[], g: Float64Array, c: LoraCase): (Float64Array | null)[] {
  const { rows, inFeatures, outFeatures, rank } = c;
  const scale = scalingOf(c);
  const xd = droppedInput(x, c);
  const h = matmulReference(xd, [rows, inFeatures], a, [rank, inFeatures], false, true);
  const dh = matmulReference(g, [rows, outFeatures], b, [outFeatures, rank]).map((v) => scale * v);
  const gradB = matmulReference(transpose(g, rows, outFeatures), [outFeatures, rows], h, [rows, rank]).map((v) => scale * v);
  const gradA = matmulReference(transpose(dh, rows, rank), [rank, rows], xd, [rows, inFeatures]);
  // dropout's backward passes the gradient through the same factors.
  const factors = c.dropout ? dropoutFactors(x.length, c.dropout, DROPOUT.seed, DROPOUT.stream) : null;
  const gradXLow = matmulReference(dh, [rows, rank], a, [rank, inFeatures]);
  const gradXBase = matmulReference(g, [rows, outFeatures], w0, [outFeatures, inFeatures]);
  const gradX = gradXBase.map((v, i) => v + (factors ? factors[i] : 1) * gradXLow[i]);
  const gradW0 = c.trainableBase ? matmulReference(transpose(g, rows, outFeatures), [outFeatures, rows], x, [rows, inFeatures]) : null;
  const gradBias = c.trainableBase ? Float64Array.from({ length: outFeatures }, (_, j) => Array.from({ length: rows }, (_, i) => g[i * outFeatures + j]).reduce((s, v) => s + v, 0)) : null;
  return [gradX, gradW0, gradBias, gradA, gradB];
}

describe('LoRA linear vs float64 (forward; gradients of x, A, B, and of W0 and the bias when trained)', () => {
  // f32 sums of ≤ 67 products of size ≲ 1 (x ~ 1, weights ~ 0.3): a few ulps each, ~1e-6 at
  // worst; 1e-5 leaves room for the summation order and the two-step LoRA product, and is far
  // below any layout or dropout-mask mistake.
  const TOL = { atol: 1e-5, rtol: 1e-5 };
  testOp(
    'LoRA linear',
    ([x, w0, bias, a, b], c) => loraLinear(w0, bias, a, b, c).forward(x),
    loraReference,
    CASES,
    {
      gpu,
      inputs: (c, seed) => [
        { data: randn(c.rows * c.inFeatures, seed), shape: [c.rows, c.inFeatures] },
        // An f16 base holds the rounded weights; the reference sees exactly those values.
        { data: randn(c.outFeatures * c.inFeatures, seed + 1, 0.3), shape: [c.outFeatures, c.inFeatures], dtype: c.base, differentiable: c.trainableBase },
        { data: randn(c.outFeatures, seed + 2, 0.1), shape: [c.outFeatures], differentiable: c.trainableBase },
        { data: randn(c.rank * c.inFeatures, seed + 3, 0.3), shape: [c.rank, c.inFeatures] },
        { data: randn(c.outFeatures * c.rank, seed + 4, 0.3), shape: [c.outFeatures, c.rank] },
      ],
      tol: TOL,
      outShape: (c) => [c.rows, c.outFeatures],
      label: (c) => `${c.rows}×${c.inFeatures} → ${c.outFeatures}, r ${c.rank}, ${c.base} ${c.trainableBase ? 'trained' : 'frozen'} base${c.dropout ? `, dropout ${c.dropout}` : ''}`,
      gradient: { cases: CASES, tol: TOL, backwardReference: loraBackwardReference },
    },
  );
});

describe('LoRA linear gradients into existing .grad (micro-batches after the first)', () => {
  const TOL = { atol: 1e-5, rtol: 1e-5 };
  for (const c of [CASES[0], CASES[3], CASES[6]]) {
    it(`A and B gain this backward's gradients on top of what they held, x gets its own: ${c.rows}×${c.inFeatures} → ${c.outFeatures}, r ${c.rank}${c.dropout ? `, dropout ${c.dropout}` : ''}`, async () => {
      const g = gpu();
      const { rows, inFeatures, outFeatures, rank } = c;
      const values = [
        randn(rows * inFeatures, 31),
        Float64Array.from(randn(outFeatures * inFeatures, 32, 0.3)),
        randn(outFeatures, 33, 0.1),
        randn(rank * inFeatures, 34, 0.3),
        randn(outFeatures * rank, 35, 0.3),
      ];
      const gradOut = randn(rows * outFeatures, 36);
      const held = [randn(rank * inFeatures, 37), randn(outFeatures * rank, 38)];
      const [gradX, gradA, gradB] = g.tidy(() => {
        const x = g.tensor(values[0], [rows, inFeatures]);
        x.requiresGrad = true;
        const [w0, bias] = [g.tensor(values[1], [outFeatures, inFeatures]), g.tensor(values[2], [outFeatures])];
        const [a, b] = [g.keep(g.tensor(values[3], [rank, inFeatures])), g.keep(g.tensor(values[4], [outFeatures, rank]))];
        a.requiresGrad = b.requiresGrad = true;
        a.grad = g.keep(g.tensor(held[0], [rank, inFeatures]));
        b.grad = g.keep(g.tensor(held[1], [outFeatures, rank]));
        backward(loraLinear(w0, bias, a, b, c).forward(x), g.tensor(gradOut, [rows, outFeatures]));
        return [g.keep(x.grad!), a.grad, b.grad];
      });
      const reference = loraBackwardReference(values.map((v) => Float64Array.from(v)), Float64Array.from(gradOut), c);
      expectClose(await gradX.toArray(), reference[0]!, TOL, 'dx');
      expectClose(await gradA.toArray(), reference[3]!.map((v, i) => v + held[0][i]), TOL, 'A.grad');
      expectClose(await gradB.toArray(), reference[4]!.map((v, i) => v + held[1][i]), TOL, 'B.grad');
      for (const t of [gradX, gradA, gradB]) t.dispose();
    });
  }
});

describe('dropout', () => {
  /** The host's copy of the kernel's mask: the same counter-based hash, so masks can be compared exactly. */
  function expectedDropout(x: Float32Array, p: number, seed: number, stream: number): Float32Array {
    const factors = dropoutFactors(x.length, p, seed, stream);
    return x.map((v, i) => (factors[i] ? Math.fround(v * factors[i]) : 0));
  }

  async function run(x: Float32Array, p: number, seed: number, stream: number): Promise<Float32Array> {
    const g = gpu();
    const out = noGrad(() => g.tidy(() => dropout(g.tensor(x, [x.length]), { p, seed, stream })));
    const values = await out.toArray();
    out.dispose();
    return values;
  }

  it('drops exactly the elements the host hash picks and scales the rest by 1/(1−p)', async () => {
    const x = randn(5000, 11);
    const out = await run(x, 0.3, 42, 7);
    // One correctly rounded f32 multiply on both sides: bit-identical.
    expect(Array.from(out)).toEqual(Array.from(expectedDropout(x, 0.3, 42, 7)));
  });

  it('keeps each element with probability 1 − p and preserves the mean', async () => {
    const n = 200_000;
    for (const p of [0.1, 0.5]) {
      const out = await run(new Float32Array(n).fill(1), p, 3, 0);
      const kept = out.reduce((count, v) => count + (v !== 0 ? 1 : 0), 0);
      // Binomial(n, 1 − p): 5 standard deviations is a test that fails by chance ~1 in 10⁶.
      const sigma = Math.sqrt((p * (1 - p)) / n);
      expect(Math.abs(kept / n - (1 - p))).toBeLessThan(5 * sigma);
      expect(out.every((v) => v === 0 || v === Math.fround(1 / (1 - p)))).toBe(true);
      const mean = out.reduce((s, v) => s + v, 0) / n;
      expect(Math.abs(mean - 1)).toBeLessThan((5 * sigma) / (1 - p));
    }
  });

  it('is reproducible by (seed, stream) and changes with either', async () => {
    const x = randn(4096, 12);
    const first = await run(x, 0.2, 9, 1);
    expect(Array.from(await run(x, 0.2, 9, 1))).toEqual(Array.from(first));
    const zeros = (v: Float32Array) => v.map((e) => (e === 0 ? 1 : 0));
    for (const [seed, stream] of [[10, 1], [9, 2]]) {
      const other = zeros(await run(x, 0.2, seed, stream));
      const same = zeros(first).reduce((n, z, i) => n + (z === other[i] ? 1 : 0), 0);
      // Independent masks agree on 0.8² + 0.2² = 68% of elements; the same mask on 100%.
      expect(same / x.length).toBeLessThan(0.75);
    }
  });

  it('p = 0 is the identity, and p outside [0, 1) is refused', async () => {
    const x = randn(100, 13);
    expect(Array.from(await run(x, 0, 1, 1))).toEqual(Array.from(x));
    await expect(run(x, 1, 1, 1)).rejects.toThrow(/p must be in \[0, 1\)/);
    await expect(run(x, -0.1, 1, 1)).rejects.toThrow(/p must be in \[0, 1\)/);
  });

  it('the gradient goes through the same mask (exact, and vs finite differences)', async () => {
    const g = gpu();
    const x = randn(300, 14);
    const gradOut = randn(300, 15);
    const grad = g.tidy(() => {
      const input = g.tensor(x, [300]);
      input.requiresGrad = true;
      backward(dropout(input, { p: 0.4, seed: 5, stream: 2 }), g.tensor(gradOut, [300]));
      return input.grad!;
    });
    expect(Array.from(await grad.toArray())).toEqual(Array.from(expectedDropout(gradOut, 0.4, 5, 2)));
    await gradcheck(g, ([t]) => dropout(t, { p: 0.4, seed: 5, stream: 2 }), [{ data: x.slice(0, 40), shape: [40] }]);
  });
});

describe('LoRA linear on the broadcast kernel (the term in the base product\'s dispatch)', () => {
  it('binds h and dh at one size for any row count up to 16 KiB: no pipeline per row count, the same values', async () => {
    const g = gpu();
    const [inF, outF, rank, scale] = [64, 96, 8, 2];
    const w0 = randn(outF * inF, 21, 1 / 8);
    const a = randn(rank * inF, 22, 1 / 8);
    const b = randn(outF * rank, 23);
    const lowWindows = new Set<unknown>();
    const kernel = vi.spyOn(g, 'kernel');
    forceMatmulVariant(g, 'bcast24x4');
    try {
      for (const rows of [1, 5, 32, 100]) {
        const x = randn(rows * inF, 24 + rows);
        const gradOut = randn(rows * outF, 25 + rows);
        const [y, dx] = g.tidy(() => {
          const input = g.tensor(x, [rows, inF]);
          input.requiresGrad = true;
          const [tw, ta, tb] = [g.tensor(w0, [outF, inF]), g.tensor(a, [rank, inF]), g.tensor(b, [outF, rank])];
          ta.requiresGrad = true;
          const { output } = projectPlusLowRank(input, tw, input, ta, tb, scale);
          backward(output, g.tensor(gradOut, [rows, outF]));
          return [output, input.grad!];
        });
        const h = matmulReference(x, [rows, inF], a, [rank, inF], false, true);
        const low = matmulReference(h, [rows, rank], b, [outF, rank], false, true);
        const expectedY = matmulReference(x, [rows, inF], w0, [outF, inF], false, true).map((v, i) => v + scale * low[i]);
        const dh = matmulReference(gradOut, [rows, outF], b, [outF, rank]).map((v) => scale * v);
        const dhA = matmulReference(dh, [rows, rank], a, [rank, inF]);
        const expectedDx = matmulReference(gradOut, [rows, outF], w0, [outF, inF]).map((v, i) => v + dhA[i]);
        expectClose(await y.toArray(), expectedY, { atol: 1e-5, rtol: 1e-5 }, `y, ${rows} rows`);
        expectClose(await dx.toArray(), expectedDx, { atol: 1e-5, rtol: 1e-5 }, `dx, ${rows} rows`);
      }
      for (const [name, values] of kernel.mock.calls) if (name === 'matmul_broadcast' && values?.LOW_STEPS) lowWindows.add(values.LOW_WINDOW);
    } finally {
      kernel.mockRestore();
      forceMatmulVariant(g, undefined);
    }
    // Forward (h) and backward (dh) terms alike, from 1 row to 100: one 16 KiB binding.
    expect([...lowWindows]).toEqual([1024]);
  });
});
