import { beforeEach, describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { noGrad } from '../src/autograd/grad-node.js';
import type { Gpu } from '../src/gpu/gpu.js';
import type { DType, Tensor } from '../src/gpu/tensor.js';
import { dropout, dropoutThreshold, streamBits, streamKey } from '../src/nn/dropout.js';
import { Linear } from '../src/model/linear.js';
import { loraScaling } from '../src/nn/lora-config.js';
import { loraProject } from '../src/nn/lora.js';
import { expectClose } from './helpers/check.js';
import { gradcheck } from './helpers/gradcheck.js';
import { useGpu } from './helpers/gpu.js';
import { randn } from './helpers/random.js';
import { matmulReference, roundToF16 } from './helpers/reference-matmul.js';

const gpu = useGpu();

// A LoRA'd linear of odd sizes (no dimension a multiple of a tile): y = x·W0ᵀ + b + s·x·Aᵀ·Bᵀ.
const [N, IN, OUT, R] = [5, 13, 11, 3];
const SCALE = loraScaling({ rank: R, alpha: 7, useRslora: false });
const data = {
  x: randn(N * IN, 1),
  w0: randn(OUT * IN, 2, 0.3),
  bias: randn(OUT, 3, 0.1),
  a: randn(R * IN, 4, 0.3),
  b: randn(OUT * R, 5, 0.3),
};

/** The Linear as the model runs it, with the LoRA term plugged into its delta slot. */
function loraLinear(w0: Tensor, bias: Tensor, a: Tensor, b: Tensor): Linear {
  const linear = new Linear('model.layers.0.self_attn.q_proj', w0, bias);
  linear.delta = { project: (x, weight) => loraProject(x, x, weight, a, b, SCALE) };
  return linear;
}

function transpose(m: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = m[i * cols + j];
  return out;
}

/** float64 forward and backward of the same layer for dL/dy = g. */
function reference(w0: ArrayLike<number>, g: ArrayLike<number>) {
  const { x, bias, a, b } = data;
  const h = matmulReference(x, [N, IN], a, [R, IN], false, true); // [N, r]
  const base = matmulReference(x, [N, IN], w0, [OUT, IN], false, true);
  const lora = matmulReference(h, [N, R], b, [OUT, R], false, true);
  const y = base.map((v, i) => v + bias[i % OUT] + SCALE * lora[i]);
  const dh = matmulReference(g, [N, OUT], b, [OUT, R]).map((v) => SCALE * v); // [N, r]
  const gradB = matmulReference(transpose(g, N, OUT), [OUT, N], h, [N, R]).map((v) => SCALE * v);
  const gradA = matmulReference(transpose(dh, N, R), [R, N], x, [N, IN]);
  const gradXBase = matmulReference(g, [N, OUT], w0, [OUT, IN]);
  const gradXLora = matmulReference(dh, [N, R], a, [R, IN]);
  return { y, gradA, gradB, gradX: gradXBase.map((v, i) => v + gradXLora[i]) };
}

for (const dtype of ['f32', 'f16'] as const satisfies readonly DType[]) {
  describe(`LoRA linear, ${dtype} base weight`, () => {
    beforeEach((ctx) => {
      if (dtype === 'f16' && !gpu().hasF16) ctx.skip();
    });
    // The f16 base holds the rounded weights; the reference uses exactly those values.
    const w0Values = dtype === 'f16' ? roundToF16(data.w0) : data.w0;
    const frozen = (g: Gpu) => g.tensor(data.w0, [OUT, IN], dtype);

    it('forward and the gradients of x, A and B match a float64 reference', async () => {
      const g = gpu();
      const gradOut = randn(N * OUT, 6);
      const result = g.tidy(() => {
        const [x, a, b] = [g.tensor(data.x, [N, IN]), g.tensor(data.a, [R, IN]), g.tensor(data.b, [OUT, R])];
        for (const t of [x, a, b]) t.requiresGrad = true;
        const w0 = frozen(g);
        const y = loraLinear(w0, g.tensor(data.bias, [OUT]), a, b).forward(x);
        backward(y, g.tensor(gradOut, [N, OUT]));
        expect(w0.grad).toBeNull();
        return { y, gradX: x.grad!, gradA: a.grad!, gradB: b.grad! };
      });
      const ref = reference(w0Values, gradOut);
      // f32 products of ≤ 13 terms of size ~1: a few ulps each; 1e-5 leaves room for the
      // summation order and the two-step LoRA product, and is far below any layout mistake.
      const tol = { atol: 1e-5, rtol: 1e-5 };
      expectClose(await result.y.toArray(), ref.y, tol, 'y');
      expectClose(await result.gradX.toArray(), ref.gradX, tol, 'dL/dx');
      expectClose(await result.gradA.toArray(), ref.gradA, tol, 'dL/dA');
      expectClose(await result.gradB.toArray(), ref.gradB, tol, 'dL/dB');
    });

    it('gradients of x, A and B match finite differences', async () => {
      const g = gpu();
      const w0 = g.keep(frozen(g));
      const bias = g.keep(g.tensor(data.bias, [OUT]));
      await gradcheck(g, ([x, a, b]) => loraLinear(w0, bias, a, b).forward(x), [
        { data: data.x, shape: [N, IN] },
        { data: data.a, shape: [R, IN] },
        { data: data.b, shape: [OUT, R] },
      ]);
      w0.dispose();
      bias.dispose();
    });

    if (dtype === 'f32') {
      it('a trainable base weight gets its gradient too (finite differences)', async () => {
        const g = gpu();
        const bias = g.keep(g.tensor(data.bias, [OUT]));
        await gradcheck(g, ([x, w0, a, b]) => loraLinear(w0, bias, a, b).forward(x), [
          { data: data.x, shape: [N, IN] },
          { data: data.w0, shape: [OUT, IN] },
          { data: data.a, shape: [R, IN] },
          { data: data.b, shape: [OUT, R] },
        ]);
        bias.dispose();
      });
    }
  });
}

describe('dropout', () => {
  /** The host's copy of the kernel's mask: the same counter-based hash, so masks can be compared exactly. */
  function expectedDropout(x: Float32Array, p: number, seed: number, stream: number): Float32Array {
    const key = streamKey(seed, stream);
    const keepScale = Math.fround(1 / (1 - p));
    return x.map((v, i) => ((streamBits(key, i) >>> 8) >= dropoutThreshold(p) ? Math.fround(v * keepScale) : 0));
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
