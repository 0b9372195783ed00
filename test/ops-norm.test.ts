import { describe, expect, it } from 'vitest';
import { rmsnorm } from '../src/ops/rmsnorm.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { uniform } from './helpers/random.js';
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
  const gradShapes = [[1], [7, 13], [3, 5, 257], [300, 6]];
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
