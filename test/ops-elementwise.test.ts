import { describe, expect, it } from 'vitest';
import { concat, permute, slice, transpose } from '../src/ops/layout.js';
import { swiglu } from '../src/ops/swiglu.js';
import { unary, type UnaryOp } from '../src/ops/unary.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randn, uniform } from './helpers/random.js';
import { numelOf } from './helpers/reference-rows.js';
import { randnInput, testOp } from './helpers/test-op.js';

const gpu = useGpu();

const sigmoidRef = (v: number) => 1 / (1 + Math.exp(-v));
const siluRef = (v: number) => v * sigmoidRef(v);

// Inputs keep away from where finite differences or the function break down: log and sqrt get
// positive inputs, relu stays ≥ 0.1 away from its kink.
const awayFromZero = (data: Float32Array) => data.map((v) => v + Math.sign(v) * 0.1);
const UNARY: Record<UnaryOp, { ref: (v: number) => number; input: (n: number, seed: number) => Float32Array }> = {
  exp: { ref: Math.exp, input: (n, s) => randn(n, s, 2) },
  log: { ref: Math.log, input: (n, s) => uniform(n, s, 0.05, 10) },
  neg: { ref: (v) => -v, input: (n, s) => randn(n, s, 2) },
  sqrt: { ref: Math.sqrt, input: (n, s) => uniform(n, s, 0.05, 10) },
  square: { ref: (v) => v * v, input: (n, s) => randn(n, s, 2) },
  relu: { ref: (v) => Math.max(v, 0), input: (n, s) => awayFromZero(randn(n, s, 2)) },
  sigmoid: { ref: sigmoidRef, input: (n, s) => randn(n, s, 4) },
  silu: { ref: siluRef, input: (n, s) => randn(n, s, 4) },
};
// WGSL lets exp err by 3 + 2|x| ULP (≤ ~20 ULP ≈ 1.2e-6 relative for |x| ≤ 8 here), log by 3 ULP
// or 2^-21 absolute near 1, sqrt by ~2.5 ULP; sigmoid and silu inherit exp's error.
const UNARY_TOL = { atol: 1e-6, rtol: 2e-6 };

// Counts that are multiples of 4 ([6, 20], [2, 3, 8]) run the kernels that take a vec4 per invocation.
const shapes = [[1], [7, 13], [6, 20], [3, 5, 257], [300007]];

const gradShapes = [[1], [7, 13], [2, 3, 8], [3, 5, 257]];
const sameShape = (shape: number[]) => shape;

describe('unary ops', () => {
  for (const [op, { ref, input }] of Object.entries(UNARY) as [UnaryOp, (typeof UNARY)[UnaryOp]][]) {
    testOp(op, ([x]) => unary(op, x), ([x]) => x.map(ref), shapes, {
      gpu,
      inputs: (shape) => [{ data: input(numelOf(shape), numelOf(shape) + 3), shape }],
      tol: UNARY_TOL,
      outShape: sameShape,
      gradient: { cases: gradShapes },
    });
  }

  it('keep sigmoid and silu finite far from zero', async () => {
    const x = gpu().tensor([-100, -30, 30, 100], [4]);
    // Relative checks (the values span 1e-44..100): exp(30) may be off by 3 + 60 ULP ≈ 4e-6.
    // sigmoid(−100) ≈ 4e-44 is below f32's normal range, and exp(100) overflows, giving 0.
    const farTol = { atol: 1.2e-38, rtol: 4e-6 };
    expectClose(await unary('sigmoid', x).toArray(), [sigmoidRef(-100), sigmoidRef(-30), 1, 1], farTol, 'sigmoid');
    expectClose(await unary('silu', x).toArray(), [siluRef(-100), siluRef(-30), 30, 100], farTol, 'silu');
  });

  it('name the op for a non-f32 input', () => {
    expect(() => unary('exp', gpu().empty([3], 'f16'))).toThrow('exp: expected f32, got f16 [3]');
  });

});

describe('swiglu', () => {
  const reference = ([gate, up]: readonly Float64Array[]) => gate.map((g, i) => siluRef(g) * up[i]);
  const inputs = (shape: number[], seed: number, upTrainable = true) => [randnInput(shape, seed, 3), { ...randnInput(shape, seed + 1), differentiable: upTrainable }];
  testOp('swiglu', ([g, u]) => swiglu(g, u), reference, shapes, { gpu, inputs, tol: UNARY_TOL, outShape: sameShape, gradient: { cases: gradShapes } });
  // Only one side trainable: the other gradient is neither returned nor required.
  testOp('swiglu with a frozen up', ([g, u]) => swiglu(g, u), reference, [], { gpu, inputs: (shape, seed) => inputs(shape, seed, false), tol: UNARY_TOL, gradient: { cases: gradShapes } });

  it('names the op and both shapes when they differ', () => {
    expect(() => swiglu(gpu().empty([2, 3]), gpu().empty([2, 4]))).toThrow('swiglu: shapes differ: [2, 3] vs [2, 4]');
    expect(() => swiglu(gpu().empty([2], 'f16'), gpu().empty([2]))).toThrow('swiglu: expected f32, got f16 [2]');
  });

});

/** Row-major index of `idx` in `shape`. */
const flat = (idx: number[], shape: number[]) => idx.reduce((acc, k, d) => acc * shape[d] + k, 0);
/** Every index tuple of `shape` in row-major order. */
function indices(shape: number[]): number[][] {
  return Array.from({ length: numelOf(shape) }, (_, i) => {
    const idx = new Array<number>(shape.length);
    for (let d = shape.length - 1; d >= 0; d--) {
      idx[d] = i % shape[d];
      i = Math.floor(i / shape[d]);
    }
    return idx;
  });
}

