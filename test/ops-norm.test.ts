import { describe, expect, it } from 'vitest';
import { f16ArrayToF32 as fromF16Array, f32ArrayToF16 as toF16Array } from '../src/io/half-precision.js';
import { backward } from '../src/autograd/backward.js';
import { add } from '../src/ops/binary.js';
import { addRmsnorm, rmsnorm } from '../src/ops/rmsnorm.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randn, uniform } from './helpers/random.js';
import { numelOf, rmsnormRef, rowsOf } from './helpers/reference-rows.js';
import { randnInput, testOp } from './helpers/test-op.js';

const gpu = useGpu();
const EPS = 1e-5;

// Σx² of a row accumulates rounding of about (cols / workgroup + log2 workgroup) ULP at worst,
// ~770 ULP ≈ 5e-5 for the 49,152-long rows (typically far less); rsqrt halves that relative error
// and adds 2 ULP, and the products add a few more.
const TOL = { atol: 1e-6, rtol: 2e-5 };

describe('rmsnorm', () => {
  const shapes = [[1], [1, 1], [7, 13], [3, 5, 257], [2, 49152], [3000, 5]];
  // Rows of a multiple of 4 columns ([4, 24], [2, 49152]) run the kernels a vec4 at a time.
  const gradShapes = [[1], [7, 13], [4, 24], [3, 5, 257], [300, 6]];
  const cols = (shape: readonly number[]) => shape[shape.length - 1];
  const x = (shape: number[]) => randnInput(shape, numelOf(shape) + 31, 3);
  const weight = (shape: number[], dtype: 'f32' | 'f16') => ({ data: uniform(cols(shape), cols(shape) + 7, 0.5, 1.5), shape: [cols(shape)], dtype });
  const common = { gpu, tol: TOL, outShape: (shape: number[]) => shape, gradient: { cases: gradShapes } };
  const reference = ([xs, w]: readonly Float64Array[], shape: number[]) => rowsOf(xs, cols(shape)).flatMap((r) => rmsnormRef(r, w ?? null, EPS));
  testOp('rmsnorm with an f32 weight', ([xt, wt]) => rmsnorm(xt, wt, EPS), reference, shapes, { ...common, inputs: (shape) => [x(shape), weight(shape, 'f32')] });
  // An f16 weight is compared with a reference that uses its f16-rounded values.
  testOp('rmsnorm with an f16 weight', ([xt, wt]) => rmsnorm(xt, wt, EPS), reference, shapes, { ...common, inputs: (shape) => [x(shape), weight(shape, 'f16')] });
  testOp('rmsnorm without a weight', ([xt]) => rmsnorm(xt, null, EPS), reference, shapes, { ...common, inputs: (shape) => [x(shape)] });

  it('gives eps-limited output for an all-zero row', async () => {
    const y = await rmsnorm(gpu().tensor([0, 0, 0, 1, 2, 3], [2, 3]), null, EPS).toArray();
    expect(Array.from(y.slice(0, 3))).toEqual([0, 0, 0]);
    expectClose(y.slice(3), rmsnormRef([1, 2, 3], null, EPS), TOL, 'second row');
  });

  it('names the op and shapes for bad inputs', () => {
    const x = gpu().empty([4, 8]);
    expect(() => rmsnorm(x, gpu().empty([7]), EPS)).toThrow('rmsnorm: weight [7] does not match the last axis of x [4, 8]');
    expect(() => rmsnorm(x, gpu().empty([8, 1]), EPS)).toThrow('rmsnorm: weight [8, 1] does not match the last axis of x [4, 8]');
    expect(() => rmsnorm(x, gpu().empty([8], 'u32'), EPS)).toThrow('rmsnorm: weight must be f32 or f16, got u32 [8]');
    expect(() => rmsnorm(gpu().empty([4, 8], 'f16'), null, EPS)).toThrow('rmsnorm: expected f32, got f16 [4, 8]');
    expect(() => rmsnorm(x, null, -1)).toThrow('rmsnorm: eps must be ≥ 0, got -1');
    const frozen = gpu().empty([8], 'f16');
    frozen.requiresGrad = true;
    expect(() => rmsnorm(x, frozen, EPS)).toThrow('rmsnorm: an f16 weight [8] is frozen and cannot require grad');
  });
});

