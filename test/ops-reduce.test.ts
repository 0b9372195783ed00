import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import type { GradNode } from '../src/gpu/tensor.js';
import { argmax, max, maxAll, mean, meanAll, sum, sumAll } from '../src/ops/reduce.js';
import { useGpu } from './helpers/gpu.js';
import { distinctValues, numelOf, rowAbsSums, rowsOf } from './helpers/reference-rows.js';
import { randnInput, testOp } from './helpers/test-op.js';

const gpu = useGpu();

// [1] is a single row of length 1; [70000, 3] has more rows than one grid dimension holds.
const shapes = [[1], [1, 1], [7, 13], [3, 5, 257], [2, 49152], [3000, 5], [70000, 3]];

// f32 sums carry rounding proportional to Σ|x|, not to the (possibly cancelling) sum itself.
const SUM_RTOL_OF_ABS = 2 ** -20;

const cols = (shape: readonly number[]) => shape[shape.length - 1];
const rowSums = (x: Float64Array, shape: readonly number[]) => rowsOf(x, cols(shape)).map((r) => r.reduce((a, b) => a + b, 0));
const sumTol = (x: Float64Array, n: number) => ({ atol: Math.max(...rowAbsSums(x, n)) * SUM_RTOL_OF_ABS, rtol: 0 });
const gradShapes = [[1], [7, 13], [3, 5, 257]];

describe('reductions along the last axis', () => {
  const common = { gpu, outShape: (shape: number[]) => shape.slice(0, -1) };
  const normal = (shape: number[]) => [randnInput(shape, numelOf(shape) + 1)];
  testOp('sum', ([x]) => sum(x), ([x], shape) => rowSums(x, shape), shapes, {
    ...common,
    inputs: normal,
    tol: ([x], shape) => sumTol(x, cols(shape)),
    gradient: { cases: gradShapes },
  });
  testOp('mean', ([x]) => mean(x), ([x], shape) => rowSums(x, shape).map((v) => v / cols(shape)), shapes, {
    ...common,
    inputs: normal,
    tol: ([x], shape) => ({ atol: sumTol(x, cols(shape)).atol / cols(shape), rtol: 1e-6 }),
    gradient: { cases: gradShapes },
  });
  // max and argmax are exact: they only compare. Distinct values spaced wider than the
  // finite-difference step keep the argmax fixed under the probes.
  const maxOf = (x: Float64Array, shape: number[]) => rowsOf(x, cols(shape)).map((r) => Math.max(...r));
  const distinct = (shape: number[], seed: number) => [{ data: distinctValues(numelOf(shape), seed), shape }];
  testOp('max', ([x]) => max(x), ([x], shape) => maxOf(x, shape), shapes, { ...common, inputs: distinct, tol: 'exact', gradient: { cases: gradShapes } });
  testOp('argmax', ([x]) => argmax(x), ([x], shape) => rowsOf(x, cols(shape)).map((r) => r.indexOf(Math.max(...r))), shapes, { ...common, inputs: normal, tol: 'exact' });

  it('max picks the first of tied maxima and handles -inf rows', async () => {
    const x = gpu().tensor([1, 3, 3, 2, -Infinity, -Infinity, -Infinity, -Infinity, 0, 5, 0, 5], [3, 4]);
    expect(Array.from(await max(x).toArray())).toEqual([3, -Infinity, 5]);
    expect(Array.from(await gpu().readU32(argmax(x)))).toEqual([1, 0, 1]);
  });

  it('reports the op and shape for bad inputs', () => {
    expect(() => sum(gpu().empty([3, 0]))).toThrow('sum: the last axis is empty in [3, 0]');
    expect(() => max(gpu().empty([], 'f32'))).toThrow('max: needs at least one axis, got []');
    expect(() => mean(gpu().empty([2, 3], 'f16'))).toThrow('mean: expected f32, got f16 [2, 3]');
    expect(() => sumAll(gpu().empty([0, 4]))).toThrow('sumAll: cannot reduce the empty tensor [0, 4]');
    const x = gpu().empty([3, 4]);
    x.requiresGrad = true;
    expect(() => (max(x).node as GradNode).backward(gpu().empty([5]))).toThrow('max backward: gradient [5] f32 for output [3] f32');
  });
});

describe('reductions over all elements', () => {
  // 12,293 spans four first-pass chunks with a short last one.
  const shapes = [[1], [7, 13], [3, 5, 257], [12293], [2, 49152]];
  const gradients = { cases: [[1], [7, 13], [12293]] };
  const common = { gpu, outShape: () => [1] };
  const normal = (shape: number[]) => [randnInput(shape, 2 * numelOf(shape) + 1)];
  const total = (x: Float64Array) => x.reduce((a, b) => a + b, 0);
  testOp('sumAll', ([x]) => sumAll(x), ([x]) => [total(x)], shapes, { ...common, inputs: normal, tol: ([x]) => sumTol(x, x.length), gradient: gradients });
  testOp('meanAll', ([x]) => meanAll(x), ([x]) => [total(x) / x.length], shapes, {
    ...common,
    inputs: normal,
    tol: ([x]) => ({ atol: sumTol(x, x.length).atol / x.length, rtol: 1e-6 }),
    gradient: gradients,
  });
  testOp('maxAll', ([x]) => maxAll(x), ([x]) => [x.reduce((a, b) => Math.max(a, b), -Infinity)], shapes, {
    ...common,
    inputs: (shape, seed) => [{ data: distinctValues(numelOf(shape), seed, 0.05), shape }],
    tol: 'exact',
    gradient: gradients,
  });

  it('maxAll routes the gradient to the first maximum, also when ties span chunks', async () => {
    const n = 3 * 4096 + 17;
    const data = new Float32Array(n).fill(-1);
    data[5000] = 2;
    data[9000] = 2;
    data[12300] = 2;
    const x = gpu().tensor(data, [n]);
    x.requiresGrad = true;
    gpu().tidy(() => backward(maxAll(x), gpu().tensor([3], [1])));
    const grad = await x.grad!.toArray();
    expect(grad[5000]).toBe(3);
    expect(grad.reduce((a, b) => a + Math.abs(b), 0)).toBe(3);
  });
});
