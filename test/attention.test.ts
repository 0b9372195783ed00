import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import { attention, type AttentionOptions } from '../src/ops/attention.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { gradcheck } from './helpers/gradcheck.js';
import { randn } from './helpers/random.js';
import { attentionBackwardReference, attentionReference, type AttentionMask, type AttentionShape } from './helpers/reference-attention.js';

const gpu = useGpu();

// f32 dot products over D ≤ 64 terms and a softmax over ≤ 200 keys: errors stay near 1e-6 for
// O(1) outputs; 1e-5 leaves headroom without hiding a wrong mask or a missed rescale (those give
// errors of order 0.1).
const FORWARD_TOL = { atol: 1e-5, rtol: 1e-4 };
// Gradients sum up to T·Hq/Hkv terms of O(1) products.
const BACKWARD_TOL = { atol: 3e-5, rtol: 1e-4 };

interface Case extends AttentionShape {
  seed: number;
  mask?: AttentionMask;
}

function inputs(c: Case) {
  const { batch, queries, keys, qHeads, kvHeads, headDim } = c;
  return {
    q: randn(batch * queries * qHeads * headDim, c.seed),
    k: randn(batch * keys * kvHeads * headDim, c.seed + 1),
    v: randn(batch * keys * kvHeads * headDim, c.seed + 2),
    qShape: [batch, queries, qHeads, headDim],
    kvShape: [batch, keys, kvHeads, headDim],
  };
}

function gpuOptions(c: Case): AttentionOptions {
  const g = gpu();
  return {
    kvLength: c.mask?.kvLength,
    scale: c.mask?.scale,
    window: c.mask?.window,
    keyStart: c.mask?.keyStart ? g.tensor(c.mask.keyStart, [c.batch], 'u32') : undefined,
  };
}

async function checkForward(c: Case): Promise<void> {
  const g = gpu();
  const x = inputs(c);
  const out = await g.tidy(() => g.keep(attention(g.tensor(x.q, x.qShape), g.tensor(x.k, x.kvShape), g.tensor(x.v, x.kvShape), gpuOptions(c)))).toArray();
  expect(out.every(Number.isFinite), 'finite outputs').toBe(true);
  expectClose(out, attentionReference(c, x.q, x.k, x.v, c.mask), FORWARD_TOL, 'attention forward');
}

async function checkBackward(c: Case): Promise<void> {
  const g = gpu();
  const x = inputs(c);
  const gradOut = randn(x.q.length, c.seed + 3);
  const grads = await g.tidy(() => {
    const [q, k, v] = [g.tensor(x.q, x.qShape), g.tensor(x.k, x.kvShape), g.tensor(x.v, x.kvShape)];
    for (const t of [q, k, v]) t.requiresGrad = true;
    backward(attention(q, k, v, gpuOptions(c)), g.tensor(gradOut, x.qShape));
    return [q.grad!, k.grad!, v.grad!].map((t) => g.keep(t));
  });
  const [gradQ, gradK, gradV] = await Promise.all(grads.map((t) => t.toArray()));
  const ref = attentionBackwardReference(c, x.q, x.k, x.v, gradOut, c.mask);
  expectClose(gradQ, ref.gradQ, BACKWARD_TOL, 'dq');
  expectClose(gradK, ref.gradK, BACKWARD_TOL, 'dk');
  expectClose(gradV, ref.gradV, BACKWARD_TOL, 'dv');
}

const shape = (batch: number, queries: number, keys: number, qHeads: number, kvHeads: number, headDim: number): AttentionShape => ({ batch, queries, keys, qHeads, kvHeads, headDim });