describe('layout ops', () => {
  const cases: [number[], number[]][] = [
    [[1], [0]],
    [[7, 13], [1, 0]],
    [[3, 5, 257], [2, 0, 1]],
    [[2, 3, 4, 5], [0, 2, 1, 3]],
    [[2, 3, 4, 5], [3, 1, 0, 2]],
    // The last axis kept, a multiple of 4: copied a vec4 at a time.
    [[3, 2, 8], [1, 0, 2]],
  ];
  testOp(
    'permute',
    ([x], [, dims]) => permute(x, dims),
    ([x], [shape, dims]) => indices(dims.map((d) => shape[d])).map((o) => x[flat(dims.map((_, i) => o[dims.indexOf(i)]), shape)]),
    cases,
    {
      gpu,
      inputs: ([shape]) => [randnInput(shape, 21)],
      // Moves every element exactly.
      tol: 'exact',
      outShape: ([shape, dims]) => dims.map((d) => shape[d]),
      label: ([shape, dims]) => `${JSON.stringify(shape)} by ${JSON.stringify(dims)}`,
      gradient: { cases },
    },
  );

  it('transpose swaps the last two axes', async () => {
    const data = randn(3 * 5 * 7, 22);
    const y = transpose(gpu().tensor(data, [3, 5, 7]));
    expect(y.shape).toEqual([3, 7, 5]);
    expect(Array.from(await y.toArray())).toEqual(indices([3, 7, 5]).map(([b, i, j]) => data[flat([b, j, i], [3, 5, 7])]));
  });

  // [3, 5, 12]: rows of whole vec4s, copied a vec4 at a time (also cut at 4 and 8 along the last axis).
  for (const shape of [[3, 5, 257], [3, 5, 12]]) it(`slice and concat round-trip a fused projection along any axis of ${JSON.stringify(shape)}`, async () => {
    const data = randn(numelOf(shape), 23);
    const x = gpu().tensor(data, shape);
    for (const axis of [0, 1, 2, -1]) {
      const a = (axis + 3) % 3;
      const cut1 = shape[a] % 4 === 0 ? 4 : 1;
      const cut2 = shape[a] - cut1;
      const parts = [slice(x, axis, 0, cut1), slice(x, axis, cut1, cut2), slice(x, axis, cut2, shape[a])];
      const middle = parts[1];
      expect(middle.shape).toEqual(shape.map((d, i) => (i === a ? cut2 - cut1 : d)));
      const ref = indices(middle.shape as number[]).map((idx) => data[flat(idx.map((k, i) => (i === a ? k + cut1 : k)), shape)]);
      expect(Array.from(await middle.toArray())).toEqual(ref);
      expect(Array.from(await concat(parts, axis).toArray())).toEqual(Array.from(data));
    }
  });

  testOp('slice', ([x]) => slice(x, 1, 1, 3), ([x]) => indices([3, 2, 5]).map(([i, j, k]) => x[flat([i, j + 1, k], [3, 4, 5])]), [[3, 4, 5]], {
    gpu,
    inputs: (shape) => [randnInput(shape, 24)],
    tol: 'exact',
    outShape: () => [3, 2, 5],
    label: () => '[1, 3) of axis 1 of [3, 4, 5]',
    gradient: { cases: [[3, 4, 5]] },
  });
  testOp('slice of whole vec4s', ([x]) => slice(x, 2, 4, 12), ([x]) => indices([3, 2, 8]).map(([i, j, k]) => x[flat([i, j, k + 4], [3, 2, 16])]), [[3, 2, 16]], {
    gpu,
    inputs: (shape) => [randnInput(shape, 28)],
    tol: 'exact',
    outShape: () => [3, 2, 8],
    label: () => '[4, 12) of axis 2 of [3, 2, 16]',
    gradient: { cases: [[3, 2, 16]] },
  });
  const concatCase = '[3, 4, 2], [3, 4, 1] (not trained) and [3, 4, 3] along axis 2';
  testOp(
    'concat',
    ([a, b, c]) => concat([a, b, c], 2),
    ([a, b, c]) => indices([3, 4, 6]).map(([i, j, k]) => (k < 2 ? a[(i * 4 + j) * 2 + k] : k < 3 ? b[i * 4 + j] : c[(i * 4 + j) * 3 + k - 3])),
    [concatCase],
    {
      gpu,
      inputs: () => [randnInput([3, 4, 2], 25), { ...randnInput([3, 4, 1], 26), differentiable: false }, randnInput([3, 4, 3], 27)],
      tol: 'exact',
      outShape: () => [3, 4, 6],
      label: (c) => c,
      gradient: { cases: [concatCase] },
    },
  );

  it('name the op and shapes for bad arguments', () => {
    const x = gpu().empty([2, 3, 4]);
    expect(() => permute(x, [0, 0, 1])).toThrow('permute: [0, 0, 1] is not a permutation of the axes of [2, 3, 4]');
    expect(() => permute(gpu().empty([1, 1, 1, 1, 2]), [0, 1, 2, 3, 4])).toThrow('permute: rank 5 > 4 is not supported: [1, 1, 1, 1, 2]');
    expect(() => transpose(gpu().empty([5]))).toThrow('transpose: needs at least two axes, got [5]');
    expect(() => slice(x, 3, 0, 1)).toThrow('slice: axis 3 is out of range for [2, 3, 4]');
    expect(() => slice(x, 1, 2, 4)).toThrow('slice: [2, 4) is out of range for axis 1 of [2, 3, 4]');
    expect(() => concat([x, gpu().empty([2, 5, 5])], 1)).toThrow('concat: shapes [2, 3, 4] and [2, 5, 5] differ off axis 1');
    expect(() => concat([], 0)).toThrow('concat: needs at least one tensor');
  });
});