describe('addRmsnorm (residual add and RMSNorm in one dispatch)', () => {
  for (const shape of [[1], [7, 13], [3, 5, 257], [2, 49152], [3000, 5]]) {
    it(`both outputs match float64 with an f32, an f16 and no weight for ${JSON.stringify(shape)}`, async () => {
      const n = numelOf(shape);
      const cols = shape[shape.length - 1];
      const [a, b] = [randn(n, n + 3, 2), randn(n, n + 4, 2)];
      const w = uniform(cols, cols + 5, 0.5, 1.5);
      const sum = Float64Array.from(a, (v, i) => v + b[i]);
      const sumRows = rowsOf(sum, cols);
      for (const [label, weight, ref] of [
        ['f32 weight', gpu().tensor(w, [cols]), w],
        ['f16 weight', gpu().tensor(w, [cols], 'f16'), fromF16Array(toF16Array(w))],
        ['no weight', null, null],
      ] as const) {
        const out = addRmsnorm(gpu().tensor(a, shape), gpu().tensor(b, shape), weight, EPS);
        expect(out.sum.shape).toEqual(shape);
        expect(out.normed.shape).toEqual(shape);
        // One f32 add, as the add op does: the sum is exact up to its single rounding.
        expect(Array.from(await out.sum.toArray())).toEqual(Array.from(Float32Array.from(sum)));
        expectClose(await out.normed.toArray(), sumRows.flatMap((r) => rmsnormRef(r, ref, EPS)), TOL, label);
      }
    });
  }

  // Both outputs feed the loss, as in a decoder (the sum continues the residual stream).
  const gradShapes = [[1], [6, 37], [3, 20], [3, 5, 257]];
  testOp(
    'addRmsnorm (sum + normed)',
    ([a, b, w]) => {
      const { sum, normed } = addRmsnorm(a, b, w, EPS);
      return add(sum, normed);
    },
    ([a, b, w], shape) => {
      const cols = shape[shape.length - 1];
      const sum = a.map((v, i) => v + b[i]);
      return rowsOf(sum, cols).flatMap((row) => rmsnormRef(row, w, EPS).map((v, j) => v + row[j]));
    },
    gradShapes,
    {
      gpu,
      inputs: (shape, seed) => [randnInput(shape, seed), randnInput(shape, seed + 1), { data: uniform(shape[shape.length - 1], seed + 2, 0.5, 1.5), shape: [shape[shape.length - 1]] }],
      tol: TOL,
      outShape: (shape) => shape,
      gradient: { cases: gradShapes },
    },
  );

  it('the fused gradients equal add then rmsnorm, bit for bit', async () => {
    const shape = [6, 37];
    const n = numelOf(shape);
    const inputs = [
      { data: randn(n, 51), shape },
      { data: randn(n, 52), shape },
      { data: uniform(37, 53, 0.5, 1.5), shape: [37] },
    ];
    const g = gpu();
    const gradOut = randn(n, 54);
    const grads = (fused: boolean) =>
      g.tidy(() => {
        const [a, b, w] = inputs.map((t) => g.tensor(t.data, t.shape));
        for (const t of [a, b, w]) t.requiresGrad = true;
        const sum = fused ? null : add(a, b);
        const out = fused ? addRmsnorm(a, b, w, EPS) : { sum: sum!, normed: rmsnorm(sum!, w, EPS) };
        backward(add(out.sum, out.normed), g.tensor(gradOut, shape));
        return [a.grad!, b.grad!, w.grad!];
      });
    const [fused, unfused] = [grads(true), grads(false)];
    for (const [i, t] of fused.entries()) expect(Array.from(await t.toArray())).toEqual(Array.from(await unfused[i].toArray()));
  });

  it('refuses operands of different shapes', () => {
    expect(() => addRmsnorm(gpu().empty([4, 8]), gpu().empty([8]), null, EPS)).toThrow('addRmsnorm: a [4, 8] and b [8] differ (no broadcasting here)');
  });
});