describe('attention forward vs float64 reference', () => {
  it('a single query and key', () => checkForward({ ...shape(1, 1, 1, 1, 1, 4), seed: 1 }));
  it('T = S = 17, GQA 6/2 heads, D = 16', () => checkForward({ ...shape(1, 17, 17, 6, 2, 16), seed: 2 }));
  it('T = S = 33, D = 64, 4 heads (MHA), batch 2', () => checkForward({ ...shape(2, 33, 33, 4, 4, 64), seed: 3 }));
  it('D = 128 with a custom scale', () => checkForward({ ...shape(1, 9, 9, 2, 1, 128), seed: 4, mask: { scale: 0.3 } }));
  it('decode: one query over a partly filled cache', () => checkForward({ ...shape(3, 1, 40, 9, 3, 32), seed: 5, mask: { kvLength: 29 } }));
  it('several new queries over a cache (chunked prefill)', () => checkForward({ ...shape(2, 5, 24, 4, 2, 16), seed: 6, mask: { kvLength: 19 } }));
  it('left padding: keyStart masks keys, a fully masked row gives 0', async () => {
    // Batch 1 starts at key 7, so its queries at positions 0..6 see nothing; batch 2 masks all.
    const c = { ...shape(3, 12, 12, 4, 2, 16), seed: 7, mask: { keyStart: [0, 7, 12] } };
    await checkForward(c);
    const g = gpu();
    const x = inputs(c);
    const out = await g.tidy(() => g.keep(attention(g.tensor(x.q, x.qShape), g.tensor(x.k, x.kvShape), g.tensor(x.v, x.kvShape), gpuOptions(c)))).toArray();
    const rowSize = 4 * 16;
    expect(out.slice(12 * rowSize, 19 * rowSize).every((value) => value === 0)).toBe(true);
    expect(out.slice(24 * rowSize).every((value) => value === 0)).toBe(true);
  });
  it('decode with keyStart and kvLength < S, batch 8', () => checkForward({ ...shape(8, 1, 64, 6, 2, 16), seed: 8, mask: { kvLength: 50, keyStart: [0, 3, 49, 50, 10, 0, 1, 20] } }));
  it('larger: B = 2, T = S = 200, 9/3 heads, D = 64', () => checkForward({ ...shape(2, 200, 200, 9, 3, 64), seed: 9 }));
  it('sliding window 5 over T = S = 23, GQA 6/2, with left padding', () =>
    checkForward({ ...shape(2, 23, 23, 6, 2, 16), seed: 21, mask: { window: 5, keyStart: [0, 9] } }));
  it('sliding window of 1 (each query sees only itself)', () => checkForward({ ...shape(1, 11, 11, 3, 3, 8), seed: 22, mask: { window: 1 } }));
  it('sliding window in decode over a partly filled cache, batch 4', () =>
    checkForward({ ...shape(4, 1, 48, 4, 1, 32), seed: 23, mask: { window: 7, kvLength: 41, keyStart: [0, 3, 36, 40] } }));
  it('sliding window in chunked prefill, window wider than the cache changes nothing', async () => {
    await checkForward({ ...shape(2, 6, 30, 4, 2, 16), seed: 24, mask: { window: 9, kvLength: 25 } });
    await checkForward({ ...shape(2, 6, 30, 4, 2, 16), seed: 24, mask: { window: 1000, kvLength: 25 } });
  });
});

describe('attention backward', () => {
  it('gradcheck q, k, v on a small causal GQA shape', async () => {
    const c = { ...shape(2, 5, 5, 4, 2, 8), seed: 11 };
    const x = inputs(c);
    await gradcheck(gpu(), ([q, k, v]) => attention(q, k, v), [
      { data: x.q, shape: x.qShape },
      { data: x.k, shape: x.kvShape },
      { data: x.v, shape: x.kvShape },
    ]);
  });
  it('gradcheck with kvLength < S and keyStart', async () => {
    const c = { ...shape(2, 3, 9, 3, 1, 4), seed: 12 };
    const x = inputs(c);
    const keyStart = gpu().tensor([2, 0], [2], 'u32');
    await gradcheck(gpu(), ([q, k, v]) => attention(q, k, v, { kvLength: 7, keyStart }), [
      { data: x.q, shape: x.qShape },
      { data: x.k, shape: x.kvShape },
      { data: x.v, shape: x.kvShape },
    ]);
  });
  it('dq, dk, dv vs float64 reference: T = S = 17, 6/2 heads, D = 16', () => checkBackward({ ...shape(1, 17, 17, 6, 2, 16), seed: 13 }));
  it('dq, dk, dv vs float64 reference: T = S = 33, 9/3 heads, D = 64, batch 2', () => checkBackward({ ...shape(2, 33, 33, 9, 3, 64), seed: 14 }));
  it('dq, dk, dv vs float64 reference with padding and a fully masked row', () =>
    checkBackward({ ...shape(3, 10, 10, 4, 1, 32), seed: 15, mask: { keyStart: [0, 4, 10] } }));
  it('dq, dk, dv vs float64 reference over a partly filled cache', () => checkBackward({ ...shape(2, 6, 20, 2, 2, 16), seed: 16, mask: { kvLength: 15 } }));
  it('dq, dk, dv vs float64 reference: completions after a shared prompt (T < S = kvLength, left-padded prompts)', () =>
    checkBackward({ ...shape(4, 7, 19, 4, 2, 16), seed: 18, mask: { kvLength: 19, keyStart: [0, 5, 12, 3] } }));
  it('gradcheck: queries at the end of a longer key range with keyStart', async () => {
    const c = { ...shape(2, 3, 8, 2, 1, 4), seed: 19 };
    const x = inputs(c);
    const keyStart = gpu().tensor([4, 1], [2], 'u32');
    await gradcheck(gpu(), ([q, k, v]) => attention(q, k, v, { keyStart }), [
      { data: x.q, shape: x.qShape },
      { data: x.k, shape: x.kvShape },
      { data: x.v, shape: x.kvShape },
    ]);
  });
  it('gradcheck with a sliding window, kvLength < S and keyStart', async () => {
    const c = { ...shape(2, 7, 11, 4, 2, 4), seed: 25 };
    const x = inputs(c);
    const keyStart = gpu().tensor([0, 3], [2], 'u32');
    await gradcheck(gpu(), ([q, k, v]) => attention(q, k, v, { kvLength: 10, keyStart, window: 3 }), [
      { data: x.q, shape: x.qShape },
      { data: x.k, shape: x.kvShape },
      { data: x.v, shape: x.kvShape },
    ]);
  });
  it('dq, dk, dv vs float64 reference with sliding window 6: T = S = 37, 6/2 heads, D = 16, padding', () =>
    checkBackward({ ...shape(2, 37, 37, 6, 2, 16), seed: 26, mask: { window: 6, keyStart: [0, 5] } }));
  it('dq, dk, dv vs float64 reference with window 4 over a partly filled cache, MHA D = 64', () =>
    checkBackward({ ...shape(2, 9, 21, 3, 3, 64), seed: 27, mask: { window: 4, kvLength: 18 } }));
  it('only the inputs that need gradients get them', async () => {
    const g = gpu();
    const c = shape(1, 4, 4, 2, 1, 8);
    const x = inputs({ ...c, seed: 17 });
    const [q, k, v] = [g.tensor(x.q, x.qShape), g.tensor(x.k, x.kvShape), g.tensor(x.v, x.kvShape)];
    v.requiresGrad = true;
    g.tidy(() => backward(attention(q, k, v)));
    expect(q.grad).toBeNull();
    expect(k.grad).toBeNull();
    expectClose(await v.grad!.toArray(), attentionBackwardReference(c, x.q, x.k, x.v, new Float32Array(x.q.length).fill(1)).gradV, BACKWARD_TOL, 'dv');
  });
});

