import { describe, expect, it } from 'vitest';
import { backward } from '../src/autograd/backward.js';
import type { GradNode } from '../src/gpu/tensor.js';
import { argmax, max, maxAll, mean, meanAll, sum, sumAll } from '../src/ops/reduce.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { gradcheck } from './helpers/gradcheck.js';
import { randn } from './helpers/random.js';
import { distinctValues, numelOf, rowAbsSums, rowsOf } from './helpers/reference-rows.js';

const gpu = useGpu();

// [1] is a single row of length 1; [70000, 3] has more rows than one grid dimension holds.
const shapes = [[1], [1, 1], [7, 13], [3, 5, 257], [2, 49152], [3000, 5], [70000, 3]];

// f32 sums carry rounding proportional to Σ|x|, not to the (possibly cancelling) sum itself.
const SUM_RTOL_OF_ABS = 2 ** -20;

describe('reductions along the last axis', () => {
  for (const shape of shapes) {
    it(`sum, mean, max and argmax match float64 for ${JSON.stringify(shape)}`, async () => {
      const n = numelOf(shape);
      const cols = shape[shape.length - 1];
      const data = randn(n, n + 1);
      const x = gpu().tensor(data, shape);
      const rows = rowsOf(data, cols);
      const absSums = rowAbsSums(data, cols);
      const sumRef = rows.map((r) => r.reduce((a, b) => a + b, 0));
      const atol = Math.max(...absSums) * SUM_RTOL_OF_ABS;

      const s = sum(x);
      expect(s.shape).toEqual(shape.slice(0, -1));
      expectClose(await s.toArray(), sumRef, { atol, rtol: 0 }, 'sum');
      expectClose(await mean(x).toArray(), sumRef.map((v) => v / cols), { atol: atol / cols, rtol: 1e-6 }, 'mean');
      // max and argmax are exact: they only compare.
      const maxRef = rows.map((r) => Math.max(...r));
      expect(Array.from(await max(x).toArray())).toEqual(maxRef);
      expect(Array.from(await gpu().readU32(argmax(x)))).toEqual(rows.map((r, i) => r.indexOf(maxRef[i])));
    });
  }

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

  for (const shape of [[1], [7, 13], [3, 5, 257]]) {
    it(`backward matches finite differences for ${JSON.stringify(shape)}`, async () => {
      const n = numelOf(shape);
      await gradcheck(gpu(), ([x]) => sum(x), [{ data: randn(n, 3), shape }], { eps: 1e-2 });
      await gradcheck(gpu(), ([x]) => mean(x), [{ data: randn(n, 4), shape }], { eps: 1e-2 });
      // Distinct values spaced wider than eps keep the argmax fixed under the probes.
      await gradcheck(gpu(), ([x]) => max(x), [{ data: distinctValues(n, 5), shape }], { eps: 1e-2 });
    });
  }
});

describe('reductions over all elements', () => {
  // 12,293 spans four first-pass chunks with a short last one.
  for (const shape of [[1], [7, 13], [3, 5, 257], [12293], [2, 49152]]) {
    it(`sumAll, meanAll and maxAll match float64 for ${JSON.stringify(shape)}`, async () => {
      const n = numelOf(shape);
      const data = randn(n, 2 * n + 1);
      const x = gpu().tensor(data, shape);
      const total = data.reduce((a, b) => a + b, 0);
      const atol = rowAbsSums(data, n)[0] * SUM_RTOL_OF_ABS;
      const s = sumAll(x);
      expect(s.shape).toEqual([1]);
      expectClose(await s.toArray(), [total], { atol, rtol: 0 }, 'sumAll');
      expectClose(await meanAll(x).toArray(), [total / n], { atol: atol / n, rtol: 1e-6 }, 'meanAll');
      expect(Array.from(await maxAll(x).toArray())).toEqual([data.reduce((a, b) => Math.max(a, b), -Infinity)]);
    });
  }

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

  for (const shape of [[1], [7, 13], [12293]]) {
    it(`backward matches finite differences for ${JSON.stringify(shape)}`, async () => {
      const n = numelOf(shape);
      // Larger sums need a larger step for the f32 forward to resolve the difference.
      await gradcheck(gpu(), ([x]) => sumAll(x), [{ data: randn(n, 6), shape }], { eps: 1e-2, probes: 8 });
      await gradcheck(gpu(), ([x]) => meanAll(x), [{ data: randn(n, 7), shape }], { eps: 1e-2, probes: 8 });
      await gradcheck(gpu(), ([x]) => maxAll(x), [{ data: distinctValues(n, 8, 0.05), shape }], { eps: 1e-2, probes: 8 });
    });
  }
});
