import { describe, expect, it } from 'vitest';
import { logSoftmax, softmax } from '../src/ops/softmax.js';
import { expectClose } from './helpers/check.js';
import { useGpu } from './helpers/gpu.js';
import { randnInput, testOp } from './helpers/test-op.js';
import { logSoftmaxRef, numelOf, rowsOf, softmaxRef } from './helpers/reference-rows.js';

const gpu = useGpu();

// WGSL allows exp an error of 3 + 2|x| ULP and log 3 ULP (away from 1); with |x − max| up to ~12
// here that is ~30 ULP ≈ 2e-6 relative per element, plus rounding in the row sum.
const SOFTMAX_TOL = { atol: 1e-9, rtol: 4e-6 };
// log-softmax values reach ~−15 on the long rows; an absolute error of a few ULP of that magnitude.
const LOG_SOFTMAX_TOL = { atol: 4e-6, rtol: 1e-6 };

const rowwise = (ref: (row: readonly number[]) => number[]) => ([x]: readonly Float64Array[], shape: number[]) => rowsOf(x, shape[shape.length - 1]).flatMap(ref);

describe('softmax and logSoftmax', () => {
  const forward = { gpu, inputs: (shape: number[]) => [randnInput(shape, numelOf(shape) + 11, 2)], outShape: (shape: number[]) => shape };
  const gradient = { cases: [[1], [7, 13], [3, 5, 257]] };
  const shapes = [[1], [1, 1], [7, 13], [3, 5, 257], [2, 49152], [3000, 5]];
  testOp('softmax', ([x]) => softmax(x), rowwise(softmaxRef), shapes, { ...forward, tol: SOFTMAX_TOL, gradient });
  testOp('logSoftmax', ([x]) => logSoftmax(x), rowwise(logSoftmaxRef), shapes, { ...forward, tol: LOG_SOFTMAX_TOL, gradient });

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
});