describe('attention errors name the op and the shapes', () => {
  const t = (shape: number[]) => gpu().empty(shape);
  it('rejects bad head counts, dims and masks', () => {
    expect(() => attention(t([1, 4, 6, 16]), t([1, 4, 4, 16]), t([1, 4, 4, 16]))).toThrow(/attention: query heads \(6\) must be a multiple of kv heads \(4\): q \[1, 4, 6, 16\], k \[1, 4, 4, 16\]/);
    expect(() => attention(t([1, 4, 2, 16]), t([1, 4, 2, 8]), t([1, 4, 2, 8]))).toThrow(/attention: head dims differ: q \[1, 4, 2, 16\], k \[1, 4, 2, 8\]/);
    expect(() => attention(t([1, 4, 2, 16]), t([1, 4, 2, 16]), t([1, 5, 2, 16]))).toThrow(/attention: k and v shapes differ/);
    expect(() => attention(t([2, 4, 2, 16]), t([1, 4, 2, 16]), t([1, 4, 2, 16]))).toThrow(/attention: batch sizes differ: q \[2, 4, 2, 16\]/);
    expect(() => attention(t([4, 2, 16]), t([1, 4, 2, 16]), t([1, 4, 2, 16]))).toThrow(/attention: q \[B, T, Hq, D\] must have rank 4, got \[4, 2, 16\]/);
    expect(() => attention(t([1, 4, 2, 6]), t([1, 4, 2, 6]), t([1, 4, 2, 6]))).toThrow(/attention: head dim must be a multiple of 4/);
    expect(() => attention(t([1, 5, 2, 16]), t([1, 8, 2, 16]), t([1, 8, 2, 16]), { kvLength: 4 })).toThrow(/attention: kvLength 4 must be an integer in \[T, S\] = \[5, 8\]/);
    expect(() => attention(t([2, 1, 2, 16]), t([2, 8, 2, 16]), t([2, 8, 2, 16]), { keyStart: gpu().zeros([3], 'u32') })).toThrow(/attention: keyStart must be u32 \[2\], got u32 \[3\]/);
    expect(() => attention(t([1, 4, 2, 16]), t([1, 4, 2, 16]), t([1, 4, 2, 16]), { window: 0 })).toThrow(/attention: window must be a positive integer, got 0/);
    expect(() => attention(gpu().empty([1, 1, 1, 4], 'f16'), t([1, 1, 1, 4]), t([1, 1, 1, 4]))).toThrow(/attention: expected f32, got f16 \[1, 1, 1, 4\]/);
  });
});
