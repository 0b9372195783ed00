import { describe, expect, it } from 'vitest';
import { logSoftmax, softmax } from '../src/ops/softmax.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { gradcheck } from './helpers/gradcheck.js';
import { randn } from './helpers/random.js';
import { logSoftmaxRef, numelOf, rowsOf, softmaxRef } from './helpers/reference-rows.js';

const gpu = useGpu();

// WGSL allows exp an error of 3 + 2|x| ULP and log 3 ULP (away from 1); with |x − max| up to ~12
// here that is ~30 ULP ≈ 2e-6 relative per element, plus rounding in the row sum.
const SOFTMAX_TOL = { atol: 1e-9, rtol: 4e-6 };
// log-softmax values reach ~−15 on the long rows; an absolute error of a few ULP of that magnitude.
const LOG_SOFTMAX_TOL = { atol: 4e-6, rtol: 1e-6 };

describe('softmax and logSoftmax', () => {
  for (const shape of [[1], [1, 1], [7, 13], [3, 5, 257], [2, 49152], [3000, 5]]) {
    it(`match float64 for ${JSON.stringify(shape)}`, async () => {
      const n = numelOf(shape);
      const cols = shape[shape.length - 1];
      const data = randn(n, n + 11, 2);
      const rows = rowsOf(data, cols);
      const x = gpu().tensor(data, shape);
      const y = softmax(x);
      expect(y.shape).toEqual(shape);
      expectClose(await y.toArray(), rows.flatMap(softmaxRef), SOFTMAX_TOL, 'softmax');
      expectClose(await logSoftmax(x).toArray(), rows.flatMap(logSoftmaxRef), LOG_SOFTMAX_TOL, 'logSoftmax');
    });
  }

  it('stay finite for huge logits and masked (-inf) entries', async () => {
    const data = [1000, 999, -1000, 0, 5e37, -5e37, 3e38, 3e38, 2, -Infinity, 1, -Infinity];
    const rows = rowsOf(data, 4);
    const x = gpu().tensor(data, [3, 4]);
    expectClose(await softmax(x).toArray(), rows.flatMap(softmaxRef), SOFTMAX_TOL, 'softmax');
    const ls = await logSoftmax(x).toArray();
    expectClose(ls.slice(0, 4), logSoftmaxRef(rows[0]), LOG_SOFTMAX_TOL, 'shifted logSoftmax');
    expect(ls[9]).toBe(-Infinity);
    expectClose([ls[8], ls[10]], [logSoftmaxRef(rows[2])[0], logSoftmaxRef(rows[2])[2]], LOG_SOFTMAX_TOL, 'masked logSoftmax');
  });

  it('name the op and shape for bad inputs', () => {
    expect(() => softmax(gpu().empty([4, 0]))).toThrow('softmax: the last axis is empty in [4, 0]');
    expect(() => logSoftmax(gpu().empty([2], 'f16'))).toThrow('logSoftmax: expected f32, got f16 [2]');
  });

  for (const shape of [[1], [7, 13], [3, 5, 257]]) {
    it(`backward matches finite differences for ${JSON.stringify(shape)}`, async () => {
      const n = numelOf(shape);
      await gradcheck(gpu(), ([x]) => softmax(x), [{ data: randn(n, 21), shape }], { eps: 1e-2 });
      await gradcheck(gpu(), ([x]) => logSoftmax(x), [{ data: randn(n, 22), shape }], { eps: 1e-2 });
    });
  }
});
